#!/usr/bin/env python3
"""Oracle for the trained adapter: loads the base model folder with transformers and the
adapter with PEFT, cuts the validation rows into blocks the way AutoTrain 0.6.44's default
trainer did (group_reference.default_trainer), and prints PEFT's mean loss over them.

usage: peft_eval.py MODEL_DIR ADAPTER_DIR DATA_JSONL BLOCK_SIZE [bf16|fp16] OUT_DIR
With bf16 or fp16, the forward pass runs under torch.autocast on the CPU in that dtype (what a run
with MIXED_PRECISION does when it evaluates).
Writes OUT_DIR/peft_eval.json: {"loss", "tokens", "blocks"}.
"""
import json
import os
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data"))
from group_reference import default_trainer  # noqa: E402


def main():
    model_dir, adapter_dir, data, block_size = sys.argv[1:5]
    autocast = sys.argv[5] if len(sys.argv) == 7 else None
    out_dir = sys.argv[-1]
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    tok = AutoTokenizer.from_pretrained(model_dir)
    with open(data, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    ids, labels = default_trainer(tok, texts, {"add_eos": False, "template_ids": None, "block_size": int(block_size)})

    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, adapter_dir)
    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad(), torch.autocast("cpu", dtype=dtypes.get(autocast), enabled=autocast is not None):
        for i in range(0, len(ids), 8):
            x = torch.tensor(ids[i : i + 8])
            y = torch.tensor(labels[i : i + 8])
            logits = model(input_ids=x).logits.float()
            loss = torch.nn.functional.cross_entropy(
                logits[:, :-1].reshape(-1, logits.size(-1)), y[:, 1:].reshape(-1), ignore_index=-100, reduction="sum"
            )
            total += loss.item()
            tokens += int((y[:, 1:] != -100).sum())
    with open(os.path.join(out_dir, "peft_eval.json"), "w") as f:
        json.dump({"loss": total / tokens, "tokens": tokens, "blocks": len(ids)}, f)


if __name__ == "__main__":
    main()
