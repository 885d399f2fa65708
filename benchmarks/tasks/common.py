"""What every downstream task shares: context, output, optimiser/schedule, train/eval loops."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .. import distributed
from ..precision import autocast


@dataclass
class TaskContext:
    """Inputs of one downstream run."""

    method_name: str
    method_config: Any
    make_method: Callable[[], Any]              # a fresh method with pre-trained weights loaded (or random init)
    pretrained: bool
    train_cache: Any
    test_cache: Any
    train_rows: np.ndarray                      # labelled training rows (the label-fraction subset)
    test_rows: np.ndarray
    task_config: Any
    device: torch.device
    seed: int
    dist: distributed.Dist = field(default_factory=distributed.Dist)
    progress: bool = True
    log: Callable[[str], None] = print
    compile: bool = False                       # torch.compile the trained model (opt-in)
    precision: str | None = None                # benchmarks.precision; None = the device's default
    max_steps: int | None = None                # --smoke: stop each training phase after this many steps


@dataclass
class TaskOutput:
    metrics: dict[str, float]
    outputs: dict[str, Any] = field(default_factory=dict)     # e.g. class probabilities for "-3s"
    artifacts: dict[str, Any] = field(default_factory=dict)   # name -> object to write
    samples_per_s: float = 0.0


class MethodCall(nn.Module):
    """``forward`` = one named method of a SkeletonMethod (``pretrain_loss``, ``video_embedding``):
    lets DDP's hooks and ``predict_batches`` drive interface calls other than ``forward``."""

    def __init__(self, method, name: str):
        super().__init__()
        self.method = method
        self.name = name

    def forward(self, *args):
        return getattr(self.method, self.name)(*args)


def step_schedule(optimizer, milestones, gamma):
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(milestones), gamma=gamma)


def wrap_ddp(model: nn.Module, ctx: TaskContext) -> nn.Module:
    if not ctx.dist.enabled:
        return model
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)


def fit(model: nn.Module, params, optimizer, scheduler, epochs: int, epoch_batches: Callable[[int], list],
        loss_of_batch: Callable[[nn.Module, Any], torch.Tensor], ctx: TaskContext, desc: str) -> float:
    """Train for ``epochs`` (scheduler stepped per epoch); returns training samples/s.
    ``ctx.max_steps`` (smoke runs) ends training after that many optimizer steps."""
    trained = wrap_ddp(model, ctx)
    if ctx.compile:
        trained = torch.compile(trained, dynamic=True)  # variable lengths: one graph, not one per shape
    seen, steps, start = 0, 0, time.perf_counter()
    bar = tqdm(total=epochs, desc=desc, disable=not (ctx.progress and ctx.dist.main), leave=False, dynamic_ncols=True)
    for epoch in range(epochs):
        if ctx.max_steps is not None and steps >= ctx.max_steps:
            break
        trained.train()
        for batch in epoch_batches(epoch):
            if ctx.max_steps is not None and steps >= ctx.max_steps:
                break
            with autocast(ctx.device, ctx.precision):
                loss = loss_of_batch(trained, batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{desc}: non-finite loss in epoch {epoch}; no metrics written")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
            seen += int(batch[0].shape[0]) * ctx.dist.world
        scheduler.step()
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}")
    bar.close()
    elapsed = time.perf_counter() - start
    return seen / elapsed if elapsed > 0 else 0.0


@torch.no_grad()
def predict_batches(model: nn.Module, batches, ctx: TaskContext) -> torch.Tensor:
    """Concatenated float32 model outputs (CPU) over ``batches`` in order, eval mode."""
    model.eval()
    outs = []
    for batch in batches:
        with autocast(ctx.device, ctx.precision):
            outs.append(model(*batch).float().cpu())
    return torch.cat(outs) if outs else torch.zeros(0)
