#!/usr/bin/env python3
"""Training throughput: `autotrain train` vs transformers' Trainer + PEFT, side by side, on the
same tiny Falcon, the same blocks and the same settings (LoRA r=8 all-linear, batch 4 x
gradient accumulation 2, AdamW, linear schedule, gradient checkpointing, fp32 on the CPU).

Both sides train on the blocks of our token cache (the reference reads
autotrain-data/train.safetensors), in order, for the same number of optimizer steps. Reported:
- train loop: tokens per second over the optimizer steps (ours: metrics.jsonl's tokens_per_s
  over the whole run; reference: the Trainer's train_runtime);
- end to end: wall time of the whole command (process start, model load, training, saving).

usage: run_bench.py --bin build/autotrain [--steps 60] [--threads N]
(python = the bootstrap venv's: $(bash scripts/bootstrap.sh --quiet --no-apt)/bin/python)
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

REFERENCE = r"""
import json, math, sys, time
import torch
from transformers import AutoModelForCausalLM, Trainer, TrainingArguments
from peft import LoraConfig, get_peft_model
from token_blocks import TokenBlocks

model_dir, cache, steps, threads, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
torch.set_num_threads(threads)
blocks = TokenBlocks(cache)
ids = blocks.ids

model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear",
                                         task_type="CAUSAL_LM"))
args = TrainingArguments(output_dir=out, per_device_train_batch_size=4, gradient_accumulation_steps=2,
                         max_steps=steps, learning_rate=2e-3, lr_scheduler_type="linear", warmup_steps=math.ceil(0.1 * steps),
                         weight_decay=0.0, max_grad_norm=1.0, logging_steps=steps, save_strategy="no",
                         report_to="none", use_cpu=True, gradient_checkpointing=True,
                         gradient_checkpointing_kwargs={"use_reentrant": True}, dataloader_num_workers=0,
                         seed=42, disable_tqdm=True)
model.enable_input_require_grads()
trainer = Trainer(model=model, args=args, train_dataset=blocks)
result = trainer.train()
tokens = steps * 4 * 2 * ids.shape[1]
print(json.dumps({"train_runtime": result.metrics["train_runtime"], "tokens": tokens,
                  "loss": result.metrics["train_loss"]}))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "autotrain"))
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-train-")
    sets = ["--set", f"MODEL_NAME={work}/model", "--set", f"DATA_PATH={work}/data", "--set",
            f"DATA_FILE={work}/train.csv", "--set", f"AUTOTRAIN_PROJECT_NAME={work}/ours", "--set",
            "SAVE_STRATEGY=no", "--set", "EVAL_STRATEGY=no", "--set", f"LOGGING_STEPS={a.steps}", "--set",
            f"MAX_STEPS={a.steps}"]
    config = os.path.join(ROOT, "configs", "tiny.env")
    # The reference script imports token_blocks from this folder.
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads),
               PYTHONPATH=os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p))
    for cmd in (["tiny"], ["data"]):
        subprocess.run([a.bin, *cmd, "-c", config, *sets], check=True, env=env, capture_output=True)

    t0 = time.perf_counter()
    subprocess.run([a.bin, "train", "-c", config, *sets], check=True, env=env, capture_output=True)
    ours_wall = time.perf_counter() - t0
    with open(f"{work}/ours/metrics.jsonl") as f:
        last = [json.loads(line) for line in f][-1]
    ours_tps = last["tokens_per_s"]

    t0 = time.perf_counter()
    ref = subprocess.run([sys.executable, "-c", REFERENCE, f"{work}/model", f"{work}/ours/autotrain-data/train.safetensors",
                          str(a.steps), str(a.threads), f"{work}/ref"], env=env, capture_output=True, text=True)
    if ref.returncode != 0:
        sys.exit("reference failed:\n" + ref.stderr[-3000:])
    ref_wall = time.perf_counter() - t0
    r = json.loads(ref.stdout.strip().splitlines()[-1])
    ref_tps = r["tokens"] / r["train_runtime"]

    print(f"tiny Falcon (hidden 128, 2 layers), LoRA r=8 all-linear, batch 4 x GA 2, block 64, "
          f"{a.steps} steps, {a.threads} threads, CPU fp32")
    print("| | autotrain | transformers Trainer + PEFT | ratio |")
    print("|---|---|---|---|")
    print(f"| train loop, tokens/s | {ours_tps:,.0f} | {ref_tps:,.0f} | {ours_tps / ref_tps:.2f}x |")
    print(f"| end to end, wall s | {ours_wall:.2f} | {ref_wall:.2f} | {ref_wall / ours_wall:.2f}x |")
    print(f"(final logged train loss: ours {last['loss']:.4f}, reference {r['loss']:.4f} (mean over the run))")


if __name__ == "__main__":
    main()
