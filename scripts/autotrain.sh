#!/usr/bin/env bash
# The tutorial's interface, kept: `bash autotrain.sh data|train|test [-m NAME] [-p PID] [ARGS...]`.
#   -m, --model NAME   loads NAME.env (default: falcon) as given (relative to the current folder,
#                      or an absolute path), else from configs/; a NAME that already ends in .env
#                      and names a file is taken as it is
#   -p, --pid ID       exported as PROJECT_ID (default: admin, as in the tutorial's script, which
#                      set it before reading the command line: a PROJECT_ID already in the
#                      environment, e.g. left by an earlier `set -a; source falcon.env`, is not used)
#   ARGS               forwarded to `autotrain` (the tutorial's script swallowed them; we don't)
# Runs build/autotrain (or $AUTOTRAIN_BIN), building it first if it is missing.
# Unlike the tutorial's script, the config is parsed by autotrain, never sourced or traced
# (`set -x` printed the HF token), and failures exit non-zero.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
  cat <<USAGE
Usage: bash scripts/autotrain.sh data|train|test [-m NAME] [-p PID] [ARGS...]
  data    prepare DATA_FILE and the token cache
  train   fine-tune with the settings of NAME.env
  test    the tutorial's test.py: 20 new tokens after "Hello, how are you today?" from the
          trained model (autotrain generate with the config's model and project adapter)
  -m, --model NAME   config NAME.env from . or configs/ (default: falcon)
  -p, --pid ID       PROJECT_ID (default: admin)
USAGE
}

command="${1:-}"
case "$command" in
  data|train|test) shift ;;
  -h*|--help|help) usage; exit 0 ;;
  "") echo "autotrain.sh: missing command" >&2; usage >&2; exit 2 ;;
  *) echo "autotrain.sh: invalid command: $command" >&2; usage >&2; exit 2 ;;
esac

name="falcon"
project_id="admin"  # the tutorial's default; only -p changes it (autotrain-behaviour.md §1.2, G4)
forward=()
while [ $# -gt 0 ]; do
  case "$1" in
    -m|--model) [ $# -ge 2 ] || { echo "autotrain.sh: $1 needs a value" >&2; exit 2; }; name="$2"; shift ;;
    --model=*) name="${1#*=}" ;;
    -p|--pid) [ $# -ge 2 ] || { echo "autotrain.sh: $1 needs a value" >&2; exit 2; }; project_id="$2"; shift ;;
    --pid=*) project_id="${1#*=}" ;;
    -h*|--help) usage; exit 0 ;;  # -h* as the tutorial's script: any option starting -h
    *) forward+=("$1") ;;
  esac
  shift
done

config=""
candidates=("$name.env")
case "$name" in /*) ;; *) candidates+=("$root/configs/$name.env") ;; esac
case "$name" in *.env) candidates=("$name" "${candidates[@]}") ;; esac  # -m configs/tiny.env
for candidate in "${candidates[@]}"; do
  if [ -f "$candidate" ]; then config="$candidate"; break; fi
done
if [ -z "$config" ]; then
  case "$name" in
    /*) echo "autotrain.sh: no $name.env (-m takes the config's path without .env)" >&2 ;;
    *) echo "autotrain.sh: no $name.env in $(pwd) or $root/configs/ (choose one with -m NAME)" >&2 ;;
  esac
  exit 2
fi

bin="${AUTOTRAIN_BIN:-$root/build/autotrain}"
if [ ! -x "$bin" ]; then
  echo "autotrain.sh: building $bin first (one time)" >&2
  venv=$(bash "$root/scripts/bootstrap.sh" | tail -n 1)
  cmake -S "$root" -B "$root/build" -G Ninja -DAUTOTRAIN_PYTHON="$venv/bin/python" >&2
  cmake --build "$root/build" --target autotrain >&2
  bin="$root/build/autotrain"
fi

export PROJECT_ID="$project_id"
echo "autotrain.sh: $command with $config (PROJECT_ID=$PROJECT_ID)" >&2
if [ "$command" = test ]; then
  # The tutorial's test.py: this prompt, transformers' default budget of 20 tokens, greedy; from
  # the project this config trains (test.py looked in the wrong folder, G9).
  exec "$bin" generate -c "$config" --prompt "Hello, how are you today?" --max-new-tokens 20 \
    ${forward[@]+"${forward[@]}"}
fi
exec "$bin" "$command" -c "$config" ${forward[@]+"${forward[@]}"}
