#!/usr/bin/env python3
"""QLoRA on a Falcon-7B-shaped model on one GPU: `autotrain train` and `autotrain generate` vs
transformers + PEFT + bitsandbytes (the AutoTrain 0.6.44 recipe), side by side in one run.

The base is Falcon-7B's config.json with random weights (bf16, std 0.02, seed 0), written once as
a sharded safetensors folder beside the real tokenizer; speed and memory do not depend on the
values. Both sides then train on the same token blocks (the reference reads our cache's
train.safetensors) with the tutorial's falcon.env settings: NF4 base (no double quantization),
fp16 compute and autocast with a loss scaler, LoRA r=16 alpha 32 dropout 0.045 on
query_key_value, batch 1 x gradient accumulation 4, block 1024, AdamW, gradient checkpointing.
Then each side generates 128 tokens greedily with our adapter, on the 4-bit base and on the fp16 one.

Reported, per side: model load + quantization time, train-loop tokens/s (whole loop, and from
step --warmup on), peak GPU memory, end-to-end wall time; for generation with our adapter on the
4-bit and on the 16-bit base: the first token's time (the prompt) and the rate after it.

usage: gpu_falcon7b.py --bin build/autotrain --model-files DIR [--steps 20] [--device cuda]
  DIR holds Falcon-7B's config.json, tokenizer.json and tokenizer_config.json (../shared/data/falcon-7b).
  --layers/--hidden/--heads shrink the model (a dry run on the CPU: --device cpu --layers 2 --hidden 256 --heads 4).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

MAKE_MODEL = r"""
import json, shutil, sys, torch
from transformers import FalconConfig, FalconForCausalLM
src, out, device, overrides = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
config = FalconConfig.from_pretrained(src)
for k, v in overrides.items():
    setattr(config, k, v)
torch.manual_seed(0)
with torch.device(device):
    model = FalconForCausalLM(config)
model = model.to(torch.bfloat16)
model.save_pretrained(out, max_shard_size="4GB")
for f in ("tokenizer.json", "tokenizer_config.json"):
    shutil.copy(f"{src}/{f}", f"{out}/{f}")
print(sum(p.numel() for p in model.parameters()))
"""

REFERENCE = r"""
import json, sys, time
import torch
from transformers import AutoModelForCausalLM, BitsAndBytesConfig, Trainer, TrainerCallback, TrainingArguments
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from token_blocks import TokenBlocks

model_dir, cache, out, a = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
cuda = a["device"] == "cuda"
blocks = TokenBlocks(cache)
ids = blocks.ids

class StepClock(TrainerCallback):
    def __init__(self):
        self.ends = []
    def on_step_end(self, args, state, control, **kw):
        if cuda:
            torch.cuda.synchronize()
        self.ends.append(time.perf_counter())

t0 = time.perf_counter()
compute = torch.float16 if cuda else torch.float32
bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute,
                         bnb_4bit_use_double_quant=False)
model = AutoModelForCausalLM.from_pretrained(model_dir, quantization_config=bnb, dtype=compute,
                                             device_map={"": 0 if cuda else "cpu"})
model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.045, bias="none", task_type="CAUSAL_LM",
                                         target_modules=["query_key_value"]))
if cuda:
    torch.cuda.synchronize()
load_s = time.perf_counter() - t0
steps = a["steps"]
args = TrainingArguments(output_dir=out, per_device_train_batch_size=a["batch"], gradient_accumulation_steps=a["ga"],
                         max_steps=steps, learning_rate=2e-4, lr_scheduler_type="linear", warmup_steps=max(1, steps // 10),
                         weight_decay=0.01, max_grad_norm=1.0, logging_steps=steps, save_strategy="no", report_to="none",
                         fp16=cuda, use_cpu=not cuda, gradient_checkpointing=True, optim="adamw_torch",
                         dataloader_num_workers=0, seed=42, disable_tqdm=True)
clock = StepClock()
trainer = Trainer(model=model, args=args, train_dataset=blocks, callbacks=[clock])
result = trainer.train()
per_step = a["batch"] * a["ga"] * ids.shape[1]
w = a["warmup"]
steady = per_step * (steps - w) / (clock.ends[-1] - clock.ends[w - 1]) if steps > w else float("nan")
peak = torch.cuda.max_memory_allocated() if cuda else 0
reserved = torch.cuda.max_memory_reserved() if cuda else 0

print(json.dumps({"load_s": load_s, "train_runtime": result.metrics["train_runtime"], "tokens": steps * per_step,
                  "steady_tokens_per_s": steady, "loss": result.metrics["train_loss"], "peak_allocated": peak,
                  "peak_reserved": reserved}))
"""

# Greedy generation with our adapter on the 4-bit base (bitsandbytes' own inference kernels) and on
# the fp16 base: the first token (prompt) and the per-token rate after it, after a warm-up.
REFERENCE_GENERATE = r"""
import gc, json, sys, time
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
from peft import PeftModel

model_dir, adapter, a = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
cuda = a["device"] == "cuda"
tok = AutoTokenizer.from_pretrained(model_dir)
n = a["new_tokens"]
out = {}
for variant in a["variants"]:
    dtype = torch.float16 if cuda else torch.float32
    kw = {"dtype": dtype, "device_map": {"": 0 if cuda else "cpu"}}
    if variant == "nf4":
        kw["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                       bnb_4bit_compute_dtype=dtype, bnb_4bit_use_double_quant=False)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir, **kw), adapter).eval()
    prompt = tok(a["prompt"], return_tensors="pt").to(model.device)
    def timed(k):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        g = model.generate(**prompt, max_new_tokens=k, min_new_tokens=k, do_sample=False, pad_token_id=tok.eos_token_id)
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t0, g
    with torch.no_grad():
        timed(4)
        first, _ = timed(1)
        total, g = timed(n)
    out[variant] = {"first_token_s": first, "decode_tokens_per_s": (n - 1) / (total - first),
                    "tokens_per_s": n / total, "ids": g[0, prompt["input_ids"].shape[1]:].tolist()}
    del model
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
print(json.dumps(out))
"""

PROMPT = "### Human: Write a short story about a lighthouse keeper.### Assistant:"


def synthetic_data(folder, rows):
    """Guanaco-style rows of deterministic pseudo-random words (a linear congruential generator)."""
    words = ("the a lighthouse keeper sea storm ship light night morning wave rock island boat harbour wind "
             "cold warm old young bright dark long short quiet loud walks sees finds writes keeps sails returns "
             "waits listens sings remembers").split()
    os.makedirs(folder, exist_ok=True)
    state = 12345
    with open(os.path.join(folder, "train.jsonl"), "w") as f:
        for i in range(rows):
            text = []
            for _ in range(90):
                state = (state * 1103515245 + 12345) % 2**31
                text.append(words[state % len(words)])
            f.write(json.dumps({"text": f"### Human: Tell me about item {i}.### Assistant: " + " ".join(text)}) + "\n")


def run(cmd, env=None, what=""):
    """(the finished process or None when it failed, wall seconds, the process either way)"""
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.stderr.write(f"{what} failed (exit {r.returncode}) after {wall:.1f} s:\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}\n")
    return (r if r.returncode == 0 else None), wall, r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--model-files", required=True, help="folder with Falcon-7B's config.json and tokenizer")
    ap.add_argument("--work", default=None, help="working folder (default: a new temporary one)")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5, help="steady-state rates count from this step on")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--ga", type=int, default=4)
    ap.add_argument("--block", type=int, default=1024)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--layers", type=int)
    ap.add_argument("--hidden", type=int)
    ap.add_argument("--heads", type=int)
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--skip-train-reference", action="store_true", help="the reference generates but does not train")
    a = ap.parse_args()
    if not 1 <= a.warmup < a.steps:
        ap.error("--warmup must be at least 1 and below --steps (the steady rate needs steps after it)")
    work = a.work or tempfile.mkdtemp(prefix="bench-7b-")
    os.makedirs(work, exist_ok=True)
    cuda = a.device == "cuda"
    overrides = {k: v for k, v in {"num_hidden_layers": a.layers, "hidden_size": a.hidden,
                                   "num_attention_heads": a.heads}.items() if v}
    model = os.path.join(work, "model")
    results = {"device": a.device, "overrides": overrides, "steps": a.steps, "batch": a.batch, "ga": a.ga,
               "block": a.block}

    t0 = time.perf_counter()
    if not os.path.exists(os.path.join(model, "config.json")):
        r, wall, _ = run([sys.executable, "-c", MAKE_MODEL, a.model_files, model, a.device, json.dumps(overrides)],
                         what="making the random model")
        if r is None:
            sys.exit(1)
        results["params"] = int(r.stdout.strip().splitlines()[-1])
    print(f"random model ready after {time.perf_counter() - t0:.1f} s", flush=True)
    rows = max(200, a.steps * a.batch * a.ga * a.block // 80)
    synthetic_data(os.path.join(work, "data"), rows)

    env_file = os.path.join(work, "bench.env")
    with open(env_file, "w") as f:
        f.write("\n".join([
            f"AUTOTRAIN_PROJECT_NAME={work}/ours", f"MODEL_NAME={model}", f"DATA_PATH={work}/data",
            f"DATA_FILE={work}/train.csv", "TEXT_COLUMN=text", "LEARNING_RATE=2e-4", f"BATCH_SIZE={a.batch}",
            f"BLOCK_SIZE={a.block}", "TRAINER=default", "WARMUP_RATIO=0.1", "WEIGHT_DECAY=0.01",
            f"GRADIENT_ACCUMULATION={a.ga}", f"USE_FP16={cuda}", "USE_PEFT=True", "USE_INT4=True", "LORA_R=16",
            "LORA_ALPHA=32", "LORA_DROPOUT=0.045", f"MAX_STEPS={a.steps}", f"LOGGING_STEPS={a.warmup}",
            "SAVE_STRATEGY=no", "EVAL_STRATEGY=no", f"DEVICE={a.device}", "SEED=42", "PUSH_TO_HUB=False", ""]))
    # The reference scripts import token_blocks from this folder.
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, HF_HUB_OFFLINE="1",
               PYTHONPATH=os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p))
    r, wall, _ = run([a.bin, "data", "-c", env_file], env, "autotrain data")
    if r is None:
        sys.exit(1)
    r, wall, _ = run([a.bin, "train", "-c", env_file, "--resume", "never"], env, "autotrain train")
    if r is None:
        sys.exit(1)
    log = r.stderr
    with open(f"{work}/ours/metrics.jsonl") as f:
        recs = [json.loads(line) for line in f]
    train_recs = [x for x in recs if "tokens_per_s" in x]
    # Each log record's rate covers its window of steps; the first window holds the start-up.
    deltas = [x["tokens"] - (train_recs[i - 1]["tokens"] if i else 0) for i, x in enumerate(train_recs)]
    secs = [d / x["tokens_per_s"] for d, x in zip(deltas, train_recs)]
    tokens, window_s = sum(deltas), sum(secs)
    steady_tps = sum(deltas[1:]) / sum(secs[1:]) if len(secs) > 1 else float("nan")
    results["ours"] = {"wall_s": wall, "tokens_per_s": tokens / window_s, "steady_tokens_per_s": steady_tps,
                       "peak_mem": max(x["mem"] for x in train_recs), "loss": train_recs[-1]["loss"],
                       "log_tail": log[-1500:]}
    print(f"ours: train {wall:.1f} s wall, {tokens / window_s:,.0f} tokens/s ({steady_tps:,.0f} from step {a.warmup}), "
          f"peak {max(x['mem'] for x in train_recs) / 2**30:.2f} GiB", flush=True)

    # Ours: the 4-bit base with the adapter (QLoRA inference) and the 16-bit base with it.
    variants = {"nf4": ["--load-in-4bit"], "fp16" if cuda else "fp32": []}
    results["ours"]["generate"] = {}
    for name, extra in variants.items():
        gen_cmd = [a.bin, "generate", "-c", env_file, "--model", model, "--adapter", f"{work}/ours", *extra,
                   "--dtype", "fp16" if cuda else "fp32", "--device", a.device, "--max-new-tokens", str(a.new_tokens),
                   "--min-new-tokens", str(a.new_tokens), "--prompt", PROMPT, "--json"]
        r, gen_wall, _ = run(gen_cmd, env, f"autotrain generate ({name})")
        if r is None:
            continue
        g = json.loads(r.stdout.strip().splitlines()[-1])
        decode = (g["new_tokens"] - 1) / (g["seconds"] - g["first_token_seconds"])
        results["ours"]["generate"][name] = {"first_token_s": g["first_token_seconds"], "decode_tokens_per_s": decode,
                                             "tokens_per_s": g["tokens_per_s"], "wall_s": gen_wall, "ids": g["ids"]}
        print(f"ours: generate ({name}) {g['new_tokens']} tokens: first after {g['first_token_seconds']:.3f} s, then "
              f"{decode:.1f} tokens/s; {gen_wall:.1f} s wall", flush=True)
    if not a.skip_reference:
        gen_args = {"device": a.device, "prompt": PROMPT, "new_tokens": a.new_tokens, "variants": list(variants)}
        r, _, raw = run([sys.executable, "-c", REFERENCE_GENERATE, model, f"{work}/ours", json.dumps(gen_args)],
                        dict(env, TORCHDYNAMO_DISABLE="1"), "reference generate")
        if r is not None:
            results["reference_generate"] = json.loads(r.stdout.strip().splitlines()[-1])
            for name, g in results["reference_generate"].items():
                print(f"reference: generate ({name}): first after {g['first_token_s']:.3f} s, then "
                      f"{g['decode_tokens_per_s']:.1f} tokens/s", flush=True)
        else:
            results["reference_generate_error"] = raw.stderr[-4000:]

    if not a.skip_reference and not a.skip_train_reference:
        ref_args = {"device": a.device, "steps": a.steps, "batch": a.batch, "ga": a.ga, "warmup": a.warmup}
        r, ref_wall, raw = run([sys.executable, "-c", REFERENCE, model, f"{work}/ours/autotrain-data/train.safetensors",
                                f"{work}/ref", json.dumps(ref_args)], dict(env, TORCHDYNAMO_DISABLE="1"), "reference")
        if r is not None:
            ref = json.loads(r.stdout.strip().splitlines()[-1])
            ref["wall_s"] = ref_wall
            ref["tokens_per_s"] = ref["tokens"] / ref["train_runtime"]
            results["reference"] = ref
            print(f"reference: {ref_wall:.1f} s wall (load {ref['load_s']:.1f} s), {ref['tokens_per_s']:,.0f} tokens/s "
                  f"({ref['steady_tokens_per_s']:,.0f} from step {a.warmup}), peak {ref['peak_allocated'] / 2**30:.2f} GiB "
                  f"allocated", flush=True)
        else:
            results["reference_error"] = raw.stderr[-4000:]

    o, ref = results["ours"], results.get("reference")
    print(f"\nFalcon-7B shape {overrides or ''}, random bf16 weights, NF4 + LoRA r16 on query_key_value, batch "
          f"{a.batch} x GA {a.ga}, block {a.block}, {a.steps} steps, {a.device}")
    print("| | autotrain | transformers + peft + bitsandbytes | ratio |")
    print("|---|---|---|---|")
    if ref:
        print(f"| train loop, tokens/s | {o['tokens_per_s']:,.0f} | {ref['tokens_per_s']:,.0f} | {o['tokens_per_s'] / ref['tokens_per_s']:.2f}x |")
        print(f"| from step {a.warmup}, tokens/s | {o['steady_tokens_per_s']:,.0f} | {ref['steady_tokens_per_s']:,.0f} | "
              f"{o['steady_tokens_per_s'] / ref['steady_tokens_per_s']:.2f}x |")
        print(f"| peak GPU memory, GiB | {o['peak_mem'] / 2**30:.2f} | {ref['peak_allocated'] / 2**30:.2f} allocated, "
              f"{ref['peak_reserved'] / 2**30:.2f} reserved | |")
        print(f"| train, end to end (start, load, steps, save), s | {o['wall_s']:.1f} | {ref['load_s'] + ref['train_runtime']:.1f} (load + loop) | |")
        ours_loss = "none logged" if o["loss"] is None else f"{o['loss']:.4f}"
        print(f"(train loss: ours {ours_loss} (last window), reference {ref['loss']:.4f} (mean over the run))")
    rg = results.get("reference_generate", {})
    for name, g in o.get("generate", {}).items():
        if name in rg:
            h = rg[name]
            print(f"| generate ({name} base + adapter), first token s | {g['first_token_s']:.3f} | {h['first_token_s']:.3f} | |")
            print(f"| generate ({name} base + adapter), then tokens/s | {g['decode_tokens_per_s']:.1f} | "
                  f"{h['decode_tokens_per_s']:.1f} | {g['decode_tokens_per_s'] / h['decode_tokens_per_s']:.2f}x |")
    out = os.environ.get("OUT")
    if out:
        with open(os.path.join(out, "bench-7b.json"), "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
