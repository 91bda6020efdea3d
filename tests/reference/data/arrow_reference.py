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
path = os.path.join(out, "pandas.feather")  # pandas' to_feather: Feather v2, LZ4 by default
t.to_pandas().to_feather(path)
record("pandas_feather", path, "text", None)
path = os.path.join(out, "pandas_zstd.feather")
t.to_pandas().to_feather(path, compression="zstd")
record("pandas_feather_zstd", path, "text", None)
path = os.path.join(out, "feather_default.feather")  # LZ4 frames
feather.write_feather(t, path, chunksize=300)
record("feather_default", path, "text", None)
stream("stream_lz4", t.to_batches(max_chunksize=400), t.schema, options=ipc.IpcWriteOptions(compression="lz4"))
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

# string_view text (polars' and newer pyarrow's layout): short texts inline, long ones in the
# batch's variadic data buffers (several of them after a concatenation).
sv = pa.table({"text": pa.array(texts(500, 8), pa.string_view())})
stream("string_view", sv.to_batches(max_chunksize=200), sv.schema)
stream("string_view_zstd", sv.to_batches(max_chunksize=200), sv.schema, options=ipc.IpcWriteOptions(compression="zstd"))
stream("string_view_lz4", sv.to_batches(max_chunksize=200), sv.schema, options=ipc.IpcWriteOptions(compression="lz4"))
joined = pa.concat_arrays([pa.array(texts(120, s), pa.string_view()) for s in (9, 10, 11)])
before_views = pa.array(["v" * (i % 20) for i in range(len(joined))], pa.string_view())  # its own counts first
stream("string_view_buffers", [pa.record_batch({"views": before_views, "text": joined})],
       pa.schema([("views", pa.string_view()), ("text", pa.string_view())]))
svd = pa.array(texts(300, 12), pa.string()).dictionary_encode().cast(pa.dictionary(pa.int16(), pa.string_view()))
stream("dictionary_string_view", [pa.record_batch({"text": svd})], pa.schema([("text", svd.type)]))

# Dictionary-encoded (categorical) text: indices in the batches, the strings in dictionary
# batches; nulls among the indices and in the dictionary; every index type.
def categorical(values, index_type=pa.int32(), value_type=pa.string()):
    return pa.array(values, value_type).dictionary_encode().cast(pa.dictionary(index_type, value_type))


rows = texts(600, 7)
for index_type in (pa.int8(), pa.uint8(), pa.int16(), pa.uint16(), pa.int32(), pa.uint32(), pa.int64()):
    few = [r if r is None else r[:3] for r in rows]  # few distinct values: they fit 8-bit indices
    col = categorical(few, index_type)
    stream("dictionary_" + str(index_type), [pa.record_batch({"text": col})], pa.schema([("text", col.type)]))
with_null = pa.DictionaryArray.from_arrays(pa.array([0, 1, None, 2, 0, 1], pa.int16()), pa.array(["a", None, "c"]))
stream("dictionary_null_value", [pa.record_batch({"text": with_null})], pa.schema([("text", with_null.type)]))
big = categorical(rows, pa.int32(), pa.large_string())
stream("dictionary_large_string", [pa.record_batch({"text": big})], pa.schema([("text", big.type)]),
       options=ipc.IpcWriteOptions(compression="zstd"))
# Several batches: each new dictionary either extends the last (a delta, when asked for) or
# replaces it (a stream may do that; a file may not, so pyarrow unifies them there).
dtype = pa.dictionary(pa.int32(), pa.string())
first = pa.DictionaryArray.from_arrays(pa.array([0, 1, 1], pa.int32()), pa.array(["a", "b"]))
grown = pa.DictionaryArray.from_arrays(pa.array([2, 0, None], pa.int32()), pa.array(["a", "b", "c"]))
other = pa.DictionaryArray.from_arrays(pa.array([1, 0], pa.int32()), pa.array(["x", "y"]))
batches = [pa.record_batch({"cat": categorical(cats), "text": c, "n": pa.array(range(len(c)))})
           for cats, c in ((["k", "l", "k"], first), (["k", "l", "m"], grown), (["m", "l"], other))]
schema = pa.schema([("cat", dtype), ("text", dtype), ("n", pa.int64())])
stream("dictionary_deltas", batches[:2], schema, options=ipc.IpcWriteOptions(emit_dictionary_deltas=True))
stream("dictionary_replaced", batches, schema)
stream("dictionary_replaced_lz4", batches, schema, options=ipc.IpcWriteOptions(compression="lz4"))
path = os.path.join(out, "dictionary_deltas_file.arrow")  # deltas in the file format (no replacement there)
with ipc.new_file(path, schema, options=ipc.IpcWriteOptions(emit_dictionary_deltas=True)) as w:
    for b in batches[:2]:
        w.write_batch(b)
record("dictionary_deltas_file", path, "text", None)
# Twenty dictionaries of a 1 MB text and "s", the rows all "s": replaced each time, or grown by
# deltas (the memory-budget test reads both: the replaced ones hold one at a time).
big = [pa.DictionaryArray.from_arrays(pa.array([1, 1], pa.int32()), pa.array(["%02d" % i + "b" * 1000000, "s"]))
       for i in range(20)]
stream("dictionary_big_replaced", [pa.record_batch({"text": d}) for d in big], pa.schema([("text", dtype)]))
grown = [pa.DictionaryArray.from_arrays(pa.array([0, 0], pa.int32()),
                                        pa.array(["s"] + ["%02d" % j + "b" * 1000000 for j in range(i)]))
         for i in range(20)]
stream("dictionary_big_deltas", [pa.record_batch({"text": d}) for d in grown], pa.schema([("text", dtype)]),
       options=ipc.IpcWriteOptions(emit_dictionary_deltas=True))
path = os.path.join(out, "dictionary_file.arrow")
feather.write_feather(pa.Table.from_batches(batches, schema), path)
record("dictionary_file", path, "text", None)
path = os.path.join(out, "pandas_categorical.feather")
import pandas as pd  # noqa: E402
pd.DataFrame({"text": pd.Categorical([r or "-" for r in rows])}).to_feather(path)
record("pandas_categorical", path, "text", None)

# polars: string_view text by default, categoricals as dictionary<string_view, uint32>; IPC
# files (LZ4, zstd or none) and streams; the oldest compat level writes large_string.
import polars as pl  # noqa: E402

frame = pl.DataFrame({"n": list(range(900)), "text": texts(900, 13)})
for name, write in (("polars_ipc", lambda p: frame.write_ipc(p)),
                    ("polars_ipc_lz4", lambda p: frame.write_ipc(p, compression="lz4")),
                    ("polars_ipc_zstd", lambda p: frame.write_ipc(p, compression="zstd")),
                    ("polars_ipc_oldest", lambda p: frame.write_ipc(p, compat_level=pl.CompatLevel.oldest())),
                    ("polars_ipc_stream", lambda p: frame.write_ipc_stream(p, compression="zstd")),
                    ("polars_categorical", lambda p: frame.with_columns(pl.col("text").cast(pl.Categorical))
                     .write_ipc(p, compression="lz4")),
                    ("polars_chunks", lambda p: pl.concat([frame, frame.head(77), frame.tail(300)], rechunk=False)
                     .write_ipc(p))):
    path = os.path.join(out, name + ".arrow")
    write(path)
    record(name, path, "text", None)

# Refused, saying what the column holds.
stream("int_text", [pa.record_batch({"text": pa.array([1, 2])})], pa.schema([("text", pa.int64())]),
       error="holds integers, not text")


def repeat_footer_entry(data, field, times):
    """The IPC file `data` with the footer's list `field` (2 dictionaries, 3 record batches)
    replaced by its first entry `times` over: a new vector appended to the footer, the field's
    offset pointed at it."""
    import struct
    length = struct.unpack("<i", data[-10:-6])[0]
    start = len(data) - 10 - length
    footer = bytearray(data[start:len(data) - 10])
    root = struct.unpack("<I", footer[:4])[0]
    vtable = root - struct.unpack("<i", footer[root:root + 4])[0]
    at = root + struct.unpack("<H", footer[vtable + 4 + 2 * field:vtable + 6 + 2 * field])[0]
    vector = at + struct.unpack("<I", footer[at:at + 4])[0]
    entry = bytes(footer[vector + 4:vector + 28])
    while (len(footer) + 4) % 8:
        footer += b"\0"
    struct.pack_into("<I", footer, at, len(footer) - at)
    footer += struct.pack("<I", times) + entry * times
    return data[:start] + bytes(footer) + struct.pack("<i", len(footer)) + b"ARROW1"


# Footers naming one batch or dictionary again and again (a few KB that would decode without end).
for name, field, table in (("repeated_batches", 3, t), ("repeated_dictionary", 2,
                                                        pa.table({"text": pa.array(["x", "y"]).dictionary_encode()}))):
    sink = pa.BufferOutputStream()
    with ipc.new_file(sink, table.schema, options=ipc.IpcWriteOptions(compression="zstd")) as w:
        w.write_table(table)
    path = os.path.join(out, name + ".arrow")
    with open(path, "wb") as f:
        f.write(repeat_footer_entry(sink.getvalue().to_pybytes(), field, 3))
    cases.append({"name": name, "file": path, "column": "text", "error": "footer entries that overlap or repeat"})

ints = pa.array([1, 2, 1]).dictionary_encode()
stream("dictionary_int_text", [pa.record_batch({"text": ints})], pa.schema([("text", ints.type)]),
       error="holds dictionary-encoded integers, not text")

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
