#!/usr/bin/env bash
# The project's own benches compared with the committed criterion baselines in baselines/.
#
# Usage: ci/bench.sh            compare against baselines/criterion (fails on none)
#        ci/bench.sh --save     refresh baselines/criterion from this machine
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
mkdir -p target/criterion
if [ -d baselines/criterion ]; then cp -r baselines/criterion/. target/criterion/; fi
quick=(--warm-up-time 1 --measurement-time 3 --noplot)
if [ "${1:-}" = "--save" ]; then
  cargo bench --bench load --bench report -- "${quick[@]}" --save-baseline committed
  mkdir -p baselines/criterion
  find target/criterion -path '*/committed/*' -print0 | while IFS= read -r -d '' f; do
    rel="${f#target/criterion/}"; mkdir -p "baselines/criterion/$(dirname "$rel")"; cp "$f" "baselines/criterion/$rel"
  done
else
  cargo bench --bench load --bench report -- "${quick[@]}" --baseline committed
fi
