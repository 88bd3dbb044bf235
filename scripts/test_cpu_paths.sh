#!/usr/bin/env bash
# The op suite (every op row against its reference, the batch and thread
# invariance cases, and the avx512-vs-avx2 bits check) under each CPU
# kernel path this machine can run (SDC_CPU_PATH, src/cpu/cpu_isa.h). The
# avx512 run is skipped, saying so, where cpuid lacks AVX-512 F/BW/VL/DQ.
#   scripts/test_cpu_paths.sh BUILD_DIR      (make test-cpu-paths)
set -u
build=${1:-build}
fail=0
for path in avx2 avx512; do
    json=$(SDC_CPU_PATH=$path "$build/sdc" info --cpu --json 2>/dev/null)
    if ! grep -q "\"cpu_path\": \"$path\"" <<<"$json"; then
        echo "test-cpu-paths: $path: not available on this processor: SKIPPED"
        continue
    fi
    echo "test-cpu-paths: $path: the ops suite (SDC_CPU_PATH=$path)"
    if SDC_CPU_PATH=$path SDC_BIN="$build/sdc" CK_RUN_SUITE=ops CK_DEFAULT_TIMEOUT=1200 \
        "$build/run_tests"; then
        echo "test-cpu-paths: $path: passed"
    else
        echo "test-cpu-paths: $path: FAILED"
        fail=1
    fi
done
exit $fail
