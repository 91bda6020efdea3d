#!/usr/bin/env python3
"""Oracle for the LoRA tests, with the real transformers + peft.

  peft_reference.py make OUT      tiny Falcon base in OUT/base, a PEFT adapter (r=4, alpha=8,
                                  all-linear, random non-zero B) in OUT/adapter, and
                                  OUT/expected.safetensors; OUT/lm_head_random: a LoRA on the
                                  tied lm_head with random B, and logits_lm_head (PEFT's logits
                                  with it): input_ids, logits (base + adapter,
                                  fp32), counts = [trainable, all] as PEFT counts them; and for
                                  each setting in CASES, OUT/cases/<name>/adapter_config.json as
                                  PEFT saves it, OUT/cases/<name>/trainable_line.txt (what
                                  print_trainable_parameters prints) and counts_<name> in
                                  OUT/expected.safetensors
  peft_reference.py check OUT DIR loads OUT/base + the adapter folder DIR with
                                  PeftModel.from_pretrained (is_trainable, so that the LoRA
                                  parameters count as trainable) and writes
                                  OUT/peft_logits.safetensors: logits, counts = [trainable, all]
  peft_reference.py merge OUT ADAPTER DEST DTYPE...
                                  PEFT's merge as AutoTrain runs it, for each DTYPE (float16,
                                  bfloat16, float32): OUT/base loaded in DTYPE,
                                  PeftModel.from_pretrained(ADAPTER), merge_and_unload(),
                                  save_pretrained(DEST/DTYPE)
  peft_reference.py logits OUT DIR
                                  loads the model folder DIR with transformers (fails on missing or
                                  unexpected tensors) and writes DIR.logits.safetensors: its fp32
                                  logits for OUT's input_ids
"""
import contextlib
import io
import os
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import FalconConfig, FalconForCausalLM

from peft import LoraConfig, PeftModel, get_peft_model

BASE_NAME = "org/tiny-falcon"  # base_model_name_or_path of the CASES adapters (tests pass the same)

# LoraConfig settings the C++ tests mirror (lora_test.cpp, kCases): target_modules as AutoTrain
# passes it to PEFT: None when TARGET_MODULES is empty, the string "all-linear", else the
# comma-split list.
CASES = {
    "default": dict(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=None),
    "list_rslora": dict(r=8, lora_alpha=16, lora_dropout=0.05, use_rslora=True,
                        target_modules=["dense", "dense_h_to_4h"]),
    "full_name": dict(r=4, lora_alpha=8, lora_dropout=0.0,
                      target_modules=["transformer.h.0.self_attention.query_key_value"]),
    "all_linear": dict(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear"),
    "lm_head": dict(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["lm_head"]),
}


def make(out):
    torch.manual_seed(11)
    cfg = FalconConfig(vocab_size=211, hidden_size=64, num_attention_heads=4, num_hidden_layers=2,
                       multi_query=True, parallel_attn=True, bias=False, alibi=False,
                       new_decoder_architecture=False, max_position_embeddings=128)
    base = FalconForCausalLM._from_config(cfg, attn_implementation="sdpa").eval()
    with torch.no_grad():
        for name, p in base.named_parameters():
            if "layernorm" in name or "ln_f" in name:
                p.copy_(1 + 0.1 * torch.randn_like(p)) if name.endswith("weight") else p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(0.1 * torch.randn_like(p))
    base.save_pretrained(os.path.join(out, "base"), safe_serialization=True)

    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear",
                                                 task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.copy_(0.05 * torch.randn_like(p))  # PEFT starts B at zero; make the adapter matter
    peft_model.eval()
    trainable, total = peft_model.get_nb_trainable_parameters()
    peft_model.save_pretrained(os.path.join(out, "adapter"))
    ids = torch.randint(0, 211, (2, 13))
    with torch.no_grad():
        logits = peft_model(input_ids=ids).logits.float()
    expected = {"input_ids": ids, "logits": logits.contiguous(), "counts": torch.tensor([trainable, total])}

    for name, kwargs in CASES.items():
        fresh = FalconForCausalLM.from_pretrained(os.path.join(out, "base"), attn_implementation="sdpa")
        fresh.name_or_path = BASE_NAME  # what PEFT records as base_model_name_or_path
        model = get_peft_model(fresh, LoraConfig(task_type="CAUSAL_LM", **kwargs))
        expected[f"counts_{name}"] = torch.tensor(model.get_nb_trainable_parameters())
        line = io.StringIO()
        with contextlib.redirect_stdout(line):
            model.print_trainable_parameters()
        model.save_pretrained(os.path.join(out, "cases", name))  # as a user saves it (inference_mode true)
        with open(os.path.join(out, "cases", name, "trainable_line.txt"), "w") as f:
            f.write(line.getvalue().strip() + "\n")
    # A LoRA on the tied lm_head with a non-zero B (the case above saves a fresh, inert one), and
    # PEFT's logits with it: whether a loader applies the head's LoRA shows in the logits.
    fresh = FalconForCausalLM.from_pretrained(os.path.join(out, "base"), attn_implementation="sdpa")
    head = get_peft_model(fresh, LoraConfig(task_type="CAUSAL_LM", **CASES["lm_head"]))
    with torch.no_grad():
        for name, p in head.named_parameters():
            if "lora_B" in name:
                p.copy_(0.05 * torch.randn_like(p))
    head.eval()
    head.save_pretrained(os.path.join(out, "lm_head_random"))
    with torch.no_grad():
        expected["logits_lm_head"] = head(input_ids=ids).logits.float().contiguous()
    save_file(expected, os.path.join(out, "expected.safetensors"))


def check(out, adapter_dir):
    base = FalconForCausalLM.from_pretrained(os.path.join(out, "base"), attn_implementation="sdpa").eval()
    model = PeftModel.from_pretrained(base, adapter_dir, is_trainable=True).eval()
    ids = load_file(os.path.join(out, "expected.safetensors"))["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=ids).logits.float()
    counts = torch.tensor(model.get_nb_trainable_parameters())
    save_file({"logits": logits.contiguous(), "counts": counts}, os.path.join(out, "peft_logits.safetensors"))


def merge(out, adapter_dir, dest, dtypes):
    for dtype in dtypes:
        base = FalconForCausalLM.from_pretrained(os.path.join(out, "base"), dtype=getattr(torch, dtype))
        merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
        merged.save_pretrained(os.path.join(dest, dtype))


def logits(out, model_dir):
    model, info = FalconForCausalLM.from_pretrained(model_dir, dtype=torch.float32, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    if problems:
        sys.exit(f"{model_dir}: transformers reports {problems}")
    ids = load_file(os.path.join(out, "expected.safetensors"))["input_ids"]
    with torch.no_grad():
        result = model.eval()(input_ids=ids).logits.float().contiguous()
    save_file({"logits": result}, model_dir.rstrip("/") + ".logits.safetensors")


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    elif sys.argv[1] == "merge":
        merge(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    elif sys.argv[1] == "logits":
        logits(sys.argv[2], sys.argv[3])
    else:
        check(sys.argv[2], sys.argv[3])
