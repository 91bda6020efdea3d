#!/usr/bin/env python3
"""Writes the DATA_FILE oracle: the texts of IN (one JSON string per line) as a one-column CSV
with header `text`, the way the tutorial's dataload.py wrote it (pandas to_csv, which uses
Python's csv module with QUOTE_MINIMAL and "\\n" line ends).

usage: csv_reference.py IN OUT
"""
import csv
import json
import sys

texts = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
with open(sys.argv[2], "w", encoding="utf-8", newline="") as f:
    w = csv.writer(f, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    w.writerow(["text"])
    for t in texts:
        w.writerow([t])
