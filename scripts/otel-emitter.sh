#!/usr/bin/env bash
# Build the static OpenTelemetry emitter (examples/otel_emitter.rs, the Rust SDK with the OTLP
# exporters) that the Docker telemetry tests copy into a derived test image, and print its
# path. Same static target as scripts/agent-bin.sh, so the two share every compiled dependency.
# (scripts/test.sh needs none of this: it builds the whole suite static, and `cargo test`
# builds the examples, this one included.)
#
# Usage: export CLNRM_OTEL_EMITTER="$(scripts/otel-emitter.sh)"
set -euo pipefail
cd "$(dirname "$0")/.."
target="x86_64-unknown-linux-gnu"
dir="${CLNRM_AGENT_TARGET_DIR:-$PWD/target}"
RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR="$dir" CARGO_PROFILE_DEV_DEBUG=0 \
  cargo build --quiet --example otel_emitter --target "$target" >&2
echo "$dir/$target/debug/examples/otel_emitter"
