"""Writes the benchmark checkpoint: a Falcon (7b-style: multi-query, parallel attention) of
about 1 GB in fp32, saved by transformers' save_pretrained in two safetensors shards, plus one
block of token ids to evaluate.

  make_checkpoint.py OUT_DIR [BLOCK]
"""
import json
import os
import sys

import torch
from transformers import FalconConfig, FalconForCausalLM

out = sys.argv[1]
block = int(sys.argv[2]) if len(sys.argv) > 2 else 512
torch.manual_seed(0)
cfg = FalconConfig(vocab_size=65024, hidden_size=1024, num_attention_heads=16, num_hidden_layers=18,
                   multi_query=True, parallel_attn=True, bias=False, alibi=False)
model = FalconForCausalLM(cfg)
model.save_pretrained(os.path.join(out, "model"), max_shard_size="600MB")
shards = sorted(f for f in os.listdir(os.path.join(out, "model")) if f.endswith(".safetensors"))
assert len(shards) == 2, shards
ids = torch.randint(0, cfg.vocab_size, (block,), generator=torch.Generator().manual_seed(1)).tolist()
with open(os.path.join(out, "block.jsonl"), "w") as f:
    f.write(json.dumps({"input_ids": ids}) + "\n")
sizes = {s: os.path.getsize(os.path.join(out, "model", s)) for s in shards}
print(json.dumps({"params": sum(p.numel() for p in model.parameters()), "shards": sizes}))
