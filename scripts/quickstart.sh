#!/usr/bin/env bash
# One command from a fresh clone to a running, cited knowledge base on the embedded defaults:
# fetch the local embedding model, build kb, ingest docs-samples/, answer a sample question,
# then make a reader API key and serve the HTTP API (Ctrl-C to stop).
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
# Exit 3: some files were skipped (each is listed above with its reason, e.g. the scanned
# notices when Tesseract is not installed); the rest is ingested, so go on.
status=0
"${kb[@]}" ingest docs-samples || status=$?
if [[ $status == 3 ]]; then
  echo "(the files listed above were skipped; everything else is ingested)"
elif [[ $status != 0 ]]; then
  exit "$status"
fi
echo
echo "== kb ask \"How many vacation days do new employees get?\""
"${kb[@]}" ask "How many vacation days do new employees get?"
if [[ $serve == 1 ]]; then
  echo
  echo "== kb keys create --role reader --name quickstart"
  # A rerun replaces the previous quickstart key (revoking one that does not exist fails: fine).
  "${kb[@]}" keys revoke quickstart >/dev/null 2>&1 || true
  key=$("${kb[@]}" keys create --role reader --name quickstart)
  echo "Every /v1 call needs an API key. Once kb is serving, try:"
  echo "  curl -s 127.0.0.1:8080/v1/ask -H 'Authorization: Bearer $key' \\"
  echo "    -H 'content-type: application/json' -d '{\"question\": \"How many vacation days do new employees get?\"}'"
  echo
  echo "== kb serve"
  exec "${kb[@]}" serve
fi
