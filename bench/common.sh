# Shared by the bench/*.sh scripts (sourced, not run).
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
cd "$ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
# BENCH_PROFILE=release (the default), or dev-opt: the dev profile at opt-level 3 for kb's own
# crates too, which reuses an existing dev build of the dependencies (already at opt-level 3;
# debug assertions stay on) when a release build of everything does not fit in the time.
export BENCH_PROFILE=${BENCH_PROFILE:-release}
case $BENCH_PROFILE in
    release) BIN=$CARGO_TARGET_DIR/release; cargo_profile=(--release) ;;
    dev-opt) BIN=$CARGO_TARGET_DIR/debug; cargo_profile=(); export CARGO_PROFILE_DEV_OPT_LEVEL=3 ;;
    # The test build as it is (dependencies at opt-level 3, kb's own crates at 0): for
    # comparisons within one run only (bench/scale.sh), never for absolute figures.
    dev) BIN=$CARGO_TARGET_DIR/debug; cargo_profile=() ;;
    *) echo "BENCH_PROFILE must be release, dev-opt or dev" >&2; exit 2 ;;
esac
PY=$BENCH/.venv/bin/python
DATA=$BENCH/data
CORPUS=$DATA/linux-doc
RESULTS=$BENCH/results
MODEL=$ROOT/models/all-MiniLM-L6-v2
mkdir -p "$DATA/inputs" "$RESULTS"

log() { printf '\n== %s\n' "$*" >&2; }

# The Python peers and matplotlib, pinned, in bench/.venv.
ensure_venv() {
    if [[ ! -x $PY ]] || ! "$PY" -c 'import llama_index.core, sentence_transformers, matplotlib' 2>/dev/null; then
        log "installing bench/requirements.txt into bench/.venv (torch is large)"
        python3 -m venv "$BENCH/.venv"
        "$BENCH/.venv/bin/pip" install -q -r "$BENCH/requirements.txt"
    fi
}

ensure_corpus() { "$BENCH/fetch-corpus.sh" "$CORPUS"; }

ensure_model() { "$ROOT/scripts/fetch-model.sh" >/dev/null; }

# Release builds of kb, the bench programs and the fake engine.
build() {
    log "cargo build, $BENCH_PROFILE profile (kb, kb-bench, kb-fake-engine)"
    cargo build "${cargo_profile[@]}" -q -p kb -p kb-bench -p kb-testkit --bins
}

# Every Nth corpus file (sorted by path) copied into DEST, as a smaller corpus.
make_subset() {
    local every=$1 dest=$2
    rm -rf "$dest"
    mkdir -p "$dest"
    (cd "$CORPUS" && find . -name '*.rst.txt' | LC_ALL=C sort | awk -v n="$every" 'NR % n == 1' |
        tar -cf - -T -) | tar -xf - -C "$dest"
}

# A JSON object describing this machine and moment, for the result files.
machine_json() {
    "$PY" - <<'PY'
import json, os, platform, subprocess, datetime
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
print(json.dumps({
    "cpu": cpu, "cores": os.cpu_count(), "mem_gib": round(mem / 2**20, 1),
    "kernel": platform.release(), "load_average": open("/proc/loadavg").read().split()[:3],
    "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "rustc": subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip(),
    "profile": os.environ.get("BENCH_PROFILE", "release"),
}))
PY
}
