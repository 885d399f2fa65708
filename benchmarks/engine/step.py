"""One optimizer step of any training phase, written once: the engine's pre-training, the
downstream ``fit`` loop and ``benchmarks.perf`` all call ``train_step``.

What happens on the host stays outside: batches arrive as ``MicroBatch`` (host tensors padded
to a fixed length, plus the capacities the method's packed tensors get, chosen by the loader
from the lengths), and what comes back are device tensors: the step's loss and logs, summed
over its micro-batches and never read here. The caller reads them every ``log_every`` steps
(``LogWindow``), which is also where a non-finite loss is noticed. Inside a step nothing makes
the host wait for the device, and every shape follows from the batch's shape and capacities.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
from torch import nn

from .precision import autocast


@dataclass
class MicroBatch:
    """One micro-batch as the loader made it: host (pinned on CUDA) tensors, first dim = samples."""

    tensors: tuple[torch.Tensor, ...]
    capacities: dict[str, int] = field(default_factory=dict)
    valid_frames: int = 0          # frames of real data (padding statistics)
    padded_frames: int = 0         # frames laid out (B x T)

    @property
    def samples(self) -> int:
        return int(self.tensors[0].shape[0])

    def shape_key(self) -> tuple:
        """Everything that decides the step's shapes (a compiled graph per key)."""
        return tuple(tuple(t.shape) for t in self.tensors) + tuple(sorted(self.capacities.items()))

    def to(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        return tuple(t.to(device, non_blocking=t.is_pinned()) for t in self.tensors)


def _add(sums: dict[str, torch.Tensor], logs: dict, scale: float) -> None:
    for key, value in logs.items():
        value = value.detach().float() if torch.is_tensor(value) else torch.tensor(float(value))
        sums[key] = sums[key] + value * scale if key in sums else value * scale


def train_step(loss_of: Callable[[tuple[torch.Tensor, ...]], tuple[torch.Tensor, dict]],
               micro_batches: Iterable[MicroBatch], optimizer: torch.optim.Optimizer, *, accumulation: int,
               device: torch.device, precision: str | None = None, grad_clip: float = 0.0,
               params: Callable[[], Iterable[nn.Parameter]] | None = None, shapes=None,
               no_sync: Callable[[], contextlib.AbstractContextManager] | None = None) -> dict[str, torch.Tensor]:
    """zero_grad, ``accumulation`` micro-batches forward (under the run's autocast and
    ``shapes(capacities)``) and backward of ``loss / accumulation``, grad-norm clip, optimizer
    step. Returns ``{"loss": ..., **logs}`` as device tensors averaged over the micro-batches
    (``loss_of(device tensors) -> (loss, logs)``). ``no_sync`` (DDP) wraps all but the last
    micro-batch's backward. The scheduler and method hooks are the caller's."""
    optimizer.zero_grad(set_to_none=True)
    sums: dict[str, torch.Tensor] = {}
    batches = iter(micro_batches)
    for micro in range(accumulation):
        batch = next(batches)
        tensors = batch.to(device)
        sync = no_sync() if no_sync is not None and micro < accumulation - 1 else contextlib.nullcontext()
        shaped = shapes(batch.capacities) if shapes is not None else contextlib.nullcontext()
        with sync:
            with shaped, autocast(device, precision):
                loss, logs = loss_of(tensors)
            (loss / accumulation).backward()
        _add(sums, {"loss": loss, **logs}, 1.0 / accumulation)
    if grad_clip > 0:
        nn.utils.clip_grad_norm_(list(params()), grad_clip)   # foreach on CUDA, no host read
    optimizer.step()
    return sums


class LogWindow:
    """Device-side record of the steps since the host last looked: whether any loss was
    non-finite, and the latest step's values; ``read`` is the one sync per ``log_every``."""

    def __init__(self):
        self.bad: torch.Tensor | None = None
        self.latest: dict[str, torch.Tensor] = {}
        self.first_step: int | None = None

    def add(self, step: int, sums: dict[str, torch.Tensor]) -> None:
        loss = sums["loss"]
        bad = ~torch.isfinite(loss)
        self.bad = bad if self.bad is None else self.bad | bad
        self.latest = sums
        if self.first_step is None:
            self.first_step = step

    def read(self) -> tuple[bool, dict[str, float], int | None]:
        """``(all finite, latest values, first step of the window)``, and a new window."""
        if self.bad is None:
            return True, {}, None
        keys = list(self.latest)
        on = self.bad.device   # a method's plain-number logs are CPU scalars beside device losses
        values = torch.stack([self.latest[k].float().reshape(()).to(on) for k in keys] + [self.bad.float()]).tolist()
        finite, first = values[-1] == 0.0, self.first_step
        self.bad, self.first_step = None, None
        return finite, dict(zip(keys, values[:-1])), first
