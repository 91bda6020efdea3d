#!/usr/bin/env python3
"""Parquet files as the Hugging Face stack writes them, and what it reads back from them.

Writes into OUT one file per case (pyarrow with its defaults and with each option our reader has
to handle: every codec, dictionary, PLAIN and DELTA encodings, data pages v1 and v2, small pages and row groups, required
columns, large_string, other columns around the text; and files written by `datasets` and pandas,
the Hub's and users' writers) and OUT/cases.json:
  [{"name", "file", "column", "columns": [...], "values": [text or null, ...]}             (readable)
   {"name", "file", "column", "error": "a phrase our error must contain"}]                 (refused)
"values" is pyarrow's own reading of the file, not what we wrote into it.

usage: parquet_reference.py OUT
"""
import json
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq

out = sys.argv[1]
cases = []


def texts(n, seed):
    """Guanaco-shaped texts with nulls, empties, repeats (dictionary hits), non-ASCII, newlines,
    quotes and commas, and a few long ones."""
    words = ["### Human:", "### Assistant:", "über", "naïve", "日本語", "🙂", "a,b", '"q"', "\n", "\r\n", "x" * 50]
    state = seed
    rows = []
    for i in range(n):
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        r = state >> 33
        if r % 17 == 0:
            rows.append(None)
        elif r % 19 == 0:
            rows.append("")
        elif r % 7 == 0:
            rows.append("a repeated row")
        else:
            k = 1 + r % 40
            rows.append(" ".join(words[(r >> j) % len(words)] for j in range(k)))
    rows[3] = "y" * 70000  # one long value: past a small page, and the dictionary's size limit
    return rows


def readable(name, table, column="text", **kwargs):
    path = os.path.join(out, name + ".parquet")
    pq.write_table(table, path, **kwargs)
    back = pq.read_table(path)
    cases.append({"name": name, "file": path, "column": column, "columns": back.column_names,
                  "values": back.column(column).to_pylist()})


def refused(name, table, error, column="text", **kwargs):
    path = os.path.join(out, name + ".parquet")
    pq.write_table(table, path, **kwargs)
    cases.append({"name": name, "file": path, "column": column, "error": error})


base = pa.table({"text": pa.array(texts(3000, 1), pa.string())})
readable("defaults", base)  # snappy, dictionary, data page v1
readable("plain_uncompressed", base, compression="none", use_dictionary=False)
readable("gzip", base, compression="gzip")
readable("zstd", base, compression="zstd")
readable("v2_snappy", base, data_page_version="2.0")
readable("v2_uncompressed", base, data_page_version="2.0", compression="none")
readable("v2_zstd_plain", base, data_page_version="2.0", compression="zstd", use_dictionary=False)
# Many row groups and pages; the dictionary outgrows its limit and the writer falls back to PLAIN
# within a column chunk.
readable("small_pages", base, row_group_size=251, data_page_size=512, dictionary_pagesize_limit=2048)
readable("required", pa.table({"text": pa.array([t or "" for t in texts(500, 2)], pa.string())}),
         compression="none")
schema = pa.schema([pa.field("text", pa.string(), nullable=False)])
readable("required_schema", pa.table({"text": [t or "-" for t in texts(500, 3)]}, schema=schema))
readable("large_string", pa.table({"text": pa.array(texts(400, 4), pa.large_string())}))
n = 600
others = pa.table({
    "id": pa.array(range(n), pa.int64()),
    "tags": pa.array([["a", "b"][: i % 3] for i in range(n)], pa.list_(pa.string())),
    "meta": pa.array([{"lang": "en", "score": i * 0.5} for i in range(n)]),
    "text": pa.array(texts(n, 5), pa.string()),
    "prompt": pa.array(["p%d" % i for i in range(n)], pa.string()),
})
readable("other_columns", others)
readable("other_columns_prompt", others, column="prompt")
readable("empty_table", pa.table({"text": pa.array([], pa.string())}))
# Far more rows than bytes: dictionary indices and levels in long runs.
readable("compressible", pa.table({"text": ["hello"] * 300000}))
readable("all_null_plain", pa.table({"text": pa.array([None] * 3000, pa.string())}), use_dictionary=False)
readable("all_null_v2_zstd", pa.table({"text": pa.array([None] * 3000, pa.string())}), data_page_version="2.0",
         compression="zstd")
readable("json_column", pa.table({"text": pa.array(['{"a": 1}', None, "[2]"], pa.json_())}))
# The other codecs pyarrow writes (compression="lz4" is the LZ4_RAW codec).
readable("lz4", base, compression="lz4")
readable("brotli", base, compression="brotli")
readable("v2_brotli", base, compression="brotli", data_page_version="2.0")
# The DELTA encodings of byte arrays (what Spark and parquet-mr's v2 writers use): lengths as
# DELTA_BINARY_PACKED, values whole or as prefix + suffix of the one before.
readable("delta_length", base, use_dictionary=False, column_encoding={"text": "DELTA_LENGTH_BYTE_ARRAY"})
readable("delta_byte_array", base, use_dictionary=False, column_encoding={"text": "DELTA_BYTE_ARRAY"})
# Many pages, v2: a page's first value shares no prefix with the last page's.
readable("delta_byte_array_small_pages_v2", base, use_dictionary=False, data_page_size=700,
         column_encoding={"text": "DELTA_BYTE_ARRAY"}, data_page_version="2.0", compression="zstd")
ordered = pa.table({"text": sorted(t or "" for t in texts(2000, 10)) + ["/usr/share/dict/%05d" % i for i in range(3000)]})
readable("delta_byte_array_sorted", ordered, use_dictionary=False, column_encoding={"text": "DELTA_BYTE_ARRAY"},
         compression="none")
readable("delta_length_large_string_v2", pa.table({"text": pa.array(texts(900, 11), pa.large_string())}),
         use_dictionary=False, column_encoding={"text": "DELTA_LENGTH_BYTE_ARRAY"}, data_page_version="2.0",
         compression="none", data_page_size=300)

# Files other writers made (committed beside the test): pyarrow's reading is the reference.
fixtures = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "unit", "data", "parquet_fixtures")
for name in sorted(n for n in os.listdir(fixtures) if n.endswith(".parquet")):
    path = os.path.join(fixtures, name)
    back = pq.read_table(path)
    cases.append({"name": "fixture " + name, "file": path, "column": "text", "columns": back.column_names,
                  "values": back.column("text").to_pylist()})

# The Hub's writers: datasets (Dataset.to_parquet) and pandas (to_parquet).
from datasets import Dataset  # noqa: E402
import pandas as pd  # noqa: E402

path = os.path.join(out, "datasets.parquet")
Dataset.from_dict({"text": texts(1200, 6), "n": list(range(1200))}).to_parquet(path)
back = pq.read_table(path)
cases.append({"name": "datasets", "file": path, "column": "text", "columns": back.column_names,
              "values": back.column("text").to_pylist()})
path = os.path.join(out, "pandas.parquet")
pd.DataFrame({"text": texts(700, 7)}).to_parquet(path)
back = pq.read_table(path)
cases.append({"name": "pandas", "file": path, "column": "text", "columns": back.column_names,
              "values": back.column("text").to_pylist()})

# polars' own Parquet writer (zstd by default), with each codec it offers, small pages, and a
# categorical column.
import polars as pl  # noqa: E402

frame = pl.DataFrame({"n": list(range(2500)), "text": texts(2500, 12)})
for name, kwargs in (("polars", {}), ("polars_snappy_small_pages", {"compression": "snappy", "data_page_size": 600,
                                                                     "row_group_size": 700}),
                     ("polars_lz4", {"compression": "lz4"}), ("polars_brotli", {"compression": "brotli"}),
                     ("polars_gzip", {"compression": "gzip"}), ("polars_uncompressed", {"compression": "uncompressed"})):
    path = os.path.join(out, name + ".parquet")
    frame.write_parquet(path, **kwargs)
    back = pq.read_table(path)
    cases.append({"name": name, "file": path, "column": "text", "columns": back.column_names,
                  "values": back.column("text").to_pylist()})
path = os.path.join(out, "polars_categorical.parquet")
frame.with_columns(pl.col("text").cast(pl.Categorical)).write_parquet(path)
back = pq.read_table(path)
cases.append({"name": "polars_categorical", "file": path, "column": "text", "columns": back.column_names,
              "values": back.column("text").to_pylist()})

# Refused, each saying what the file holds.
refused("nested", pa.table({"text": pa.array([["a"], ["b", "c"]], pa.list_(pa.string()))}), "is nested")
refused("integers", pa.table({"text": pa.array([1, 2], pa.int64())}), "holds INT64 values, not text")
refused("binary", pa.table({"text": pa.array([b"a", b"b"], pa.binary())}), "binary data")
# Three row groups naming one column chunk: pyarrow reads it three times; we refuse it (a few KB
# could otherwise decode without end).
sys.path.insert(0, fixtures)
from make_fixtures import repeated_chunk  # noqa: E402

path = os.path.join(out, "repeated_chunk.parquet")
repeated_chunk(path)
cases.append({"name": "repeated_chunk", "file": path, "column": "text", "error": "column chunks overlap or repeat"})

with open(os.path.join(out, "cases.json"), "w", encoding="utf-8") as f:
    json.dump(cases, f)

# Files for the memory-budget tests (not cases: their texts are large): 1,000 copies of a 100 KB
# text as DELTA_BYTE_ARRAY (each value all prefix: a few KB decode to 100 MB), and one 20 MB text
# in a Brotli page (its decompressed page and the text both take memory).
pq.write_table(pa.table({"text": ["x" * 100000] * 1000}), os.path.join(out, "delta_repeats.parquet"),
               use_dictionary=False, column_encoding={"text": "DELTA_BYTE_ARRAY"}, compression="none")
pq.write_table(pa.table({"text": ["y" * 20000000]}), os.path.join(out, "brotli_20mb.parquet"), compression="brotli",
               use_dictionary=False)

# A dataset as the Hub stores it (data/{split}-00000-of-00001.parquet) in a hub-cache layout, and
# what the tutorial's dataload.py wrote from it: load_dataset(...)["train"].to_csv(DATA_FILE).
from datasets import load_dataset  # noqa: E402

snapshot = os.path.join(out, "hub", "datasets--org--pq", "snapshots", "abc123")
os.makedirs(os.path.join(snapshot, "data"))
os.makedirs(os.path.join(out, "hub", "datasets--org--pq", "refs"))
with open(os.path.join(out, "hub", "datasets--org--pq", "refs", "main"), "w") as f:
    f.write("abc123")
train_rows = [t for t in texts(800, 8) if t is not None]  # datasets writes a null as an empty field
pq.write_table(pa.table({"text": train_rows}), os.path.join(snapshot, "data", "train-00000-of-00001.parquet"))
pq.write_table(pa.table({"text": texts(90, 9)}), os.path.join(snapshot, "data", "test-00000-of-00001.parquet"),
               compression="zstd")
load_dataset(snapshot, cache_dir=os.path.join(out, "datasets-cache"))["train"].to_csv(
    os.path.join(out, "dataload_train.csv"), index=False)
