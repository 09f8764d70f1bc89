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
# The step agent runs inside busybox and any other image, so it must be a static clnrm. One
# build serves both: the suite itself is built static (its own `--target` directory, without
# debug info), and the clnrm binary the integration tests run is the agent the Docker tests
# mount into containers. No second compile of clnrm and its dependencies.
export RUSTFLAGS="-C target-feature=+crt-static"
export CARGO_BUILD_TARGET="x86_64-unknown-linux-gnu"
export CARGO_PROFILE_DEV_DEBUG=0
export CLNRM_AGENT_BIN="${CARGO_TARGET_DIR:-$PWD/target}/$CARGO_BUILD_TARGET/debug/clnrm"
# Likewise the OpenTelemetry emitter the Docker telemetry tests put in a derived image: `cargo
# test` builds the examples, so this static build already has it. (With a filter such as
# `--test telemetry` cargo builds no examples; the tests then build it, see tests/support.)
export CLNRM_OTEL_EMITTER="${CARGO_TARGET_DIR:-$PWD/target}/$CARGO_BUILD_TARGET/debug/examples/otel_emitter"
cargo test "$@"
