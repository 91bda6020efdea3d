#!/usr/bin/env python3
"""`autotrain data` vs the tutorial's Python data path, side by side in one run.

Both sides start from the same guanaco-style jsonl (generated here, deterministic), use the
Falcon-7B tokenizer, and do the same work:
  - write DATA_FILE (train.csv, header `text`) as the tutorial's dataload.py does;
  - tokenize every row (no special tokens added: Falcon's post-processor adds none) and cut
    the tokens into BLOCK_SIZE blocks the way AutoTrain 0.6.44's `default` trainer does
    (group_texts per 1,000-row map batch over 4 contiguous shards), labels = input ids;
  - store the blocks (ours: the token cache <project>/autotrain-data/; the reference: .npy files,
    a cheap stand-in for the Arrow cache `datasets` writes).
The reference is transformers' AutoTokenizer (the Rust `tokenizers` library underneath) called
in batches of 1,000 rows as datasets.map(batched=True) does, with the Rust library's own thread
pool (TOKENIZERS_PARALLELISM unset, so all cores). The script checks that both sides produce the
same blocks, token for token, before it reports the times.

With --format parquet the rows are a Snappy Parquet file (pyarrow's defaults, as the Hub stores
datasets) that both sides read: ours with its own reader, the reference with pyarrow.

usage: run_bench.py [--bin build/autotrain] [--rows 20000] [--block-size 1024] [--repeat 3]
                    [--format jsonl|parquet]
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference", "tokenizer"))
from corpus import make_prose_corpus  # noqa: E402

REFERENCE = r'''
import csv, json, sys, time
from itertools import chain
import numpy as np
from transformers import AutoTokenizer

model_dir, data, out, block = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
t0 = time.perf_counter()
tok = AutoTokenizer.from_pretrained(model_dir)
if data.endswith(".parquet"):
    import pyarrow.parquet as pq
    texts = pq.read_table(data, columns=["text"]).column("text").to_pylist()
else:
    with open(data, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
with open(out + "/train.csv", "w", encoding="utf-8", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["text"])
    w.writerows([t] for t in texts)
n = len(texts)
k = min(4, n)
blocks = []
start = 0
for s in range(k):
    size = n // k + (1 if s < n % k else 0)
    shard = texts[start : start + size]
    start += size
    for b in range(0, len(shard), 1000):
        ids = tok(shard[b : b + 1000])["input_ids"]
        cat = list(chain(*ids))
        total = (len(cat) // block) * block if len(cat) >= block else 0
        blocks.extend(cat[i : i + block] for i in range(0, total, block))
arr = np.array(blocks, dtype=np.int32).reshape(len(blocks), block)
np.save(out + "/input_ids.npy", arr)
np.save(out + "/labels.npy", arr.copy())
print(json.dumps({"blocks": len(blocks), "seconds": time.perf_counter() - t0}))
'''


def make_rows(n, seed=7):
    """Guanaco-style rows: `### Human: ... ### Assistant: ...` with prose of varied length."""
    r = random.Random(seed)
    docs = [d.decode() for d in make_prose_corpus(min_bytes=n * 900, seed=seed)]
    rows = []
    for i in range(n):
        q = docs[(2 * i) % len(docs)][: r.randint(80, 400)]
        a = docs[(2 * i + 1) % len(docs)][: r.randint(200, 1600)]
        rows.append("### Human: " + q.strip() + "### Assistant: " + a.strip())
    return rows


def model_folder(path):
    """A model folder with Falcon-7B's config and tokenizer (no weights: `data` needs none)."""
    src = os.path.join(ROOT, "..", "shared", "data", "falcon-7b")
    os.makedirs(path)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(src, name), path)


def timed(cmd, env=None):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr}")
    return time.perf_counter() - t0, p.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "autotrain"))
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--block-size", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--format", choices=["jsonl", "parquet"], default="jsonl")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-data-")
    try:
        model = os.path.join(work, "model")
        model_folder(model)
        data_dir = os.path.join(work, "data")
        os.makedirs(data_dir)
        rows = make_rows(a.rows)
        data_file = os.path.join(data_dir, "train." + a.format)
        if a.format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq
            pq.write_table(pa.table({"text": rows}), data_file)
        else:
            with open(data_file, "w", encoding="utf-8") as f:
                for t in rows:
                    f.write(json.dumps({"text": t}) + "\n")
        mb = os.path.getsize(data_file) / 1e6
        env = dict(os.environ)
        env.pop("TOKENIZERS_PARALLELISM", None)
        print(f"data: {a.rows} rows, {mb:.1f} MB {a.format}; block size {a.block_size}; cpu: {os.cpu_count()} cores")
        print()
        print("| run | autotrain data s | Python (transformers tokenizer + group_texts) s | ratio |")
        print("|---|---|---|---|")
        for i in range(a.repeat):
            project = os.path.join(work, f"project{i}")
            config = os.path.join(work, f"bench{i}.env")
            with open(config, "w") as f:
                f.write(f"MODEL_NAME={model}\nDATA_PATH={data_dir}\nAUTOTRAIN_PROJECT_NAME={project}\n"
                        f"DATA_FILE={os.path.join(work, f'ours{i}.csv')}\nBLOCK_SIZE={a.block_size}\n"
                        "TRAINER=default\nVALID_SPLIT=\nVALID_FRACTION=0\n")
            ours_s, ours_out = timed([a.bin, "data", "-c", config, "--rebuild"])
            ref_dir = os.path.join(work, f"ref{i}")
            os.makedirs(ref_dir)
            ref_s, ref_out = timed([sys.executable, "-c", REFERENCE, model, data_file, ref_dir, str(a.block_size)], env)
            ref = json.loads(ref_out.strip().splitlines()[-1])
            manifest = json.load(open(os.path.join(project, "autotrain-data", "manifest.json")))
            ours_blocks = manifest["summary"]["train"]["blocks"]
            if ours_blocks != ref["blocks"]:
                sys.exit(f"block counts differ: ours {ours_blocks}, reference {ref['blocks']}\n{ours_out}")
            if i == 0:  # every token of every block, once
                import numpy as np
                from safetensors.numpy import load_file
                ours_ids = load_file(os.path.join(project, "autotrain-data", "train.safetensors"))["input_ids"]
                if not np.array_equal(ours_ids, np.load(os.path.join(ref_dir, "input_ids.npy"))):
                    sys.exit("the blocks differ from the reference's")
            print(f"| {i + 1} | {ours_s:.2f} | {ref_s:.2f} | {ref_s / ours_s:.2f}x |")
        print()
        print(f"blocks: {ref['blocks']} on both sides, identical token for token; times are whole processes")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
