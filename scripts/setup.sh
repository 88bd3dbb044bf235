#!/usr/bin/env bash
# setup.sh — installs what sdc needs on Debian 12 and fetches CLIP's BPE merges
# file into weights/. Idempotent: a no-op when everything is present.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential pkg-config libopenblas-dev libcjson-dev libstb-dev check python3 python3-pip unzip)
# The Vulkan backend: headers and loader, glslc (shaders to SPIR-V at build
# time), Mesa's software driver lavapipe (the vulkan suite runs on it) and
# the validation layer that suite turns on. Without them the build leaves
# the backend out (Makefile: VULKAN) and --backend vulkan says so.
PKGS+=(libvulkan-dev mesa-vulkan-drivers glslc vulkan-validationlayers)
# open-clip-torch ships CLIP's original merges file; pinned version and hash.
OPENCLIP_VERSION=3.3.0
BPE_FILE=weights/bpe_simple_vocab_16e6.txt.gz
BPE_SHA256=924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
        SUDO=sudo
    fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

have_sha() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

# CLIP's ImageNet templates (80 and the recommended 7) and class names, for
# sdc augment --templates clip|clip7, extracted from the same wheel.
CLIP_TEXT_FILES=(weights/clip_templates.txt weights/clip7_templates.txt weights/imagenet_classes.txt)
need_clip_text=0
for f in "${CLIP_TEXT_FILES[@]}"; do [ -s "$f" ] || need_clip_text=1; done

if ! have_sha "$BPE_FILE" "$BPE_SHA256" || [ "$need_clip_text" = 1 ]; then
    echo "setup: fetching CLIP's merges file and templates from open-clip-torch $OPENCLIP_VERSION (PyPI)"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    python3 -m pip download --quiet --no-deps --disable-pip-version-check \
        "open-clip-torch==$OPENCLIP_VERSION" -d "$tmp"
    mkdir -p weights
    python3 scripts/extract_clip_metadata.py "$tmp"/open_clip_torch-*.whl weights
    unzip -q -o -j "$tmp"/open_clip_torch-*.whl open_clip/bpe_simple_vocab_16e6.txt.gz -d "$tmp"
    if ! have_sha "$tmp/bpe_simple_vocab_16e6.txt.gz" "$BPE_SHA256"; then
        echo "setup: $BPE_FILE from the wheel does not match sha256 $BPE_SHA256" >&2
        exit 1
    fi
    mv "$tmp/bpe_simple_vocab_16e6.txt.gz" "$BPE_FILE.tmp" && sync "$BPE_FILE.tmp" && mv "$BPE_FILE.tmp" "$BPE_FILE"
fi

touch weights/.setup-done
