#!/usr/bin/env bash
# Prepare this machine for clnrm's examples and tests: Docker daemon, local test image, and the
# tools the test suite uses (junitparser and cmarkgfm for the report round-trips; curl and jq,
# which the GitHub Action's scripts in ci/ use; actionlint for the workflows is installed by
# scripts/actionlint.sh).
#
# Usage: scripts/setup.sh        (idempotent; fast when everything is there)
set -euo pipefail
cd "$(dirname "$0")/.."

# Real consumers of our reports in the tests: junitparser reads the JUnit XML, cmarkgfm renders
# the markdown summary the way GitHub's renderer does, xmlschema checks the JUnit XML against
# the Jenkins JUnit schema in tests/fixtures/report.
if ! python3 -c 'import junitparser, cmarkgfm, xmlschema' >/dev/null 2>&1; then
  echo "setup: installing junitparser, cmarkgfm and xmlschema (PyPI)" >&2
  python3 -m pip install -q junitparser cmarkgfm xmlschema
fi
# ci/install.sh downloads with curl; ci/action-run.sh reads the results with jq (both are on
# GitHub's hosted runners).
missing=()
for tool in curl jq; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]} (apt)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The real OpenTelemetry SDK the telemetry tests emit spans with (OTLP/HTTP protobuf and
# OTLP/gRPC; the gRPC exporter brings grpcio, which the tests also use to send bad messages).
if ! python3 -c 'import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http, opentelemetry.exporter.otlp.proto.grpc' >/dev/null 2>&1; then
  echo "setup: installing opentelemetry-sdk and the OTLP/HTTP and OTLP/gRPC exporters (PyPI)" >&2
  python3 -m pip install -q opentelemetry-sdk opentelemetry-exporter-otlp-proto-http \
    opentelemetry-exporter-otlp-proto-grpc
fi
scripts/ensure-docker.sh
scripts/test-image.sh
