#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (in build-fuzz/) and runs each for SECONDS
# (default 30), starting from its seed corpus. Exits non-zero on any crash, leak or timeout.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds="${1:-30}"
venv=$(bash "$root/scripts/bootstrap.sh" | tail -n 1)
build="$root/build-fuzz"
export CCACHE_DIR="${CCACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ccache}"
# A build tree (objects plus the one shared precompiled LibTorch header) is under 2 GB, so the
# cache also holds the debug, sanitizer and fuzzer trees; it never grows past this.
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-6G}"
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DAUTOTRAIN_PYTHON="$venv/bin/python" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAUTOTRAIN_BUILD_FUZZERS=ON -DAUTOTRAIN_WITH_CUDA=OFF \
  -DAUTOTRAIN_BUILD_TESTS=OFF -DAUTOTRAIN_BUILD_BENCH=OFF >/dev/null
targets=$(cut -d'|' -f1 "$build/fuzzers.txt" | grep -v '^$' | tr '\n' ' ')
cmake --build "$build" --target $targets
status=0
while IFS='|' read -r target corpus; do
  [ -n "$target" ] || continue
  work="$build/fuzz-corpus/$target"
  mkdir -p "$work"
  echo "fuzz: $target for ${seconds}s (seeds: ${corpus:-none})"
  if ! "$build/tests/fuzz/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
       -print_final_stats=1 "$work" ${corpus:+"$corpus"} >"$build/$target.log" 2>&1; then
    echo "fuzz: $target FAILED; see $build/$target.log" >&2
    tail -n 40 "$build/$target.log" >&2
    status=1
  else
    grep -E '^stat::number_of_executed_units|^Done' "$build/$target.log" | tail -n 1
  fi
done < "$build/fuzzers.txt"
exit $status
