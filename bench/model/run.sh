#!/usr/bin/env bash
# Load + one forward pass of a ~1 GB two-shard Falcon checkpoint: `autotrain eval` against
# transformers from_pretrained + forward, side by side in one run, with peak resident memory
# from /usr/bin/time -v. Prints a Markdown table for bench/model/RESULTS.md, then the peak
# resident memory of loading the same checkpoint the way `autotrain train` loads a QLoRA base
# (NF4 on load, bf16 for the rest) against the bound of the largest shard + 20%.
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
echo "autotrain fp32 peak beyond the resident fp32 weights (LibTorch, loading and the forward pass together):" \
     "$(( ours_rss / 1024 - total / 1048576 )) MiB (largest shard + 20% = $((largest * 12 / 10 / 1048576)) MiB)"

# The QLoRA load: every Linear quantized to NF4 tensor by tensor as it streams in, the embedding
# and norms in bf16. The whole process, LibTorch included, is measured against the bound.
bound=$((largest * 12 / 10))
echo
echo "| QLoRA load run | autotrain eval --load-in-4bit --dtype bf16: s | peak RSS MiB | bound MiB | met |"
echo "|---|---|---|---|---|"
for i in $(seq 1 "$repeats"); do
  read -r q_s q_rss < <(measure "$bin" eval --model "$work/model" --data "$work/block.jsonl" --block-size 512 --device cpu \
                                  --load-in-4bit --dtype bf16 --json)
  met=no; [ $((q_rss * 1024)) -lt "$bound" ] && met=yes
  echo "| $i | $q_s | $((q_rss / 1024)) | $((bound / 1048576)) | $met |"
done
echo "QLoRA load loss: $(cat "$work/out")"
