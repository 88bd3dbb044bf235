#!/usr/bin/env bash
# gpu_check.sh — everything a lent GPU machine should run, in one go, within
# a time budget (default 9 minutes), from a clean clone:
#
#   1. build the CUDA binaries for this GPU's architecture (or take --bin's);
#   2. the CUDA conformance suite: every op-table row at F32 (SD shapes) and
#      F16/BF16 (reduced shapes), every kernel variant, in parallel shards;
#      the backend checks (graph recording among them); the tiny text
#      encoder, UNet and VAE and txt2img / img2img against the CPU backend
#      (and diffusers' latents) at F32 and F16, CUDA graph replay against
#      eager;
#   3. torch's CUDA normal generator dumped (tests/gpu_rng_dump.py), when
#      torch with CUDA is there, and `--rng cuda` checked against that dump;
#   4. compute-sanitizer memcheck and racecheck on a tiny-model txt2img (F16,
#      CUDA graphs, the flash attention kernel; memcheck also with the CUDA
#      generator and an F16 VAE), and memcheck on the edge op rows;
#   5. bench_cuda: per-op TFLOP/s and GB/s at F16, then a UNet CFG step
#      (eager and as a CUDA graph), a VAE decode (F32 and F16) and whole
#      50-step 512² images on a full-size random checkpoint, and PyTorch fp16
#      + SDPA on the same weights in the same run (bench/cuda_peer.py, when
#      diffusers is importable);
#   6. a Markdown section with device, date and commit, appended to
#      bench/RESULTS.md and left in the output folder.
#
#   bench/gpu_check.sh [--bin DIR] [--out DIR] [--budget SECONDS] [--no-append]
#
# --bin DIR: sdc, run_tests and bench_cuda already built (skip the build).
# Stages run in order of importance; one that would not fit in what is left
# of the budget is skipped and says so. Every stage's log is in OUT
# (default build/gpu-check) and in OUT/gpu_check.log. Exit status: 0 when
# every stage that ran passed, 1 otherwise, 77 without a CUDA device.
set -uo pipefail
cd "$(dirname "$0")/.."

BIN="" OUTDIR=build/gpu-check BUDGET=540 APPEND=1
while (($#)); do
    case "$1" in
    --bin) BIN=$2; shift 2 ;;
    --out) OUTDIR=$2; shift 2 ;;
    --budget) BUDGET=$2; shift 2 ;;
    --no-append) APPEND=0; shift ;;
    -h | --help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
mkdir -p "$OUTDIR" || exit 1
OUTDIR=$(cd "$OUTDIR" && pwd)
LOG=$OUTDIR/gpu_check.log
: >"$LOG"
T0=$(date +%s)
NPROC=$(nproc)
SUMMARY=()
FAILED=0

say() { echo "$*" | tee -a "$LOG"; }
elapsed() { echo $(($(date +%s) - T0)); }
left() { echo $((BUDGET - $(elapsed))); }

# stage NAME MAX_SECONDS MIN_SECONDS CMD...: runs CMD under a timeout of
# min(MAX, what is left), or skips it when less than MIN is left.
stage() {
    local name=$1 max=$2 min=$3
    shift 3
    local l
    l=$(left)
    if ((l < min)); then
        say "=== $name: SKIPPED (${l} s of the budget left, needs ${min})"
        SUMMARY+=("| $name | skipped (budget) | |")
        return 0
    fi
    local lim=$((max < l ? max : l)) s
    say "=== $name (limit ${lim} s, at $(elapsed) s)"
    s=$(date +%s)
    if [ "$(type -t "$1")" = function ]; then set -- bash -c '"$@"' _ "$@"; fi
    timeout -k 10 "$lim" "$@" >"$OUTDIR/$name.log" 2>&1
    local rc=$? took=$(($(date +%s) - s))
    cat "$OUTDIR/$name.log" >>"$LOG"
    tail -n 5 "$OUTDIR/$name.log"
    local verdict=ok
    if ((rc == 124 || rc == 137)); then verdict="TIMEOUT after ${took} s"; FAILED=1
    elif ((rc == 77)); then verdict="skipped (rc 77)"
    elif ((rc != 0)); then verdict="FAILED (rc $rc)"; FAILED=1; fi
    say "=== $name: $verdict (${took} s)"
    SUMMARY+=("| $name | $verdict | ${took} s |")
    return 0
}

# ------------------------------------------------------------ device, build
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
    say "gpu_check: SKIPPED — no CUDA device (nvidia-smi finds none)"
    exit 77
fi
GPU=$(nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader | head -1)
CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' .')
COMMIT=$(git rev-parse --short=12 HEAD 2>/dev/null || echo "${GPU_CHECK_COMMIT:-unknown}")
DIRTY=$(git status --porcelain --untracked-files=no 2>/dev/null | head -1)
say "gpu_check: $GPU; host $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $NPROC CPUs"
say "gpu_check: commit $COMMIT${DIRTY:+ (+ local changes)}, $(date -u '+%Y-%m-%d %H:%M UTC'), budget ${BUDGET} s"
say "gpu_check: nvcc $(nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p'), torch $(python3 -c 'import torch; print(torch.__version__)' 2>/dev/null || echo none)"

if [ -z "$BIN" ]; then
    BIN=build/gpu
    stage build 300 60 make -j"$NPROC" BUILD=$BIN CUDA=1 WERROR=1 \
        NVFLAGS="-O2 -std=c++17 -Iinclude -Xcompiler -Wall,-Werror -Werror all-warnings -gencode arch=compute_$CAP,code=sm_$CAP" \
        $BIN/sdc $BIN/run_tests $BIN/bench_cuda
fi
for b in sdc run_tests bench_cuda; do
    if [ ! -x "$BIN/$b" ]; then say "gpu_check: $BIN/$b is missing: cannot go on"; exit 1; fi
done
BIN=$(cd "$BIN" && pwd)
TINY=tests/fixtures/tiny/diffusers
MODEL=/tmp/sdc-gpu-check/sd15
export BIN OUTDIR TINY
mkdir -p /tmp/sdc-gpu-check

# The full-size random checkpoint (CPU work) is written while the
# conformance suite runs; both layouts load in sdc, the folder in diffusers.
( [ -f "$MODEL/unet/diffusion_pytorch_model.safetensors" ] ||
    "$BIN/sdc" make-random --layout diffusers --dtype f16 "$MODEL" ) >"$OUTDIR/make_random.log" 2>&1 &
MKPID=$!

# ------------------------------------------------------------ conformance
# Shards: the op table split by row name, and the non-op cases, at once.
conformance() {
    local pids=() i=0 rc=0
    local shards=("conv" "attn" "linear,gn,ln_" "-conv,-attn,-linear,-gn,-ln_")
    for f in "${shards[@]}"; do
        SDC_CUDA_OPS_CASE=$f CK_RUN_SUITE=cuda CK_RUN_CASE=ops SDC_BIN=$BIN/sdc \
            OPENBLAS_NUM_THREADS=4 "$BIN/run_tests" >"$OUTDIR/conf_ops_$i.part" 2>&1 &
        pids+=($!)
        i=$((i + 1))
    done
    CK_RUN_SUITE=cuda CK_EXCLUDE_CASE=ops SDC_BIN=$BIN/sdc OPENBLAS_NUM_THREADS=4 \
        "$BIN/run_tests" >"$OUTDIR/conf_rest.part" 2>&1 &
    pids+=($!)
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    for f in "$OUTDIR"/conf_ops_*.part "$OUTDIR"/conf_rest.part; do
        echo "--- ${f##*/}"
        cat "$f"
        rm -f "$f"
    done
    return $rc
}
export -f conformance
stage conformance 240 60 conformance

if python3 -c 'import torch, safetensors; assert torch.cuda.is_available()' 2>/dev/null; then
    stage rng_dump 60 20 python3 tests/gpu_rng_dump.py "$OUTDIR/rng_cuda.safetensors"
    if [ -f "$OUTDIR/rng_cuda.safetensors" ]; then
        stage rng_check 30 5 env SDC_RNG_CUDA_FIXTURE="$OUTDIR/rng_cuda.safetensors" \
            CK_RUN_SUITE=rng SDC_BIN="$BIN/sdc" "$BIN/run_tests"
    fi
else
    say "=== rng_dump: SKIPPED (no torch with CUDA and safetensors)"
    SUMMARY+=("| rng_dump | skipped (no torch) | |")
fi

# ------------------------------------------------------------ sanitizers
# The pipeline's defaults on CUDA: F16 text encoder and UNet (flash
# attention), the steps after the first replayed as a CUDA graph.
sanitize() {
    local tool=$1 extra=$2
    shift 2
    compute-sanitizer --tool "$tool" --error-exitcode 3 $extra "$BIN/sdc" generate --backend cuda \
        --model "$TINY" --prompt "a photo of a cat" --width 64 --height 64 --steps 3 \
        --sampler euler_a --seed 1 -q -o "/tmp/sdc-gpu-check/san-$tool.png" "$@"
}
export -f sanitize
if command -v compute-sanitizer >/dev/null; then
    stage memcheck_txt2img 60 30 sanitize memcheck "--leak-check full" --rng cuda --vae-precision f16
    stage racecheck_txt2img 90 30 sanitize racecheck ""
else
    say "=== sanitizers: SKIPPED (compute-sanitizer not found)"
    SUMMARY+=("| compute-sanitizer | not found | |")
fi

# ------------------------------------------------------------ benchmarks
stage bench_ops 90 30 "$BIN/bench_cuda" --no-check --reps 10 --json "$OUTDIR/bench_ops.json"
wait "$MKPID"
MKRC=$?
if ((MKRC != 0)) || [ ! -d "$MODEL/unet" ]; then
    say "=== make_random: FAILED (rc $MKRC)"
    cat "$OUTDIR/make_random.log" >>"$LOG"
    SUMMARY+=("| make_random | FAILED (rc $MKRC) | |")
    FAILED=1
else
    stage bench_models 90 30 "$BIN/bench_cuda" --no-ops --reps 5 --model "$MODEL" \
        --json "$OUTDIR/bench_models.json"
    if python3 -c 'import diffusers' 2>/dev/null; then
        stage peer_torch 150 40 env PYTHONUNBUFFERED=1 python3 bench/cuda_peer.py \
            --model "$MODEL" --reps 5 --image --batch 1,8 --json "$OUTDIR/peer.json"
    else
        say "=== peer_torch: SKIPPED (diffusers is not importable)"
        SUMMARY+=("| peer_torch | skipped (no diffusers) | |")
    fi
    if command -v compute-sanitizer >/dev/null; then
        stage memcheck_edge_ops 90 45 env CK_FORK=no CK_RUN_SUITE=cuda CK_RUN_CASE=ops \
            SDC_CUDA_OPS_CASE=_edge_ SDC_BIN="$BIN/sdc" \
            compute-sanitizer --tool memcheck --error-exitcode 3 "$BIN/run_tests"
    fi
    # Whole images last: the slowest stage, and the least needed.
    stage bench_images 150 40 "$BIN/bench_cuda" --no-ops --reps 1 --model "$MODEL" \
        --image --steps 50 --batch 1,8 --json "$OUTDIR/bench_images.json"
fi

# ------------------------------------------------------------ report
report() {
    echo
    echo "## GPU check: $(date -u '+%Y-%m-%d'), commit $COMMIT${DIRTY:+ (+ local changes)}"
    echo
    echo "Device: $GPU. Host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $NPROC CPUs."
    echo "Made by \`bench/gpu_check.sh\` in $(elapsed) s (budget $BUDGET s)."
    echo
    echo "| stage | result | time |"
    echo "|---|---|---|"
    printf '%s\n' "${SUMMARY[@]}"
    echo
    local conf=$OUTDIR/conformance.log
    if [ -f "$conf" ]; then
        echo "Conformance: $(grep -c '^cuda: .* max_abs' "$conf") op runs, $(grep -c 'FAIL$' "$conf") over tolerance;" \
            "Check: $(grep -oh 'Checks: [0-9]*, Failures: [0-9]*, Errors: [0-9]*' "$conf" |
                awk -F'[:,] *' '{c += $2; f += $4; e += $6; n++}
                    END {printf "%d checks, %d failures, %d errors (%d processes)", c, f, e, n}')."
        echo
        echo '```'
        grep -h 'vs cpu\|vs diffusers\|image .*vs cpu\|graph\|UNet calls' "$conf"
        echo '```'
    fi
    for f in rng_check bench_ops bench_models peer_torch bench_images; do
        [ -f "$OUTDIR/$f.log" ] || continue
        echo
        echo "$f:"
        echo '```'
        grep -v '^\s*$' "$OUTDIR/$f.log" | head -n 80
        echo '```'
    done
}
report >"$OUTDIR/results.md"
if ((APPEND)); then cat "$OUTDIR/results.md" >>bench/RESULTS.md; fi
say "gpu_check: done in $(elapsed) s; $( ((FAILED)) && echo 'SOME STAGES FAILED' || echo 'every stage that ran passed'); report: $OUTDIR/results.md"
exit $FAILED
