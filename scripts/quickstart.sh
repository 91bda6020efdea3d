#!/usr/bin/env bash
# The README's first command: sets up what is missing, builds autotrain, and runs the main job
# on the embedded tiny default (configs/tiny.env): writes the tiny model and dataset, prepares
# the data, fine-tunes a LoRA adapter on the CPU, and shows the evaluation loss before and after.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=$(bash "$root/scripts/bootstrap.sh" | tail -n 1)
export CCACHE_DIR="${CCACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ccache}"
# A build tree (objects plus the one shared precompiled LibTorch header) is under 2 GB, so the
# cache also holds the debug, sanitizer and fuzzer trees; it never grows past this.
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-6G}"
cmake -S "$root" -B "$root/build" -G Ninja -DAUTOTRAIN_PYTHON="$venv/bin/python" >/dev/null
cmake --build "$root/build" --target autotrain
bin="$root/build/autotrain"
cd "$root"
config=configs/tiny.env
run() { echo "== autotrain $*"; "$bin" "$@"; }
# The folders as autotrain resolves them: tiny.env's project is runs/tiny-${PROJECT_ID:=tiny},
# so an exported PROJECT_ID moves it, and the adapter evaluated must be the one just trained.
config_json=$("$bin" config -c "$config" --json)
effective() {
  "$venv/bin/python" -c 'import json, sys; print(json.loads(sys.argv[1])["effective"][sys.argv[2]])' "$config_json" "$1"
}
project=$(effective AUTOTRAIN_PROJECT_NAME)
model=$(effective MODEL_NAME)
data=$(effective DATA_PATH)
run setup -c "$config"
run tiny -c "$config"
run data -c "$config"
eval_args=(--model "$model" --data "$data/test.jsonl" --block-size 64)
echo "== eval loss of the base model"
before=$("$bin" eval "${eval_args[@]}")
run train -c "$config" --resume never
echo "== eval loss with the trained adapter"
after=$("$bin" eval "${eval_args[@]}" --adapter "$project")
echo "before: $before"
echo "after:  $after"
prompt="### Human: What is 12 plus 7?### Assistant:"
echo "== a sample from the trained adapter: $prompt"
"$bin" generate --model "$model" --adapter "$project" --prompt "$prompt" --stop "###" --max-new-tokens 16
echo "project folder: $project (adapter_model.safetensors, adapter_config.json, metrics.jsonl, README.md)"
