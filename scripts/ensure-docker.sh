#!/usr/bin/env bash
# Make sure a Docker daemon answers: install docker.io if dockerd is missing, start dockerd
# in the background when `docker info` fails, and wait for it.
#
# Usage: scripts/ensure-docker.sh
#   DOCKERD_LOG   where dockerd logs when started here (default /tmp/dockerd.log)
#   DOCKER_WAIT   seconds to wait for the daemon (default 60)
set -euo pipefail

LOG="${DOCKERD_LOG:-/tmp/dockerd.log}"
WAIT="${DOCKER_WAIT:-60}"

if docker info >/dev/null 2>&1; then
    exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
    echo "starting dockerd (log: $LOG)" >&2
    nohup dockerd >"$LOG" 2>&1 &
fi

for _ in $(seq "$WAIT"); do
    if docker info >/dev/null 2>&1; then
        exit 0
    fi
    sleep 1
done
echo "error: docker daemon did not answer within ${WAIT}s; see $LOG" >&2
tail -n 20 "$LOG" >&2 || true
exit 1
