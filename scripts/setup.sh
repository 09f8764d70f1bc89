#!/usr/bin/env bash
# Prepare this machine for clnrm's examples and tests: Docker daemon, local test image, and the
# tools the test suite uses (junitparser and cmarkgfm for the report round-trips, actionlint
# for the workflows).
#
# Usage: scripts/setup.sh        (idempotent; fast when everything is there)
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

apt_install libxml2-utils
# Real consumers of our reports in the tests: junitparser reads the JUnit XML, cmarkgfm renders
# the markdown summary the way GitHub's renderer does.
if ! python3 -c 'import junitparser, cmarkgfm' >/dev/null 2>&1; then
  echo "setup: installing junitparser and cmarkgfm (PyPI)" >&2
  python3 -m pip install -q junitparser cmarkgfm
fi
scripts/ensure-docker.sh
scripts/test-image.sh
