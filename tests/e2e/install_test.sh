#!/usr/bin/env bash
# `cmake --install` gives a working tree: bin/autotrain runs from the prefix and finds its CUDA
# backend in lib/autotrain/ (setup loads it to report LibTorch's CUDA build).
#   install_test.sh BUILD_DIR
set -euo pipefail
build="$1"
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
[ -x "$prefix/bin/autotrain" ] || { echo "FAIL: no bin/autotrain under the prefix"; exit 1; }
[ -f "$prefix/lib/autotrain/libautotrain_cuda.so" ] || { echo "FAIL: no lib/autotrain/libautotrain_cuda.so"; exit 1; }
# Run from an unrelated folder, with nothing pointing at the build tree.
cd "$prefix"
out=$(env -u AUTOTRAIN_CUDA_BACKEND "$prefix/bin/autotrain" setup --json)
case "$out" in
  *"loaded from $prefix/lib/autotrain/libautotrain_cuda.so"*) echo "ok: installed binary loads its CUDA backend" ;;
  *) echo "FAIL: the installed binary did not load lib/autotrain/libautotrain_cuda.so:"; echo "$out"; exit 1 ;;
esac
"$prefix/bin/autotrain" --version
