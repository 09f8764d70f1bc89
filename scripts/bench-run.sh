#!/usr/bin/env bash
# End-to-end run benchmarks against the local daemon (hyperfine), issue figures (b) and (c):
#   (b) 50 trivial one-step tests: `clnrm run` with a fresh container per test, the same with
#       `reuse = "suite"` (one environment serves every test whose services are identical;
#       `reuse = true` would change nothing here, it shares only within a test), and a
#       sequential `docker run --rm` shell loop doing the same work;
#   (c) one test of 10 steps on one service vs 10 sequential `docker run --rm`;
# and the step agent's targets:
#   (e) one scenario of 20 steps: its `step_ms` (JSON results) through the agent and with
#       `--step-transport exec`, vs 20 sequential `docker exec` of the same command in a running
#       container; and the whole `clnrm run` of it, agent vs exec;
#   (f) 30 one-step tests with fresh containers: `clnrm run` vs
#       `xargs -P <cores> docker run --rm --network none` and a sequential `docker run` loop.
#
# clnrm is built static (release), so it is its own agent in the containers; CLNRM_BIN names
# another static clnrm to measure instead (e.g. `$(scripts/agent-bin.sh)`, a debug build).
#
# Usage: scripts/bench-run.sh [RUNS] [CASES]   (hyperfine runs per command, default 3;
#        CASES: `all` (default), `bc` or `ef`)
#        extra env: HYPERFINE_ARGS="--export-markdown out.md"
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null
if [ -n "${CLNRM_BIN:-}" ]; then
  clnrm="$CLNRM_BIN"
else
  RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --quiet --bin clnrm --target x86_64-unknown-linux-gnu
  clnrm="$PWD/target/x86_64-unknown-linux-gnu/release/clnrm"
fi
image=clnrm-test/busybox:1
runs="${1:-3}"
cases="${2:-all}"
jobs="$(nproc)"
work="$(mktemp -d)"
warm=""
cleanup() {
  if [ -n "$warm" ]; then docker rm -f "$warm" >/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT

one_step() { # dir i reuse
  cat > "$1/t$2.clnrm.toml" <<TOML
[meta]
name = "t$2"

[service.app]
image = "$image"
reuse = $3

[[scenario]]
name = "s"

[[scenario.steps]]
cmd = ["true"]
TOML
}
steps_test() { # dir name count
  {
    printf '[meta]\nname = "%s"\n\n[service.app]\nimage = "%s"\n\n[[scenario]]\nname = "s"\n' "$2" "$image"
    for i in $(seq 1 "$3"); do printf '\n[[scenario.steps]]\nname = "step %s"\ncmd = ["true"]\n' "$i"; done
  } > "$1/$2.clnrm.toml"
}
mkdir -p "$work/fresh" "$work/reuse" "$work/ten" "$work/twenty" "$work/thirty"
for i in $(seq 1 50); do one_step "$work/fresh" "$i" false; one_step "$work/reuse" "$i" '"suite"'; done
for i in $(seq 1 30); do one_step "$work/thirty" "$i" false; done
steps_test "$work/ten" ten 10
steps_test "$work/twenty" twenty 20

report() {
  python3 - "$1" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(f"median {r['median'] * 1000:9.1f} ms  {r['command']}")
PY
}

if [ "$cases" = all ] || [ "$cases" = bc ]; then
  # shellcheck disable=SC2086
  hyperfine --export-json "$work/times.json" --runs "$runs" --warmup 1 ${HYPERFINE_ARGS:-} \
    -n "(b) clnrm run, 50 tests, fresh container each" "$clnrm run $work/fresh" \
    -n "(b) clnrm run, 50 tests, reuse = \"suite\"" "$clnrm run $work/reuse" \
    -n "(b) 50 x docker run --rm (sequential loop)" "for i in \$(seq 1 50); do docker run --rm $image true; done" \
    -n "(c) clnrm run, 1 test of 10 steps" "$clnrm run $work/ten" \
    -n "(c) 10 x docker run --rm (sequential loop)" "for i in \$(seq 1 10); do docker run --rm $image true; done"
  report "$work/times.json"
fi

if [ "$cases" = all ] || [ "$cases" = ef ]; then
  warm="$(docker run -d --init --network none --label "clnrm.run=bench-run-$$" \
    --label "clnrm.pid=$$" "$image" sleep infinity)"
  # shellcheck disable=SC2086
  hyperfine --export-json "$work/agent.json" --runs "$runs" --warmup 1 ${HYPERFINE_ARGS:-} \
    -n "(e) clnrm run, 1 scenario of 20 steps, agent" "$clnrm run --step-transport agent $work/twenty" \
    -n "(e) clnrm run, 1 scenario of 20 steps, --step-transport exec" "$clnrm run --step-transport exec $work/twenty" \
    -n "(e) 20 x docker exec (sequential, running container)" "for i in \$(seq 1 20); do docker exec $warm true; done" \
    -n "(f) clnrm run, 30 one-step tests, fresh containers" "$clnrm run --step-transport agent $work/thirty" \
    -n "(f) seq 30 | xargs -P $jobs docker run --rm --network none" "seq 30 | xargs -P $jobs -I{} docker run --rm --network none $image true" \
    -n "(f) 30 x docker run --rm --network none (sequential loop)" "for i in \$(seq 1 30); do docker run --rm --network none $image true; done"
  report "$work/agent.json"
  # step_ms of the 20-step scenario (what the perf gate measures), per transport.
  for t in agent exec; do
    for _ in $(seq 1 "$runs"); do
      "$clnrm" run --step-transport "$t" --json "$work/r.json" "$work/twenty" >/dev/null 2>&1
      python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["tests"][0]["scenarios"][0]
print(s["step_ms"], s.get("transport"))
' "$work/r.json"
    done | python3 -c '
import statistics, sys
rows = [l.split() for l in sys.stdin if l.strip()]
ms = statistics.median([float(r[0]) for r in rows])
print(f"median {ms:9.1f} ms  (e) step_ms of the 20-step scenario, transport {sorted(set(r[1] for r in rows))}")
'
  done
fi
