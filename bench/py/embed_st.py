"""The sentence-transformers side of the local embedder benchmark.

Loads the same model folder as kb, pins torch to --threads threads, and encodes the same
texts (one JSON string per line) at each batch size after a warm-up, with normalised
vectors as kb makes them. Prints one JSON result on stdout.
"""

import argparse
import json
import time

import torch
from sentence_transformers import SentenceTransformer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--label", required=True)
    parser.add_argument("--model-dir", default="models/all-MiniLM-L6-v2")
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=256)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    with open(args.inputs, encoding="utf-8") as f:
        texts = [json.loads(line) for line in f if line.strip()]
    model = SentenceTransformer(args.model_dir, device="cpu")
    # kb embeds up to max_tokens (256 by default) tokens per input; match it.
    model.max_seq_length = args.max_tokens

    runs = []
    for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
        model.encode(texts[:8], batch_size=batch_size, normalize_embeddings=True)
        cpu = time.process_time()
        started = time.perf_counter()
        vectors = model.encode(texts, batch_size=batch_size, normalize_embeddings=True)
        secs = time.perf_counter() - started
        cpu = time.process_time() - cpu
        assert len(vectors) == len(texts)
        print(f"sentence-transformers {args.label}: batch {batch_size}: {len(texts) / secs:.1f} inputs/s",
              file=__import__("sys").stderr)
        runs.append({
            "batch_size": batch_size,
            "inputs": len(texts),
            "seconds": secs,
            "cpu_s": cpu,
            "inputs_per_s": len(texts) / secs,
        })
    result = {
        "benchmark": "embed",
        "engine": f"sentence-transformers {__import__('sentence_transformers').__version__}, torch {torch.__version__}",
        "label": args.label,
        "threads": args.threads,
        "runs": runs,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
