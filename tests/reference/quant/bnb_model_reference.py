#!/usr/bin/env python3
"""Oracle for 4-bit checkpoints, with the real transformers model class + bitsandbytes on the CPU.

transformers 5.23's from_pretrained does not apply its bitsandbytes quantizer on a CPU-only
machine, so this script does what that integration does by hand: it swaps every Linear of the
transformer body for bitsandbytes.nn.Linear4bit (NF4, fp32 compute; lm_head stays) and moves
weights through bitsandbytes' own state-dict code (Params4bit quantization and
QuantState.from_dict for pre-quantized tensors).

  bnb_model_reference.py make OUT       OUT/base: a tiny fp32 Falcon model folder;
                                        OUT/bnb4: that model quantized by bitsandbytes (double
                                        quant), state_dict saved as safetensors + config.json with
                                        quantization_config; OUT/expected.safetensors: input_ids,
                                        logits_bnb4 (the bitsandbytes 4-bit model's logits)
  bnb_model_reference.py check OUT DIR  loads the 4-bit folder DIR into the bitsandbytes model and
                                        writes OUT/check_logits.safetensors
"""
import json
import os
import sys

os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")

import torch
import bitsandbytes as bnb
from safetensors.torch import load_file, save_file
from transformers import FalconConfig, FalconForCausalLM


def swap_linears(model, weights=None, double_quant=True):
    """Replaces body Linears with bnb Linear4bit; quantizes `weights` (name -> fp tensor) if given."""
    for parent_name, parent in list(model.named_modules()):
        for name, child in list(parent.named_children()):
            if not isinstance(child, torch.nn.Linear) or name == "lm_head":
                continue
            full = f"{parent_name}.{name}" if parent_name else name
            q = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=child.bias is not None,
                                  compute_dtype=torch.float32, compress_statistics=double_quant, quant_type="nf4")
            if weights is not None:
                q.weight = bnb.nn.Params4bit(weights[full + ".weight"].clone(), requires_grad=False,
                                             compress_statistics=double_quant, quant_type="nf4").to("cpu")
                if child.bias is not None:
                    q.bias = torch.nn.Parameter(weights[full + ".bias"].clone(), requires_grad=False)
            setattr(parent, name, q)
    return model


def logits_of(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits.float().contiguous()


def make(out):
    torch.manual_seed(5)
    cfg = FalconConfig(vocab_size=150, hidden_size=128, num_attention_heads=4, num_hidden_layers=2,
                       multi_query=True, parallel_attn=True, bias=False, alibi=False,
                       new_decoder_architecture=False, max_position_embeddings=64)
    base = FalconForCausalLM._from_config(cfg, attn_implementation="sdpa").eval()
    with torch.no_grad():
        for name, p in base.named_parameters():
            if "layernorm" in name or "ln_f" in name:
                p.copy_(1 + 0.1 * torch.randn_like(p)) if name.endswith("weight") else p.zero_()
            else:
                p.copy_(0.08 * torch.randn_like(p))
    base.save_pretrained(os.path.join(out, "base"), safe_serialization=True)

    weights = {k: v.clone() for k, v in base.state_dict().items()}
    q = swap_linears(base, weights).eval()
    folder = os.path.join(out, "bnb4")
    os.makedirs(folder, exist_ok=True)
    sd = {k: v.contiguous() for k, v in q.state_dict().items() if k != "lm_head.weight"}  # tied
    save_file(sd, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
    config = json.load(open(os.path.join(out, "base", "config.json")))
    config["quantization_config"] = {"_load_in_4bit": True, "_load_in_8bit": False, "bnb_4bit_compute_dtype": "float32",
                                     "bnb_4bit_quant_storage": "uint8", "bnb_4bit_quant_type": "nf4",
                                     "bnb_4bit_use_double_quant": True, "load_in_4bit": True, "load_in_8bit": False,
                                     "quant_method": "bitsandbytes"}
    json.dump(config, open(os.path.join(folder, "config.json"), "w"), indent=2)
    ids = torch.randint(0, 150, (2, 11))
    save_file({"input_ids": ids, "logits_bnb4": logits_of(q, ids)}, os.path.join(out, "expected.safetensors"))


def check(out, folder):
    config = FalconConfig.from_pretrained(folder)
    model = swap_linears(FalconForCausalLM._from_config(config, attn_implementation="sdpa"),
                         double_quant=config.quantization_config["bnb_4bit_use_double_quant"]).eval()
    sd = load_file(os.path.join(folder, "model.safetensors"))
    # What transformers' bitsandbytes quantizer does for a pre-quantized checkpoint: each 4-bit
    # weight is rebuilt from its packed bytes and the `weight.*` statistics by Params4bit.
    for name, module in model.named_modules():
        if isinstance(module, bnb.nn.Linear4bit):
            prefix = name + ".weight"
            stats = {k[len(name) + 1:]: sd.pop(k) for k in list(sd) if k.startswith(prefix + ".")}
            module.weight = bnb.nn.Params4bit.from_prequantized(data=sd.pop(prefix), quantized_stats=stats,
                                                                requires_grad=False, device="cpu")
    _, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected, unexpected
    model.tie_weights()
    ids = load_file(os.path.join(out, "expected.safetensors"))["input_ids"]
    save_file({"logits": logits_of(model, ids)}, os.path.join(out, "check_logits.safetensors"))


if __name__ == "__main__":
    make(sys.argv[2]) if sys.argv[1] == "make" else check(sys.argv[2], sys.argv[3])
