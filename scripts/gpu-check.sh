#!/usr/bin/env bash
# The GPU check, run on a GPU host (H100/H200) that has LibTorch (python3's torch), nvcc, CMake
# and ninja but none of our Debian packages. Two modes:
#   full  (when .device/debs holds the carried Debian packages): unpacks them into a private
#         sysroot, builds the program and every test labelled `gpu` (NF4 kernels, the Falcon
#         model on CUDA, a QLoRA training run on CUDA through the CUDA backend plugin) and runs them.
#   quant (otherwise): only the LibTorch modules the NF4 GPU test needs, GoogleTest from a
#         carried source folder (.device/googletest, else /usr/src/googletest).
#   scripts/gpu-check.sh [--quant]        on the GPU host; prints the benchmarks and a verdict
#   scripts/gpu-check.sh --prepare        here, on a Debian machine with network: fills .device/
#                                         (Debian packages ~24 MB, GoogleTest sources); then
#                                         run it there with carry [".device"]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
device_dir="$root/.device"
# What the program and its tests link, as Debian bookworm packages (runtime + headers).
debs=(libcli11-dev nlohmann-json3-dev libfmt-dev libfmt9 libspdlog-dev libspdlog1.10
      libsentencepiece-dev libsentencepiece0 libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0
      libpcre2-posix3 libicu-dev libicu72 libgtest-dev libgmock-dev pkgconf pkgconf-bin libpkgconf3)

mode=auto
case "${1:-}" in
  --prepare) mode=prepare ;;
  --quant) mode=quant ;;
  "") ;;
  *) echo "gpu-check: unknown option '$1' (see the header of this script)" >&2; exit 2 ;;
esac

if [ "$mode" = prepare ]; then
  mkdir -p "$device_dir/debs"
  [ -f "$device_dir/googletest/CMakeLists.txt" ] || cp -r /usr/src/googletest "$device_dir/"
  (cd "$device_dir/debs" && rm -f ./*.deb && apt-get download "${debs[@]}" >/dev/null)
  echo "gpu-check: $(ls "$device_dir/debs" | wc -l) packages, $(du -sh "$device_dir/debs" | cut -f1) in .device/debs; carry [\".device\"]"
  exit 0
fi
if [ "$mode" = auto ]; then
  if ls "$device_dir"/debs/*.deb >/dev/null 2>&1; then mode=full; else mode=quant; fi
fi

python="${AUTOTRAIN_PYTHON:-python3}"
"$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)'
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
arch="${TORCH_CUDA_ARCH_LIST:-9.0}"
cmake_args=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DAUTOTRAIN_PYTHON="$(command -v "$python")"
            -DAUTOTRAIN_BUILD_BENCH=OFF -DCMAKE_CUDA_ARCHITECTURES="${arch//./}")
if [ "$mode" = full ]; then
  # A private sysroot: the packages' CMake configs and .pc files are relative to it.
  sysroot=/tmp/autotrain-sysroot
  rm -rf "$sysroot"
  for deb in "$device_dir"/debs/*.deb; do dpkg -x "$deb" "$sysroot"; done
  libdir="$sysroot/usr/lib/x86_64-linux-gnu"
  export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export PKG_CONFIG_LIBDIR="$libdir/pkgconfig:$sysroot/usr/share/pkgconfig"
  export PKG_CONFIG_SYSROOT_DIR="$sysroot"
  # --disable-new-dtags: an RPATH (not RUNPATH) also serves the libraries' own dependencies
  # (libicuuc needs libicudata), whatever environment a test gives the programs it starts.
  cmake_args+=(-DAUTOTRAIN_GPU_CHECK=OFF -DCMAKE_PREFIX_PATH="$sysroot/usr"
               -DPKG_CONFIG_EXECUTABLE="$sysroot/usr/bin/pkgconf"
               -DCMAKE_EXE_LINKER_FLAGS=-Wl,--disable-new-dtags -DCMAKE_SHARED_LINKER_FLAGS=-Wl,--disable-new-dtags)
  targets=(autotrain autotrain_cuda)
else
  gtest=""
  for candidate in "$device_dir/googletest" /usr/src/googletest; do
    if [ -f "$candidate/CMakeLists.txt" ]; then gtest="$candidate"; break; fi
  done
  [ -n "$gtest" ] || { echo "gpu-check: no GoogleTest sources (run scripts/gpu-check.sh --prepare here, carry .device)" >&2; exit 2; }
  cmake_args+=(-DAUTOTRAIN_GPU_CHECK=ON -DAUTOTRAIN_GTEST_SOURCE_DIR="$gtest")
  targets=(autotrain_cuda)
fi
build="$root/build-gpu-$mode"  # one folder per mode: their CMake caches differ
echo "gpu-check: $mode build in $build"
mkdir -p "$build"
TORCH_CUDA_ARCH_LIST="$arch" cmake -S "$root" -B "$build" "${cmake_args[@]}" >"$build/configure.log" 2>&1 \
  || { tail -n 40 "$build/configure.log"; exit 1; }
cd "$build"
# The program (full mode) and every executable of a `gpu` test: nothing else is needed.
gpu_tests=$(ctest -N -L gpu | sed -n 's/^ *Test *#[0-9]*: //p')
cmake --build . -j "$(nproc)" --target "${targets[@]}" $gpu_tests
set +e
ctest -L gpu --no-tests=error --output-on-failure -V >"$build/ctest-gpu.log" 2>&1
status=$?
set -e
grep -E '\[bench\]|\[  PASSED|\[  FAILED|Failure|Expected|Which is|tests passed|tests failed|Skipped|FAILED:|NVIDIA driver' "$build/ctest-gpu.log" | head -n 60 || true
[ -n "${OUT:-}" ] && cp "$build/ctest-gpu.log" "$OUT/" || true
if [ $status -eq 0 ]; then echo "gpu-check: all GPU tests passed"; else echo "gpu-check: GPU tests FAILED"; fi
exit $status
