"""Inputs shared by the method tests."""
from __future__ import annotations

import math

import torch


def toy_skeletons(n, seed=0, t_max=100, classes=6):
    """Class-specific oscillations of a fixed rest pose, 3.8 m from the camera, zero-padded."""
    g = torch.Generator().manual_seed(seed)
    rest = torch.randn(25, 3, generator=g) * 0.3 + torch.tensor([0.0, 0.2, 3.8])
    label = torch.arange(n) % classes
    direction = torch.randn(classes, 25, 3, generator=g) * 0.15
    freq = 0.5 + torch.rand(classes, generator=g) * 2.5
    lengths = torch.randint(t_max // 2, t_max + 1, (n,), generator=g)
    t = torch.arange(t_max).float()[None, :] / 30.0
    wave = torch.sin(2 * math.pi * freq[label][:, None] * t + torch.rand(n, 1, generator=g) * 6.28)
    x = torch.zeros(n, t_max, 2, 25, 3)
    x[:, :, 0] = rest + wave[:, :, None, None] * direction[label][:, None] \
        + 0.01 * torch.randn(n, t_max, 25, 3, generator=g)
    return x * (torch.arange(t_max)[None, :] < lengths[:, None])[:, :, None, None, None], lengths


def pretraining_steps(model, x, lengths, seed: int = 1) -> list[tuple[float, dict]]:
    """Run ``model.config.loop.steps`` optimizer steps the way the engine does (hooks, scheduler)
    on random batches of ``x``; returns each step's (loss, logs)."""
    steps, batch = model.config.loop.steps, model.config.loop.batch_size
    opt, sched = model.configure_pretraining()
    order = torch.Generator().manual_seed(seed)
    out = []
    model.train()
    for step in range(steps):
        model.on_step_start(step, steps)
        idx = torch.randperm(len(x), generator=order)[:batch]
        loss, logs = model.pretrain_loss(x[idx], lengths[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        model.after_optimizer_step()
        out.append((float(loss.detach()), logs))
    return out


def lr_trace(model, steps: int) -> list[float]:
    """The learning rate of each of ``steps`` optimizer steps of ``model.configure_pretraining()``."""
    optimizer, scheduler = model.configure_pretraining()
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs
