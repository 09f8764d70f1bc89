#!/usr/bin/env bash
# Package a built clnrm binary as a release asset, laid out the way ci/install.sh expects:
#   OUT/clnrm-vVERSION-TARGET.tar.gz         clnrm-vVERSION-TARGET/{clnrm, LICENSE, README.md,
#                                            CHANGELOG.md, completions/, man/clnrm.1}
#   OUT/clnrm-vVERSION-TARGET.tar.gz.sha256  "<sha256>  <archive name>" (sha256sum -c format)
# The archive is reproducible (sorted, owner 0, mtime from SOURCE_DATE_EPOCH or the last commit).
#
# Usage: ci/package.sh BINARY TARGET OUT   (version read from Cargo.toml, or CLNRM_VERSION)
# Env:   CLNRM_GZIP_LEVEL  gzip level (default 9; the tests package a debug build with 1)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:?usage: ci/package.sh BINARY TARGET OUT}"
target="${2:?usage: ci/package.sh BINARY TARGET OUT}"
out="${3:?usage: ci/package.sh BINARY TARGET OUT}"
version="${CLNRM_VERSION:-$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)}"
name="clnrm-v$version-$target"
epoch="${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)}"

mkdir -p "$out"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
dir="$stage/$name"
mkdir -p "$dir/completions" "$dir/man"
install -m 0755 "$bin" "$dir/clnrm"
cp "$root/LICENSE" "$root/README.md" "$root/CHANGELOG.md" "$dir/"
"$dir/clnrm" completions bash > "$dir/completions/clnrm.bash"
"$dir/clnrm" completions zsh > "$dir/completions/_clnrm"
"$dir/clnrm" completions fish > "$dir/completions/clnrm.fish"
"$dir/clnrm" man > "$dir/man/clnrm.1"

archive="$out/$name.tar.gz"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
  -C "$stage" -cf - "$name" | gzip "-${CLNRM_GZIP_LEVEL:-9}" -n > "$archive"
(cd "$out" && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256")
echo "$archive"
