"""Oracle for the Falcon parity tests: builds tiny random Falcon models with `transformers`,
saves them as Hugging Face model folders, and records what transformers computes on them.

  falcon_reference.py OUT_DIR

For each variant V in 7b, 7b-legacy, 40b, rw1b it writes OUT_DIR/V/model/ (the model folder)
and OUT_DIR/V/expected.safetensors with:
  input_ids, attention_mask, labels   a right-padded batch (labels -100 on padding)
  logits                              logits of the padded batch (fp32)
  logits_nomask                       logits of row 0 without an attention mask
  left_mask, logits_left              the same batch padded on the left instead
  long_ids, logits_long               300 tokens: ALiBi positions beyond 256 are rounded in bf16
  loss, loss_sum                      mean loss, and the sum (num_items_in_batch = 1)
  embeds_grad                         d loss / d inputs_embeds
  qkv0_grad                           d loss / d transformer.h.0.self_attention.query_key_value.weight
  prompt, generated                   greedy model.generate (KV cache), 32 new tokens
  eval_masked_loss, eval_masked_tokens  the same for OUT_DIR/V/eval_masked.jsonl (labels, padding)
  eval_loss, eval_tokens              `autotrain eval --data OUT_DIR/V/eval.jsonl --block-size 8`:
                                      rows concatenated, blocks of 8, remainder dropped
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import FalconConfig, FalconForCausalLM

VARIANTS = {
    # multi-query, parallel attention, one LayerNorm; 3 heads (odd)
    "7b": dict(hidden_size=96, num_attention_heads=3, multi_query=True, parallel_attn=True, bias=False,
               alibi=False, new_decoder_architecture=False),
    # the same architecture saved with the RefinedWeb-era config keys and lm_head.weight stored
    "7b-legacy": dict(hidden_size=64, num_attention_heads=4, multi_query=True, parallel_attn=True, bias=False,
                      alibi=False, new_decoder_architecture=False),
    # new decoder: 6 query heads in 3 KV groups (odd), ln_attn/ln_mlp; saved in shards
    "40b": dict(hidden_size=96, num_attention_heads=6, num_kv_heads=3, new_decoder_architecture=True,
                parallel_attn=True, bias=False, alibi=False, multi_query=False),
    # sequential, ALiBi with 5 heads (not a power of two), biases everywhere
    "rw1b": dict(hidden_size=80, num_attention_heads=5, num_kv_heads=5, multi_query=False, parallel_attn=False,
                 bias=True, alibi=True, new_decoder_architecture=False, bos_token_id=1, eos_token_id=2),
}
VOCAB = 211


def build(name, seed):
    torch.manual_seed(seed)
    cfg = FalconConfig(vocab_size=VOCAB, num_hidden_layers=2, max_position_embeddings=128, **VARIANTS[name])
    model = FalconForCausalLM._from_config(cfg, attn_implementation="sdpa").eval()
    # Non-trivial norms and biases, and weights large enough that greedy decoding has clear winners.
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.endswith("layernorm.weight") or ".ln_" in pname and pname.endswith(".weight") or pname.endswith("ln_f.weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif pname.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(0.15 * torch.randn_like(p))
    return model


def to_legacy(folder, model):
    cfg_path = os.path.join(folder, "config.json")
    cfg = json.load(open(cfg_path))
    # Only the keys of an RW-era config (shared/data/falcon-7b/config.legacy-RW.json).
    legacy = {k: v for k, v in cfg.items() if k in ("alibi", "attention_dropout", "bias", "bos_token_id",
                                                    "eos_token_id", "hidden_dropout", "hidden_size",
                                                    "initializer_range", "layer_norm_epsilon", "multi_query",
                                                    "parallel_attn", "use_cache", "vocab_size")}
    legacy.update(model_type="RefinedWebModel", architectures=["RWForCausalLM"],
                  n_head=cfg["num_attention_heads"], n_layer=cfg["num_hidden_layers"])
    json.dump(legacy, open(cfg_path, "w"), indent=2)
    # RW-era uploads store lm_head.weight next to the embedding it is tied to.
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    sd["lm_head.weight"] = sd["transformer.word_embeddings.weight"].clone()
    os.remove(os.path.join(folder, "model.safetensors"))
    save_file(sd, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})


def main(out):
    for i, name in enumerate(VARIANTS):
        model = build(name, 100 + i)
        folder = os.path.join(out, name, "model")
        model.save_pretrained(folder, max_shard_size="100KB" if name == "40b" else "1GB")
        if name == "7b-legacy":
            to_legacy(folder, model)
        if name == "40b":
            assert os.path.exists(os.path.join(folder, "model.safetensors.index.json")), "expected shards"

        g = torch.Generator().manual_seed(7 + i)
        B, S = 3, 12
        input_ids = torch.randint(0, VOCAB, (B, S), generator=g)
        lengths = [12, 9, 5]
        attention_mask = torch.zeros(B, S, dtype=torch.long)
        for b, n in enumerate(lengths):
            attention_mask[b, :n] = 1
        input_ids = input_ids.masked_fill(attention_mask == 0, 0)
        labels = input_ids.masked_fill(attention_mask == 0, -100)

        exp = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
        with torch.no_grad():
            out_ = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
            exp["logits"] = out_.logits
            exp["loss"] = out_.loss.reshape(1)
            exp["loss_sum"] = model.loss_function(out_.logits, labels, vocab_size=VOCAB,
                                                  num_items_in_batch=torch.tensor(1)).reshape(1)
            exp["logits_nomask"] = model(input_ids=input_ids[:1]).logits
            left_mask = attention_mask.flip(1)
            left_ids = torch.stack([input_ids[b].roll(S - n) for b, n in enumerate(lengths)])
            exp["left_ids"], exp["left_mask"] = left_ids, left_mask
            exp["logits_left"] = model(input_ids=left_ids, attention_mask=left_mask).logits
            exp["long_ids"] = torch.randint(0, VOCAB, (1, 300), generator=g)
            exp["logits_long"] = model(input_ids=exp["long_ids"], attention_mask=torch.ones_like(exp["long_ids"])).logits

        embeds = model.transformer.word_embeddings(input_ids).detach().requires_grad_(True)
        model.zero_grad()
        out_ = model(inputs_embeds=embeds, attention_mask=attention_mask, labels=labels)
        out_.loss.backward()
        exp["embeds_grad"] = embeds.grad
        exp["qkv0_grad"] = model.transformer.h[0].self_attention.query_key_value.weight.grad

        prompt = input_ids[:1, :6]
        model.generation_config.eos_token_id = None
        model.generation_config.pad_token_id = 0
        with torch.no_grad():
            seq = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=32, do_sample=False)
            # The test is only meaningful if no step is a near tie between the top two tokens.
            scores = model(seq[:, :-1]).logits[0, prompt.shape[1] - 1:]
            top2 = scores.topk(2, dim=-1).values
            gap = (top2[:, 0] - top2[:, 1]).min().item()
            assert gap > 1e-4, f"{name}: greedy decoding has a near tie ({gap}); choose another seed"
        exp["prompt"] = prompt[0]
        exp["generated"] = seq[0, prompt.shape[1]:]
        assert exp["generated"].numel() == 32
        # eval: pre-tokenized rows of varying length, cut into blocks as AutoTrain's trainer does.
        rows = [torch.randint(0, VOCAB, (n,), generator=g).tolist() for n in (5, 17, 3, 11, 9, 1, 20)]
        with open(os.path.join(out, name, "eval.jsonl"), "w") as f:
            for r in rows:
                f.write(json.dumps({"input_ids": r, "note": "extra keys are ignored"}) + "\n")
        flat = [t for r in rows for t in r]
        block = 8
        blocks = torch.tensor(flat[: len(flat) // block * block]).view(-1, block)
        with torch.no_grad():
            losses = [model(input_ids=b[None], labels=b[None]).loss for b in blocks]
        exp["eval_loss"] = torch.stack(losses).double().mean().reshape(1)
        exp["eval_tokens"] = torch.tensor([blocks.shape[0] * (block - 1)])
        # The same rows with labels (the first half of each row -100: a prompt not scored) and
        # right padding (attention_mask 0, labels -100) that eval drops from the stream.
        masked_ids, masked_labels = [], []
        with open(os.path.join(out, name, "eval_masked.jsonl"), "w") as f:
            for r in rows:
                labels = [-100] * (len(r) // 2) + r[len(r) // 2:]
                pad = 3
                f.write(json.dumps({"input_ids": r + [0] * pad, "attention_mask": [1] * len(r) + [0] * pad,
                                    "labels": labels + [-100] * pad}) + "\n")
                masked_ids += r
                masked_labels += labels
        n = len(masked_ids) // block * block
        ids_b = torch.tensor(masked_ids[:n]).view(-1, block)
        labels_b = torch.tensor(masked_labels[:n]).view(-1, block)
        total, count = torch.zeros((), dtype=torch.float64), 0
        with torch.no_grad():
            for b, lb in zip(ids_b, labels_b):
                k = int((lb[1:] != -100).sum())
                if k:
                    total += model(input_ids=b[None], labels=lb[None]).loss.double() * k
                    count += k
        exp["eval_masked_loss"] = (total / count).reshape(1)
        exp["eval_masked_tokens"] = torch.tensor([count])
        save_file({k: v.detach().clone().contiguous() for k, v in exp.items()}, os.path.join(out, name, "expected.safetensors"))
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1])
