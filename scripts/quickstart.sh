#!/usr/bin/env bash
# One command from a fresh clone to a running, cited knowledge base on the embedded defaults:
# fetch the local embedding model, build kb, ingest docs-samples/, answer a sample question,
# then serve the HTTP API (Ctrl-C to stop).
#
#   ./scripts/quickstart.sh            # ingest, answer, serve on 127.0.0.1:8080
#   ./scripts/quickstart.sh --no-serve # ingest and answer only
set -euo pipefail
cd "$(dirname "$0")/.."

serve=1
[[ "${1:-}" == "--no-serve" ]] && serve=0

./scripts/fetch-model.sh
echo "building kb (the first build takes a while: the embedded Qdrant engine is large) ..."
cargo build --locked --bin kb
kb=("${CARGO_TARGET_DIR:-target}/debug/kb")

echo
echo "== kb ingest docs-samples"
"${kb[@]}" ingest docs-samples
echo
echo "== kb ask \"How many vacation days do new employees get?\""
"${kb[@]}" ask "How many vacation days do new employees get?"
if [[ $serve == 1 ]]; then
  echo
  echo "== kb serve"
  exec "${kb[@]}" serve
fi
