#!/usr/bin/env python3
"""Arrow IPC files as `datasets`' save_to_disk and pyarrow write them, and what pyarrow reads back.

Writes into OUT one file per case and OUT/cases.json, in the layout of parquet_reference.py:
  [{"name", "file", "column", "columns": [...], "values": [text or null, ...]}   (readable)
   {"name", "file", "column", "error": "a phrase our error must contain"}]       (refused)
and OUT/saved/ (a DatasetDict saved with save_to_disk) with OUT/saved_train.json, the train
split's texts as datasets.load_from_disk reads them.

usage: arrow_reference.py OUT
"""
import json
import os
import sys

import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.ipc as ipc

out = sys.argv[1]
cases = []


def texts(n, seed):
    words = ["### Human:", "### Assistant:", "über", "日本語", "🙂", "a,b", '"q"', "\n", "x" * 40]
    state, rows = seed, []
    for i in range(n):
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        r = state >> 33
        rows.append(None if r % 13 == 0 else "" if r % 17 == 0 else
                    " ".join(words[(r >> j) % len(words)] for j in range(1 + r % 30)))
    return rows


def stream(name, batches, schema, column="text", options=None, error=None):
    path = os.path.join(out, name + ".arrow")
    with ipc.new_stream(path, schema, options=options) as w:
        for b in batches:
            w.write_batch(b)
    record(name, path, column, error)


def record(name, path, column, error):
    if error:
        cases.append({"name": name, "file": path, "column": column, "error": error})
        return
    with pa.memory_map(path) as src:
        try:
            table = ipc.open_stream(src).read_all()
        except pa.ArrowInvalid:
            table = ipc.open_file(src).read_all()
    cases.append({"name": name, "file": path, "column": column, "columns": table.column_names,
                  "values": table.column(column).to_pylist()})


t = pa.table({"text": pa.array(texts(1500, 1), pa.string())})
stream("stream", t.to_batches(max_chunksize=400), t.schema)
stream("stream_zstd", t.to_batches(max_chunksize=400), t.schema, options=ipc.IpcWriteOptions(compression="zstd"))
lt = pa.table({"text": pa.array(texts(300, 2), pa.large_string())})
stream("large_string", lt.to_batches(), lt.schema)
path = os.path.join(out, "file_format.arrow")
feather.write_feather(t, path, compression="zstd", chunksize=500)
record("file_format", path, "text", None)
path = os.path.join(out, "pandas.feather")  # pandas' to_feather: Feather v2, lz4 by default; zstd here
t.to_pandas().to_feather(path, compression="zstd")
record("pandas_feather", path, "text", None)
path = os.path.join(out, "file_uncompressed.arrow")
feather.write_feather(t, path, compression="uncompressed")
record("file_uncompressed", path, "text", None)

# Columns of every layout before the text: their nodes and buffers must be stepped over.
n = 200
views = pa.array(["short", "a string longer than twelve bytes"] * (n // 2), pa.string_view())
before = pa.table({
    "nothing": pa.nulls(n),
    "id": pa.array(range(n), pa.int64()),
    "ok": pa.array([i % 2 == 0 for i in range(n)]),
    "tags": pa.array([["a", "b"][: i % 3] for i in range(n)], pa.list_(pa.string())),
    "meta": pa.array([{"lang": "en", "score": i * 0.5} for i in range(n)]),
    "views": views,
    "fixed": pa.array([[i, i] for i in range(n)], pa.list_(pa.int32(), 2)),
    "when": pa.array(range(n), pa.timestamp("ms")),
    "cat": pa.array(["x", "y"] * (n // 2)).dictionary_encode(),
    "text": pa.array(texts(n, 3), pa.string()),
    "after": pa.array(range(n), pa.int32()),
})
stream("other_columns", before.to_batches(max_chunksize=64), before.schema)
# Metadata V4 (pyarrow before 1.0): a union still has its validity buffer.
unions = pa.table({
    "u": pa.UnionArray.from_sparse(pa.array([0, 1] * (n // 2), pa.int8()),
                                   [pa.array(range(n), pa.int64()), pa.array(["s"] * n)]),
    "text": pa.array(texts(n, 6), pa.string()),
})
stream("union_v5", unions.to_batches(max_chunksize=64), unions.schema)
stream("union_v4", unions.to_batches(max_chunksize=64), unions.schema,
       options=ipc.IpcWriteOptions(metadata_version=ipc.MetadataVersion.V4))

# Refused, saying what the column holds.
stream("dictionary_text", [pa.record_batch({"text": pa.array(["a", "b", "a"]).dictionary_encode()})],
       pa.schema([("text", pa.dictionary(pa.int32(), pa.string()))]), error="dictionary-encoded")
stream("int_text", [pa.record_batch({"text": pa.array([1, 2])})], pa.schema([("text", pa.int64())]),
       error="holds integers, not text")
stream("lz4", t.to_batches(max_chunksize=400), t.schema, options=ipc.IpcWriteOptions(compression="lz4"),
       error="LZ4")

# datasets' own writer: save_to_disk of a DatasetDict, read back by load_from_disk.
from datasets import Dataset, DatasetDict, load_from_disk  # noqa: E402

saved = os.path.join(out, "saved")
DatasetDict({
    "train": Dataset.from_dict({"text": texts(700, 4), "n": list(range(700))}),
    "test": Dataset.from_dict({"text": texts(50, 5), "n": list(range(50))}),
}).save_to_disk(saved)
with open(os.path.join(out, "saved_train.json"), "w", encoding="utf-8") as f:
    json.dump(list(load_from_disk(saved)["train"]["text"]), f)

with open(os.path.join(out, "cases.json"), "w", encoding="utf-8") as f:
    json.dump(cases, f)
