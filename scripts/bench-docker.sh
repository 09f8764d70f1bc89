#!/usr/bin/env bash
# Docker CLI reference points for the backend benchmarks (benches/exec.rs measures the
# API side): `docker run --rm` per step and `docker exec` in a warm container.
#
# Usage: scripts/bench-docker.sh [RUNS]    (default 10; needs hyperfine and the test image)
set -euo pipefail

RUNS="${1:-10}"
IMAGE="${CLNRM_TEST_IMAGE:-clnrm-test/busybox:latest}"
LABEL="clnrm.run=bench-cli-$$"

cd "$(dirname "$0")/.."
scripts/test-image.sh
warm="$(docker run -d --init --label "$LABEL" --label "clnrm.pid=$$" "$IMAGE" sleep infinity)"
trap 'docker rm -f "$warm" >/dev/null' EXIT

hyperfine --warmup 2 --runs "$RUNS" --style basic \
    -n 'docker run --rm (per step)' "docker run --rm --label $LABEL $IMAGE true" \
    -n 'docker exec (warm container)' "docker exec $warm true"
