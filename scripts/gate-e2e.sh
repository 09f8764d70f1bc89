#!/usr/bin/env bash
# End-to-end proof of the perf gate through the real CLI: record a baseline of the perf example
# suite, re-run it unchanged (the gate must pass, exit 0), then add a `sleep 0.3` to one step
# (the gate must fail with exit 3 and name that scenario).
#
# Usage: scripts/gate-e2e.sh [RUNS]   (RUNS recorded into the baseline, default 6)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
cargo build --release --quiet
clnrm="$PWD/target/release/clnrm"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -r examples/perf "$work/suite"
cd "$work"

"$clnrm" baseline record suite --runs "${1:-6}" --baseline baseline.toml >/dev/null 2>&1

set +e
"$clnrm" run suite --gate --baseline baseline.toml > /dev/null 2> unchanged.log
unchanged=$?
sed -i 's/^sh = "sleep 0.30"$/sh = "sleep 0.30; sleep 0.3"/' suite/p3.clnrm.toml
"$clnrm" run suite --gate --baseline baseline.toml > /dev/null 2> slowed.log
slowed=$?
set -e

echo "unchanged re-run: exit $unchanged"
grep '^perf:' unchanged.log || true
echo "slowed p3 by 300 ms: exit $slowed"
grep -A3 '^perf:' slowed.log || true
if [ "$unchanged" -eq 0 ] && [ "$slowed" -eq 3 ] && grep -q 'REGRESSED suite/p3.clnrm.toml#work' slowed.log; then
  echo "gate-e2e: ok"
else
  echo "gate-e2e: FAILED" >&2
  exit 1
fi
