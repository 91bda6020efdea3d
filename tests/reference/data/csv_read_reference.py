#!/usr/bin/env python3
"""How the tutorial's stack reads a CSV data file: pandas.read_csv with its defaults (AutoTrain
0.6.44 reads {data_path}/{split}.csv so; the datasets library's csv loader also goes through
read_csv). Writes OUT: {"columns": [...], "rows": [{column: text or null}, ...]}, a missing value
(NaN) as null.

usage: csv_read_reference.py IN OUT
"""
import json
import sys

import pandas as pd

df = pd.read_csv(sys.argv[1])
rows = df.astype(object).where(df.notna(), None).to_dict("records")
with open(sys.argv[2], "w", encoding="utf-8") as f:
    json.dump({"columns": [str(c) for c in df.columns], "rows": rows}, f)
