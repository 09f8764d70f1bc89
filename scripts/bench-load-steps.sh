#!/usr/bin/env bash
# Loading time of one large test file: `clnrm validate` (whole process, median of 5) on files
# of 5,000, 10,000 and 20,000 steps, and peak RSS of a run printing 300 MB of stdout.
# Linear loading shows as time growing with the step count, not with its square.
#
# Usage: scripts/bench-load-steps.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin clnrm
clnrm="$PWD/target/release/clnrm"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/.clnrm"

gen() {
  local f="$1" n="$2"
  {
    printf '[meta]\nname = "big"\n\n[service.app]\nimage = "clnrm-test/busybox:latest"\n\n[[scenario]]\nname = "many"\n'
    for i in $(seq 1 "$n"); do
      printf '\n[[scenario.steps]]\nname = "s%d"\ncmd = ["echo", "%d"]\nstdout_contains = "%d"\n' "$i" "$i" "$i"
    done
  } > "$f"
}

median_ms() {
  local times=()
  for _ in 1 2 3 4 5; do
    local t0 t1
    t0=$(date +%s%N)
    "$clnrm" validate "$1" >/dev/null 2>&1
    t1=$(date +%s%N)
    times+=($(( (t1 - t0) / 1000000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n 3p
}

for n in 5000 10000 20000; do
  f="$work/big$n.clnrm.toml"
  gen "$f" "$n"
  echo "steps=$n bytes=$(stat -c %s "$f") validate_ms=$(median_ms "$f")"
done

cat > "$work/loud.clnrm.toml" <<'TOML'
[meta]
name = "loud"
[service.host]
[[scenario]]
name = "300 MB of stdout"
[[scenario.steps]]
sh = "head -c 300000000 /dev/zero | tr '\\0' x; echo; echo THE-END"
stdout_contains = "THE-END"
TOML
/usr/bin/env python3 - "$clnrm" "$work" <<'PY'
import resource, subprocess, sys
clnrm, work = sys.argv[1], sys.argv[2]
r = subprocess.run([clnrm, "run", "--backend", "local", work + "/loud.clnrm.toml"],
                   cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"300MB_stdout exit={r.returncode} peak_rss_mib={rss:.1f}")
PY
