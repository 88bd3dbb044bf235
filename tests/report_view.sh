#!/usr/bin/env bash
# report_view.sh — views the HTML page of `sdc report` in headless Chromium
# (Debian's chromium package) and checks the screenshot: the report suite's
# report_html_in_chromium test with chromium required (it makes a small
# report from the tiny fixtures, screenshots it at 1000x1600, and checks the
# image is not blank and shows the charts' colours).
#
#   tests/report_view.sh [BUILD]     (default build; e.g. build/j)
#   tests/report_view.sh --install   apt-get install chromium first (root or sudo)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--install" ]; then
    shift
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    command -v chromium >/dev/null || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
BUILD=${1:-build}
command -v chromium >/dev/null || { echo "report_view: chromium is not installed (apt-get install chromium, or --install)" >&2; exit 1; }
[ -x "$BUILD/run_tests" ] && [ -x "$BUILD/sdc" ] || { echo "report_view: build $BUILD/sdc and $BUILD/run_tests first (make BUILD=$BUILD test)" >&2; exit 1; }
SDC_REQUIRE_CHROMIUM=1 CK_RUN_SUITE=report CK_RUN_CASE=report SDC_BIN="$BUILD/sdc" "$BUILD/run_tests"
