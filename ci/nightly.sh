#!/usr/bin/env bash
# Nightly baseline refresh, runnable locally: record N runs of the perf examples into a copy of
# the committed baseline, show what moved and the drift since the anchor, and replace the
# committed file only when something moved beyond noise (clnrm-out/baseline-changed marks it).
#
# Usage: CLNRM_RUNS=5 ci/nightly.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --quiet
clnrm=target/release/clnrm
baseline=baselines/examples-perf-baseline.toml
out=clnrm-out
mkdir -p "$out"
rm -f "$out/baseline-changed"
work="$out/perf-baseline.new.toml"
if [ -f "$baseline" ]; then cp "$baseline" "$work"; else rm -f "$work"; fi

"$clnrm" baseline record examples/perf --runs "${CLNRM_RUNS:-5}" --baseline "$work" --diff-out "$out/baseline-diff.md"
"$clnrm" baseline drift --baseline "$work" > "$out/drift.md" 2>&1 || true
cat "$out/baseline-diff.md" "$out/drift.md" >> "${GITHUB_STEP_SUMMARY:-$out/summary.md}"

# The diff's first line counts the keys that moved beyond their tolerance, appeared or vanished.
moved=$(head -n 1 "$out/baseline-diff.md" | cut -d' ' -f1)
if [ "${moved:-0}" -gt 0 ]; then
  touch "$out/baseline-changed"
  mv "$work" "$baseline"
  echo "nightly: baseline moved beyond noise; $baseline updated" >&2
else
  echo "nightly: baseline unchanged beyond noise" >&2
fi
