#!/usr/bin/env bash
# Daemon loss mid-run, on a private second dockerd (own socket, data root, no bridge), so
# that the daemon other jobs use is never touched. Needs root and the local test image.
#
# 1. a run of 4 scenarios (each `sleep 5`) starts against the private daemon;
# 2. once its first container exists, the daemon is stopped (SIGTERM);
# 3. reported: clnrm's exit code (5 expected), the seconds from the stop to clnrm's exit,
#    `aborted` and the scenario statuses of the JSON written anyway;
# 4. the daemon is restarted: leftovers of the run are counted, a new run reaps them.
#
# Usage: scripts/fault-daemon.sh [path/to/clnrm]   (default: target/release/clnrm)
set -euo pipefail
cd "$(dirname "$0")/.."
clnrm="${1:-$PWD/target/release/clnrm}"
[ -x "$clnrm" ] || cargo build --release --quiet --bin clnrm
clnrm="$(realpath "$clnrm")"
root="$(mktemp -d /tmp/clnrm-fault-daemon.XXXXXX)"
sock="unix://$root/docker.sock"
start_daemon() {
  dockerd --host "$sock" --data-root "$root/data" --exec-root "$root/exec" \
    --pidfile "$root/docker.pid" --bridge=none --iptables=false --ip6tables=false \
    >>"$root/dockerd.log" 2>&1 &
  for _ in $(seq 1 100); do
    DOCKER_HOST="$sock" docker version >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "private dockerd did not start; see $root/dockerd.log" >&2
  exit 1
}
stop_daemon() {
  local pid
  pid="$(cat "$root/docker.pid" 2>/dev/null || true)"
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}
cleanup() {
  DOCKER_HOST="$sock" docker rm -f $(DOCKER_HOST="$sock" docker ps -aq) >/dev/null 2>&1 || true
  stop_daemon
  rm -rf "$root"
}
trap cleanup EXIT

start_daemon
docker save clnrm-test/busybox:1 | DOCKER_HOST="$sock" docker load >/dev/null
mkdir -p "$root/suite/.clnrm"
cat > "$root/suite/lost.clnrm.toml" <<'TOML'
[meta]
name = "lost"
[service.app]
image = "clnrm-test/busybox:1"
[[scenario]]
name = "one"
[[scenario.steps]]
cmd = ["sleep", "5"]
[[scenario]]
name = "two"
[[scenario.steps]]
cmd = ["sleep", "5"]
[[scenario]]
name = "three"
[[scenario.steps]]
cmd = ["sleep", "5"]
[[scenario]]
name = "four"
[[scenario.steps]]
cmd = ["sleep", "5"]
TOML
cd "$root/suite"
DOCKER_HOST="$sock" "$clnrm" run --jobs 1 --json "$root/r.json" >/dev/null 2>"$root/run.err" &
run_pid=$!
until [ -n "$(DOCKER_HOST="$sock" docker ps -q --filter "label=clnrm.pid=$run_pid")" ]; do
  kill -0 "$run_pid" 2>/dev/null || { cat "$root/run.err" >&2; exit 1; }
  sleep 0.05
done
sleep 0.5
t0=$(date +%s%N)
kill -TERM "$(cat "$root/docker.pid")"
set +e
wait "$run_pid"
code=$?
set -e
t1=$(date +%s%N)
stop_daemon
echo "exit_code=$code seconds_to_exit_after_stop=$(awk "BEGIN{printf \"%.2f\", ($t1-$t0)/1e9}")"
python3 - "$root/r.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("aborted=" + repr(r.get("aborted")))
for sc in r["tests"][0]["scenarios"]:
    print(f"  {sc['name']}: {sc['status']}: {(sc.get('message') or '').splitlines()[0][:90]}")
PY
start_daemon
left=$(DOCKER_HOST="$sock" docker ps -aq --filter "label=clnrm.pid=$run_pid" | wc -l)
echo "leftovers_after_restart=$left"
cat > "$root/suite/lost.clnrm.toml" <<'TOML'
[meta]
name = "after"
[service.app]
image = "clnrm-test/busybox:1"
[[scenario]]
name = "quick"
[[scenario.steps]]
cmd = ["true"]
TOML
DOCKER_HOST="$sock" "$clnrm" run >/dev/null 2>&1
left=$(DOCKER_HOST="$sock" docker ps -aq --filter "label=clnrm.pid=$run_pid" | wc -l)
nets=$(DOCKER_HOST="$sock" docker network ls -q --filter "label=clnrm.pid=$run_pid" | wc -l)
echo "leftovers_after_next_run=$left containers, $nets networks"
