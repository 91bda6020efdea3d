#!/usr/bin/env python3
"""NF4 on the CPU: autotrain vs bitsandbytes, side by side in one run, same weight shape.

usage: run_bench.py BENCH_NF4_BINARY [--rows R --cols C --dtype fp16|bf16|fp32 --repeat N]
Prints both timings and the ratios (bitsandbytes time / autotrain time; > 1 means faster).
Run it from the bootstrap venv's python (it needs torch + bitsandbytes).
"""
import argparse
import json
import os
import subprocess
import time

os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")  # time the kernels, not torch.compile

import torch
import bitsandbytes.functional as F


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--rows", type=int, default=4544)
    ap.add_argument("--cols", type=int, default=18176)
    ap.add_argument("--dtype", default="fp16")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()

    ours = json.loads(subprocess.check_output(
        [a.binary, str(a.rows), str(a.cols), "--dtype", a.dtype, "--repeat", str(a.repeat)]).decode())

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[a.dtype]
    torch.manual_seed(0)
    w = (torch.randn(a.rows, a.cols) * 0.02).to(dtype)
    best_q = best_d = float("inf")
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        packed, state = F.quantize_4bit(w, blocksize=64, quant_type="nf4")
        t1 = time.perf_counter()
        F.dequantize_4bit(packed, state)
        t2 = time.perf_counter()
        best_q, best_d = min(best_q, t1 - t0), min(best_d, t2 - t1)
    theirs = {"impl": "bitsandbytes", "quantize_s": best_q, "dequantize_s": best_d, "threads": torch.get_num_threads()}
    print(json.dumps(ours))
    print(json.dumps(theirs))
    print(f"quantize   {a.rows}x{a.cols} {a.dtype}: autotrain {ours['quantize_s']*1e3:.1f} ms, "
          f"bitsandbytes {best_q*1e3:.1f} ms -> {best_q / ours['quantize_s']:.2f}x")
    print(f"dequantize {a.rows}x{a.cols} {a.dtype}: autotrain {ours['dequantize_s']*1e3:.1f} ms, "
          f"bitsandbytes {best_d*1e3:.1f} ms -> {best_d / ours['dequantize_s']:.2f}x")


if __name__ == "__main__":
    main()
