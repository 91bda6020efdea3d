#!/usr/bin/env python3
"""Writes the DATA_FILE oracle: the texts of IN (one JSON value per line: a string, or null for a
missing text) as the tutorial's dataload.py wrote its train split: `Dataset.to_csv(path,
index=False)` of the `datasets` library (which writes through pandas' to_csv).

usage: csv_reference.py IN OUT
"""
import json
import sys

from datasets import Dataset, disable_progress_bars

disable_progress_bars()
texts = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
Dataset.from_dict({"text": texts}).to_csv(sys.argv[2], index=False)
