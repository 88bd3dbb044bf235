#!/usr/bin/env bash
# demo.sh — `make demo`: the main job on a small sample dataset. Three
# classes of photos from scikit-image's wheel are augmented with all three
# methods (boomerang img2img, CLIP-template prompts, textual inversion), into
# build/demo/out with a manifest and a preview grid per method.
# Usage: demo.sh SDC_BINARY
set -euo pipefail
sdc=$1
cd "$(dirname "$0")/.."
demo=build/demo
mkdir -p "$demo"
bash scripts/demo_data.sh "$demo/data"

# A real SD 1.x checkpoint in weights/ if there is one, else a tiny random model.
model=""
for f in weights/*.safetensors; do
    [ -e "$f" ] || continue
    if "$sdc" info "$f" 2>/dev/null | grep -q "^layout: *original"; then model=$f; break; fi
done
if [ -n "$model" ]; then
    size=256 steps=12
    echo "demo: using $model at ${size}x${size}, $steps steps (CPU: expect several minutes)"
else
    model=$demo/tiny-random.safetensors
    [ -s "$model" ] || "$sdc" make-random --config tiny --layout original --seed 1 "$model" >/dev/null
    size=64 steps=8
    cat <<'NOTE'

  ############################################################################
  #  NOTE: no SD 1.x checkpoint found in weights/, so this demo runs a TINY   #
  #  RANDOM-WEIGHT model: its images are noise. The pipeline, manifest,       #
  #  resume and preview are real. For real images, download an SD 1.x         #
  #  checkpoint yourself (e.g. v1-5-pruned-emaonly.safetensors), put it in    #
  #  weights/, and run `make demo` again.                                     #
  ############################################################################

NOTE
fi

common=(--model "$model" --size "$size" --steps "$steps" --seed 7 -q)
out=$demo/out
mkdir -p "$out"
# Textual inversion: a per-class embedding initialised from the class word
# (the usual starting point of TI training; trained embeddings drop in here).
mkdir -p "$demo/embeddings"
for cls in "$demo"/data/*/; do
    c=$(basename "$cls")
    [ -s "$demo/embeddings/$c.safetensors" ] ||
        "$sdc" textinv-init --model "$model" --word "$c" -o "$demo/embeddings/$c.safetensors" >/dev/null
done

t0=$(date +%s)
echo "demo: boomerang (img2img of each real image, strength 0.25/0.5/0.75)"
"$sdc" augment "$demo/data" --method boomerang --strength 0.25,0.5,0.75 --per-image 2 \
    --out "$out/boomerang" --preview "$out/boomerang-preview.png" "${common[@]}"
echo "demo: prompt (CLIP's 7 ImageNet templates)"
"$sdc" augment "$demo/data" --method prompt --templates clip7 --per-class 2 \
    --out "$out/prompt" --preview "$out/prompt-preview.png" "${common[@]}"
echo "demo: textinv (a learned-embedding token per class)"
"$sdc" augment "$demo/data" --method textinv --embeddings "$demo/embeddings" --per-class 2 \
    --out "$out/textinv" --preview "$out/textinv-preview.png" "${common[@]}"
# One contact sheet over the three methods: per class the real photos beside
# their augmentations, every tile labelled (method, strength or prompt, seed).
"$sdc" manifest preview "$demo/data" "$out/boomerang" "$out/prompt" "$out/textinv" \
    -o "$out/all-methods-preview.png" >/dev/null

echo
echo "demo: done in $(( $(date +%s) - t0 )) s. Outputs (ImageFolder layout + manifest.jsonl):"
for m in boomerang prompt textinv; do
    n=$(wc -l < "$out/$m/manifest.jsonl")
    echo "  $out/$m/   $n images   preview: $out/$m-preview.png"
done
echo "  one sheet for all three: $out/all-methods-preview.png"
echo "Rerunning 'make demo' resumes: finished images are not generated again."
