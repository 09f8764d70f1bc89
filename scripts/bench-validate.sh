#!/usr/bin/env bash
# Whole-process timing of `clnrm validate` on 100 and 1,000 generated test files (hyperfine).
# The files are typical: one service, three scenarios of two steps, expectations, a template
# every tenth file.
#
# Usage: scripts/bench-validate.sh [--vs OTHER_CLNRM] [hyperfine args, e.g. --export-markdown FILE]
#   --vs OTHER_CLNRM  also time another clnrm binary (e.g. a release build of an older commit)
#                     on the same files in the same hyperfine run, for a ratio
#   CLNRM=PATH        time this binary instead of building this checkout's release binary
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { apt-get install -y -qq hyperfine >/dev/null; }
other=""
if [ "${1:-}" = "--vs" ]; then other="$2"; shift 2; fi
clnrm="${CLNRM:-}"
if [ -z "$clnrm" ]; then
  cargo build --release --quiet
  clnrm="$PWD/target/release/clnrm"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

gen() {
  local dir="$1" n="$2"
  mkdir -p "$dir"
  for i in $(seq 1 "$n"); do
    if [ $((i % 10)) -eq 0 ]; then
      f="$dir/t$i.clnrm.toml.tera"
      cat > "$f" <<TOML
[vars]
greeting = "hello"
[meta]
name = "t$i"
tags = ["gen"]
[service.app]
image = "clnrm-test/busybox:latest"
{% for n in [1, 2, 3] %}
[[scenario]]
name = "s{{ n }}"
[[scenario.steps]]
cmd = ["echo", "{{ greeting }} {{ n }}"]
stdout_contains = "{{ greeting }}"
[[scenario.steps]]
sh = "exit {{ n }}"
exit_code = {{ n }}
{% endfor %}
TOML
    else
      f="$dir/t$i.clnrm.toml"
      {
        printf '[meta]\nname = "t%s"\ntags = ["gen"]\n\n[service.app]\nimage = "clnrm-test/busybox:latest"\nenv = { A = "1" }\n' "$i"
        for s in 1 2 3; do
          printf '\n[[scenario]]\nname = "s%s"\n\n[[scenario.steps]]\nname = "echo"\ncmd = ["echo", "hi %s"]\nstdout_regex = "^hi \\\\d+$"\n\n[[scenario.steps]]\nname = "exit"\nsh = "exit %s"\nexit_code = %s\n' "$s" "$s" "$s" "$s"
        done
      } > "$f"
    fi
  done
}
gen "$work/100" 100
gen "$work/1000" 1000
"$clnrm" validate "$work/100" >/dev/null 2>&1
cases=(-n "validate 100 files" "$clnrm validate $work/100"
       -n "validate 1000 files" "$clnrm validate $work/1000")
if [ -n "$other" ]; then
  cases+=(-n "other: validate 100 files" "$other validate $work/100"
          -n "other: validate 1000 files" "$other validate $work/1000")
fi
hyperfine --export-json "$work/times.json" --warmup 3 --runs 20 -N "$@" "${cases[@]}"
python3 - "$work/times.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(f"median {r['median'] * 1000:9.1f} ms  {r['command']}")
PY
