#!/usr/bin/env bash
# Build the static clnrm that the step agent needs (it runs inside any image, busybox
# included) and print its path. It has a target of its own (`--target`), so the static flags
# do not invalidate the normal build; the second call is a no-op build. No debug info: the
# agent is never debugged in place, and it makes the compile and the link cheaper.
# (scripts/test.sh needs none of this: it builds the whole suite static, and the clnrm binary
# of that build is the agent.)
#
# Usage: export CLNRM_AGENT_BIN="$(scripts/agent-bin.sh)"
set -euo pipefail
cd "$(dirname "$0")/.."
target="x86_64-unknown-linux-gnu"
dir="${CLNRM_AGENT_TARGET_DIR:-$PWD/target}"
RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR="$dir" CARGO_PROFILE_DEV_DEBUG=0 \
  cargo build --quiet --bin clnrm --target "$target" >&2
echo "$dir/$target/debug/clnrm"
