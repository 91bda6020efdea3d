#!/usr/bin/env python3
"""Compressed data files as the datasets library reads them: load_dataset("json" | "csv" | "text",
data_files=...) decompresses gzip (.gz, .gzip, any case; zero padding after the data), zstd
(.zst, .zstd; through the zstandard module), bzip2 (.bz2) and xz (.xz) files. Writes into OUT the files and
OUT/cases.json: [{"file", "column", "texts": [text or null, ...]}].

usage: compressed_reference.py OUT
"""
import bz2
import gzip
import json
import lzma
import os
import sys

import pyarrow as pa
from datasets import load_dataset

out = sys.argv[1]
cache = os.path.join(out, "cache")
rows = [{"text": "### Human: über 🙂### Assistant: yes", "n": 1}, {"text": None, "n": 2}, {"text": "", "n": 3},
        {"text": "a,b\n\"q\"", "n": 4}] * 50
jsonl = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
csv = ("text,n\n" + "".join('"%s",%d\n' % ((r["text"] or "").replace('"', '""'), r["n"]) for r in rows)).encode()
txt = "".join((r["text"] or "").replace("\n", " ") + "\n" for r in rows).encode()
cases = []


def write(name, data):
    path = os.path.join(out, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def case(path, loader, column="text"):
    data = load_dataset(loader, data_files=path, split="train", cache_dir=cache)
    cases.append({"file": path, "column": column, "texts": list(data[column])})


zstd = pa.Codec("zstd")
for name, data, loader in (("rows.jsonl", jsonl, "json"), ("rows.csv", csv, "csv"), ("rows.txt", txt, "text")):
    # Two gzip members one after the other, as `cat a.gz b.gz` makes them.
    half = len(data) // 2
    gz = write(name + ".gz", gzip.compress(data[:half]) + gzip.compress(data[half:]))
    case(gz, loader)
    # Two zstd frames, bzip2 streams, xz streams likewise.
    case(write(name + ".zst", zstd.compress(data[:half], asbytes=True) + zstd.compress(data[half:], asbytes=True)),
         loader)
    case(write(name + ".bz2", bz2.compress(data[:half]) + bz2.compress(data[half:])), loader)
    case(write(name + ".xz", lzma.compress(data[:half]) + lzma.compress(data[half:])), loader)

# Zero padding after the last member (tape blocks) is skipped; the suffix in any case, or .gzip.
case(write("padded.jsonl.gz", gzip.compress(jsonl) + b"\0" * 512), "json")
case(write("upper.jsonl.GZ", gzip.compress(jsonl)), "json")
case(write("long.csv.gzip", gzip.compress(csv)), "csv")
case(write("upper.txt.ZSTD", zstd.compress(txt, asbytes=True)), "text")
# After a complete bzip2 or xz stream, bytes that do not start another are ignored (Python's
# readers do so): junk, zero padding, a second xz stream after padding (read no further).
case(write("junk.jsonl.bz2", bz2.compress(jsonl) + b"garbage!!"), "json")
case(write("zeros.csv.bz2", bz2.compress(csv) + b"\0" * 8), "csv")
case(write("junk.jsonl.xz", lzma.compress(jsonl) + b"garbage!!"), "json")
case(write("padded_then_more.jsonl.xz", lzma.compress(jsonl) + b"\0" * 4 + lzma.compress(jsonl)), "json")
# The older .lzma format under an .xz name (Python's lzma detects it).
case(write("alone.txt.xz", lzma.compress(txt, format=lzma.FORMAT_ALONE)), "text")
# (No case for xz stream padding: Python's lzma, and so datasets, fails on it or stops reading
# there, where xz(1) and we read on.) Many blocks:
case(write("blocks.csv.XZ", lzma.compress(csv * 40, preset=1)), "csv")

with open(os.path.join(out, "cases.json"), "w", encoding="utf-8") as f:
    json.dump(cases, f)
