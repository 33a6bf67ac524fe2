#!/usr/bin/env bash
# HNSW benchmark (bench/README.md): the embedded index's graph on POINTS prose sentences of the
# kernel docs (50,000) with QUERIES held-out sentences (500): build time, recall@10 against an
# exact scan, and search time, for each ef_construct and search ef; on the local model's vectors
# and on the zero-cost embedder's (lexical_vector) and uniformly random ones.
# The model's vectors are cached in bench/data (about 6 minutes to make on two cores). Below
# about 7,000 points (Qdrant's indexing threshold, ~10 MB of vectors) no graph is built and
# every search is an exact scan, so keep POINTS above that.
# Writes bench/results/hnsw.json and redraws the plot. Usage: bench/hnsw.sh
# Environment: POINTS, QUERIES, EF_CONSTRUCT=100,64,32, SEARCH_EF=128,100,64,
# VECTORS=model,lexical,random.
source "$(dirname "$0")/common.sh"
ensure_corpus
ensure_model
build
ensure_venv
points=${POINTS:-50000}
machine=$(machine_json)
log "kb-bench-hnsw, $points points"
"$BIN/kb-bench-hnsw" --corpus "$CORPUS" --scratch "$DATA/scratch/hnsw" --model-dir "$MODEL" \
    --points "$points" --queries "${QUERIES:-500}" --cache "$DATA/hnsw-vectors-$points.bin" \
    --ef-construct "${EF_CONSTRUCT:-100,64,32}" --search-ef "${SEARCH_EF:-128,100,64}" \
    --vectors "${VECTORS:-model,lexical,random}" > "$DATA/hnsw.json"
"$PY" - "$DATA/hnsw.json" "$machine" > "$RESULTS/hnsw.json" <<'PY'
import json, sys
result = json.load(open(sys.argv[1]))
result["machine"] = json.loads(sys.argv[2])
print(json.dumps(result, indent=2))
PY
rm -rf "$DATA/scratch/hnsw"
"$PY" "$BENCH/py/report.py" hnsw
