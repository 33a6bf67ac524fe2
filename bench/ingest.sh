#!/usr/bin/env bash
# Ingest benchmark (bench/README.md): kb's pipeline with a zero-cost embedder and LlamaIndex
# core with its MockEmbedding over the whole kernel-docs corpus, then kb with the local MiniLM
# model on a 1-in-50 subset next to the model alone on the same chunks.
# Environment: EVERY=N compares kb and LlamaIndex on every Nth file only (default: all);
# LOCAL_EVERY=N sizes the local-model subset (default 50).
# Writes bench/results/ingest.json and redraws the plots. Usage: bench/ingest.sh
source "$(dirname "$0")/common.sh"
ensure_venv
ensure_corpus
ensure_model
build
scratch=$DATA/scratch
# EVERY=N: compare the pipelines on every Nth file only (default 1: the whole corpus).
every=${EVERY:-1}
corpus=$CORPUS
if (( every > 1 )); then corpus=$DATA/linux-doc-1-in-$every; make_subset "$every" "$corpus"; fi
# LOCAL_EVERY=N: the local-model run takes every Nth file (default 50).
subset=$DATA/linux-doc-subset
make_subset "${LOCAL_EVERY:-50}" "$subset"
machine=$(machine_json)

log "kb, zero-cost embedder, $corpus"
"$BIN/kb-bench-ingest" --corpus "$corpus" --scratch "$scratch/kb-fake" --embedder fake \
    --model-dir "$MODEL" > "$DATA/kb-fake.json"
log "LlamaIndex core, MockEmbedding, $corpus"
"$PY" "$BENCH/py/ingest_llamaindex.py" --corpus "$corpus" --scratch "$scratch/llamaindex" \
    --model-dir "$MODEL" > "$DATA/llamaindex.json"
log "kb, local MiniLM model, subset; then the model alone on the same chunks"
"$BIN/kb-bench-ingest" --corpus "$subset" --scratch "$scratch/kb-local" --embedder local \
    --model-dir "$MODEL" --raw --dump-chunks "$DATA/inputs/chunks.jsonl" > "$DATA/kb-local.json"

"$PY" - "$DATA" "$machine" "$every" > "$RESULTS/ingest.json" <<'PY'
import json, sys
data, machine = sys.argv[1], json.loads(sys.argv[2])
load = lambda name: json.load(open(f"{data}/{name}.json"))
print(json.dumps({"machine": machine, "every": int(sys.argv[3]), "kb_fake": load("kb-fake"), "llamaindex": load("llamaindex"),
                  "kb_local": load("kb-local")}, indent=2))
PY
rm -rf "$scratch"
"$PY" "$BENCH/py/report.py" ingest
