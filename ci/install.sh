#!/usr/bin/env bash
# Install the released clnrm binary matching this checkout's version: download the archive for
# this machine, verify it against its published sha256, and put `clnrm` into DEST.
#
# Usage: ci/install.sh DEST
# Env:   CLNRM_RELEASE_URL  base of the release downloads, e.g.
#                           https://github.com/OWNER/REPO/releases/download (required)
#        CLNRM_VERSION      version to install (default: the version in Cargo.toml next to ci/)
#        CLNRM_TARGET       target triple (default: from `uname -m`, Linux only)
# Exit:  0 installed; 3 no release asset for this version and target (build from source
#        instead); 1 the checksum does not match, the archive is malformed or the binary does
#        not report the expected version (never fall back: the asset is not what was published).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${1:?usage: ci/install.sh DEST}"
base="${CLNRM_RELEASE_URL:?CLNRM_RELEASE_URL is not set}"
version="${CLNRM_VERSION:-$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)}"

if [ -z "${CLNRM_TARGET:-}" ]; then
  if [ "$(uname -s)" != Linux ]; then
    echo "clnrm install: no prebuilt binary for $(uname -s)" >&2
    exit 3
  fi
  case "$(uname -m)" in
    x86_64 | amd64) CLNRM_TARGET=x86_64-unknown-linux-gnu ;;
    aarch64 | arm64) CLNRM_TARGET=aarch64-unknown-linux-gnu ;;
    *)
      echo "clnrm install: no prebuilt binary for $(uname -m)" >&2
      exit 3
      ;;
  esac
fi
name="clnrm-v$version-$CLNRM_TARGET"
url="${base%/}/v$version/$name.tar.gz"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# fetch URL FILE: 0 on 200; 3 when the asset is missing or the server cannot be reached.
fetch() {
  local code
  code="$(curl -sSL --retry 3 --retry-connrefused -o "$2" -w '%{http_code}' "$1" 2>"$work/curl.err")" || {
    echo "clnrm install: cannot download $1: $(tr '\n' ' ' < "$work/curl.err")" >&2
    return 3
  }
  if [ "$code" != 200 ]; then
    echo "clnrm install: $1: HTTP $code (no release asset for v$version on $CLNRM_TARGET)" >&2
    return 3
  fi
}

fetch "$url" "$work/$name.tar.gz" || exit 3
fetch "$url.sha256" "$work/$name.tar.gz.sha256" || exit 3

expected="$(cut -d' ' -f1 < "$work/$name.tar.gz.sha256" | head -n 1)"
actual="$(sha256sum "$work/$name.tar.gz" | cut -d' ' -f1)"
if ! [[ "$expected" =~ ^[0-9a-f]{64}$ ]]; then
  echo "clnrm install: $url.sha256 does not hold a sha256" >&2
  exit 1
fi
if [ "$expected" != "$actual" ]; then
  echo "clnrm install: checksum mismatch for $name.tar.gz: published $expected, downloaded $actual" >&2
  exit 1
fi

# Extract only the binary, by its exact member name: nothing else of the archive is written.
if ! tar -xzf "$work/$name.tar.gz" -C "$work" --no-same-owner "$name/clnrm" 2>"$work/tar.err"; then
  echo "clnrm install: $name.tar.gz has no $name/clnrm: $(tr '\n' ' ' < "$work/tar.err")" >&2
  exit 1
fi
reported="$("$work/$name/clnrm" --version 2>/dev/null || true)"
if [ "$reported" != "clnrm $version" ]; then
  echo "clnrm install: the downloaded binary reports \`$reported\`, expected \`clnrm $version\`" >&2
  exit 1
fi
mkdir -p "$dest"
install -m 0755 "$work/$name/clnrm" "$dest/clnrm"
echo "clnrm install: clnrm $version ($CLNRM_TARGET) from $url, sha256 $actual" >&2
