#!/usr/bin/env python3
"""`autotrain merge` against what AutoTrain's --merge-adapter ran (transformers from_pretrained in
fp16 + PeftModel.from_pretrained + merge_and_unload + save_pretrained), side by side in one run:
whole processes, wall time and peak resident memory from /usr/bin/time -v. The script fails
unless both write the same tensors, bit for bit.

The base is bench/model's checkpoint (a 7b-style Falcon of 257 M parameters, fp32, two shards);
the adapter a PEFT LoRA (r=16, alpha 32, all-linear, random B) made here.

  run_bench.py --bin build/autotrain [--repeat 3]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from process_stats import measure  # noqa: E402

PEFT_MERGE = """
import sys, torch
from transformers import FalconForCausalLM
from peft import PeftModel
base = FalconForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float16, low_cpu_mem_usage=True)
PeftModel.from_pretrained(base, sys.argv[2]).merge_and_unload().save_pretrained(sys.argv[3])
"""


def tensors(folder):
    out = {}
    for f in sorted(os.listdir(folder)):
        if f.endswith(".safetensors"):
            out.update(load_file(os.path.join(folder, f)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="merge-bench-")
    subprocess.run([sys.executable, os.path.join(HERE, "..", "model", "make_checkpoint.py"), work], check=True,
                   stdout=subprocess.DEVNULL)
    base = os.path.join(work, "model")
    adapter = os.path.join(work, "adapter")
    subprocess.run([sys.executable, "-c", """
import sys, torch
from transformers import FalconForCausalLM
from peft import LoraConfig, get_peft_model
torch.manual_seed(3)
m = get_peft_model(FalconForCausalLM.from_pretrained(sys.argv[1]),
                   LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"))
with torch.no_grad():
    for n, p in m.named_parameters():
        if "lora_B" in n:
            p.normal_(0, 0.01)
m.save_pretrained(sys.argv[2])
""", base, adapter], check=True, stderr=subprocess.DEVNULL)

    print("| run | autotrain merge s | PEFT merge_and_unload + save_pretrained s | ratio | autotrain peak RSS MiB | PEFT peak RSS MiB |")
    print("|---|---|---|---|---|---|")
    for i in range(a.repeat):
        ours_dir, theirs_dir = os.path.join(work, f"ours{i}"), os.path.join(work, f"theirs{i}")
        ours = measure([a.bin, "merge", "--model", base, "--adapter", adapter, "--out", ours_dir, "--dtype", "fp16"])
        theirs = measure([sys.executable, "-c", PEFT_MERGE, base, adapter, theirs_dir])
        x, y = tensors(ours_dir), tensors(theirs_dir)
        if x.keys() != y.keys() or any(not torch.equal(x[k], y[k]) for k in x):
            sys.exit("the merged tensors differ")
        print(f"| {i + 1} | {ours[1]:.2f} | {theirs[1]:.2f} | {theirs[1] / ours[1]:.2f}x | {ours[2]:.0f} | {theirs[2]:.0f} |")
    print("merged tensors identical, bit for bit, in every run")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
