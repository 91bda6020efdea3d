#!/usr/bin/env python3
"""Oracle for 4-bit checkpoints: transformers' own from_pretrained / save_pretrained with its
bitsandbytes quantizer (bitsandbytes 0.50.2 on the CPU, device_map="cpu").

  bnb_model_reference.py make OUT       OUT/base: a tiny fp32 Falcon model folder;
                                        OUT/bnb4: that folder loaded by from_pretrained with
                                        BitsAndBytesConfig(load_in_4bit, nf4, double quant, fp32
                                        compute) and written back by save_pretrained;
                                        OUT/expected.safetensors: input_ids, logits_bnb4 (that
                                        4-bit model's logits);
                                        OUT/base_int + OUT/bnb4_int: the same with every body
                                        Linear weight +-2.0, so each layer's double-quantization
                                        offset (the mean block absmax) is 2.0, an integral float;
                                        OUT/bnb8: OUT/base loaded with load_in_8bit and saved;
                                        OUT/bnb4_skip: OUT/base quantized with llm_int8_skip_modules
                                        ["lm_head", "dense", "transformer.h.1.mlp"] (those layers
                                        stay plain)
                                        and saved; its logits are logits_bnb4_skip
  bnb_model_reference.py config OUT DIR AutoConfig.from_pretrained(DIR): writes OUT/config_report.json
                                        {"dtype": the dtype it reports, e.g. "bfloat16"}
  bnb_model_reference.py check OUT DIR  loads the 4-bit folder DIR with from_pretrained, checks
                                        that every body Linear became bnb.nn.Linear4bit holding the
                                        file's bytes unchanged, and writes OUT/check_logits.safetensors

Falcon workaround (the only one): transformers 5.23's replace_with_bnb_linear
(transformers/integrations/bitsandbytes.py) swaps a module for bnb.nn.Linear4bit only when
`isinstance(module, Conv1D) or type(module) is nn.Linear`. Falcon's layers are
`FalconLinear(nn.Linear)` (transformers/models/falcon/modeling_falcon.py), which fails that exact
type check, so no Falcon body layer is converted: from_pretrained logs "no linear modules were
found" and then stops with a size mismatch on a pre-quantized checkpoint (on CPU and GPU alike).
Below, modeling_falcon.FalconLinear is rebound to torch.nn.Linear before any model is built, so the
check passes. For bias=False layers (the model here) FalconLinear.forward is nn.Linear's matmul,
and after the replacement the forward is bnb's Linear4bit anyway; lm_head is a plain nn.Linear
in Falcon already. Drop the patch once transformers converts nn.Linear subclasses.
"""
import json
import os
import sys

os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")

import torch
import bitsandbytes as bnb
import transformers.models.falcon.modeling_falcon as modeling_falcon
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, BitsAndBytesConfig, FalconConfig, FalconForCausalLM

modeling_falcon.FalconLinear = torch.nn.Linear  # see the docstring: replace_with_bnb_linear's type check

STATS = ("absmax", "quant_map", "quant_state.bitsandbytes__nf4")
NESTED = ("nested_absmax", "nested_quant_map")


def load(folder, **kwargs):
    model, info = AutoModelForCausalLM.from_pretrained(folder, device_map="cpu", attn_implementation="sdpa",
                                                       output_loading_info=True, **kwargs)
    problems = {k: v for k, v in info.items() if v}
    assert not problems, f"{folder}: from_pretrained loading report: {problems}"
    return model.eval()


def body_linears(model, double_quant):
    """Every Linear but lm_head, each asserted to be a bnb NF4 Linear4bit; returns their names."""
    names = []
    for name, m in model.named_modules():
        if not isinstance(m, torch.nn.Linear) or name == "lm_head":
            continue
        assert isinstance(m, bnb.nn.Linear4bit), f"{name} is {type(m).__name__}, not bnb.nn.Linear4bit"
        qs = m.weight.quant_state
        assert qs is not None and qs.quant_type == "nf4" and qs.nested == double_quant, (name, qs)
        assert m.compute_dtype == torch.float32, (name, m.compute_dtype)
        names.append(name)
    assert names, "no body Linear found"
    assert not isinstance(model.lm_head, bnb.nn.Linear4bit)
    return names


def serialization_keys(plain_keys, linears, double_quant):
    """The keys bitsandbytes' 4-bit serialization gives a state dict (what our loader reads)."""
    keys = {k for k in plain_keys if k != "lm_head.weight"}  # tied to the embeddings, not saved
    for name in linears:
        keys |= {f"{name}.weight.{s}" for s in STATS + (NESTED if double_quant else ())}
    return keys


def same_bytes(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(
        a.contiguous().flatten().view(torch.uint8), b.contiguous().flatten().view(torch.uint8))


def logits_of(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits.float().contiguous()


def make(out):
    cfg = FalconConfig(vocab_size=150, hidden_size=128, num_attention_heads=4, num_hidden_layers=2,
                       multi_query=True, parallel_attn=True, bias=False, alibi=False,
                       new_decoder_architecture=False, max_position_embeddings=64)
    base = FalconForCausalLM._from_config(cfg, attn_implementation="sdpa").eval()
    torch.manual_seed(5)  # after the model's own init, so the weights below do not depend on it
    with torch.no_grad():
        for name, p in base.named_parameters():
            if "layernorm" in name or "ln_f" in name:
                p.copy_(1 + 0.1 * torch.randn_like(p)) if name.endswith("weight") else p.zero_()
            else:
                p.copy_(0.08 * torch.randn_like(p))
    base.save_pretrained(os.path.join(out, "base"), safe_serialization=True)
    plain_keys = set(base.state_dict())
    ids = torch.randint(0, 150, (2, 11))

    bnb_config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                    bnb_4bit_compute_dtype=torch.float32)
    q = load(os.path.join(out, "base"), quantization_config=bnb_config, dtype=torch.float32)
    linears = body_linears(q, double_quant=True)
    folder = os.path.join(out, "bnb4")
    q.save_pretrained(folder, safe_serialization=True)
    saved = load_file(os.path.join(folder, "model.safetensors"))
    want = serialization_keys(plain_keys, linears, double_quant=True)
    assert set(saved) == want, f"saved keys: missing {sorted(want - set(saved))}, extra {sorted(set(saved) - want)}"
    assert json.load(open(os.path.join(folder, "config.json")))["quantization_config"]["quant_method"] == "bitsandbytes"

    # Layers named by llm_int8_skip_modules stay nn.Linear: a suffix ("dense": every attention
    # output) and a prefix up to a module boundary (layer 1's MLP). The list replaces the default
    # one, so lm_head must be named to stay 16-bit.
    skip_config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                     bnb_4bit_compute_dtype=torch.float32,
                                     llm_int8_skip_modules=["lm_head", "dense", "transformer.h.1.mlp"])
    q_skip = load(os.path.join(out, "base"), quantization_config=skip_config, dtype=torch.float32)
    skipped = [n for n, m in q_skip.named_modules() if type(m) is torch.nn.Linear and n != "lm_head"]
    assert sorted(skipped) == ["transformer.h.0.self_attention.dense", "transformer.h.1.mlp.dense_4h_to_h",
                               "transformer.h.1.mlp.dense_h_to_4h", "transformer.h.1.self_attention.dense"], skipped
    q_skip.save_pretrained(os.path.join(out, "bnb4_skip"), safe_serialization=True)

    save_file({"input_ids": ids, "logits_bnb4": logits_of(q, ids), "logits_bnb4_skip": logits_of(q_skip, ids)},
              os.path.join(out, "expected.safetensors"))

    # Integral offsets: bitsandbytes writes nested_offset with Python's float repr (2.0, not 2).
    with torch.no_grad():
        for name, p in base.named_parameters():
            if name.endswith("weight") and name.rsplit(".", 1)[0] in linears:
                p.copy_(torch.where(torch.randn_like(p) < 0, -2.0, 2.0))
    base.save_pretrained(os.path.join(out, "base_int"), safe_serialization=True)
    q_int = load(os.path.join(out, "base_int"), quantization_config=bnb_config, dtype=torch.float32)
    body_linears(q_int, double_quant=True)
    q_int.save_pretrained(os.path.join(out, "bnb4_int"), safe_serialization=True)
    saved = load_file(os.path.join(out, "bnb4_int", "model.safetensors"))
    state = bytes(saved[linears[0] + ".weight.quant_state.bitsandbytes__nf4"].tolist()).decode()
    assert '"nested_offset": 2.0' in state, state

    # An 8-bit checkpoint, as transformers + bitsandbytes write it.
    q8 = load(os.path.join(out, "base"), quantization_config=BitsAndBytesConfig(load_in_8bit=True), dtype=torch.float32)
    q8.save_pretrained(os.path.join(out, "bnb8"), safe_serialization=True)


def check(out, folder):
    qc = json.load(open(os.path.join(folder, "config.json")))["quantization_config"]
    double_quant = qc["bnb_4bit_use_double_quant"]
    model = load(folder)
    assert getattr(model, "hf_quantizer", None) is not None, "from_pretrained did not use its bitsandbytes quantizer"
    linears = body_linears(model, double_quant)
    file = load_file(os.path.join(folder, "model.safetensors"))
    assert set(file) == serialization_keys(
        {k for k in model.state_dict() if not any(k.endswith("." + s) for s in STATS + NESTED)}, linears, double_quant)
    # Our packed bytes and statistics, as bitsandbytes holds them after loading (its state_dict
    # re-serializes the QuantState), unchanged.
    sd = model.state_dict()
    changed = [k for k in file if not same_bytes(file[k], sd[k])]
    assert not changed, f"tensors changed by loading: {changed}"
    for name in linears:  # and the live QuantState itself
        w = model.get_submodule(name).weight
        stats = w.quant_state.state2.absmax if double_quant else w.quant_state.absmax
        assert same_bytes(w.data, file[name + ".weight"]), name
        assert same_bytes(stats, file[name + ".weight." + ("nested_absmax" if double_quant else "absmax")]), name
    ids = load_file(os.path.join(out, "expected.safetensors"))["input_ids"]
    save_file({"logits": logits_of(model, ids)}, os.path.join(out, "check_logits.safetensors"))


def config(out, folder):
    from transformers import AutoConfig
    cfg = AutoConfig.from_pretrained(folder)
    with open(os.path.join(out, "config_report.json"), "w") as f:
        json.dump({"dtype": str(cfg.dtype).split(".")[-1]}, f)


if __name__ == "__main__":
    {"make": lambda: make(sys.argv[2]), "check": lambda: check(sys.argv[2], sys.argv[3]),
     "config": lambda: config(sys.argv[2], sys.argv[3])}[sys.argv[1]]()
