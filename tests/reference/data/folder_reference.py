#!/usr/bin/env python3
"""Folders of data files in more than one format, as load_dataset(FOLDER) reads them: one format
per split, the most common extension's (ties: .parquet, .arrow, .jsonl, .json, .csv, then the
last in alphabetical order), the other files left out. Writes each folder under OUT and
OUT/cases.json: [{"folder", "splits": {split: [text, ...]}}].

usage: folder_reference.py OUT
"""
import json
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq
from datasets import load_dataset

out = sys.argv[1]
cache = os.path.join(out, "cache")
cases = []


def write(folder, name, text):
    os.makedirs(os.path.join(out, folder), exist_ok=True)
    with open(os.path.join(out, folder, name), "w", encoding="utf-8") as f:
        f.write(text)


def jsonl(*texts):
    return "".join(json.dumps({"text": t}) + "\n" for t in texts)


def case(folder):
    path = os.path.join(out, folder)
    data = load_dataset(path, cache_dir=cache)
    cases.append({"folder": path, "splits": {split: list(d["text"]) for split, d in data.items()}})


# A stray licence beside the data: .jsonl and .txt draw, .jsonl is favoured.
write("stray_txt", "guanaco.jsonl", jsonl("### Human: a### Assistant: b", "### Human: c### Assistant: d"))
write("stray_txt", "LICENSE.txt", "Licensed under the Apache License\nSee the NOTICE file\n")
case("stray_txt")
# More text files than JSON: the text files are the data.
write("text_majority", "a.txt", "line one\nline two\n")
write("text_majority", "b.txt", "line three\n")
write("text_majority", "meta.jsonl", jsonl("not read"))
case("text_majority")
# .json and .jsonl are one format: both read, in name order; the .txt is not.
write("json_family", "a.json", json.dumps([{"text": "from a.json"}]))
write("json_family", "b.jsonl", jsonl("from b.jsonl"))
write("json_family", "c.txt", "not read\n")
case("json_family")
# Parquet wins a draw with CSV.
write("parquet_csv", "rows.csv", "text\nfrom csv\n")
os.makedirs(os.path.join(out, "parquet_csv"), exist_ok=True)
pq.write_table(pa.table({"text": ["from parquet"]}), os.path.join(out, "parquet_csv", "rows.parquet"))
case("parquet_csv")
# Split words in the names: each split keeps its own format's files (here JSON for both).
write("named", "data_train.jsonl", jsonl("train row"))
write("named", "notes_train.txt", "not read\n")
write("named", "data_test.jsonl", jsonl("test row"))
case("named")

with open(os.path.join(out, "cases.json"), "w", encoding="utf-8") as f:
    json.dump(cases, f, ensure_ascii=False)
