"""Joint / motion / bone streams on batched tensors ``(..., T, M, V, C)``."""
from __future__ import annotations

import functools

import torch

#: (child, parent) joint pairs, 1-based, NTU order (hitrs.md / ST-GCN); joint 21 is its own parent
NTU_BONE_PAIRS = (
    (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
    (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
    (20, 19), (21, 21), (22, 23), (23, 8), (24, 25), (25, 12),
)
#: parent index (0-based) of each 0-based joint
NTU_PARENT = torch.tensor([p - 1 for _, p in sorted(NTU_BONE_PAIRS)], dtype=torch.long)

STREAMS = ("joint", "motion", "bone")


def motion(x: torch.Tensor, lengths: torch.Tensor | None = None, *, forward: bool = False) -> torch.Tensor:
    """Frame differences along T (dim -4).

    ``forward=False`` (Hi-TRS): m_t = x_t - x_{t-1}, first frame 0.
    ``forward=True`` (CrosSCLR): m_t = x_{t+1} - x_t, last frame 0.
    With ``lengths``, the difference that would cross into padding is zeroed.
    """
    diff = x[..., 1:, :, :, :] - x[..., :-1, :, :, :]
    zero = torch.zeros_like(x[..., :1, :, :, :])
    out = torch.cat([diff, zero], dim=-4) if forward else torch.cat([zero, diff], dim=-4)
    if lengths is not None:
        t = torch.arange(x.shape[-4], device=x.device)
        limit = lengths.to(x.device).view(-1, *([1] * (x.dim() - 1)))
        keep = (t.view(-1, 1, 1, 1) < (limit - 1 if forward else limit))
        out = out * keep
    return out


@functools.lru_cache(maxsize=None)
def _parents(device: torch.device) -> torch.Tensor:
    """``NTU_PARENT`` on ``device``, copied once (not a host-to-device copy in every step)."""
    return NTU_PARENT.to(device)


def bone(x: torch.Tensor) -> torch.Tensor:
    """x_v - x_parent(v) over the 25 NTU pairs (the spine-shoulder bone is zero)."""
    return x - x[..., _parents(x.device), :]


def to_stream(x: torch.Tensor, stream: str, lengths: torch.Tensor | None = None, *, forward_motion: bool = False) -> torch.Tensor:
    """Convert raw joint coordinates to ``stream``."""
    if stream == "joint":
        return x
    if stream == "motion":
        return motion(x, lengths, forward=forward_motion)
    if stream == "bone":
        return bone(x)
    raise ValueError(f"unknown stream {stream!r}; choose one of {', '.join(STREAMS)}")
