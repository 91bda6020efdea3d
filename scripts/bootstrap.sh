#!/usr/bin/env bash
# Installs everything autotrain needs to build and test, idempotently:
#   1. Debian packages (compilers' libraries: CLI11, nlohmann-json, spdlog/fmt, SentencePiece,
#      GoogleTest, Google Benchmark, PCRE2, libcurl, ccache, ninja).
#   2. A Python virtual environment OUTSIDE the checkout holding the pinned torch (LibTorch for
#      the build) and the reference stack for tests. Its folder is named after the torch pin and
#      the Python version only, so that changing a test-only pin updates the venv in place and
#      keeps LibTorch's path (and so every compiled object in ccache) valid; a stamp holding the
#      hash of the whole lock file says whether the venv matches it. Downloads are cached, so
#      re-runs take seconds.
# Prints the venv path as its last line: `VENV=$(scripts/bootstrap.sh | tail -n1)`.
# Options: --no-apt (skip Debian packages), --quiet, --print-only (print the venv path if it is
# complete, else exit 1; installs nothing).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
lock="$here/requirements.lock"
cache_root="${AUTOTRAIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/autotrain}"

do_apt=1
quiet=0
print_only=0
for arg in "$@"; do
  case "$arg" in
    --no-apt) do_apt=0 ;;
    --quiet) quiet=1 ;;
    --print-only) print_only=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "bootstrap.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

log() { [ "$quiet" = 1 ] || echo "bootstrap: $*" >&2; }

# --- 1. Debian packages -------------------------------------------------------------------
debian_packages=(
  build-essential cmake ninja-build ccache pkg-config python3-venv
  libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libsentencepiece-dev libgtest-dev libgmock-dev googletest libbenchmark-dev
  libpcre2-dev libicu-dev libcurl4-openssl-dev libsnappy-dev libzstd-dev zlib1g-dev
  liblz4-dev libbrotli-dev libbz2-dev liblzma-dev
)
if [ "$print_only" = 1 ]; then do_apt=0; fi
if [ "$do_apt" = 1 ] && command -v dpkg-query >/dev/null 2>&1; then
  missing=()
  for p in "${debian_packages[@]}"; do
    # python3-venv is only needed when the interpreter lacks the venv module.
    if [ "$p" = python3-venv ] && python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then continue; fi
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    sudo_cmd=()
    [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  else
    log "Debian packages present"
  fi
fi

# --- 2. Python environment ----------------------------------------------------------------
python=${AUTOTRAIN_BASE_PYTHON:-python3}
py_version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
torch_pin=$(grep -E '^torch==' "$lock")
venv_key=$(printf '%s\n%s\n' "$torch_pin" "$py_version" | sha256sum | cut -c1-16)
lock_hash=$( (cat "$lock"; echo "$py_version") | sha256sum | cut -c1-64)
venv="$cache_root/venv-torch-$venv_key"
stamp="$venv/.autotrain-lock"

if [ "$print_only" = 1 ]; then
  [ "$(cat "$stamp" 2>/dev/null)" = "$lock_hash" ] || exit 1
elif [ "$(cat "$stamp" 2>/dev/null)" = "$lock_hash" ]; then
  log "Python environment present: $venv"
else
  if [ -x "$venv/bin/python" ]; then
    log "updating Python environment $venv to scripts/requirements.lock"
  else
    log "creating Python environment $venv (first run downloads torch and CUDA libraries, several GB)"
  fi
  mkdir -p "$cache_root/pip"
  # The stamp is written last: an interrupted run is completed by the next one (pip reuses
  # what is already installed and its download cache, and moves changed pins to the lock).
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  PIP_CACHE_DIR="$cache_root/pip" "$venv/bin/python" -m pip install -q --upgrade pip >&2
  PIP_CACHE_DIR="$cache_root/pip" "$venv/bin/python" -m pip install -q -r "$lock" >&2
  echo "$lock_hash" > "$stamp.tmp" && mv "$stamp.tmp" "$stamp"
fi
echo "$venv"
