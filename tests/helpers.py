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
