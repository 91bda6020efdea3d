#!/usr/bin/env python3
"""`autotrain generate` against transformers' generate(), side by side in one run: greedy
decoding with the KV cache of the same prompt on the same model, on the CPU. The script fails
unless both produce the same tokens.

The model is bench/model's checkpoint (a 7b-style Falcon of 257 M parameters, fp32, two shards)
with a small byte-level BPE tokenizer trained here (its ids are the prompt's; the model's other
ids have no text). Its generation_config.json has no eos, so both generate every token asked for.

Two figures per run, each side a whole process measured with /usr/bin/time -v:
  - decode tokens/s: new tokens / time inside generation (autotrain's --json "seconds";
    transformers' model.generate() timed in the script), prompt forward included;
  - end to end: process wall time (start, load, generate), and peak resident memory.

  run_bench.py --bin build/autotrain [--new-tokens 128] [--repeat 3]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from process_stats import measure  # noqa: E402
PROMPT = "### Human: Write a short poem about the sea.### Assistant:"

HF_GENERATE = """
import json, sys, time, torch
from transformers import AutoTokenizer, FalconForCausalLM
folder, prompt, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
tok = AutoTokenizer.from_pretrained(folder)
model = FalconForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
ids = tok(prompt, return_tensors="pt").input_ids
t0 = time.perf_counter()
with torch.no_grad():
    seq = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False, pad_token_id=0)
seconds = time.perf_counter() - t0
print(json.dumps({"ids": seq[0, ids.shape[1]:].tolist(), "seconds": seconds}))
"""

MAKE_TOKENIZER = """
import json, os, random, sys
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
folder = sys.argv[1]
words = ["human", "assistant", "write", "a", "short", "poem", "about", "the", "sea", "###", ":", "."]
rng = random.Random(1)
tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
tok.train_from_iterator([" ".join(rng.choice(words) for _ in range(12)) for _ in range(300)],
                        trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"],
                                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
tok.save(os.path.join(folder, "tokenizer.json"))
json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|endoftext|>"},
          open(os.path.join(folder, "tokenizer_config.json"), "w"))
json.dump({"_from_model_config": False}, open(os.path.join(folder, "generation_config.json"), "w"))
"""


def run_json(cmd):
    out, wall, rss = measure(cmd)
    return json.loads(out.strip().splitlines()[-1]), wall, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="generate-bench-")
    subprocess.run([sys.executable, os.path.join(HERE, "..", "model", "make_checkpoint.py"), work], check=True,
                   stdout=subprocess.DEVNULL)
    model = os.path.join(work, "model")
    subprocess.run([sys.executable, "-c", MAKE_TOKENIZER, model], check=True, stderr=subprocess.DEVNULL)
    n = a.new_tokens
    print(f"| run | autotrain tokens/s | transformers tokens/s | ratio | autotrain wall s | transformers wall s | "
          f"ratio | autotrain peak RSS MiB | transformers peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for i in range(a.repeat):
        ours, ours_wall, ours_rss = run_json([a.bin, "generate", "--model", model, "--prompt", PROMPT, "--max-new-tokens",
                                             str(n), "--device", "cpu", "--json"])
        theirs, theirs_wall, theirs_rss = run_json([sys.executable, "-c", HF_GENERATE, model, PROMPT, str(n)])
        if ours["ids"] != theirs["ids"]:
            sys.exit(f"the tokens differ:\n autotrain    {ours['ids']}\n transformers {theirs['ids']}")
        if len(ours["ids"]) != n:
            sys.exit(f"generation stopped after {len(ours['ids'])} of {n} tokens")
        ours_rate, theirs_rate = n / ours["seconds"], n / theirs["seconds"]
        print(f"| {i + 1} | {ours_rate:.1f} | {theirs_rate:.1f} | {ours_rate / theirs_rate:.2f}x | {ours_wall:.2f} | "
              f"{theirs_wall:.2f} | {theirs_wall / ours_wall:.2f}x | {ours_rss:.0f} | {theirs_rss:.0f} |")
    print(f"the same {n} tokens from both in every run")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
