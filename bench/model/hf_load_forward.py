"""The reference side of the load + forward benchmark: transformers from_pretrained (fp32, CPU)
and one forward pass with labels over the block, printing the loss as `autotrain eval` does.

  hf_load_forward.py MODEL_DIR BLOCK_JSONL
"""
import json
import math
import sys

import torch
from transformers import FalconForCausalLM

model = FalconForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32).eval()
ids = torch.tensor([json.loads(open(sys.argv[2]).readline())["input_ids"]])
with torch.no_grad():
    loss = model(input_ids=ids, labels=ids).loss.item()
print(json.dumps({"loss": loss, "perplexity": math.exp(loss), "tokens": ids.shape[1] - 1}))
