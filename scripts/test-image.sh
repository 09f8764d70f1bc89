#!/usr/bin/env bash
# Build the local test image `clnrm-test/busybox:latest` (no registry needed).
#
# Usage: scripts/test-image.sh [--force]
#
# A busybox-static rootfs (Debian's `busybox-static`, installed with apt-get when
# /bin/busybox is missing) with every applet linked, `docker import`ed. Idempotent and fast
# when the image already exists; --force rebuilds it.
set -euo pipefail

IMAGE="${CLNRM_TEST_IMAGE:-clnrm-test/busybox:latest}"

# The examples pin a version tag (what `clnrm lint` asks of real suites); tests use `latest`.
PINNED="${IMAGE%:*}:1"

if [[ "${1:-}" != "--force" ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    docker image inspect "$PINNED" >/dev/null 2>&1 || docker tag "$IMAGE" "$PINNED"
    exit 0
fi

BUSYBOX=/bin/busybox
if [[ ! -x "$BUSYBOX" ]]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi
# Debian's dynamic `busybox` package also installs /bin/busybox; the image needs a static one.
if command -v file >/dev/null && ! file -L "$BUSYBOX" | grep -q 'statically linked'; then
    echo "error: $BUSYBOX is not statically linked; install busybox-static" >&2
    exit 1
fi

ROOT="$(mktemp -d)"
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT"/{bin,etc,tmp,root,proc,sys,dev}
chmod 1777 "$ROOT/tmp"
cp "$BUSYBOX" "$ROOT/bin/busybox"
# `busybox --list` includes `busybox` itself: linking it would replace the binary by a
# symlink to itself, so skip it.
for applet in $("$BUSYBOX" --list); do
    [[ "$applet" == busybox ]] && continue
    ln -sf busybox "$ROOT/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$ROOT/etc/passwd"
echo 'root:x:0:' >"$ROOT/etc/group"

tar -C "$ROOT" -c . | docker import \
    --change 'ENV PATH=/bin' \
    --message 'clnrm test image: busybox-static' \
    - "$IMAGE" >/dev/null
docker tag "$IMAGE" "$PINNED"
echo "built $IMAGE ($PINNED)" >&2
