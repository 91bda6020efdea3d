#!/usr/bin/env bash
# The GPU check, run on a GPU host (H100/H200) that has LibTorch (python3's torch), nvcc, CMake
# and ninja but none of our Debian packages. Three modes, the first that its files allow:
#   prebuilt (when .device/prebuilt/manifest exists): runs the `gpu` tests built here and packed
#         by --pack; the device's minutes go to the tests instead of a LibTorch build.
#   full  (when .device/debs holds the carried Debian packages): unpacks them into a private
#         sysroot, builds the program and every test labelled `gpu` (NF4 kernels, the Falcon
#         model on CUDA, a QLoRA training run on CUDA through the CUDA backend plugin) and runs them.
#   quant (otherwise): only the LibTorch modules the NF4 GPU test needs, GoogleTest from a
#         carried source folder (.device/googletest, else /usr/src/googletest).
#   scripts/gpu-check.sh [--quant|--full] on the GPU host; prints the benchmarks and a verdict
#                                         (--full: build there even when a pack is carried too)
#   scripts/gpu-check.sh --prepare        here, on a Debian machine with network: fills .device/
#                                         (Debian packages ~24 MB, GoogleTest sources); then
#                                         run it there with carry [".device"]
#   scripts/gpu-check.sh --pack [BUILD]   here, once BUILD (default build/, configured against the
#                                         bootstrap's LibTorch 2.11+cu130, the GPU hosts' own) has
#                                         the program and the `gpu` tests: builds them, copies them
#                                         stripped, with the shared libraries they need beyond glibc
#                                         and LibTorch (~50 MB), into .device/prebuilt/; then run it
#                                         there with carry [".device/prebuilt"]
#   scripts/gpu-check.sh --bench          on the GPU host, with what --pack made: instead of the
#                                         tests, bench/train/gpu_falcon7b.py (QLoRA on a random
#                                         Falcon-7B: ours vs transformers + peft + bitsandbytes;
#                                         AUTOTRAIN_GPU_BENCH_ARGS adds its options)
# Logs (configure, build, ctest) are written to $OUT (else /tmp/autotrain-gpu-check-logs) as they
# grow. A preflight stops (exit 3) before building when torch is not 2.11, sees no GPU, or was built
# for another CUDA major than nvcc's; AUTOTRAIN_GPU_CHECK_NO_PREFLIGHT=1 goes on anyway (to try the
# script on a machine without a GPU, where the tests then skip).
set -euo pipefail
seconds_allowed="${AUTOTRAIN_GPU_CHECK_SECONDS:-540}"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
device_dir="$root/.device"
# What the program and its tests link, as Debian bookworm packages (runtime + headers).
debs=(libcli11-dev nlohmann-json3-dev libfmt-dev libfmt9 libspdlog-dev libspdlog1.10
      libsentencepiece-dev libsentencepiece0 libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0
      libpcre2-posix3 libicu-dev libicu72 libgtest-dev libgmock-dev pkgconf pkgconf-bin libpkgconf3
      libsnappy-dev libsnappy1v5 libzstd-dev libzstd1 zlib1g-dev zlib1g liblz4-dev liblz4-1
      libbrotli-dev libbrotli1 libbz2-dev libbz2-1.0 liblzma-dev liblzma5)

mode=auto
case "${1:-}" in
  --prepare) mode=prepare ;;
  --pack) mode=pack ;;
  --bench) mode=bench ;;
  --full) mode=full ;;
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
if [ "$mode" = pack ]; then
  build="${2:-$root/build}"
  [ -f "$build/CMakeCache.txt" ] || { echo "gpu-check: $build is not a configured build folder (scripts/test.sh makes build/)" >&2; exit 2; }
  grep -q '^CMAKE_CUDA_COMPILER:[A-Z]*=/' "$build/CMakeCache.txt" \
    || { echo "gpu-check: $build was configured without CUDA (no nvcc found then): nothing to pack" >&2; exit 2; }
  gpu_tests=$(cd "$build" && ctest -N -L gpu | sed -n 's/^ *Test *#[0-9]*: //p')
  [ -n "$gpu_tests" ] || { echo "gpu-check: $build has no test labelled gpu (configured with AUTOTRAIN_BUILD_TESTS=OFF?)" >&2; exit 2; }
  reference_tests=$(cd "$build" && ctest -N -L gpu -L reference | sed -n 's/^ *Test *#[0-9]*: //p')
  # shellcheck disable=SC2086  # test names are single words
  cmake --build "$build" --target autotrain autotrain_cuda $gpu_tests
  pack="$device_dir/prebuilt"
  rm -rf "$pack"
  mkdir -p "$pack/bin" "$pack/tests" "$pack/lib"
  strip -o "$pack/bin/autotrain" "$build/autotrain"
  strip -o "$pack/bin/libautotrain_cuda.so" "$build/libautotrain_cuda.so"
  for t in $gpu_tests; do strip -o "$pack/tests/$t" "$build/tests/$t"; done
  # The libraries of the Debian packages (spdlog, ICU, sentencepiece...): everything ldd resolves
  # outside LibTorch's and CUDA's folders, except glibc and the compiler's runtime, which the
  # host has in newer versions.
  ldd "$pack"/bin/* "$pack"/tests/* | awk '/=> \// {print $3}' | sort -u |
    grep -v -E '/(torch|nvidia|cuda[^/]*)/|/lib(c|m|dl|rt|pthread|util|resolv|stdc\+\+|gcc_s)\.so' |
    while read -r lib; do cp -L "$lib" "$pack/lib/"; done
  # The Falcon-7B benchmark's inputs (--bench): the real config and tokenizer (weights are made
  # there, random), and bitsandbytes for the reference stack, which the GPU hosts lack (the pinned
  # version, with its CPU and CUDA 13.0 libraries alone: the others are most of its 43 MB).
  shared="${AUTOTRAIN_SHARED_DIR:-$root/../shared}/data/falcon-7b"
  if [ -f "$shared/config.json" ]; then
    mkdir -p "$pack/falcon-7b" "$pack/site"
    cp "$shared"/{config.json,tokenizer.json,tokenizer_config.json} "$pack/falcon-7b/"
    bnb=$(grep -E '^bitsandbytes==' "$root/scripts/requirements.lock")
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 -d "$pack/wheels" "$bnb"
    python3 -m zipfile -e "$pack"/wheels/bitsandbytes-*.whl "$pack/site"
    rm -rf "$pack/wheels"
    find "$pack/site/bitsandbytes" -name 'libbitsandbytes_*.so' ! -name 'libbitsandbytes_cuda130.so' ! -name 'libbitsandbytes_cpu.so' -delete
  fi
  # What the tests were compiled with: their source folder (AUTOTRAIN_TEST_SOURCE_DIR) and names.
  { echo "source_dir=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt")"
    echo "commit=$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)"
    echo "cuda=$("$(sed -n 's/^CMAKE_CUDA_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")" --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p')"
    echo "reference_tests=$(echo $reference_tests)"
    # The NF4 kernels first, then the training run: the order the issues need their answers in.
    echo "tests=$(printf '%s\n' $gpu_tests | sort -k1,1 | awk '/^nf4/ {print; next} {rest = rest " " $0} END {print rest}' | xargs)"
  } >"$pack/manifest"
  echo "gpu-check: packed $(du -sh "$pack" | cut -f1) into .device/prebuilt ($(echo $gpu_tests)); carry [\".device/prebuilt\"]"
  exit 0
fi
if [ "$mode" = auto ]; then
  if [ -f "$device_dir/prebuilt/manifest" ]; then mode=prebuilt
  elif ls "$device_dir"/debs/*.deb >/dev/null 2>&1; then mode=full; else mode=quant; fi
fi

python="${AUTOTRAIN_PYTHON:-python3}"
# Logs go to $OUT as they are written, so a run stopped at its time limit still returns them.
logs="${OUT:-/tmp/autotrain-gpu-check-logs}"
mkdir -p "$logs"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
# Preflight: a device run is short, so stop before the build on anything that would fail later.
if [ "$mode" = prebuilt ] || [ "$mode" = bench ]; then
  # Nothing is compiled here: the pack's CUDA is what torch's must match.
  [ -f "$device_dir/prebuilt/manifest" ] || { echo "gpu-check: no .device/prebuilt/manifest: run scripts/gpu-check.sh --pack here first" >&2; exit 2; }
  echo "gpu-check: running the pack of $(sed -n 's/^commit=//p' "$device_dir/prebuilt/manifest") (--full builds this tree instead)"
  cuda_major=$(sed -n 's/^cuda=\([0-9]*\).*/\1/p' "$device_dir/prebuilt/manifest")
  cuda_from="the pack's nvcc"
else
  export CUDACXX="${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
  [ -x "$CUDACXX" ] || { echo "gpu-check: no nvcc (looked on PATH and at /usr/local/cuda/bin); set CUDACXX" >&2; exit 3; }
  cuda_major=$("$CUDACXX" --version | sed -n 's/.*release \([0-9]*\)\..*/\1/p')
  cuda_from="nvcc"
fi
"$python" - "$cuda_major" "${AUTOTRAIN_GPU_CHECK_NO_PREFLIGHT:-0}" "$cuda_from" <<'PY' || exit 3
import sys
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, sys.argv[3], "major", sys.argv[1],
      "device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
try:  # the reference tests' oracle: a failure there may be another version, not our CUDA code
    import transformers
    print("transformers", transformers.__version__, "(scripts/requirements.lock pins the tested one)")
except ImportError:
    pass
problems = []
if not torch.__version__.startswith("2.11."):
    problems.append(f"torch {torch.__version__}, the project is built and tested against 2.11")
if not torch.cuda.is_available():
    problems.append("torch sees no CUDA device (driver too old for its CUDA build, or no GPU visible)")
if (torch.version.cuda or "").split(".")[0] != sys.argv[1]:
    problems.append(f"torch's CUDA {torch.version.cuda} and {sys.argv[3]}'s major version {sys.argv[1]} differ")
for p in problems:
    print("gpu-check: preflight:", p, file=sys.stderr)
if problems and sys.argv[2] == "1":
    print("gpu-check: preflight problems ignored (AUTOTRAIN_GPU_CHECK_NO_PREFLIGHT=1: a dry run of the script)")
    problems = []
sys.exit(1 if problems else 0)
PY
# The `gpu reference` tests run Python oracles (transformers, safetensors); without them they are left out.
ctest_filter=()
if ! "$python" -c 'import transformers, safetensors' 2>/dev/null; then
  echo "gpu-check: transformers/safetensors missing in $python: leaving out the tests labelled reference"
  ctest_filter=(-LE reference)
fi
if [ "$mode" = prebuilt ] || [ "$mode" = bench ]; then
  pack="$device_dir/prebuilt"
  source_dir=$(sed -n 's/^source_dir=//p' "$pack/manifest")
  read -r -a tests <<<"$(sed -n 's/^tests=//p' "$pack/manifest")"
  read -r -a reference_tests <<<"$(sed -n 's/^reference_tests=//p' "$pack/manifest")"
  [ ${#tests[@]} -gt 0 ] || [ "$mode" = bench ] || { echo "gpu-check: the pack lists no test (run --pack again)" >&2; exit 2; }
  # The tests find their scripts and configs under the source folder they were compiled in.
  if [ "$(readlink -f "$source_dir")" != "$(readlink -f "$root")" ]; then
    if [ -e "$source_dir" ]; then
      echo "gpu-check: the tests were built in $source_dir, which is another folder here; run --pack in this checkout" >&2
      exit 2
    fi
    mkdir -p "$(dirname "$source_dir")"
    ln -s "$root" "$source_dir"
  fi
  # LibTorch and its CUDA libraries are the host's python3's (the same 2.11+cu130 as the build's).
  site=$("$python" -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))')
  libs="$pack/lib:$site/torch/lib"
  for d in "$site"/nvidia/*/lib; do libs="$libs:$d"; done
  libs="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  missing=$(LD_LIBRARY_PATH="$libs" ldd "$pack"/bin/* "$pack"/tests/* | grep 'not found' | sort -u || true)
  [ -z "$missing" ] || { echo "gpu-check: the packed programs miss libraries here: $missing" >&2; exit 2; }
  export AUTOTRAIN_CUDA_BACKEND="$pack/bin/libautotrain_cuda.so" HF_HUB_OFFLINE=1
  if [ "$mode" = bench ]; then
    # The packed libraries (older zlib, xz...) are for our programs, not for the host's python3:
    # the benchmark calls the program through a wrapper that sets the library path.
    wrapper=/tmp/autotrain-gpu-check-bin
    printf '#!/bin/sh\nLD_LIBRARY_PATH="%s" exec "%s" "$@"\n' "$libs" "$pack/bin/autotrain" >"$wrapper"
    chmod +x "$wrapper"
    set +e
    PYTHONPATH="$pack/site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 \
      timeout -k 10 $((seconds_allowed - SECONDS > 40 ? seconds_allowed - SECONDS - 10 : 30)) \
      "$python" "$root/bench/train/gpu_falcon7b.py" \
      --bin "$wrapper" --model-files "$pack/falcon-7b" --work /tmp/autotrain-bench-7b ${AUTOTRAIN_GPU_BENCH_ARGS:-} 2>&1 |
      tee "$logs/bench-7b.log"
    status=${PIPESTATUS[0]}
    echo "gpu-check: benchmark exit $status after ${SECONDS} s"
    exit "$status"
  fi
  export LD_LIBRARY_PATH="$libs"
  export AUTOTRAIN_BIN="$pack/bin/autotrain" AUTOTRAIN_PYTHON="$(command -v "$python")" \
         AUTOTRAIN_SOURCE_DIR="$source_dir" AUTOTRAIN_SHARED_DIR="$source_dir/../shared"
  : >"$logs/ctest-gpu.log"
  overall=0
  for t in "${tests[@]}"; do
    # As ctest's -LE reference above: without the oracles' packages those tests cannot run.
    if [ ${#ctest_filter[@]} -gt 0 ] && printf '%s\n' "${reference_tests[@]}" | grep -qx "$t"; then
      echo "gpu-check: $t left out (labelled reference)"
      continue
    fi
    seconds_left=$((seconds_allowed - SECONDS - 20))
    [ "$seconds_left" -gt 240 ] && seconds_left=240
    if [ "$seconds_left" -lt 30 ]; then echo "gpu-check: no time left for $t"; overall=1; continue; fi
    echo "gpu-check: $t (at most ${seconds_left} s), after ${SECONDS} s"
    echo "=== $t" >>"$logs/ctest-gpu.log"
    set +e
    (cd "$logs" && timeout -k 10 "$seconds_left" "$pack/tests/$t" --gtest_color=no) >>"$logs/ctest-gpu.log" 2>&1
    status=$?
    set -e
    case $status in
      0) echo "gpu-check: $t passed" ;;
      77) echo "gpu-check: $t SKIPPED (no NVIDIA driver)"; [ $overall -ne 0 ] || overall=4 ;;
      124|137) echo "gpu-check: $t STOPPED after ${seconds_left} s"; overall=1 ;;
      *) echo "gpu-check: $t FAILED (exit $status)"; overall=1 ;;
    esac
  done
  grep -E '\[bench\]|\[  FAILED|\[  SKIPPED|Failure|Expected|Which is|error:|FAILED:' "$logs/ctest-gpu.log" | head -n 80 || true
  [ $overall -eq 0 ] && echo "gpu-check: all GPU tests passed" || echo "gpu-check: GPU tests FAILED, skipped or did not all run (exit $overall)"
  exit $overall
fi
arch="${TORCH_CUDA_ARCH_LIST:-9.0}"
# A hanging test is killed after 240 s, and ctest as a whole when the script's time
# (AUTOTRAIN_GPU_CHECK_SECONDS, default 540: pass the device command's timeout) is nearly spent,
# so the script always reaches its summary inside the device's limit.
cmake_args=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DAUTOTRAIN_PYTHON="$(command -v "$python")"
            -DAUTOTRAIN_TEST_TIMEOUT=240
            -DAUTOTRAIN_BUILD_BENCH=OFF -DCMAKE_CUDA_ARCHITECTURES="${arch//./}")
if [ "$mode" = full ]; then
  # A private sysroot: the packages' CMake configs and .pc files are relative to it.
  sysroot=/tmp/autotrain-sysroot
  rm -rf "$sysroot"
  for deb in "$device_dir"/debs/*.deb; do dpkg -x "$deb" "$sysroot"; done
  # Debian's -dev packages link libfoo.so to /lib/x86_64-linux-gnu/libfoo.so.N.M: that is the
  # host's file (another version, or none), so every absolute link is pointed into the sysroot.
  while IFS= read -r link; do
    target=$(readlink "$link")
    case "$target" in /*) ln -sfn "$sysroot$target" "$link" ;; esac
  done < <(find "$sysroot" -type l)
  dangling=$(find "$sysroot" -xtype l -name 'lib*.so*' | head -n 3)
  [ -z "$dangling" ] || { echo "gpu-check: broken library links in the carried packages: $dangling" >&2; exit 2; }
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
TORCH_CUDA_ARCH_LIST="$arch" cmake -S "$root" -B "$build" "${cmake_args[@]}" >"$logs/configure.log" 2>&1 \
  || { tail -n 40 "$logs/configure.log"; exit 1; }
cd "$build"
# The program (full mode) and every executable of a `gpu` test: nothing else is needed. Two
# rounds, so that a slow build still returns the NF4 kernel check: first the plugin and
# nf4_gpu_test (a few files), run at once; then the program and the other GPU tests.
gpu_tests=$(ctest -N -L gpu | sed -n 's/^ *Test *#[0-9]*: //p')
first_round=$(printf '%s\n' $gpu_tests | grep -x 'nf4_gpu_test' || true)
other_tests=$(printf '%s\n' $gpu_tests | grep -vx 'nf4_gpu_test' || true)
overall=0
# round NAME TESTS...: builds the round's targets, runs its tests within the time left.
round() {
  local name=$1
  shift
  local tests=("$@") build_targets=("$@")
  [ "$name" = first ] && build_targets+=(autotrain_cuda) || build_targets+=("${targets[@]}")
  set +e
  cmake --build . -j "$(nproc)" --target "${build_targets[@]}" >>"$logs/build.log" 2>&1
  local status=$?
  set -e
  if [ $status -ne 0 ]; then
    echo "gpu-check: the $name round's build failed (build.log):"
    grep -E 'error|FAILED' "$logs/build.log" | head -n 40
    overall=1
    return
  fi
  [ ${#tests[@]} -gt 0 ] || return 0
  local seconds_left=$((seconds_allowed - SECONDS - 20))
  if [ "$seconds_left" -lt 60 ]; then
    echo "gpu-check: $name round built after ${SECONDS} s, too late to run ${tests[*]} within ${seconds_allowed} s" >&2
    overall=1
    return
  fi
  echo "gpu-check: $name round built after ${SECONDS} s; ${tests[*]} get at most ${seconds_left} s"
  local regex
  regex="^($(IFS='|'; echo "${tests[*]}"))\$"
  set +e
  timeout -k 10 "$seconds_left" ctest -L gpu -R "$regex" "${ctest_filter[@]}" --no-tests=error --output-on-failure -V \
    >>"$logs/ctest-gpu.log" 2>&1
  status=$?
  set -e
  if [ $status -eq 124 ] || [ $status -eq 137 ]; then
    echo "gpu-check: $name round STOPPED after ${seconds_left} s (ctest-gpu.log shows how far it got)"
  elif [ $status -ne 0 ]; then
    echo "gpu-check: $name round FAILED"
  fi
  [ $status -eq 0 ] || overall=$status
}
: >"$logs/build.log"
: >"$logs/ctest-gpu.log"
# shellcheck disable=SC2086  # test names are single words
round first $first_round
# shellcheck disable=SC2086
round second $other_tests
grep -E '\[bench\]|\[  PASSED|\[  SKIPPED|\[  FAILED|Failure|Expected|Which is|tests passed|tests failed|Skipped|FAILED:|NVIDIA driver|Timeout' "$logs/ctest-gpu.log" | head -n 60 || true
if [ $overall -ne 0 ]; then
  echo "gpu-check: GPU tests FAILED or did not all run (exit $overall)"
elif grep -q '\[  SKIPPED \]' "$logs/ctest-gpu.log"; then
  # A test binary that passed with some cases skipped inside it (a variable ctest should have
  # set). Checked first: GTEST_SKIP also prints a line with 'Skipped'.
  echo "gpu-check: some GPU test cases SKIPPED inside a passing test:"
  grep '\[  SKIPPED \]' "$logs/ctest-gpu.log" | sort -u | head -n 10
  overall=4
elif grep -q '\*\*\*Skipped' "$logs/ctest-gpu.log"; then
  echo "gpu-check: GPU tests SKIPPED (no NVIDIA driver here): nothing was checked"
else
  echo "gpu-check: all GPU tests passed"
fi
exit $overall
