#!/usr/bin/env bash
# Load + one forward pass of a ~1 GB two-shard Falcon checkpoint: `autotrain eval` against
# transformers from_pretrained + forward, side by side in one run, with peak resident memory
# from /usr/bin/time -v. Prints a Markdown table for bench/model/RESULTS.md.
#   bench/model/run.sh [BUILD_DIR (default build-model)] [REPEATS (default 3)]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build="${1:-$root/build-model}"
repeats="${2:-3}"
py="$(bash "$root/scripts/bootstrap.sh" --quiet --no-apt)/bin/python"
bin="$build/autotrain"
[ -x "$bin" ] || { echo "build the CLI first: cmake --build $build --target autotrain" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$py" "$root/bench/model/make_checkpoint.py" "$work" 512 > "$work/info.json"
largest=$("$py" -c "import json,sys; print(max(json.load(open(sys.argv[1]))['shards'].values()))" "$work/info.json")
total=$("$py" -c "import json,sys; print(sum(json.load(open(sys.argv[1]))['shards'].values()))" "$work/info.json")

# One measurement: wall seconds and peak RSS (KiB) of a command; its stdout goes to $work/out.
measure() {
  /usr/bin/time -v "$@" > "$work/out" 2> "$work/time" || { cat "$work/time" >&2; exit 1; }
  local wall rss
  wall=$(grep "Elapsed (wall clock)" "$work/time" | awk '{print $NF}' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss=$(grep "Maximum resident set size" "$work/time" | awk '{print $NF}')
  echo "$wall $rss"
}

# Baseline: the same process on a tiny model (LibTorch and the interpreter themselves).
mkdir -p "$work/tiny"
"$py" - "$work/tiny" <<'PY'
import sys, json, torch
from transformers import FalconConfig, FalconForCausalLM
m = FalconForCausalLM(FalconConfig(vocab_size=65024, hidden_size=64, num_attention_heads=1, num_hidden_layers=1))
m.save_pretrained(sys.argv[1] + "/model")
PY

echo "| run | autotrain s | transformers s | ratio | autotrain peak RSS MiB | transformers peak RSS MiB |"
echo "|---|---|---|---|---|---|"
for i in $(seq 1 "$repeats"); do
  read -r ours_s ours_rss < <(measure "$bin" eval --model "$work/model" --data "$work/block.jsonl" --block-size 512 --device cpu --json)
  ours_loss=$(cat "$work/out")
  read -r ref_s ref_rss < <(measure "$py" "$root/bench/model/hf_load_forward.py" "$work/model" "$work/block.jsonl")
  ref_loss=$(cat "$work/out")
  ratio=$("$py" -c "print(f'{$ours_s/$ref_s:.2f}')")
  echo "| $i | $ours_s | $ref_s | $ratio | $((ours_rss / 1024)) | $((ref_rss / 1024)) |"
done
read -r _ base_rss < <(measure "$bin" eval --model "$work/tiny/model" --data "$work/block.jsonl" --block-size 8 --device cpu --json)
echo
echo "losses: autotrain $ours_loss; transformers $ref_loss"
echo "checkpoint: $((total / 1048576)) MiB in 2 shards, largest $((largest / 1048576)) MiB"
echo "autotrain baseline peak RSS (same command, tiny model): $((base_rss / 1024)) MiB"
echo "autotrain load overhead = peak - baseline - resident weights: $(( (ours_rss - base_rss) / 1024 - total / 1048576 )) MiB" \
     "(limit: largest shard + 20% = $((largest * 12 / 10 / 1048576)) MiB)"
