#!/usr/bin/env bash
# demo.sh — `make demo`: the main job, augmenting a small sample dataset.
# The augmentation driver is not built yet (see the open issues).
set -euo pipefail
echo "sdc demo: not built yet — the augmentation driver (sdc augment) has not landed."
echo "What works today: '$1 info FILE.safetensors' and 'make test'."
