#!/usr/bin/env bash
# Builds the root filesystem tarball that tests, the demo and benchmarks run as the image
# "tools" (python3, curl, iproute2, ping, ps, getent, iperf3, dig), with mmdebstrap from the
# Debian mirror apt uses, once per recipe: /var/cache/ferry/tools-<hash of the recipe>.tar, and the link
# /var/cache/ferry/tools.tar to the current one. Safe to re-run; a changed recipe builds anew.
set -euo pipefail

CACHE=${FERRY_IMAGE_CACHE:-/var/cache/ferry}
SUITE=bookworm
PACKAGES=python3,curl,iproute2,iputils-ping,procps,iperf3,dnsutils
RECIPE=(
    --variant=essential "--include=$PACKAGES"
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*'
    "$SUITE"
)
hash=$(printf '%s\n' "${RECIPE[@]}" | sha256sum | cut -c1-12)
target="$CACHE/tools-$hash.tar"

mkdir -p "$CACHE"
if [ ! -s "$target" ]; then
    echo "tools-image: building $target with mmdebstrap (a few minutes, once)"
    partial="${target%.tar}.partial.tar"  # mmdebstrap picks its output format by the name
    rm -rf "$partial"
    mmdebstrap --quiet "${RECIPE[@]}" "$partial"
    mv "$partial" "$target"
fi
ln -sfn "$(basename "$target")" "$CACHE/tools.tar"
echo "$CACHE/tools.tar"
