#!/usr/bin/env bash
# Query latency on a Qdrant server next to the embedded index (bench/README.md), one run:
# the same corpus ingested through kb-testkit's fake engine into each, then `kb serve` over
# each answering POST /v1/ask (hybrid retrieval, generative mode, the fake engine answering at
# once) under fixed-rate open-loop load from `oha`. Prints a Markdown table and writes
# bench/results/scale.json. Usage: bench/scale.sh
# Environment: RATES="50 200", DURATION=30s, EVERY=4 (every Nth corpus file),
# BENCH_PROFILE (see common.sh; `dev` compares within one run only).
source "$(dirname "$0")/common.sh"
rates=${RATES:-50 200}
duration=${DURATION:-30s}
every=${EVERY:-4}
engine_port=${ENGINE_PORT:-18091}
kb_port=${KB_PORT:-18081}
ensure_corpus
build
if ! command -v oha >/dev/null; then
    log "cargo install oha (load generator)"
    cargo install --locked -q oha
fi

work=$DATA/scale
rm -rf "$work"
mkdir -p "$work/corpus"
# Every Nth file of the corpus (sorted), as a smaller corpus.
find "$CORPUS" -type f | sort | awk -v n="$every" 'NR % n == 0' | while read -r f; do
    cp "$f" "$work/corpus/$(echo "${f#"$CORPUS"/}" | tr '/' '_')"
done

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

"$BIN/kb-fake-engine" --port "$engine_port" --chat-latency-ms 0 > "$work/engine.url" &
pids+=($!)
for _ in $(seq 50); do [[ -s $work/engine.url ]] && break; sleep 0.1; done

read -r qdrant_rest qdrant_grpc qdrant_pid qdrant_dir < <("$ROOT/scripts/qdrant-node.sh")
pids+=("$qdrant_pid")
log "Qdrant server: REST $qdrant_rest, gRPC $qdrant_grpc"

config() { # $1 = embedded|server
    local index=""
    [[ $1 == server ]] && index="[index]
url = \"http://127.0.0.1:$qdrant_grpc\"
collection = \"kb_bench\""
    cat > "$work/$1.toml" <<TOML
data_dir = "$work/$1"
[server]
host = "127.0.0.1"
port = $kb_port
rate_limit_per_minute = 0
$index
[embedder]
provider = "engine"
[chat]
enabled = true
[[engine.endpoints]]
name = "fake"
base_url = "http://127.0.0.1:$engine_port/v1"
embed_model = "fake-embed"
chat_model = "fake-chat"
[answer]
mode = "generative"
min_score = 0.0
[telemetry]
level = "warn"
TOML
    echo "$work/$1.toml"
}

body='{"question": "How do I enable MSI interrupts for a PCI device driver?"}'
rows=()
for index in embedded server; do
    cfg=$(config "$index")
    log "$index: ingesting $(find "$work/corpus" -type f | wc -l) files"
    "$BIN/kb" --config "$cfg" ingest "$work/corpus" | tail -2
    key=$("$BIN/kb" --config "$cfg" keys create --role reader --groups all --name bench)
    "$BIN/kb" --config "$cfg" serve > "$work/$index-serve.log" 2>&1 &
    kb_pid=$!
    for _ in $(seq 300); do curl -sf "http://127.0.0.1:$kb_port/readyz" >/dev/null && break; sleep 0.2; done
    oha -z 5s -q 20 -c 20 --no-tui -m POST -H 'content-type: application/json' \
        -H "authorization: Bearer $key" -d "$body" "http://127.0.0.1:$kb_port/v1/ask" > /dev/null
    for rate in $rates; do
        log "$index: $rate requests/s for $duration"
        out=$work/oha-$index-$rate.json
        oha -z "$duration" -q "$rate" -c $((rate / 5 + 20)) --latency-correction --no-tui \
            --output-format json -m POST -H 'content-type: application/json' \
            -H "authorization: Bearer $key" -d "$body" "http://127.0.0.1:$kb_port/v1/ask" > "$out"
        rows+=("$index" "$rate" "$out")
    done
    kill "$kb_pid"; wait "$kb_pid" 2>/dev/null || true
done

python3 - "$RESULTS/scale.json" "$BENCH_PROFILE" "${rows[@]}" <<'PY'
import json, sys, os, platform, datetime
out, profile, *rows = sys.argv[1:]
runs = []
for i in range(0, len(rows), 3):
    index, rate, path = rows[i:i + 3]
    o = json.load(open(path))
    s, p = o["summary"], o["latencyPercentiles"]
    codes = o.get("statusCodeDistribution", {})
    # oha lists requests still in flight when its time was up as "aborted due to deadline":
    # not failures of kb, counted apart.
    failures = {k: v for k, v in o.get("errorDistribution", {}).items() if k != "aborted due to deadline"}
    errors = sum(v for k, v in codes.items() if k != "200") + sum(failures.values())
    cut = o.get("errorDistribution", {}).get("aborted due to deadline", 0)
    runs.append({"index": index, "rate": int(rate), "achieved_rps": s["requestsPerSec"],
                 "requests": sum(codes.values()), "errors": errors, "in_flight_at_end": cut,
                 "p50_ms": p["p50"] * 1000, "p95_ms": p["p95"] * 1000, "p99_ms": p["p99"] * 1000})
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
machine = {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(), "profile": profile,
           "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
json.dump({"machine": machine, "runs": runs}, open(out, "w"), indent=2)
print(f"\n{machine}\n")
print("| index | target rps | achieved rps | requests | errors | in flight at the end | p50 ms | p95 ms | p99 ms |")
print("|---|---|---|---|---|---|---|---|---|")
for r in runs:
    print(f"| {r['index']} | {r['rate']} | {r['achieved_rps']:.1f} | {r['requests']:,} | {r['errors']} | {r['in_flight_at_end']} | "
          f"{r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['p99_ms']:.2f} |")
PY
