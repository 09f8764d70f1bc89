#!/usr/bin/env bash
# Prepare this machine for clnrm's examples and tests: Docker daemon, local test image, and the
# tools the test suite uses (junitparser and cmarkgfm for the report round-trips; actionlint
# for the workflows is installed by scripts/actionlint.sh).
#
# Usage: scripts/setup.sh        (idempotent; fast when everything is there)
set -euo pipefail
cd "$(dirname "$0")/.."

# Real consumers of our reports in the tests: junitparser reads the JUnit XML, cmarkgfm renders
# the markdown summary the way GitHub's renderer does.
if ! python3 -c 'import junitparser, cmarkgfm' >/dev/null 2>&1; then
  echo "setup: installing junitparser and cmarkgfm (PyPI)" >&2
  python3 -m pip install -q junitparser cmarkgfm
fi
# The real OpenTelemetry SDK the telemetry tests emit spans with (OTLP/HTTP protobuf).
if ! python3 -c 'import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http' >/dev/null 2>&1; then
  echo "setup: installing opentelemetry-sdk and the OTLP/HTTP exporter (PyPI)" >&2
  python3 -m pip install -q opentelemetry-sdk opentelemetry-exporter-otlp-proto-http
fi
scripts/ensure-docker.sh
scripts/test-image.sh
