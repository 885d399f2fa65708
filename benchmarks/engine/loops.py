"""The fit / predict loops every downstream head shares, and the adapter that lets DDP and
batched prediction drive SkeletonMethod interface calls.

``ctx`` is any object with ``device``, ``dist``, ``compile`` and ``progress`` (the tasks'
``TaskContext``); the engine does not import the tasks.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from .precision import autocast
from .step import LogWindow, MicroBatch, train_step


class MethodCall(nn.Module):
    """``forward`` = one named method of a SkeletonMethod (``pretrain_loss``, ``video_embedding``):
    lets DDP's hooks and ``predict_batches`` drive interface calls other than ``forward``."""

    def __init__(self, method, name: str):
        super().__init__()
        self.method = method
        self.name = name

    def forward(self, *args):
        return getattr(self.method, self.name)(*args)


def wrap_ddp(model: nn.Module, ctx) -> nn.Module:
    if not ctx.dist.enabled:
        return model
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)


def fit(model: nn.Module, params, optimizer, scheduler, epochs: int, epoch_batches: Callable[[int], list],
        loss_of_batch: Callable[[nn.Module, Any], torch.Tensor], ctx, desc: str,
        grad_clip: float = 0.0, shapes=None) -> float:
    """Train for ``epochs`` (scheduler stepped per epoch; grad-norm clip when ``grad_clip > 0``);
    returns training samples/s. ``epoch_batches(epoch)`` yields ``MicroBatch`` es (or tuples of
    device tensors); ``shapes`` (a method's ``static_shapes``) applies their capacities. Losses
    stay on the device: the host reads them once per epoch, where a non-finite one stops the
    run. ``ctx.max_steps`` (smoke runs) ends training after that many optimizer steps."""
    trained = wrap_ddp(model, ctx)
    if ctx.compile:   # static shapes: one graph per capacity bucket
        trained = torch.compile(trained, dynamic=False)
    seen, steps, start = 0, 0, time.perf_counter()
    bar = tqdm(total=epochs, desc=desc, disable=not (ctx.progress and ctx.dist.main), leave=False, dynamic_ncols=True)
    for epoch in range(epochs):
        if ctx.max_steps is not None and steps >= ctx.max_steps:
            break
        trained.train()
        window = LogWindow()
        for batch in epoch_batches(epoch):
            if ctx.max_steps is not None and steps >= ctx.max_steps:
                break
            batch = batch if isinstance(batch, MicroBatch) else MicroBatch(tuple(batch))
            sums = train_step(lambda tensors: (loss_of_batch(trained, tensors), {}), [batch], optimizer,
                              accumulation=1, device=ctx.device, precision=ctx.precision, grad_clip=grad_clip,
                              params=model.parameters, shapes=shapes)
            window.add(steps, sums)
            steps += 1
            seen += batch.samples * ctx.dist.world
        finite, latest, _ = window.read()
        if not finite:
            raise FloatingPointError(f"{desc}: non-finite loss in epoch {epoch}; no metrics written")
        scheduler.step()
        bar.update(1)
        if latest:
            bar.set_postfix(loss=f"{latest['loss']:.4f}")
    bar.close()
    elapsed = time.perf_counter() - start
    return seen / elapsed if elapsed > 0 else 0.0


@torch.no_grad()
def predict_batches(model: nn.Module, batches, ctx) -> torch.Tensor:
    """Concatenated float32 model outputs (CPU) over ``batches`` in order, eval mode."""
    model.eval()
    outs = []
    for batch in batches:
        with autocast(ctx.device, ctx.precision):
            outs.append(model(*batch).float().cpu())
    return torch.cat(outs) if outs else torch.zeros(0)
