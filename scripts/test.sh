#!/usr/bin/env bash
# The project's test command (README): formatting, lints, then the whole test suite, including
# the real-Docker tests against the local daemon and test image.
#
# Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
scripts/actionlint.sh
# The step agent runs inside busybox and any other image: a static clnrm, built once (its own
# `--target` directory, so the normal build stays valid); the Docker tests use it both ways.
CLNRM_AGENT_BIN="$(scripts/agent-bin.sh)"
export CLNRM_AGENT_BIN
cargo test "$@"
