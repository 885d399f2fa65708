"""What every downstream task shares: its context, its output and the step LR schedule (the
train / predict loops are the engine's: ``benchmarks.engine.loops``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from ..engine import distributed


@dataclass
class TaskContext:
    """Inputs of one downstream run."""

    method_name: str
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
    precision: str | None = None                # benchmarks.engine.precision; None = the device's default
    max_steps: int | None = None                # --smoke: stop each training phase after this many steps


@dataclass
class TaskOutput:
    metrics: dict[str, float]
    outputs: dict[str, Any] = field(default_factory=dict)     # e.g. class probabilities for "-3s"
    artifacts: dict[str, Any] = field(default_factory=dict)   # name -> object to write
    samples_per_s: float = 0.0


def step_schedule(optimizer, milestones, gamma):
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(milestones), gamma=gamma)
