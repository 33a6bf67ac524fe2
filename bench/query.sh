#!/usr/bin/env bash
# Query load benchmark (bench/README.md): `kb serve` (release build) over ~100,000 chunks of
# the kernel docs (the corpus ingested COPIES times through kb-testkit's fake engine), loaded by
# `oha` at fixed rates for DURATION each, with the fake engine answering chat at once and after
# 300 ms. Writes bench/results/query.json and redraws the plots. Usage: bench/query.sh
# Environment: RATES="50 100 200", LATENCIES="0 300", DURATION=30s, COPIES=4,
# QUERY_CORPUS (default: the whole kernel-docs corpus).
source "$(dirname "$0")/common.sh"
rates=${RATES:-50 100 200}
latencies=${LATENCIES:-0 300}
duration=${DURATION:-30s}
copies=${COPIES:-4}
query_corpus=${QUERY_CORPUS:-$CORPUS}
engine_port=${ENGINE_PORT:-18090}
kb_port=${KB_PORT:-18080}
ensure_venv
ensure_corpus
build

work=$DATA/query
config=$work/kb.toml
mkdir -p "$work"
cat > "$config" <<TOML
data_dir = "$work/kb"
[server]
host = "127.0.0.1"
port = $kb_port
rate_limit_per_minute = 0   # the load comes from one key; measure kb, not its per-key limit
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
min_score = 0.0     # never refuse: every question reaches the chat model
[telemetry]
level = "warn"
TOML

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

start_engine() {
    "$BIN/kb-fake-engine" --port "$engine_port" --chat-latency-ms "$1" > "$work/engine.url" &
    engine_pid=$!
    pids+=("$engine_pid")
    for _ in $(seq 50); do [[ -s $work/engine.url ]] && return; sleep 0.1; done
    echo "the fake engine did not start" >&2; exit 1
}
stop_engine() { kill "$engine_pid"; wait "$engine_pid" 2>/dev/null || true; : > "$work/engine.url"; }

start_engine 0
marker=$work/kb/.ingested-$copies-$(basename "$query_corpus")
if [[ ! -f $marker ]]; then
    log "ingesting the corpus $copies times through the fake engine"
    rm -rf "$work/kb" "$work/corpus"
    mkdir -p "$work/corpus"
    for i in $(seq "$copies"); do ln -s "$query_corpus" "$work/corpus/copy-$i"; done
    "$BIN/kb" --config "$config" ingest "$work/corpus"
    touch "$marker"
fi
stop_engine
# Questions need a credential: a reader key of the group every document is in.
key=$("$BIN/kb" --config "$config" keys create --role reader --groups all --name "bench-$(date +%s)")
if ! command -v oha >/dev/null; then
    log "cargo install oha (load generator)"
    cargo install --locked -q oha
fi

"$BIN/kb" --config "$config" serve > "$work/serve.log" 2>&1 &
kb_pid=$!
pids+=("$kb_pid")
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$kb_port/readyz" >/dev/null && break; sleep 0.2; done
chunks=$(grep -o '([0-9]* chunks indexed)' "$work/serve.log" | grep -o '[0-9]*' || echo 0)
log "kb serving $chunks chunks (pid $kb_pid)"

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$kb_pid/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$kb_pid/status"; }
body='{"question": "How do I enable MSI interrupts for a PCI device driver?"}'
runs=()
for latency in $latencies; do
    start_engine "$latency"
    # Warm-up: connections, allocator, page cache.
    oha -z 5s -q 20 -c 20 --no-tui -m POST -H 'content-type: application/json' \
        -H "authorization: Bearer $key" -d "$body" \
        "http://127.0.0.1:$kb_port/v1/ask" > /dev/null
    for rate in $rates; do
        log "chat latency ${latency} ms, $rate requests/s for $duration"
        out=$work/oha-$latency-$rate.json
        max_rss=0
        ( while kill -0 "$kb_pid" 2>/dev/null; do rss_kib; sleep 1; done ) > "$work/rss-$latency-$rate" &
        sampler=$!
        # Open loop: requests are sent on schedule whatever the answers, and latency counts
        # from the scheduled send time (no coordinated omission).
        oha -z "$duration" -q "$rate" -c $((rate * (latency + 200) / 1000 + 20)) --latency-correction \
            --no-tui --output-format json -m POST -H 'content-type: application/json' \
            -H "authorization: Bearer $key" -d "$body" "http://127.0.0.1:$kb_port/v1/ask" > "$out"
        kill "$sampler"; wait "$sampler" 2>/dev/null || true
        max_rss=$(sort -n "$work/rss-$latency-$rate" | tail -1)
        runs+=("{\"latency_ms\": $latency, \"rate\": $rate, \"duration\": \"$duration\", \"max_rss_kib\": $max_rss, \"oha\": $(cat "$out")}")
    done
    stop_engine
done
hwm=$(hwm_kib)
machine=$(machine_json)
printf '{"machine": %s, "chunks": %s, "copies": %s, "peak_rss_kib": %s, "runs": [%s]}\n' \
    "$machine" "$chunks" "$copies" "$hwm" "$(IFS=,; echo "${runs[*]}")" | "$PY" -m json.tool > "$RESULTS/query.json"
"$PY" "$BENCH/py/report.py" query
