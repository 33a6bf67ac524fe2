#!/usr/bin/env python3
"""Reference embeddings for the unit tests, computed without candle, tokenizers or torch.

A from-scratch numpy re-implementation of what sentence-transformers does with
all-MiniLM-L6-v2: BERT basic tokenization + WordPiece (from vocab.txt), the BERT encoder in
float64, mean pooling, L2 normalisation. Writes minilm_reference.json next to this file.

    python3 crates/kb-embed-local/testdata/reference.py [MODEL_DIR]
"""
import json
import math
import struct
import sys
import unicodedata
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODEL_DIR = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[2] / "models" / "all-MiniLM-L6-v2"
MAX_TOKENS = 256
SENTENCES = [
    "How many vacation days do I get?",
    "Employees receive 25 days of paid annual leave.",
    "Laptops are replaced every three years.",
    "Café naïve résumé: Ünïcödé, state-of-the-art tokenization!",
    "",
]
# Long inputs: attention over many positions, and (the second) truncation at MAX_TOKENS.
TRAVEL = "Section {}: employees who travel for work book trains in second class, flights in economy, and hotels under the city's nightly limit; receipts go to finance within 30 days."
SENTENCES += [" ".join(TRAVEL.format(i) for i in range(1, n + 1)) for n in (4, 12)]


def load_safetensors(path):
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    body = data[8 + n :]
    dtypes = {"F32": np.float32, "F16": np.float16}
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] not in dtypes:
            continue  # e.g. an I64 position_ids buffer
        start, end = info["data_offsets"]
        arr = np.frombuffer(body[start:end], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
        out[name.removeprefix("bert.")] = arr.astype(np.float64)
    return out


# --- tokenizer (BertTokenizer: do_lower_case, tokenize_chinese_chars, strip accents) ---
def is_punct(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_control(ch):
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch).startswith("C")


def basic_tokenize(text):
    text = "".join(" " if ch.isspace() else ch for ch in text if ord(ch) not in (0, 0xFFFD) and not is_control(ch))
    words = []
    for word in text.lower().split():
        word = "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")
        cur = ""
        for ch in word:
            if is_punct(ch):
                if cur:
                    words.append(cur)
                words.append(ch)
                cur = ""
            else:
                cur += ch
        if cur:
            words.append(cur)
    return words


def wordpiece(word, vocab):
    if len(word) > 100:
        return ["[UNK]"]
    pieces, start = [], 0
    while start < len(word):
        end, found = len(word), None
        while start < end:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                found = piece
                break
            end -= 1
        if found is None:
            return ["[UNK]"]
        pieces.append(found)
        start = end
    return pieces


def tokenize(text, vocab):
    tokens = [p for w in basic_tokenize(text) for p in wordpiece(w, vocab)]
    tokens = ["[CLS]"] + tokens[: MAX_TOKENS - 2] + ["[SEP]"]
    return [vocab[t] for t in tokens]


# --- model ---
def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


ERF = np.vectorize(math.erf)


def gelu(x):
    return 0.5 * x * (1.0 + ERF(x / math.sqrt(2.0)))


def encode(ids, W, cfg):
    n = len(ids)
    h = cfg["hidden_size"]
    heads = cfg["num_attention_heads"]
    d = h // heads
    eps = cfg["layer_norm_eps"]
    x = W["embeddings.word_embeddings.weight"][ids] + W["embeddings.position_embeddings.weight"][:n] + W["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"], eps)
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        lin = lambda t, name: t @ W[p + name + ".weight"].T + W[p + name + ".bias"]
        q = lin(x, "attention.self.query").reshape(n, heads, d).transpose(1, 0, 2)
        k = lin(x, "attention.self.key").reshape(n, heads, d).transpose(1, 0, 2)
        v = lin(x, "attention.self.value").reshape(n, heads, d).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(1, 0, 2).reshape(n, h)
        x = layer_norm(lin(ctx, "attention.output.dense") + x, W[p + "attention.output.LayerNorm.weight"], W[p + "attention.output.LayerNorm.bias"], eps)
        inter = gelu(lin(x, "intermediate.dense"))
        x = layer_norm(lin(inter, "output.dense") + x, W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"], eps)
    pooled = x.mean(0)
    return pooled / max(np.linalg.norm(pooled), 1e-12)


def main():
    cfg = json.loads((MODEL_DIR / "config.json").read_text())
    vocab = {t: i for i, t in enumerate((MODEL_DIR / "vocab.txt").read_text(encoding="utf-8").split("\n"))}
    W = load_safetensors(MODEL_DIR / "model.safetensors")
    cases = []
    for text in SENTENCES:
        ids = tokenize(text, vocab)
        vec = encode(ids, W, cfg)
        cases.append({"text": text, "ids": ids, "embedding": [round(float(v), 7) for v in vec]})
    out = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "generated_by": "testdata/reference.py (numpy, float64)",
        "cases": cases,
    }
    (HERE / "minilm_reference.json").write_text(json.dumps(out) + "\n")
    print(f"wrote {len(cases)} reference embeddings")


if __name__ == "__main__":
    main()
