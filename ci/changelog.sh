#!/usr/bin/env bash
# Print the CHANGELOG.md section of one version (the release notes), without its heading.
# Fails when the changelog has no section for that version.
#
# Usage: ci/changelog.sh VERSION   (e.g. 0.2.0)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version="${1:?usage: ci/changelog.sh VERSION}"
notes="$(awk -v v="$version" '
  /^\[[^]]*\]: / { if (found) exit }
  /^## \[/ { if (found) exit; if (index($0, "## [" v "]") == 1) { found = 1; next } }
  found { print }
  END { if (!found) exit 1 }
' "$root/CHANGELOG.md")" || {
  echo "error: CHANGELOG.md has no section \`## [$version]\`" >&2
  exit 1
}
printf '%s\n' "$notes" | sed -e '/./,$!d' | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
