#!/usr/bin/env bash
# Watch mode, measured from outside: save-to-result latency and memory.
#
# Usage: scripts/bench-watch.sh [--edits N] [--cycles N] [--files N]
#   --edits N   edits per latency case (default 30)
#   --cycles N  cycles of the memory run (default 1000)
#   --files N   generated test files for the watched-set memory figure (default 1000)
# Env: CLNRM   the binary (default target/release/clnrm, built when missing)
#
# Latency = (unix ms printed on the cycle's `cycle N done at_ms=...` line) minus (unix ns
# taken just before the script writes the file): debounce, load, run and printing included.
# Cases, each on a temp copy of a small Docker suite (image clnrm-test/busybox:latest):
#   validation  an edit that makes the file invalid (a new unknown key each time): reported
#               as a located error without running anything
#   reused      an edit of the scenario (the echoed text and its expectation): re-run on the
#               container kept warm from the previous cycle
#   restart     an edit of the service env: a new container is created and started
# Memory (VmRSS from /proc/<pid>/status, local backend, no Docker needed):
#   cycles      one session through N cycles alternating a test edit and an included
#               template edit; RSS at cycles 10, 100 and N
#   files       a session watching N generated test files, after the initial run and 20 edits
set -euo pipefail

EDITS=30
CYCLES=1000
FILES=1000
while [[ $# -gt 0 ]]; do
    case "$1" in
        --edits) EDITS="$2"; shift 2 ;;
        --cycles) CYCLES="$2"; shift 2 ;;
        --files) FILES="$2"; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CLNRM="${CLNRM:-$ROOT/target/release/clnrm}"
if [[ ! -x "$CLNRM" ]]; then
    (cd "$ROOT" && cargo build --release --bin clnrm)
fi
"$ROOT/scripts/test-image.sh"

WORK="$(mktemp -d)"
PID=""
stop() {
    if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID"
        wait "$PID" 2>/dev/null || true
    fi
    PID=""
}
trap 'stop; rm -rf "$WORK"' EXIT

now_ns() { date +%s%N; }

# wait_cycle LOG N -> prints the `cycle N done` line (fails after 60 s).
wait_cycle() {
    local log="$1" n="$2" deadline=$((SECONDS + 60)) line
    while true; do
        line="$(grep -m1 -E "^cycle $n done at_ms=[0-9]+ status=(passed|failed|invalid|none)$" "$log" || true)"
        if [[ -n "$line" ]]; then
            echo "$line"
            return 0
        fi
        if ((SECONDS > deadline)); then
            echo "no 'cycle $n done' within 60 s; log:" >&2
            tail -n 30 "$log" >&2
            exit 1
        fi
        sleep 0.005
    done
}

# start_watch DIR LOG ARGS... -> sets PID, waits for cycle 0.
start_watch() {
    local dir="$1" log="$2"
    shift 2
    : >"$log"
    NO_COLOR=1 "$CLNRM" dev "$dir" "$@" 2>"$log" >/dev/null &
    PID=$!
    wait_cycle "$log" 0 >/dev/null
}

# put FILE: stdin to FILE atomically (write a temp file the watcher ignores, then rename), so a
# 1 ms debounce never sees a half-written file.
put() {
    local tmp
    tmp="$(dirname "$1")/.put.tmp~"
    cat >"$tmp"
    mv "$tmp" "$1"
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$PID/status"; }

# percentiles FILE -> "p50 X ms, p95 Y ms, max Z ms (n=N)" (nearest rank).
percentiles() {
    sort -n "$1" | awk '{v[NR]=$1} END {
        p50=v[int((NR*50+99)/100)]; p95=v[int((NR*95+99)/100)];
        printf "p50 %d ms, p95 %d ms, max %d ms (n=%d)", p50, p95, v[NR], NR }'
}

# ---------------------------------------------------------------- latency on Docker
SUITE="$WORK/suite"
mkdir -p "$SUITE"
cp "$ROOT/examples/suite/argv.clnrm.toml" "$ROOT/examples/suite/shell.clnrm.toml" "$SUITE/"
TARGET="$SUITE/edited.clnrm.toml"
# body ENV_VALUE ECHO_TEXT EXTRA_META_LINE
body() {
    cat <<EOF
[meta]
name = "edited"
$3

[service.app]
image = "clnrm-test/busybox:latest"
env = { EDIT = "$1" }

[[scenario]]
name = "echo"

[[scenario.steps]]
cmd = ["echo", "$2"]
stdout_equals = "$2"
EOF
}
body 0 "hello 0" "" >"$TARGET"
LOG="$WORK/watch.log"
start_watch "$SUITE" "$LOG" --backend docker
n=0

# measure CASE STATUS EXPECT_ENV: reads file contents from the generator `gen_$CASE i`.
measure() {
    local case="$1" status="$2" env="$3" out="$WORK/$1.ms" i content t0 line at
    : >"$out"
    for ((i = 1; i <= EDITS; i++)); do
        content="$("gen_$case" "$i")"
        n=$((n + 1))
        t0="$(now_ns)"
        printf '%s\n' "$content" >"$TARGET"
        line="$(wait_cycle "$LOG" "$n")"
        at="${line#*at_ms=}"
        at="${at%% *}"
        if [[ "$line" != *"status=$status" ]]; then
            echo "$case edit $i: expected status=$status, got: $line" >&2
            exit 1
        fi
        if [[ -n "$env" ]] && ! grep "^cycle $n: " "$LOG" | grep -q " · env $env "; then
            echo "$case edit $i: expected env $env:" >&2
            grep "^cycle $n: " "$LOG" >&2
            exit 1
        fi
        echo $((at - t0 / 1000000)) >>"$out"
        sleep 0.2
    done
    printf '%-11s %s\n' "$case" "$(percentiles "$out")"
}

gen_validation() { body 0 "hello 0" "nmae_$1 = \"typo\""; }
gen_reused() { body 0 "hello $1" ""; }
gen_restart() { body "$1" "hello" ""; }

echo "save-to-result latency, $EDITS edits per case ($(basename "$CLNRM") $("$CLNRM" --version | cut -d' ' -f2), docker backend):"
measure validation invalid ""
# Back to a valid file (not measured), so that the next case starts from a warm container.
n=$((n + 1)); body 0 "hello 0" "" >"$TARGET"; wait_cycle "$LOG" "$n" >/dev/null
measure reused passed reused
measure restart passed started
echo "  (internal breakdown of the last cycle: $(grep "^cycle $n: " "$LOG" | tail -n1))"
stop
LEFT="$(docker ps -aq --filter "label=clnrm.run" | wc -l)"
echo "containers left after SIGTERM: $LEFT"

# ---------------------------------------------------------------- memory over many cycles
MEM="$WORK/mem"
mkdir -p "$MEM/.git"
cat >"$MEM/_part.tera" <<'EOF'
{% macro word() %}w0{% endmacro word %}
EOF
host_test() {
    cat <<EOF
[meta]
name = "$1"

[service.sh]

[[scenario]]
name = "s"

[[scenario.steps]]
cmd = ["echo", "$2"]
stdout_equals = "$2"
EOF
}
host_test plain 0 >"$MEM/plain.clnrm.toml"
{
    echo '{% import "_part.tera" as p %}'
    host_test templ '{{ p::word() }}'
} >"$MEM/templ.clnrm.toml.tera"
LOG="$WORK/mem.log"
start_watch "$MEM" "$LOG" --backend local --debounce-ms 1
declare -A RSS
for ((c = 1; c <= CYCLES; c++)); do
    if ((c % 2)); then
        host_test plain "$c" | put "$MEM/plain.clnrm.toml"
    else
        echo "{% macro word() %}w$c{% endmacro word %}" | put "$MEM/_part.tera"
    fi
    line="$(wait_cycle "$LOG" "$c")"
    if [[ "$line" != *"status=passed" ]]; then
        echo "memory run, cycle $c: $line" >&2
        exit 1
    fi
    if ((c == 10 || c == 100 || c == CYCLES)); then
        RSS[$c]="$(rss_kb)"
    fi
done
echo "VmRSS over $CYCLES cycles (local backend): cycle 10 ${RSS[10]:-n/a} kB, cycle 100 ${RSS[100]:-n/a} kB, cycle $CYCLES ${RSS[$CYCLES]} kB"
stop

# ---------------------------------------------------------------- memory of a large watched set
BIG="$WORK/big"
mkdir -p "$BIG/.git"
for ((i = 0; i < FILES; i++)); do
    d="$BIG/group$((i / 100))"
    mkdir -p "$d"
    host_test "t$i" "$i" >"$d/t$i.clnrm.toml"
done
LOG="$WORK/big.log"
start_watch "$BIG" "$LOG" --backend local --debounce-ms 1
AFTER0="$(rss_kb)"
for ((c = 1; c <= 20; c++)); do
    host_test "t$c" "edit$c" | put "$BIG/group0/t$c.clnrm.toml"
    wait_cycle "$LOG" "$c" >/dev/null
done
echo "VmRSS watching $FILES test files: after the initial run $AFTER0 kB, after 20 edits $(rss_kb) kB (target < 51200 kB)"
grep "^cycle 20: " "$LOG" | tail -n1
stop
