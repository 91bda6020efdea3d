#!/usr/bin/env bash
# The README's first command: sets up what is missing, builds autotrain, and runs the main job
# on the embedded tiny default (configs/tiny.env).
# Today that job is `setup` + `config`; `data` + `train` on the tiny model join it when the
# training issue lands.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=$(bash "$root/scripts/bootstrap.sh" | tail -n 1)
export CCACHE_DIR="${CCACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ccache}"
cmake -S "$root" -B "$root/build" -G Ninja -DAUTOTRAIN_PYTHON="$venv/bin/python" >/dev/null
cmake --build "$root/build" --target autotrain
bin="$root/build/autotrain"
cd "$root"
echo "== autotrain setup -c configs/tiny.env"
"$bin" setup -c configs/tiny.env
echo "== autotrain config -c configs/tiny.env"
"$bin" config -c configs/tiny.env
