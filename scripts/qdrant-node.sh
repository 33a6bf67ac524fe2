#!/usr/bin/env bash
# Start one Qdrant server node for the tests on free loopback ports, storage in a temporary
# folder, and print `REST_PORT GRPC_PORT PID DIR` once it is ready. Sourced helpers use it;
# run alone it is a quick way to get a throw-away server:
#
#   read -r rest grpc pid dir < <(scripts/qdrant-node.sh)
#
# The binary: $KB_QDRANT_BIN, else the one unpacked from ../shared/qdrant/qdrant.xz (the
# Qdrant 1.19.0 server built for the machines kb is developed on) into
# ~/.cache/kb-qdrant/qdrant, else `qdrant` on PATH (an official release binary:
# https://github.com/qdrant/qdrant/releases). Extra arguments go to the server;
# `--binary` alone prints the binary's path and starts nothing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

binary() {
  if [ -n "${KB_QDRANT_BIN:-}" ]; then
    echo "$KB_QDRANT_BIN"
    return
  fi
  local cache="${XDG_CACHE_HOME:-$HOME/.cache}/kb-qdrant"
  local packed="$root/../shared/qdrant/qdrant.xz"
  if [ -f "$packed" ] && { [ ! -x "$cache/qdrant" ] || [ "$packed" -nt "$cache/qdrant" ]; }; then
    mkdir -p "$cache"
    xz -dc "$packed" > "$cache/qdrant.tmp.$$"
    chmod +x "$cache/qdrant.tmp.$$"
    mv "$cache/qdrant.tmp.$$" "$cache/qdrant"
  fi
  if [ -x "$cache/qdrant" ]; then
    echo "$cache/qdrant"
  elif command -v qdrant >/dev/null 2>&1; then
    command -v qdrant
  else
    echo "no Qdrant server binary: set KB_QDRANT_BIN, or put ../shared/qdrant/qdrant.xz beside the clone, or install an official release binary as 'qdrant' on PATH (https://github.com/qdrant/qdrant/releases)" >&2
    exit 1
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

bin="$(binary)"
if [ "${1:-}" = "--binary" ]; then
  # Only say where the binary is (scripts/test.sh exports it for the cluster test).
  echo "$bin"
  exit 0
fi
rest="$(free_port)"
grpc="$(free_port)"
while [ "$grpc" = "$rest" ]; do grpc="$(free_port)"; done
dir="$(mktemp -d "${TMPDIR:-/tmp}/kb-qdrant.XXXXXX")"
(
  cd "$dir"
  QDRANT__SERVICE__HOST=127.0.0.1 QDRANT__SERVICE__HTTP_PORT="$rest" \
    QDRANT__SERVICE__GRPC_PORT="$grpc" QDRANT__STORAGE__STORAGE_PATH="$dir/storage" \
    QDRANT__TELEMETRY_DISABLED=true QDRANT__LOG_LEVEL=WARN \
    exec "$bin" "$@" >"$dir/qdrant.log" 2>&1
) &
pid=$!
for _ in $(seq 1 300); do
  if curl -fsS "http://127.0.0.1:$rest/readyz" >/dev/null 2>&1; then
    echo "$rest $grpc $pid $dir"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "the Qdrant server did not start; its log ($dir/qdrant.log):" >&2
    tail -20 "$dir/qdrant.log" >&2
    exit 1
  fi
  sleep 0.1
done
echo "the Qdrant server did not get ready in 30 s; its log: $dir/qdrant.log" >&2
kill "$pid" 2>/dev/null || true
exit 1
