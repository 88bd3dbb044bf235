#!/usr/bin/env bash
# fuzz.sh — builds the libFuzzer targets (tests/fuzz/fuzz_*.c, clang-14,
# ASan+UBSan) into build/fuzz and runs each for FUZZ_SECONDS (default 60) s.
# Stops at the first crash (or leak, timeout, OOM), prints the crashing
# input's path and exits 1.
#
#   scripts/fuzz.sh                      every target (make fuzz runs this)
#   scripts/fuzz.sh fuzz_image ...       only these
#   FUZZ_SECONDS=20 scripts/fuzz.sh
#   FUZZ_KEEP_GOING=1 scripts/fuzz.sh    run every target even after a crash
#                                        (still exits 1 at the end)
#   FUZZ_SEED=1 scripts/fuzz.sh          libFuzzer's -seed: the same inputs
#                                        on every run (CI's gate); unset, a
#                                        fresh seed per run (for discovery)
#   scripts/fuzz.sh --fetch-cjson        only fetch cJSON's source
#
# New corpus entries go to build/fuzz/corpus/<target> (the committed seeds in
# tests/fuzz/corpus/<target> are only read); crashes to
# build/fuzz/crashes/<target>-crash-<sha1>. Reproduce one with
#   build/fuzz/<target> <file>
# cJSON: Debian ships libcjson only as a shared library, so its source package
# is fetched once into build/fuzz/cjson (apt-get source through a private
# deb-src list, no change to /etc/apt) and compiled in with the fuzz flags.
# When that fails (no network, no dpkg-source), the shared libcjson is linked
# instead and the run says so: coverage then stops at cJSON.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FB=${FUZZ_BUILD:-build/fuzz}
CJ=$FB/cjson

fetch_cjson() {
    [ -f "$CJ/cJSON.c" ] && return 0
    local tmp
    tmp=$(mktemp -d)
    mkdir -p "$tmp/lists/partial"
    printf '%s\n' 'deb-src http://deb.debian.org/debian bookworm main' \
        'deb-src http://deb.debian.org/debian-security bookworm-security main' >"$tmp/src.list"
    local apt=(apt-get -qq -o Dir::Etc::SourceList="$tmp/src.list" -o Dir::Etc::SourceParts=/dev/null
               -o Dir::State::Lists="$tmp/lists" -o APT::Sandbox::User="$(id -un)")
    local ver
    ver=$(dpkg-query -W -f='${Version}' libcjson1 2>/dev/null || true)
    if timeout 180 "${apt[@]}" update >/dev/null 2>&1 &&
       (cd "$tmp" && { timeout 120 "${apt[@]}" source --download-only "cjson${ver:+=$ver}" ||
                       timeout 120 "${apt[@]}" source --download-only cjson; } >/dev/null 2>&1) &&
       (cd "$tmp" && dpkg-source -x ./cjson_*.dsc src >/dev/null 2>&1) &&
       [ -f "$tmp/src/cJSON.c" ]; then
        mkdir -p "$CJ"
        cp "$tmp/src/cJSON.c" "$tmp/src/cJSON.h" "$tmp/src/LICENSE" "$CJ/"
        echo "fuzz: cJSON $(sed -n 's/^cjson (\(.*\)).*/\1/p;q' "$tmp/src/debian/changelog") compiled from Debian's source package"
    else
        echo "fuzz: WARNING: could not fetch cJSON's source (apt-get source cjson); linking the shared libcjson, coverage stops there" >&2
    fi
    rm -rf "$tmp"
}

if [ "${1:-}" = "--fetch-cjson" ]; then fetch_cjson; exit 0; fi

command -v clang-14 >/dev/null || { echo "fuzz: clang-14 not found (apt-get install clang-14)" >&2; exit 2; }
fetch_cjson
# FUZZ_NO_BUILD=1: run the binaries as they are (a long run beside edits).
[ "${FUZZ_NO_BUILD:-0}" = 1 ] || ${MAKE:-make} --no-print-directory FUZZ_BUILD="$FB" fuzz-build

targets=("$@")
if ((${#targets[@]} == 0)); then
    for f in tests/fuzz/fuzz_*.c; do t=${f##*/}; targets+=("${t%.c}"); done
fi

max_len() {
    case $1 in
        fuzz_checkpoint) echo 262144 ;;   # the zero-size SD 1.x seed is ~105 KB of header
        fuzz_image|fuzz_inflate|fuzz_safetensors) echo 65536 ;;
        *) echo 8192 ;;
    esac
}
dict() {
    case $1 in
        fuzz_safetensors|fuzz_checkpoint|fuzz_embeddings) echo tests/fuzz/dict/safetensors.dict ;;
        fuzz_image) echo tests/fuzz/dict/png.dict ;;
        fuzz_prompt|fuzz_tokenizer) echo tests/fuzz/dict/prompt.dict ;;
        fuzz_png_text) echo tests/fuzz/dict/a1111.dict ;;
        fuzz_inflate) echo tests/fuzz/dict/gzip.dict ;;
        fuzz_manifest) echo tests/fuzz/dict/manifest.dict ;;
    esac
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$FB/crashes" "$FB/logs"
failed=()
for t in "${targets[@]}"; do
    bin=$FB/$t
    [ -x "$bin" ] || { echo "fuzz: no target $t" >&2; exit 2; }
    mkdir -p "$FB/corpus/$t"
    d=$(dict "$t")
    log=$FB/logs/$t.log
    echo "=== $t (${FUZZ_SECONDS} s, max_len $(max_len "$t"))"
    before=$(ls "$FB/crashes" | wc -l)
    rc=0
    "$bin" -max_total_time="$FUZZ_SECONDS" -max_len="$(max_len "$t")" -timeout=10 \
        -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1 ${FUZZ_SEED:+-seed="$FUZZ_SEED"} \
        ${d:+-dict="$d"} -artifact_prefix="$FB/crashes/$t-" \
        "$FB/corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
    grep -E "DONE +cov:" "$log" | tail -1 || true
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb):' "$log" | tr '\n' ' '
    echo
    if ((rc != 0)); then
        art=$(ls -t "$FB/crashes" 2>/dev/null | head -1)
        grep -E 'ERROR|runtime error|SUMMARY' "$log" | head -5 >&2 || true
        echo "fuzz: $t FAILED (exit $rc); log $log" >&2
        if [ "$(ls "$FB/crashes" | wc -l)" -gt "$before" ] && [ -n "$art" ]; then
            echo "fuzz: crashing input: $FB/crashes/$art (reproduce: $bin $FB/crashes/$art)" >&2
        fi
        failed+=("$t")
        [ "${FUZZ_KEEP_GOING:-0}" = 1 ] || exit 1
    fi
done
if ((${#failed[@]})); then
    echo "fuzz: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: ${#targets[@]} targets, no crash"
