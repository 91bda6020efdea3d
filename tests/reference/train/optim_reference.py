#!/usr/bin/env python3
"""Oracle for the optimizer side of the trainer, from torch and transformers themselves:
- schedules.json: transformers.get_scheduler's factor for every update of a 37-step run with 5
  warm-up steps, for linear / cosine / constant / constant_with_warmup (the LR the update uses);
- adamw.safetensors: two parameters, five steps of given gradients clipped with
  torch.nn.utils.clip_grad_norm_(max_norm=0.5), then torch.optim.AdamW (single-tensor, as on the
  CPU) with weight decay 0.1 and a changing LR; initial values, gradients, final values and moments;
  adamw.json: the gradient norms clip_grad_norm_ returned.

usage: optim_reference.py OUT_DIR
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import get_scheduler


def schedules():
    out = {}
    for name in ["linear", "cosine", "constant", "constant_with_warmup"]:
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=1.0)
        kwargs = {} if name == "constant" else {"num_warmup_steps": 5}
        if name in ("linear", "cosine"):
            kwargs["num_training_steps"] = 37
        sched = get_scheduler(name, opt, **kwargs)
        factors = []
        for _ in range(37):
            factors.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        out[name] = factors
    return out


def adamw():
    g = torch.Generator().manual_seed(0)
    p0 = torch.randn(3, 5, generator=g)
    p1 = torch.randn(7, generator=g)
    tensors = {"init.0": p0.clone(), "init.1": p1.clone()}
    params = [torch.nn.Parameter(p0.clone()), torch.nn.Parameter(p1.clone())]
    opt = torch.optim.AdamW(params, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1, foreach=False)
    norms = []
    for step in range(5):
        grads = [torch.randn(p.shape, generator=g) * (step + 1) for p in params]
        for i, (p, gr) in enumerate(zip(params, grads)):
            tensors[f"grad.{step}.{i}"] = gr.clone()
            p.grad = gr.clone()
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, max_norm=0.5)))
        for group in opt.param_groups:
            group["lr"] = 1e-2 * (step + 1)
        opt.step()
    for i, p in enumerate(params):
        tensors[f"final.{i}"] = p.detach().clone()
        tensors[f"exp_avg.{i}"] = opt.state[p]["exp_avg"].clone()
        tensors[f"exp_avg_sq.{i}"] = opt.state[p]["exp_avg_sq"].clone()
    return tensors, norms


def main():
    out = sys.argv[1]
    with open(os.path.join(out, "schedules.json"), "w") as f:
        json.dump(schedules(), f)
    tensors, norms = adamw()
    save_file(tensors, os.path.join(out, "adamw.safetensors"))
    with open(os.path.join(out, "adamw.json"), "w") as f:
        json.dump({"norms": norms}, f)


if __name__ == "__main__":
    main()
