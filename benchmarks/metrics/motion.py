"""Motion-prediction error: MPJPE overall and per predicted frame (horizon)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["mpjpe", "mpjpe_per_horizon", "to_numpy"]


def to_numpy(x) -> np.ndarray:
    """float64 numpy view of a numpy array, list or torch tensor (no torch import needed)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _pair(pred, target) -> tuple[np.ndarray, np.ndarray]:
    p, t = to_numpy(pred), to_numpy(target)
    if p.shape != t.shape:
        raise ValueError(f"pred and target shapes differ: {p.shape} vs {t.shape}")
    if p.ndim < 1 or p.shape[-1] == 0:
        raise ValueError(f"expected (..., joints, dims) coordinates, got shape {p.shape}")
    if p.size == 0:
        raise ValueError(f"empty input of shape {p.shape}: nothing to average")
    return p, t


def mpjpe(pred, target) -> float:
    """Mean over every leading dimension (samples, frames, joints) of the Euclidean distance
    along the last axis (x, y, z). Same unit as the inputs (the suite passes millimetres)."""
    p, t = _pair(pred, target)
    return float(np.linalg.norm(p - t, axis=-1).mean())


def mpjpe_per_horizon(pred, target, horizons: Sequence[int] = (3, 6, 12, 18, 25)) -> dict[str, float]:
    """MPJPE at individual predicted frames: ``{"mpjpe@h": error at the h-th predicted frame}``
    (1-based, i.e. index h-1 of the frame axis), averaged over samples and joints.

    ``pred``/``target``: ``(S, T, J, 3)``. The error AT frame h (not up to h) is the usual
    motion-prediction convention (errors at 80/160/320/... ms)."""
    p, t = _pair(pred, target)
    if p.ndim != 4:
        raise ValueError(f"expected (samples, frames, joints, 3), got shape {p.shape}")
    h = np.asarray(list(horizons), dtype=np.int64)
    if h.size and (h.min() < 1 or h.max() > p.shape[1]):
        raise ValueError(f"horizons {list(horizons)} must lie in 1..{p.shape[1]} (the predicted frames)")
    per_frame = np.linalg.norm(p - t, axis=-1).mean(axis=(0, 2))  # (T,)
    return {f"mpjpe@{int(k)}": float(per_frame[k - 1]) for k in h}
