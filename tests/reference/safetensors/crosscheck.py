"""Oracle for the safetensors cross-checks: the Python `safetensors` package writes files that
our reader must read and our writer must reproduce byte for byte, reads the files we write, and
rejects the corrupt files we reject.

  crosscheck.py write FILE            write a file with one tensor of every dtype torch has
  crosscheck.py same FILE_A FILE_B    both load to the same tensors and metadata
  crosscheck.py pattern FILE          FILE holds the tensors of pattern_tensors() (written by C++)
  crosscheck.py reject FILE...        every file fails to load
"""
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file


def write(path):
    g = torch.Generator().manual_seed(1234)
    t = {}
    floats = [torch.float64, torch.float32, torch.float16, torch.bfloat16]
    for i, dt in enumerate(floats):
        t[f"float.{i}"] = torch.randn(3, 5, generator=g).to(dt)
    for i, dt in enumerate([torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8]):
        t[f"int.{i}"] = torch.randint(-100 if dt != torch.uint8 else 0, 100, (7,), generator=g).to(dt)
    for i, dt in enumerate([torch.uint16, torch.uint32, torch.uint64]):
        t[f"uint.{i}"] = torch.randint(0, 1000, (4,), generator=g).to(dt)
    for i, dt in enumerate([torch.float8_e4m3fn, torch.float8_e5m2]):
        t[f"f8.{i}"] = torch.randn(6, generator=g).to(dt)
    t["bool"] = torch.randn(9, generator=g) > 0
    t["complex"] = torch.randn(2, 2, dtype=torch.complex64, generator=g)
    t["scalar"] = torch.tensor(3.5)
    t["empty"] = torch.zeros(0, 4)
    t["naïve name é"] = torch.arange(5, dtype=torch.float32)
    t["b"] = torch.ones(2, 3, dtype=torch.float32)
    t["a"] = torch.ones(3, 2, dtype=torch.float32) * 2
    save_file(t, path, metadata={"format": "pt"})


def load(path):
    with safe_open(path, framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def same(a, b):
    ta, ma = load(a)
    tb, mb = load(b)
    assert ma == mb, (ma, mb)
    assert sorted(ta) == sorted(tb), (sorted(ta), sorted(tb))
    for k in ta:
        assert ta[k].dtype == tb[k].dtype and ta[k].shape == tb[k].shape, k
        assert torch.equal(ta[k].view(torch.uint8) if ta[k].dim() else ta[k], tb[k].view(torch.uint8) if tb[k].dim() else tb[k]), k


def pattern_tensors():
    # Must agree with PatternTensors() in tests/unit/safetensors/safetensors_test.cpp.
    return {
        "weight": (torch.arange(12, dtype=torch.float32) * 0.25 - 1).reshape(3, 4),
        "bias.bf16": torch.tensor([1.0, -2.5, 3.25], dtype=torch.bfloat16),
        "ids": torch.arange(-3, 3, dtype=torch.int64),
        "flags": torch.tensor([True, False, True]),
        "scalar": torch.tensor(7.0, dtype=torch.float64),
        "empty": torch.zeros(0, 2, dtype=torch.float16),
    }


def pattern(path):
    got, meta = load(path)
    assert meta == {"format": "pt"}, meta
    want = pattern_tensors()
    assert sorted(got) == sorted(want), (sorted(got), sorted(want))
    for k, w in want.items():
        assert got[k].dtype == w.dtype and got[k].shape == w.shape and torch.equal(got[k], w), (k, got[k], w)


def reject(paths):
    accepted = []
    for p in paths:
        try:
            load_file(p)
            accepted.append(p)
        except Exception:
            pass
    assert not accepted, f"python safetensors accepted: {accepted}"


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"write": lambda: write(args[0]), "same": lambda: same(*args), "pattern": lambda: pattern(args[0]),
     "reject": lambda: reject(args)}[cmd]()
    print("ok")
