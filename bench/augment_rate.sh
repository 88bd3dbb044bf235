#!/usr/bin/env bash
# bench/augment_rate.sh — images per hour of `sdc augment` as a user runs it:
# --method prompt (txt2img from CLIP templates), 25 steps, CFG 7.5, augment's
# default sampler (the model's own scheduler), one class, at each size and
# --batch. Each step is one UNet call on 2 x batch latents (CFG).
#
#   bash bench/augment_rate.sh SDC MODEL [SIZES [BATCHES [IMAGES]]]
#     SDC      the sdc binary (e.g. build/sdc)
#     MODEL    a full-size SD 1.x checkpoint (random weights do: the work is the same)
#     SIZES    e.g. "256 512" (default "256")
#     BATCHES  e.g. "1 2 4" (default "1 2 4")
#     IMAGES   images per run (default: the batch, at least 2)
#
# Each run is a fresh output folder; the wall clock covers the whole command
# (model load, text encoding, sampling, decoding, PNG and manifest writes).
# Prints one line per run and a Markdown table. Threads: $SDC_THREADS or all.
set -euo pipefail
sdc=${1:?usage: augment_rate.sh SDC MODEL [SIZES [BATCHES [IMAGES]]]}
model=${2:?usage: augment_rate.sh SDC MODEL [SIZES [BATCHES [IMAGES]]]}
sizes=${3:-256}
batches=${4:-1 2 4}
images=${5:-}

work=$(mktemp -d "${TMPDIR:-/tmp}/sdc-augrate.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/data/tabby_cat"
# One 8x8 grey PNG so the folder is a dataset; prompt conditioning does not read it.
printf '\211\120\116\107\015\012\032\012\000\000\000\015\111\110\104\122\000\000\000\010\000\000\000\010\010\002\000\000\000\113\155\051\334\000\000\000\017\111\104\101\124\170\332\143\150\300\001\030\206\226\004\000\202\363\140\001\045\225\263\143\000\000\000\000\111\105\116\104\256\102\140\202' \
    > "$work/data/tabby_cat/a.png"

rows=()
for size in $sizes; do
    for b in $batches; do
        n=${images:-$(( b > 2 ? b : 2 ))}
        out="$work/out-$size-$b"
        t0=$(date +%s.%N)
        "$sdc" augment "$work/data" --method prompt --per-class "$n" --size "$size" \
            --steps 25 --cfg 7.5 -b "$b" -m "$model" -o "$out" -q --json > "$work/last.json"
        t1=$(date +%s.%N)
        got=$(find "$out/tabby_cat" -name '*.png' | wc -l)
        [ "$got" -eq "$n" ] || { echo "augment_rate: expected $n images, found $got" >&2; exit 1; }
        read -r wall per rate < <(awk -v a="$t0" -v b="$t1" -v n="$n" \
            'BEGIN { w = b - a; printf "%.3f %.3f %.3f\n", w, w / n, 3600 * n / w }')
        printf 'augment_rate: %sx%s batch %s: %d images in %.1f s, %.1f s/image, %.0f images/hour\n' \
            "$size" "$size" "$b" "$n" "$wall" "$per" "$rate" >&2
        rows+=("$(printf '| %s² | %s | %d | %.1f s | %.1f s | %.0f |' "$size" "$b" "$n" "$wall" "$per" "$rate")")
    done
done
echo "| size | --batch | images | wall | per image | images/hour |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
