#!/usr/bin/env bash
# Sets up what is missing (scripts/bootstrap.sh), configures, builds and runs the tests.
#   scripts/test.sh                 everything, in build/
#   scripts/test.sh --sanitize      debug build with AddressSanitizer + UBSan in build-asan/,
#                                   running the unit tests that do not load LibTorch
#   scripts/test.sh -- -L e2e       extra arguments after -- go to ctest
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

sanitize=0
ctest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize) sanitize=1 ;;
    --) shift; ctest_args=("$@"); break ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done

venv=$(bash "$root/scripts/bootstrap.sh" | tail -n 1)
jobs=$(nproc 2>/dev/null || echo 2)
export CCACHE_DIR="${CCACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ccache}"
# A build tree (objects plus the one shared precompiled LibTorch header) is under 2 GB, so the
# cache also holds the debug, sanitizer and fuzzer trees; it never grows past this.
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-6G}"

if [ "$sanitize" = 1 ]; then
  build="${AUTOTRAIN_BUILD_DIR:-$root/build-asan}"
  cmake -S "$root" -B "$build" -G Ninja -DAUTOTRAIN_PYTHON="$venv/bin/python" \
        -DCMAKE_BUILD_TYPE=Debug -DAUTOTRAIN_SANITIZE=ON -DAUTOTRAIN_BUILD_BENCH=OFF
  cmake --build "$build" -j "$jobs" --target sanitize_tests
  cd "$build"
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  ctest --output-on-failure -j "$jobs" -L sanitize "${ctest_args[@]}"
else
  build="${AUTOTRAIN_BUILD_DIR:-$root/build}"
  cmake -S "$root" -B "$build" -G Ninja -DAUTOTRAIN_PYTHON="$venv/bin/python"
  cmake --build "$build" -j "$jobs"
  cd "$build"
  ctest --output-on-failure -j "$jobs" "${ctest_args[@]}"
fi
