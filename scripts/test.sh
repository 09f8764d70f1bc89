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
cargo test "$@"
