#!/usr/bin/env bash
# The GPU check, run on a GPU host (H100/H200) that has LibTorch (python3's torch), nvcc, CMake
# and ninja but not our Debian packages: builds only the LibTorch modules and the tests labelled
# `gpu` (GoogleTest from a carried source folder), runs them, and prints their benchmarks.
#   scripts/gpu-check.sh [GTEST_SOURCE_DIR]     (default: .device/googletest, then /usr/src/googletest)
# To prepare the carried folder on a machine with Debian's googletest package:
#   mkdir -p .device && cp -r /usr/src/googletest .device/
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
gtest="${1:-}"
for candidate in "$gtest" "$root/.device/googletest" /usr/src/googletest; do
  if [ -n "$candidate" ] && [ -f "$candidate/CMakeLists.txt" ]; then gtest="$candidate"; break; fi
done
[ -f "$gtest/CMakeLists.txt" ] || { echo "gpu-check: no GoogleTest sources (see the header of this script)" >&2; exit 2; }
python="${AUTOTRAIN_PYTHON:-python3}"
"$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)'
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
build="$root/build-gpu"
arch="${TORCH_CUDA_ARCH_LIST:-9.0}"
TORCH_CUDA_ARCH_LIST="$arch" cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DAUTOTRAIN_GPU_CHECK=ON -DAUTOTRAIN_GTEST_SOURCE_DIR="$gtest" -DAUTOTRAIN_PYTHON="$(command -v "$python")" \
  -DAUTOTRAIN_BUILD_BENCH=OFF -DCMAKE_CUDA_ARCHITECTURES="${arch//./}" >"$build.configure.log" 2>&1 \
  || { tail -n 40 "$build.configure.log"; exit 1; }
cmake --build "$build" -j "$(nproc)"
cd "$build"
set +e
ctest -L gpu --output-on-failure -V >"$build/ctest-gpu.log" 2>&1
status=$?
set -e
grep -E '\[bench\]|\[  PASSED|\[  FAILED|Failure|Expected|Which is|tests passed|tests failed|Skipped|no CUDA' "$build/ctest-gpu.log" | head -n 60
[ -n "${OUT:-}" ] && cp "$build/ctest-gpu.log" "$OUT/" || true
if [ $status -eq 0 ]; then echo "gpu-check: all GPU tests passed"; else echo "gpu-check: GPU tests FAILED"; fi
exit $status
