#!/usr/bin/env bash
# demo_data.sh — the sample dataset of `make demo`: a few photos bundled in
# scikit-image's wheel on PyPI, laid out as an ImageFolder (class/*.png).
# Idempotent; nothing third-party is committed.  Usage: demo_data.sh OUTDIR
set -euo pipefail
out=$1
[ -f "$out/.complete" ] && exit 0
VERSION=0.24.0
WHEEL_SHA256=fa27b3a0dbad807b966b8db2d78da734cb812ca4787f7fbb143764800ce2fa9c
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "demo: fetching sample photos from scikit-image $VERSION (PyPI)"
python3 -m pip download --quiet --no-deps --disable-pip-version-check --only-binary=:all: \
    --python-version 3.11 --platform manylinux_2_17_x86_64 "scikit-image==$VERSION" -d "$tmp"
whl=$(ls "$tmp"/scikit_image-*.whl)
if [ "$(sha256sum "$whl" | cut -d' ' -f1)" != "$WHEEL_SHA256" ]; then
    echo "demo: $whl does not match the pinned sha256" >&2
    exit 1
fi
get() { # get CLASS FILE...
    mkdir -p "$tmp/data/$1"
    local cls=$1; shift
    for f in "$@"; do unzip -q -o -j "$whl" "skimage/data/$f" -d "$tmp/data/$cls"; done
}
get cat chelsea.png
get coffee coffee.png
get motorcycle motorcycle_left.png motorcycle_right.png
rm -rf "$out" && mkdir -p "$(dirname "$out")" && mv "$tmp/data" "$out"
touch "$out/.complete"
