#!/usr/bin/env python3
"""Oracle for the eval_loss a training run logs: transformers' Trainer.evaluate(), the call that
gave AutoTrain's eval_loss, over the validation blocks of our token cache (its valid.safetensors:
input_ids and labels, -100 where a token is not scored), with the base model folder and the
adapter loaded by PEFT, per_device_eval_batch_size = BATCH_SIZE.

usage: trainer_eval.py MODEL_DIR ADAPTER_DIR VALID_SAFETENSORS BATCH_SIZE OUT_DIR
Writes OUT_DIR/trainer_eval.json: {"eval_loss": Trainer.evaluate()'s, "token_mean": the plain
mean over every scored token (to show the two differ on this data), "blocks": n}.
"""
import json
import os
import sys

import torch
from peft import PeftModel
from safetensors.numpy import load_file
from transformers import AutoModelForCausalLM, Trainer, TrainingArguments


class Blocks(torch.utils.data.Dataset):
    def __init__(self, ids, labels):
        self.ids, self.labels = ids, labels

    def __len__(self):
        return self.ids.shape[0]

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.labels[i], "attention_mask": torch.ones_like(self.ids[i])}


def main():
    model_dir, adapter_dir, valid, batch_size, out_dir = sys.argv[1:6]
    blocks = load_file(valid)
    ids = torch.from_numpy(blocks["input_ids"]).long()
    labels = torch.from_numpy(blocks["labels"]).long()

    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, adapter_dir)
    args = TrainingArguments(output_dir=os.path.join(out_dir, "trainer"), per_device_eval_batch_size=int(batch_size),
                             report_to="none", use_cpu=True, dataloader_num_workers=0, remove_unused_columns=False,
                             disable_tqdm=True)
    metrics = Trainer(model=model, args=args).evaluate(eval_dataset=Blocks(ids, labels))

    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        logits = model(input_ids=ids).logits.float()
        total = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)),
                                                  labels[:, 1:].reshape(-1), ignore_index=-100, reduction="sum").item()
        tokens = int((labels[:, 1:] != -100).sum())
    with open(os.path.join(out_dir, "trainer_eval.json"), "w") as f:
        json.dump({"eval_loss": metrics["eval_loss"], "token_mean": total / tokens, "blocks": int(ids.shape[0])}, f)


if __name__ == "__main__":
    main()
