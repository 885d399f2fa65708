"""Float32 islands: code that reads coordinates stays float32 under any autocast.

Why: bf16 keeps 8 significant bits, so camera coordinates (metres, z ~ 3-4) round by up to
~15 mm and frame-to-frame differences of a few millimetres vanish. Augmentations, stream
conversion, masking and regression targets, the first layer that reads coordinates, losses and
metrics therefore run with autocast disabled on float32 tensors, wherever they are called from.
"""
from __future__ import annotations

import contextlib

import torch


def float32_island(device: torch.device | str | torch.Tensor):
    """Context that disables autocast on ``device`` (or a tensor's device); ``meta`` has no
    autocast (``benchmarks.perf --device meta``), so nothing to disable there."""
    if isinstance(device, torch.Tensor):
        device = device.device
    kind = torch.device(device).type
    return contextlib.nullcontext() if kind == "meta" else torch.autocast(kind, enabled=False)
