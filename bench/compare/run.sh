#!/usr/bin/env bash
# bench/compare/run.sh — sdc vs stable-diffusion.cpp vs diffusers/PyTorch on the
# CPU, same full-size random SD 1.5 checkpoint, same run (see compare.py).
#
#   bash bench/compare/run.sh [compare.py options]     e.g. --quick, --reps 5, --json F
#
# What it does, each step skipped when already done:
#   1. a venv (build/bench-venv) with the pinned peers of bench/compare/requirements.txt
#      (torch + diffusers, CPU fp32) and stable-diffusion-cpp-python $SDCPP_VERSION,
#      built from source with $SDCPP_CMAKE_ARGS (its fastest CPU configuration:
#      -march=native, llamafile's GEMM on; flash attention is switched on at run
#      time). The wheel is cached in build/bench-wheels/ under a name that
#      records the flags.
#   2. sdc's benches, CPU only: make BUILD=build/bench-cpu CUDA=0 -j2 bench
#   3. the random checkpoint, in both layouts from the same seed (identical
#      weights): build/bench-models/sd15-random-f16.safetensors (sdc and
#      stable-diffusion.cpp) and build/bench-models/sd15-random-f16-diffusers/
#   4. compare.py: interleaved rounds, medians, table, --json.
# Needs network access for step 1 only (PyPI). Memory: the three workers stay
# loaded together, about 10 GB at the peak.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=${BENCH_VENV:-build/bench-venv}
WHEELS=${BENCH_WHEELS:-build/bench-wheels}
SDC_BUILD=${SDC_BUILD:-build/bench-cpu}
MODELS=${BENCH_MODELS:-build/bench-models}
JOBS=${JOBS:-2}
SDCPP_VERSION=${SDCPP_VERSION:-0.4.7}
SDCPP_CMAKE_ARGS=${SDCPP_CMAKE_ARGS:--DGGML_NATIVE=ON -DGGML_LLAMAFILE=ON -DGGML_OPENMP=ON}
PY=${PYTHON:-/usr/bin/python3}

say() { printf 'run.sh: %s\n' "$*" >&2; }

# 1. Peers.
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    "$PY" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import torch, diffusers, transformers' 2>/dev/null; then
    say "installing torch + diffusers (pinned; torch's wheel brings CUDA libraries, ~3 GB)"
    "$VENV/bin/pip" install -q -r bench/compare/requirements.txt
fi
tag=$(printf '%s' "$SDCPP_CMAKE_ARGS" | sha256sum | cut -c1-12)
wheel_dir="$WHEELS/sdcpp-$SDCPP_VERSION-$tag"
say "stable-diffusion-cpp-python $SDCPP_VERSION, CMAKE_ARGS='$SDCPP_CMAKE_ARGS'"
if ! ls "$wheel_dir"/stable_diffusion_cpp_python-*.whl >/dev/null 2>&1; then
    mkdir -p "$wheel_dir"
    say "building it from source with -j$JOBS (log: $wheel_dir/build.log; tens of minutes on 2 cores)"
    printf '%s\n' "$SDCPP_CMAKE_ARGS" > "$wheel_dir/CMAKE_ARGS"
    CMAKE_ARGS="$SDCPP_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL=$JOBS \
        "$VENV/bin/pip" wheel --no-deps --no-cache-dir -v \
        "stable-diffusion-cpp-python==$SDCPP_VERSION" -w "$wheel_dir" > "$wheel_dir/build.log" 2>&1 ||
        { tail -40 "$wheel_dir/build.log" >&2; exit 1; }
fi
if [ -f "$wheel_dir/build.log" ]; then
    # What the build actually used, from pip's verbose log.
    grep -o -E 'Adding CPU backend variant [^ ]+: [^"]*|GGML_USE_LLAMAFILE|GGML_USE_OPENMP' \
        "$wheel_dir/build.log" | sort -u | sed 's/^/run.sh:   build log: /' >&2 || true
fi
whl=$(ls "$wheel_dir"/stable_diffusion_cpp_python-*.whl | head -1)
if [ "$("$VENV/bin/python" -c 'import stable_diffusion_cpp as s; print(s.__file__)' 2>/dev/null)" = "" ] ||
   [ ! -f "$VENV/.sdcpp-wheel" ] || [ "$(cat "$VENV/.sdcpp-wheel")" != "$whl" ]; then
    "$VENV/bin/pip" install -q --force-reinstall --no-deps "$whl"
    "$VENV/bin/pip" install -q "typing-extensions>=4.5.0" "pillow>=10.2.0"
    printf '%s\n' "$whl" > "$VENV/.sdcpp-wheel"
fi

# 2. sdc.
say "building sdc's benches in $SDC_BUILD (CPU only)"
make --no-print-directory BUILD="$SDC_BUILD" CUDA=0 -j"$JOBS" bench >&2

# 3. The checkpoint.
mkdir -p "$MODELS"
ck="$MODELS/sd15-random-f16.safetensors" dck="$MODELS/sd15-random-f16-diffusers"
[ -f "$ck" ] || "$SDC_BUILD/sdc" make-random --layout original --dtype f16 --seed 0 "$ck"
[ -f "$dck/model_index.json" ] || "$SDC_BUILD/sdc" make-random --layout diffusers --dtype f16 --seed 0 "$dck"

# 4. Compare.
SDCPP_CMAKE_ARGS="$SDCPP_CMAKE_ARGS" exec "$VENV/bin/python" bench/compare/compare.py \
    --model "$ck" --diffusers-model "$dck" --sdc-build "$SDC_BUILD" "$@"
