#!/usr/bin/env python3
"""Builds NF4 reference cases with the real bitsandbytes (CPU backend of the pinned version).

For every case it writes OUT/<name>.safetensors holding the input tensor and what
bitsandbytes makes of it: `packed` (uint8 nibbles), `absmax` (float32, or uint8 when double
quantized, with `nested_absmax`, `nested_code`, `offset`), and `dequant` (dequantize_4bit in the
input's dtype). The C++ test quantizes `input` itself and must match these bit for bit.

usage: nf4_cases.py OUT_DIR
"""
import os
import sys

import torch
from safetensors.torch import save_file

import bitsandbytes.functional as F

torch.manual_seed(1234)


def cases():
    g = torch.Generator().manual_seed(7)
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        d = str(dtype).split(".")[-1]
        yield f"random_{d}", torch.randn(4544 * 3 + 64, generator=g).to(dtype), 64, False
        yield f"random_dq_{d}", torch.randn(64 * 300 + 32, generator=g).to(dtype), 64, True
        yield f"weight_{d}", (torch.randn(96, 128, generator=g) * 0.02).to(dtype), 64, False
        yield f"constant_{d}", torch.full((256,), 0.375).to(dtype), 64, False
        yield f"zeros_{d}", torch.zeros(192), 64, False
        yield f"odd_{d}", torch.randn(4545, generator=g).to(dtype), 64, False
        yield f"tiny_len1_{d}", torch.tensor([0.5]).to(dtype), 64, False
        yield f"bs128_{d}", torch.randn(1000, generator=g).to(dtype), 128, True
        yield f"bs256_{d}", torch.randn(2048 + 7, generator=g).to(dtype), 256, False
    # Magnitudes at the edges of each format.
    yield "tiny_values_float32", torch.randn(640, generator=g) * 1e-30, 64, False
    yield "huge_float32", torch.randn(640, generator=g) * 1e30, 64, True
    yield "denormal_float32", torch.randn(640, generator=g) * 1e-41, 64, False
    yield "huge_float16", (torch.rand(640, generator=g) * 2 - 1).mul(65504).to(torch.float16), 64, False
    yield "denormal_float16", (torch.randn(640, generator=g) * 1e-6).to(torch.float16), 64, False
    yield "huge_bfloat16", (torch.randn(640, generator=g) * 1e37).to(torch.bfloat16), 64, False
    # Values sitting exactly on the NF4 midpoints (ties go to the lower code).
    code = F.get_4bit_type("nf4", device="cpu")
    mids = (code[:-1] + code[1:]) / 2
    ties = torch.cat([mids, -mids, torch.tensor([1.0])]).repeat(2)[:64]
    yield "ties_float32", ties, 64, False
    # Zeros mixed with data, a zero tail block, and a zero block inside a double-quantized run.
    mixed = torch.randn(64 * 5 + 10, generator=g)
    mixed[64:128] = 0
    mixed[-10:] = 0
    yield "zero_blocks_float32", mixed, 64, False
    yield "zero_blocks_dq_float32", mixed.clone(), 64, True


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    names = []
    for name, x, blocksize, dq in cases():
        packed, state = F.quantize_4bit(x, blocksize=blocksize, quant_type="nf4", compress_statistics=dq)
        deq = F.dequantize_4bit(packed, state)
        t = {"input": x.contiguous(), "packed": packed.contiguous(), "dequant": deq.contiguous()}
        if dq:
            t["absmax"] = state.absmax.contiguous()
            t["nested_absmax"] = state.state2.absmax.contiguous()
            t["nested_code"] = state.state2.code.contiguous()
            t["offset"] = state.offset.reshape(1).float()
        else:
            t["absmax"] = state.absmax.contiguous()
        meta = {"blocksize": str(blocksize), "double_quant": str(int(dq)), "dtype": str(x.dtype).split(".")[-1]}
        save_file(t, os.path.join(out, name + ".safetensors"), metadata=meta)
        names.append(name)
    with open(os.path.join(out, "cases.txt"), "w") as f:
        f.write("\n".join(names) + "\n")
    print(f"wrote {len(names)} cases to {out}")


if __name__ == "__main__":
    main()
