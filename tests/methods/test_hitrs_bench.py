"""One Hi-TRS pre-training step at the paper configuration (pytest-benchmark).

CUDA: the paper micro-batch (64 single-body sequences, up to 300 frames) under bf16 autocast;
CPU: one sequence of 32 frames so the step takes seconds. ``extra_info`` reports samples/s.
Run timed: ``pytest tests/methods/test_hitrs_bench.py --benchmark-enable``.
"""
from __future__ import annotations

import contextlib
import time

import torch

import methods


def _batch(batch: int, frames: int, device: torch.device):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, frames, 1, 25, 3, generator=g).cumsum(1) * 0.01 + torch.randn(1, 1, 1, 25, 3, generator=g)
    lengths = torch.randint(frames // 3, frames + 1, (batch,), generator=g)
    lengths[0] = frames
    x = x * (torch.arange(frames)[None, :] < lengths[:, None])[:, :, None, None, None]
    return x.to(device), lengths.to(device)


def test_paper_pretraining_step(benchmark):
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    torch.manual_seed(0)
    method = methods.create("hitrs", "paper").to(device)
    loop = method.config.loop
    batch, frames = (loop.batch_size, loop.max_frames) if cuda else (1, 32)
    x, lengths = _batch(batch, frames, device)
    optimizer, scheduler = method.configure_pretraining()
    method.train()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()
    times: list[float] = []

    def step():
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss, logs = method.pretrain_loss(x, lengths)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(method.parameters(), loop.grad_clip)
        optimizer.step()
        scheduler.step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        return loss.detach(), logs

    if cuda:
        step()                                               # warm-up (allocator, kernels)
    loss, logs = benchmark.pedantic(step, rounds=5 if cuda else 1, iterations=1)
    assert torch.isfinite(loss) and set(logs) >= {"mjp/loss", "fov/loss", "cov/loss", "ncp/loss"}
    timed = times[1:] if cuda else times
    per_step = sorted(timed)[len(timed) // 2]
    benchmark.extra_info.update({
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "autocast": "bf16" if cuda else "none",
        "batch": batch, "frames": frames, "mean_length": float(lengths.float().mean()),
        "step_s": per_step, "samples_per_s": batch / per_step,
    })
