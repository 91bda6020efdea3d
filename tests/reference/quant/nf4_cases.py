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
        yield f"zeros_{d}", torch.zeros(192).to(dtype), 64, False
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
    yield "tiny_values_float16", (torch.randn(640, generator=g) * 1e-4).to(torch.float16), 64, False
    # bfloat16 has float32's exponent range: its tiny values and subnormals (below 1.18e-38) are
    # float32's, held in 8 mantissa bits.
    yield "tiny_values_bfloat16", (torch.randn(640, generator=g) * 1e-30).to(torch.bfloat16), 64, False
    yield "denormal_bfloat16", (torch.randn(640, generator=g) * 1e-39).to(torch.bfloat16), 64, False
    yield "denormal_dq_bfloat16", (torch.randn(640, generator=g) * 1e-39).to(torch.bfloat16), 64, True
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
    # Equal block absmaxes: the centered statistics are all zero, a nested block of zeros.
    yield "constant_dq_float32", torch.full((64 * 300,), 0.375), 64, True
    yield "near_midpoints_dq_float32", near_midpoints(g), 64, True


def near_midpoints(g, nested_blocks=16, tail=100):
    """Block absmaxes whose centered, scaled values sit within ~3e-5 of the midpoints between
    codes of the 8-bit dynamic map, or close to 0 where its codes are denser than 1/65535.

    bitsandbytes' CPU kernel picks the code nearest to the value snapped to a 65536-point grid,
    not the code nearest to the value, so here the two differ on many elements (checked below).
    Every nested block of 256 holds an absmax at 1.5 and one at 0.5 (scaled values +-1), and the
    targets come in +-pairs around 1.0, so the mean is 1.0 up to rounding.
    """
    code = F.create_dynamic_map()
    mids = (code[:-1] + code[1:]) / 2
    targets = []
    for length in [256] * nested_blocks + [tail]:
        half = (length - 2) // 2
        t = mids[torch.randint(0, 255, (half,), generator=g)] + (torch.rand(half, generator=g) * 2 - 1) * 3e-5
        t[: half // 8] = (torch.rand(half // 8, generator=g) * 2 - 1) * 1e-4  # the dense codes near 0
        targets += [torch.tensor([1.0, -1.0]), t.clamp(-1, 1), -t.clamp(-1, 1)]
    absmax = 1.0 + 0.5 * torch.cat(targets)
    x = (torch.rand(absmax.numel(), 64, generator=g) * 2 - 1) * 0.4  # below every absmax (>= 0.5)
    x[:, 0] = absmax
    return x.reshape(-1)


def absmax_of(x, blocksize):
    flat = x.float().reshape(-1)
    pad = (-flat.numel()) % blocksize
    return torch.nn.functional.pad(flat, (0, pad)).reshape(-1, blocksize).abs().amax(1)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    names = []
    for name, x, blocksize, dq in cases():
        assert name.endswith(str(x.dtype).split(".")[-1]), f"{name} is {x.dtype}"  # the name says the dtype
        if name.startswith("denormal_"):
            tiny = torch.finfo(x.dtype).tiny
            assert bool(((x != 0) & (x.abs() < tiny)).any()), f"{name} holds no subnormal"
        packed, state = F.quantize_4bit(x, blocksize=blocksize, quant_type="nf4", compress_statistics=dq)
        deq = F.dequantize_4bit(packed, state)
        t = {"input": x.contiguous(), "packed": packed.contiguous(), "dequant": deq.contiguous()}
        if dq:
            t["absmax"] = state.absmax.contiguous()
            t["nested_absmax"] = state.state2.absmax.contiguous()
            t["nested_code"] = state.state2.code.contiguous()
            t["offset"] = state.offset.reshape(1).float()
            if name.startswith("near_midpoints"):
                # The case must tell the grid lookup from an exact nearest-code search.
                a = state.state2.absmax.repeat_interleave(256)[: state.absmax.numel()]
                s = torch.clamp((absmax_of(x, blocksize) - state.offset) / a, -1, 1)
                code = state.state2.code
                nearest = torch.bucketize(s, (code[:-1] + code[1:]) / 2).to(torch.uint8)
                differ = int((nearest != state.absmax).sum())
                assert differ >= 100, f"{name}: only {differ} codes differ from the nearest"
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
