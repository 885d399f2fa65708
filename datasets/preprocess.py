"""Preprocessing on batched tensors ``x (B, T, M, V, C)`` + ``lengths (B,)``.

- raw camera coordinates: the Hi-TRS default, nothing to do (``preprocess(..., "raw")``).
- ``frame50``: the CrosSCLR / AimCLR "frame50" arrays (``{train,val}_position.npy``), computed
  as CrosSCLR's ``NTUMotionProcessor(data_type='relative', t_length=50, y_rotation=True,
  sampling='resize')`` does (facts, data.md):
  1. valid length L = number of frames whose body-0 joint-1 is non-zero (a count, as the
     reference does; the first L frames are then used);
  2. subtract joint 21 (index 20) per frame and body;
  3. resize the first L frames to 50 by linear interpolation with half-pixel centres
     (OpenCV ``INTER_LINEAR`` = ``F.interpolate(..., align_corners=False)``), both bodies;
  4. per body, rotate every frame about y by the angle that puts (right shoulder - left
     shoulder), y zeroed, on +x; the reference takes the rotation's SIGN from the sum of that
     vector's z over all 50 frames (not per frame), and so do we, to reproduce its arrays.
- ``split_bodies``: Hi-TRS pre-training makes every body its own sample and drops sequences of
  <= 18 frames (the reference keeps ``length > 2 * stride / 0.8 + 1``).
"""
from __future__ import annotations

import numpy as np
import torch

from .augment import _check, frame_mask, take_frames

SPINE_BASE = 0         # joint 1
CENTER_JOINT = 20       # joint 21, spine shoulder (0-based)
LEFT_SHOULDER = 4       # joint 5
RIGHT_SHOULDER = 8      # joint 9
FRAME50 = 50
MIN_PRETRAIN_LENGTH = 18


def reference_valid_length(x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """CrosSCLR's valid length: count of frames whose body-0 joint-1 has any non-zero coordinate."""
    nonzero = x[:, :, 0, 0, :].abs().sum(-1) != 0               # (B, T)
    if lengths is not None:
        nonzero = nonzero & frame_mask(lengths, x.shape[1])[:, :, 0, 0, 0]
    return nonzero.sum(1)


def centre(x: torch.Tensor, ref: torch.Tensor, joint: int = CENTER_JOINT) -> torch.Tensor:
    """Subtract body 0's ``joint`` at frame ``ref[b]`` from every present entry (frames/bodies
    that are all zero stay zero): MCC's input, and Hi-TRS's with ``center_input``."""
    origin = x[torch.arange(x.shape[0], device=x.device), ref.to(x.device).long(), 0, joint]
    present = (x != 0).any(dim=(3, 4), keepdim=True)
    return torch.where(present, x - origin[:, None, None, None, :], x)


def resize_frames(x: torch.Tensor, lengths: torch.Tensor, size: int) -> torch.Tensor:
    """Linearly resample the first ``lengths[b]`` frames of each sample to ``size`` frames.

    Half-pixel mapping ``src = (j + 0.5) * L / size - 0.5`` clamped to [0, L - 1] (OpenCV
    INTER_LINEAR). Samples with L = 0 come out as zeros.
    """
    B = x.shape[0]
    L = lengths.to(x.device).long()
    # source positions in float64 like OpenCV: a (B, size) table on the batch's device (no
    # host round trip); MPS has no float64, so there it is built on the CPU
    on = torch.device("cpu") if x.device.type == "mps" else x.device
    Lc = L.to(on)
    Lf = Lc.to(torch.float64)[:, None]
    j = torch.arange(size, dtype=torch.float64, device=on)[None, :]
    src = ((j + 0.5) * Lf / size - 0.5).clamp(min=0)
    i0 = torch.floor(src).long()
    last = (Lc - 1).clamp(min=0)[:, None]
    i0 = torch.minimum(i0, last)
    i1 = torch.minimum(i0 + 1, last).to(x.device)
    w = (src - i0.to(torch.float64)).clamp(0, 1).to(x.dtype).to(x.device).view(B, size, 1, 1, 1)
    i0 = i0.to(x.device)
    out = take_frames(x, i0) * (1 - w) + take_frames(x, i1) * w
    return out * (L > 0).view(B, 1, 1, 1, 1)


def y_rotate_shoulders(x: torch.Tensor) -> torch.Tensor:
    """Rotate each frame of each body about y (shoulder line -> +x), sign per body sequence."""
    vec = x[:, :, :, RIGHT_SHOULDER, :] - x[:, :, :, LEFT_SHOULDER, :]   # (B, T, M, 3)
    vx, vz = vec[..., 0], vec[..., 2]
    norm = torch.sqrt(vx * vx + vz * vz)
    angle = torch.arccos((vx / (norm + 1e-4)).clamp(-1.0, 1.0))        # (B, T, M)
    sign = torch.where(vz.sum(dim=1, keepdim=True) >= 0, -1.0, 1.0).to(x.dtype)
    theta = angle * sign
    c, s = torch.cos(theta)[..., None], torch.sin(theta)[..., None]    # (B, T, M, 1)
    px, py, pz = x[..., 0], x[..., 1], x[..., 2]
    return torch.stack([c * px - s * pz, py, s * px + c * pz], dim=-1)


def frame50(x: torch.Tensor, lengths: torch.Tensor | None = None, size: int = FRAME50) -> torch.Tensor:
    """CrosSCLR "frame50" on a batch: (B, T, M, V, 3) -> (B, size, M, V, 3).

    ``lengths`` (optional) only masks padding; the valid length follows the reference rule.
    """
    lengths = _check(x, lengths)
    L = reference_valid_length(x, lengths)
    centred = x - x[:, :, :, CENTER_JOINT:CENTER_JOINT + 1, :]
    return y_rotate_shoulders(resize_frames(centred, L, size))


def frame50_numpy(seq: np.ndarray, size: int = FRAME50) -> np.ndarray:
    """frame50 of one sample ``(T, M, V, 3)`` -> float32 ``(size, M, V, 3)``."""
    x = torch.as_tensor(np.asarray(seq, dtype=np.float32))[None]
    return frame50(x, size=size)[0].numpy()


def split_bodies(x: torch.Tensor, lengths: torch.Tensor, min_length: int = MIN_PRETRAIN_LENGTH,
                 return_index: bool = False):
    """Every non-empty body becomes its own sample ``(B', T, 1, V, C)``; drop lengths <= min_length.

    A body slot is non-empty when it holds any non-zero value in its valid frames (the
    reference keeps slots below the sample's body count, which is the same thing for data read
    by our readers). Order: sample-major, then body slot. With ``return_index`` also returns
    (sample, body) indices of shape (B', 2).
    """
    lengths = _check(x, lengths)
    B, T, M = x.shape[:3]
    valid = frame_mask(lengths, T)
    present = ((x != 0) & valid).any(dim=(1, 3, 4))                   # (B, M)
    keep = present & (lengths > min_length)[:, None]
    b_idx, m_idx = torch.nonzero(keep, as_tuple=True)
    out = x[b_idx, :, m_idx][:, :, None]                               # (B', T, 1, V, C)
    new_len = lengths[b_idx]
    if return_index:
        return out, new_len, torch.stack([b_idx, m_idx], dim=1)
    return out, new_len


def preprocess(x: torch.Tensor, lengths: torch.Tensor, mode: str = "raw"):
    """Dispatch by name: ``raw`` (identity) or ``frame50``; returns (x, lengths)."""
    if mode == "raw":
        return x, lengths
    if mode == "frame50":
        out = frame50(x, lengths)
        L = reference_valid_length(x, _check(x, lengths))
        return out, torch.where(L > 0, torch.full_like(L, out.shape[1]), L)
    raise ValueError(f"unknown preprocessing {mode!r}; choose 'raw' or 'frame50'")
