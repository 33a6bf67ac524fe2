#!/usr/bin/env bash
# Local embedder benchmark (bench/README.md): kb's local embedder against sentence-transformers
# on the same model folder, the same texts, the same batch sizes and THREADS threads each:
# SENTENCES prose sentences (500) and CHUNKS chunks of 200 tokens (128) from the kernel docs.
# Writes bench/results/embed.json and redraws the plots. Usage: bench/embed.sh
# Environment: THREADS=1 (threads for both sides), BATCH_SIZES=1,8,32.
source "$(dirname "$0")/common.sh"
threads=${THREADS:-1}
batch_sizes=${BATCH_SIZES:-1,8,32}
ensure_venv
ensure_corpus
ensure_model
build
inputs=$DATA/inputs
make_subset 50 "$DATA/embed-subset"
"$BIN/kb-bench-ingest" --corpus "$DATA/embed-subset" --scratch "$DATA/scratch/embed" \
    --embedder fake --model-dir "$MODEL" --dump-chunks "$inputs/all-chunks.jsonl" > /dev/null
head -n "${CHUNKS:-128}" "$inputs/all-chunks.jsonl" > "$inputs/chunks.jsonl"
"$PY" "$BENCH/py/make_sentences.py" --corpus "$CORPUS" --count ${SENTENCES:-500} > "$inputs/sentences.jsonl"
rm -rf "$DATA/scratch/embed"
machine=$(machine_json)

for set in sentences chunks; do
    log "kb-embed-local, $set"
    RAYON_NUM_THREADS=$threads "$BIN/kb-bench-embed" --inputs "$inputs/$set.jsonl" --label "$set" \
        --model-dir "$MODEL" --batch-sizes "$batch_sizes" > "$DATA/embed-kb-$set.json"
    log "sentence-transformers, $set"
    "$PY" "$BENCH/py/embed_st.py" --inputs "$inputs/$set.jsonl" --label "$set" --model-dir "$MODEL" \
        --batch-sizes "$batch_sizes" --threads "$threads" > "$DATA/embed-st-$set.json"
done

"$PY" - "$DATA" "$machine" "$threads" > "$RESULTS/embed.json" <<'PY'
import json, sys
data, machine, threads = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
load = lambda name: json.load(open(f"{data}/{name}.json"))
print(json.dumps({"machine": machine, "threads": threads, "sets": {
    s: {"kb": load(f"embed-kb-{s}"), "sentence_transformers": load(f"embed-st-{s}")}
    for s in ("sentences", "chunks")}}, indent=2))
PY
# Keep each thread count's result; embed.json (the plot) is the latest run.
cp "$RESULTS/embed.json" "$RESULTS/embed-$threads-threads.json"
"$PY" "$BENCH/py/report.py" embed
