#!/usr/bin/env bash
# Heap profile of one clnrm command with valgrind massif, summarised by ms_print (peak heap
# and the allocation sites that hold it).
#
# Usage: scripts/profile-heap.sh [clnrm args...]   (default: validate examples)
# Output: target/profile/massif.out and target/profile/massif.txt
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || apt-get install -y -qq valgrind >/dev/null
cargo build --release --quiet
mkdir -p target/profile
args=("$@"); [ "${#args[@]}" -gt 0 ] || args=(validate examples)
valgrind -q --tool=massif --massif-out-file=target/profile/massif.out \
  target/release/clnrm "${args[@]}" >/dev/null 2>&1
ms_print target/profile/massif.out > target/profile/massif.txt 2>/dev/null
# The peak-heap graph heads the report.
head -32 target/profile/massif.txt
