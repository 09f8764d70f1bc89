#!/usr/bin/env bash
# Prepare this machine for clnrm's examples and tests: Docker daemon, local test image, and the
# tools the test suite uses (xmllint for the JUnit round-trip, actionlint for the workflows).
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
scripts/ensure-docker.sh
scripts/test-image.sh
