"""The Python peer of the ingest benchmark: LlamaIndex core over the same corpus.

Same chunk size in the same tokenizer (the model folder's tokenizer.json), a zero-cost
embedder (LlamaIndex's MockEmbedding, batches of 32 as kb), and LlamaIndex's default store
(the in-memory SimpleVectorStore, persisted to disk as kb persists its catalog and index).
Prints one JSON result on stdout.
"""

import argparse
import json
import shutil
import time
from pathlib import Path

from llama_index.core import MockEmbedding, SimpleDirectoryReader, StorageContext, VectorStoreIndex
from llama_index.core.node_parser import SentenceSplitter
from tokenizers import Tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", required=True, type=Path)
    parser.add_argument("--scratch", required=True, type=Path)
    parser.add_argument("--model-dir", default="models/all-MiniLM-L6-v2", type=Path)
    parser.add_argument("--chunk-tokens", default=200, type=int)
    parser.add_argument("--batch-size", default=32, type=int)
    args = parser.parse_args()

    tokenizer = Tokenizer.from_file(str(args.model_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()

    def count(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False).ids

    if args.scratch.exists():
        shutil.rmtree(args.scratch)
    stages: dict[str, float] = {}
    started = time.perf_counter()
    cpu = time.process_time()

    t = time.perf_counter()
    documents = SimpleDirectoryReader(
        input_dir=str(args.corpus), recursive=True, required_exts=[".txt", ".md"]
    ).load_data()
    stages["read_parse_s"] = time.perf_counter() - t

    t = time.perf_counter()
    # Metadata is left out of the size so that chunks hold as much text as kb's.
    splitter = SentenceSplitter(
        chunk_size=args.chunk_tokens, chunk_overlap=0, tokenizer=count, include_metadata=False
    )
    nodes = splitter.get_nodes_from_documents(documents)
    stages["split_s"] = time.perf_counter() - t

    t = time.perf_counter()
    embed_model = MockEmbedding(embed_dim=384, embed_batch_size=args.batch_size)
    nodes = embed_model(nodes)
    stages["embed_s"] = time.perf_counter() - t

    t = time.perf_counter()
    index = VectorStoreIndex(nodes, embed_model=embed_model)
    stages["upsert_s"] = time.perf_counter() - t

    t = time.perf_counter()
    index.storage_context.persist(persist_dir=str(args.scratch))
    stages["persist_s"] = time.perf_counter() - t

    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    size = sum(p.stat().st_size for p in args.scratch.rglob("*") if p.is_file())
    files = len({d.metadata.get("file_path") for d in documents})
    result = {
        "benchmark": "ingest",
        "pipeline": "llama-index-core " + __import__("llama_index.core").core.__version__,
        "files": files,
        "documents": len(documents),
        "chunks": len(nodes),
        "wall_s": wall,
        "cpu_s": cpu,
        "files_per_s": files / wall,
        "chunks_per_s": len(nodes) / wall,
        "store_bytes": size,
        **stages,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
