#!/usr/bin/env bash
# Start a Qdrant cluster of N nodes (default 3) in distributed mode on free loopback ports, for
# the tests, and print `REST_PORT GRPC_PORT PIDS DIR` of the first node once every node has
# joined (PIDS is comma-separated; DIR holds one storage folder and log per node). The binary
# is found as scripts/qdrant-node.sh finds it.
#
#   read -r rest grpc pids dir < <(scripts/qdrant-cluster.sh 3)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
nodes=${1:-3}
bin="$("$root/scripts/qdrant-node.sh" --binary)"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

dir="$(mktemp -d "${TMPDIR:-/tmp}/kb-qdrant-cluster.XXXXXX")"
pids=()
first_rest="" first_grpc="" first_p2p=""
for n in $(seq 1 "$nodes"); do
  rest="$(free_port)"; grpc="$(free_port)"; p2p="$(free_port)"
  mkdir -p "$dir/node-$n"
  args=(--uri "http://127.0.0.1:$p2p")
  if [ -n "$first_p2p" ]; then
    args+=(--bootstrap "http://127.0.0.1:$first_p2p")
  else
    first_rest="$rest"; first_grpc="$grpc"; first_p2p="$p2p"
  fi
  (
    cd "$dir/node-$n"
    QDRANT__SERVICE__HOST=127.0.0.1 QDRANT__SERVICE__HTTP_PORT="$rest" \
      QDRANT__SERVICE__GRPC_PORT="$grpc" QDRANT__STORAGE__STORAGE_PATH="$dir/node-$n/storage" \
      QDRANT__CLUSTER__ENABLED=true QDRANT__CLUSTER__P2P__PORT="$p2p" \
      QDRANT__TELEMETRY_DISABLED=true QDRANT__LOG_LEVEL=WARN \
      exec "$bin" "${args[@]}" >"$dir/node-$n/qdrant.log" 2>&1
  ) &
  pids+=($!)
  # The first node must be up before the others bootstrap from it.
  for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$rest/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
done
for _ in $(seq 1 600); do
  peers=$(curl -fsS "http://127.0.0.1:$first_rest/cluster" 2>/dev/null |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["result"]["peers"]))' 2>/dev/null || echo 0)
  if [ "$peers" = "$nodes" ]; then
    (IFS=,; echo "$first_rest $first_grpc ${pids[*]} $dir")
    exit 0
  fi
  sleep 0.1
done
echo "the Qdrant cluster did not form ($peers of $nodes peers) in 60 s; logs in $dir/node-*/qdrant.log" >&2
kill "${pids[@]}" 2>/dev/null || true
exit 1
