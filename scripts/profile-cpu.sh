#!/usr/bin/env bash
# CPU profile of one clnrm command with callgrind (instruction counts: repeatable on a noisy
# machine), summarised by callgrind_annotate; open the .out file in kcachegrind for the graph.
#
# Usage: scripts/profile-cpu.sh [clnrm args...]   (default: validate examples)
# Output: target/profile/callgrind.out and target/profile/callgrind.txt (top functions)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || apt-get install -y -qq valgrind >/dev/null
cargo build --release --quiet
mkdir -p target/profile
args=("$@"); [ "${#args[@]}" -gt 0 ] || args=(validate examples)
valgrind -q --tool=callgrind --callgrind-out-file=target/profile/callgrind.out \
  target/release/clnrm "${args[@]}" >/dev/null 2>&1
callgrind_annotate --inclusive=yes target/profile/callgrind.out 2>/dev/null > target/profile/callgrind.txt
# The total, then the functions with the largest inclusive share.
sed -n '/PROGRAM TOTALS/,$p' target/profile/callgrind.txt | head -30
