#!/usr/bin/env python3
"""Oracle for a checkpoint folder as HF tools read it: transformers' AutoTokenizer loads the
tokenizer from the folder (as scripts that load `checkpoint-N` do), and TrainerState.load_from_json
reads its trainer_state.json (as Trainer does when it resumes; it refuses keys it does not know).

usage: checkpoint_folder.py CHECKPOINT_DIR TEXT OUT_DIR
Writes OUT_DIR/checkpoint_folder.json: {"ids": AutoTokenizer's ids for TEXT,
"hf_fields": the file's keys, "global_step", "best_model_checkpoint",
"best_metric", "log_history": TrainerState.log_history}.
"""
import json
import os
import sys

from transformers import AutoTokenizer, TrainerState


def main():
    checkpoint, text, out_dir = sys.argv[1:4]
    ids = AutoTokenizer.from_pretrained(checkpoint)(text)["input_ids"]
    path = os.path.join(checkpoint, "trainer_state.json")
    with open(path, encoding="utf-8") as f:
        hf = json.load(f)
    state = TrainerState.load_from_json(path)  # as Trainer resumes: refuses keys it does not know
    with open(os.path.join(out_dir, "checkpoint_folder.json"), "w") as f:
        json.dump({"ids": ids, "hf_fields": sorted(hf), "global_step": state.global_step,
                   "best_model_checkpoint": state.best_model_checkpoint, "best_metric": state.best_metric,
                   "log_history": state.log_history}, f)


if __name__ == "__main__":
    main()
