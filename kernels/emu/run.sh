#!/usr/bin/env bash
# run.sh BUILD [run_tests arguments via env] — builds the test runner with the
# CUDA kernels emulated on the host and runs the cuda suite: the op
# conformance of every kernel variant against the double reference, the
# backend checks, models and txt2img, without a GPU.
#
#   make BUILD=build/cuda-san SAN=1 build/cuda-san/run_tests   # C objects, CUDA on
#   kernels/emu/run.sh build/cuda-san                          # ASan+UBSan too
#   SDC_CUDA_OPS_CASE=_edge_ CK_RUN_CASE=ops kernels/emu/run.sh build/cuda-san
#
# BUILD must be a CUDA-enabled build (its objects compiled with -DSDC_WITH_CUDA);
# a SAN=1 build gets the emulated kernels under ASan+UBSan as well. Needs g++
# and the CUDA headers (no GPU, no libcudart). EMU_REVERSE=1 runs each block's
# threads in reverse order; EMU_SMEM_OPTIN=BYTES sets the shared memory limit
# (default 99 KB, as sm_86/89).
set -euo pipefail
build=${1:?usage: kernels/emu/run.sh BUILD}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
cuda_home=${CUDA_HOME:-$(dirname "$(dirname "$(command -v nvcc)")")}
out=$build/emu
mkdir -p "$out/obj"
python3 "$here/gen.py" kernels "$out/gen"
flags="-std=c++17 -g -Wall -Wno-unknown-pragmas -Wno-unused-function -I$here/shim -I$here -I$cuda_home/include -Iinclude -Ikernels"
san=""
if nm "$build/src/core/tensor.o" 2>/dev/null | grep __asan >/dev/null; then
    san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
    flags="$flags -O1 $san"
else
    flags="$flags -O2"
fi
for f in "$here/emu.cpp" "$out"/gen/*.cpp; do
    o="$out/obj/$(basename "$f" .cpp).o"
    if [ ! -e "$o" ] || [ "$f" -nt "$o" ] || [ "$here/emu.h" -nt "$o" ] || [ "$here/shim/mma.h" -nt "$o" ]; then
        echo "g++ $f"
        g++ $flags -c "$f" -o "$o"
    fi
done
objs=$(find "$build/src" -name '*.o' ! -path '*/cli/*' | sort)
g++ $san -pthread "$build"/tests/*.o $objs "$out"/obj/*.o -o "$out/run_tests_emu" \
    -lcheck -lsubunit -lrt -lopenblas -lcjson -lm
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
CK_RUN_SUITE=cuda SDC_BIN=${SDC_BIN:-$build/sdc} "$out/run_tests_emu"
