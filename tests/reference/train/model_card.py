#!/usr/bin/env python3
"""Oracle for the model card: huggingface_hub reads its YAML front matter as the Hub does.

usage: model_card.py CARD OUT_DIR
Writes OUT_DIR/card.json: {"data": the front matter as huggingface_hub parses it,
"table_rows": the cells of every Markdown table row, split as GitHub splits them (at each `|`
not escaped with a backslash)}.
"""
import json
import os
import re
import sys

from huggingface_hub import ModelCard


def main():
    card_path, out_dir = sys.argv[1], sys.argv[2]
    card = ModelCard.load(card_path)
    rows = []
    for line in card.text.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            cells = re.split(r"(?<!\\)\|", line.strip())
            rows.append([c.strip() for c in cells[1:-1]])
    with open(os.path.join(out_dir, "card.json"), "w", encoding="utf-8") as f:
        json.dump({"data": card.data.to_dict(), "table_rows": rows}, f)


if __name__ == "__main__":
    main()
