#!/usr/bin/env python3
"""Oracle for the optimizer side of the trainer, from torch and transformers themselves:
- schedules.json: transformers.get_scheduler's factor for every update of a 37-step run with 5
  warm-up steps, for linear / cosine / constant / constant_with_warmup (the LR the update uses);
- adamw.safetensors: two parameters, five steps of given gradients clipped with
  torch.nn.utils.clip_grad_norm_(max_norm=0.5), then torch.optim.AdamW (single-tensor, as on the
  CPU) with weight decay 0.1 and a changing LR; initial values, gradients, final values and moments;
  adamw.json: the gradient norms clip_grad_norm_ returned.
- scaler.json: torch.amp.GradScaler (init 2^16, growth x2 every 3 good steps, backoff x0.5)
  driven through SCALER_STEPS (true: that step's gradient overflows); per step, whether it found
  an inf/nan, and the scale and growth tracker after update().

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
    for name in ["linear", "cosine", "constant", "constant_with_warmup", "cosine_with_restarts", "polynomial"]:
        p = torch.nn.Parameter(torch.zeros(1))
        # polynomial decays to an absolute 1e-7: a learning rate of the usual size tells it apart.
        peak = 2e-4 if name == "polynomial" else 1.0
        opt = torch.optim.SGD([p], lr=peak)
        kwargs = {} if name == "constant" else {"num_warmup_steps": 5}
        if name in ("linear", "cosine", "cosine_with_restarts", "polynomial"):
            kwargs["num_training_steps"] = 37
        sched = get_scheduler(name, opt, **kwargs)
        factors = []
        for _ in range(37):
            factors.append(opt.param_groups[0]["lr"] / peak)
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


# Good and overflowing steps in an order that exercises growth, backoff and the reset of the
# count toward growth (the C++ test drives our scaler through the same list).
SCALER_STEPS = [False, False, False, True, False, False, True, True, False, False, False, False,
                False, False, True, False, False, False]


def scaler():
    s = torch.amp.GradScaler("cpu", init_scale=65536.0, growth_factor=2.0, backoff_factor=0.5,
                             growth_interval=3)
    p = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([p], lr=0.0)
    rows = []
    for overflow in SCALER_STEPS:
        opt.zero_grad()
        loss = s.scale((p * torch.tensor([1.0, 2.0])).sum())
        loss.backward()
        if overflow:
            p.grad[1] = float("inf")
        s.unscale_(opt)
        found = sum(v.item() for v in s._found_inf_per_device(opt).values()) > 0
        s.step(opt)
        s.update()
        rows.append({"overflow": overflow, "found_inf": found, "scale": s.get_scale(),
                     "growth_tracker": int(s._get_growth_tracker())})
    return rows


def main():
    out = sys.argv[1]
    with open(os.path.join(out, "schedules.json"), "w") as f:
        json.dump(schedules(), f)
    tensors, norms = adamw()
    save_file(tensors, os.path.join(out, "adamw.safetensors"))
    with open(os.path.join(out, "adamw.json"), "w") as f:
        json.dump({"norms": norms}, f)
    with open(os.path.join(out, "scaler.json"), "w") as f:
        json.dump(scaler(), f)


if __name__ == "__main__":
    main()
