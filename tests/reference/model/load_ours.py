"""Loads a model folder written by autotrain (save_falcon / write_random_checkpoint) with
transformers and records its logits for the given input ids.

  load_ours.py MODEL_DIR IDS_SAFETENSORS OUT_SAFETENSORS
"""
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import FalconForCausalLM

model = FalconForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32, attn_implementation="sdpa").eval()
ids = load_file(sys.argv[2])["input_ids"]
with torch.no_grad():
    logits = model(input_ids=ids).logits
save_file({"logits": logits.contiguous()}, sys.argv[3])
print("ok")
