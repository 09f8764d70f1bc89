#!/usr/bin/env bash
# Merge the shard results of a PR run into one report and one verdict (the workflow's merge
# job). Exit code: the merged verdict (0 passed, 1 tests failed, 3 perf regression).
#
# Usage: ci/merge.sh DIR   (DIR holds one folder per shard, each with results.json)
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:?usage: ci/merge.sh DIR}"
cargo build --release --quiet
mapfile -t files < <(find "$dir" -name results.json | sort)
if [ "${#files[@]}" -eq 0 ]; then
  echo "error: no results.json under $dir" >&2
  exit 2
fi
mkdir -p clnrm-out
summary="${GITHUB_STEP_SUMMARY:-clnrm-out/merged.md}"
status=0
target/release/clnrm report "${files[@]}" --require-all-shards --markdown clnrm-out/merged.md --junit clnrm-out/merged.xml --json clnrm-out/merged.json || status=$?
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then cat clnrm-out/merged.md >> "$summary"; fi
exit "$status"
