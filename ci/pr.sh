#!/usr/bin/env bash
# The PR gate, runnable locally exactly as the workflow runs it: build clnrm, validate and run
# the example suites on the local test image, compare timings with the committed baseline,
# write JUnit, markdown and JSON into clnrm-out/.
#
# Usage: ci/pr.sh                  (all examples)
#        CLNRM_SHARD=1/2 ci/pr.sh  (one shard; `ci/merge.sh` merges the shard results)
# Env:   CLNRM_ACKS   space-separated scenario keys (or `all`) whose regression is acknowledged
#        CLNRM_GATE=0 skip the perf gate
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --quiet
clnrm=target/release/clnrm
out=clnrm-out
mkdir -p "$out"

"$clnrm" validate examples/suite examples/perf

args=(run examples/suite examples/perf --junit "$out/junit.xml" --markdown "$out/report.md" --json "$out/results.json")
if [ -n "${CLNRM_SHARD:-}" ]; then
  args+=(--shard "$CLNRM_SHARD")
fi
if [ "${CLNRM_GATE:-1}" != 0 ]; then
  args+=(--gate --baseline baselines/examples-perf-baseline.toml)
  for a in ${CLNRM_ACKS:-}; do args+=(--ack "$a"); done
fi
"$clnrm" "${args[@]}"
