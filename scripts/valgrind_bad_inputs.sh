#!/usr/bin/env bash
# valgrind_bad_inputs.sh — the bad-input suite (tests/test_bad_inputs.c) on a
# non-sanitized build, under valgrind: the test runner itself with
# --leak-check=full --error-exitcode=1, and every sdc process it starts too
# (through $SDC_TEST_WRAPPER, which tests/cli_run.c puts before the binary).
# The CLI processes use --error-exitcode=99 rather than 1: their expected
# exit status on bad input is already 1, so a memory error or leak must show
# as a status the case does not expect (the case then fails, naming itself).
# Leaks of every kind count, "possibly lost" included; scripts/valgrind.supp
# holds the one known false positive (the worker pool's threads alive at
# exit). Each process's report goes to $BUILD/logs/<pid>.log; the script lists
# any with errors and exits 1 when the suite fails or a report is not clean.
#
# The build is CPU-only (CUDA=0, into build/valgrind by default): linking
# cuBLAS makes every process dlopen at load time, and valgrind 3.19 reports
# glibc 2.36's ld.so reading past a string there (is_dst) in each of them.
#
#   scripts/valgrind_bad_inputs.sh            build/valgrind
#   BUILD=build/vg scripts/valgrind_bad_inputs.sh
#   make valgrind                             the same, from make
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build/valgrind}
command -v valgrind >/dev/null || {
    echo "valgrind_bad_inputs: valgrind not found (apt-get install valgrind)" >&2
    exit 2
}
${MAKE:-make} --no-print-directory BUILD="$BUILD" SAN=0 CUDA=0 "$BUILD/sdc" "$BUILD/run_tests"

logs=$BUILD/logs
rm -rf "$logs"
mkdir -p "$logs"
vg=(valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect,possible -q
    --suppressions=scripts/valgrind.supp)
start=$(date +%s)
rc=0
SDC_TEST_WRAPPER="${vg[*]} --error-exitcode=99 --log-file=$logs/sdc.%p.log" \
SDC_BIN=$BUILD/sdc CK_RUN_SUITE=bad_inputs CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-3} \
    "${vg[@]}" --error-exitcode=1 --log-file="$logs/run_tests.%p.log" "$BUILD/run_tests" || rc=$?

n=$(find "$logs" -name '*.log' | wc -l)
bad=$(find "$logs" -name '*.log' -size +0 | sort)
if [ -n "$bad" ]; then
    echo "valgrind_bad_inputs: reports with errors:" >&2
    for f in $bad; do
        echo "--- $f" >&2
        head -40 "$f" >&2
    done
    rc=1
fi
echo "valgrind_bad_inputs: $n processes under valgrind, $(echo -n "$bad" | grep -c . || true) with errors," \
     "suite exit $rc, $(($(date +%s) - start)) s"
exit $rc
