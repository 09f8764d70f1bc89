#!/usr/bin/env bash
# End-to-end run benchmarks against the local daemon (hyperfine), issue figures (b) and (c):
#   (b) 50 trivial one-step tests: `clnrm run` with a fresh container per test, the same with
#       `reuse = true`, and a sequential `docker run --rm` shell loop doing the same work;
#   (c) one test of 10 steps on one service vs 10 sequential `docker run --rm`.
#
# Usage: scripts/bench-run.sh [RUNS]   (hyperfine runs per command, default 3)
#        extra env: HYPERFINE_ARGS="--export-markdown out.md"
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null
cargo build --release --quiet
clnrm="$PWD/target/release/clnrm"
image=clnrm-test/busybox:1
runs="${1:-3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

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
mkdir -p "$work/fresh" "$work/reuse" "$work/ten"
for i in $(seq 1 50); do one_step "$work/fresh" "$i" false; one_step "$work/reuse" "$i" true; done
{
  printf '[meta]\nname = "ten"\n\n[service.app]\nimage = "%s"\n\n[[scenario]]\nname = "s"\n' "$image"
  for i in $(seq 1 10); do printf '\n[[scenario.steps]]\nname = "step %s"\ncmd = ["true"]\n' "$i"; done
} > "$work/ten/ten.clnrm.toml"

# shellcheck disable=SC2086
hyperfine --export-json "$work/times.json" --runs "$runs" --warmup 1 ${HYPERFINE_ARGS:-} \
  -n "(b) clnrm run, 50 tests, fresh container each" "$clnrm run $work/fresh" \
  -n "(b) clnrm run, 50 tests, reuse = true" "$clnrm run $work/reuse" \
  -n "(b) 50 x docker run --rm (sequential loop)" "for i in \$(seq 1 50); do docker run --rm $image true; done" \
  -n "(c) clnrm run, 1 test of 10 steps" "$clnrm run $work/ten" \
  -n "(c) 10 x docker run --rm (sequential loop)" "for i in \$(seq 1 10); do docker run --rm $image true; done"
python3 - "$work/times.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(f"median {r['median'] * 1000:9.1f} ms  {r['command']}")
PY
