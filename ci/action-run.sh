#!/usr/bin/env bash
# The run step of ci/action.yml, runnable (and tested) outside GitHub: `clnrm run` with the
# action's inputs, reports into CLNRM_OUT, step outputs into $GITHUB_OUTPUT, and a job summary
# line even when clnrm wrote no report (it appends its own markdown under GitHub Actions).
# Exit code: clnrm's.
#
# Env (the action's inputs): CLNRM_PATHS, CLNRM_JOBS, CLNRM_SHARD, CLNRM_BASELINE, CLNRM_GATE,
# CLNRM_ACKS, CLNRM_PULL (true|false|auto: auto = on when CI is set), CLNRM_ARGS, CLNRM_OUT,
# CLNRM_BIN (default: clnrm on PATH).
set -uo pipefail
bin="${CLNRM_BIN:-clnrm}"
out="${CLNRM_OUT:?CLNRM_OUT is not set}"
mkdir -p "$out"

args=(run)
read -r -a paths <<< "${CLNRM_PATHS:-.}"
args+=("${paths[@]}")
[ -n "${CLNRM_JOBS:-}" ] && args+=(--jobs "$CLNRM_JOBS")
[ -n "${CLNRM_SHARD:-}" ] && args+=(--shard "$CLNRM_SHARD")
pull="${CLNRM_PULL:-auto}"
if [ "$pull" = auto ]; then
  if [ -n "${CI:-}" ] && [ "${CI}" != false ]; then pull=true; else pull=false; fi
fi
[ "$pull" = true ] && args+=(--pull)
if [ "${CLNRM_GATE:-true}" = true ]; then
  args+=(--gate)
  [ -n "${CLNRM_BASELINE:-}" ] && args+=(--baseline "$CLNRM_BASELINE")
  read -r -a acks <<< "${CLNRM_ACKS:-}"
  for a in "${acks[@]}"; do args+=(--ack "$a"); done
fi
read -r -a extra <<< "${CLNRM_ARGS:-}"
args+=("${extra[@]}")
args+=(--junit "$out/junit.xml" --markdown "$out/report.md" --json "$out/results.json")

status=0
"$bin" "${args[@]}" || status=$?

passed=0 failed=0 regressed=0
if [ -f "$out/results.json" ]; then
  # Flaky scenarios passed in the end; load errors count as failures, like the exit code does.
  passed="$(jq '[.tests[].scenarios[] | select(.status == "passed" or .status == "flaky")] | length' "$out/results.json")"
  failed="$(jq '([.tests[].scenarios[] | select(.status == "failed" or .status == "timed_out" or .status == "error")] | length) + (.load_errors | length)' "$out/results.json")"
  regressed="$(jq '[(.perf.rows // [])[] | select(.verdict == "regressed" or .verdict == "budget-exceeded")] | length' "$out/results.json")"
  results_path="$(cd "$out" && pwd)/results.json"
else
  results_path=""
fi
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  {
    echo "passed=$passed"
    echo "failed=$failed"
    echo "regressed=$regressed"
    echo "results-path=$results_path"
    echo "exit-code=$status"
  } >> "$GITHUB_OUTPUT"
fi
# clnrm appends its markdown report to the job summary itself; when it could not get that far
# (bad arguments, unreadable config), the summary still says what happened.
if [ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ ! -s "$out/report.md" ]; then
  echo "**clnrm** exited with code $status before writing a report; see the step log." >> "$GITHUB_STEP_SUMMARY"
fi
exit "$status"
