"""Skeleton augmentations on batched tensors ``x (B, T, M, V, C)`` + ``lengths (B,)``.

Why batched: the pre-training loop augments whole batches on the accelerator, so every op
here draws its random numbers with one ``torch.Generator`` (on ``x``'s device for a sync-free
step; ``None`` = the device's default RNG, what ``torch.compile`` can trace) and works on all
samples at once, without per-sample Python, host reads or data-dependent shapes.

Conventions
- Frames ``t >= lengths[b]`` are padding and stay zero; ops that change a length return
  ``(x, lengths)`` with the output zero-padded after the new length (``T`` is unchanged).
- Spatial ops (``shear``, ``scale``) return only ``x``; ``joint_noise`` takes ``lengths`` so
  that padding stays zero, and returns only ``x``. Temporal ops return ``(x, lengths)``.
- Each op draws one transform per SAMPLE (the reference implementations work per sequence);
  in multi-body samples all bodies share it, and empty body slots stay zero.

Facts (supplementary section 1; hitrs.md "Augmentation in the reference"):
- shear: 3x3 matrix, diagonal 1, six off-diagonal entries U(-r, r), r = 0.5, x' = R x.
- noise: 5 random joints, U(-0.2, 0.2) offsets; the reference draws one offset per chosen
  joint and adds it to every frame (``per_frame=False``); ``per_frame=True`` redraws the
  joints and offsets for each frame (the literal reading of "at each frame").
- scale (reference only): one factor U(0.8, 1.2) per sample.
- time interpolation: r ~ U(0, 1); s'_t = s_t + r (s_{t+1} - s_t), last frame kept.
- temporal crop: ratio ~ U(0, 0.2), crop = round(L * ratio) frames, split between the two
  ends at a random point (integer in [0, crop]); new length L - crop.
- ``hitrs_augment``: with probability p per sample, exactly one spatial then one temporal op.
  The supplementary's spatial set is {shear, noise} (our default); the reference code's is
  {scale, noise, shear}: pass ``spatial=REFERENCE_SPATIAL`` to reproduce it.
- ``crossclr_temporal_crop``: CrosSCLR's crop: mirror-pad ``floor(T * pad_ratio)`` frames at
  both ends (edge frame included, i.e. symmetric padding) and take a random window of T.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from .precision import float32_island

SPATIAL_OPS = ("shear", "noise", "scale")
TEMPORAL_OPS = ("interp", "crop")
#: the supplementary's spatial set (default of ``hitrs_augment``)
PAPER_SPATIAL = ("shear", "noise")
#: the reference implementation's spatial set
REFERENCE_SPATIAL = ("scale", "noise", "shear")


# ----------------------------------------------------------------------------- helpers
def _rand(shape, generator: torch.Generator | None, device, dtype=torch.float32) -> torch.Tensor:
    """U[0, 1) from ``generator`` (None: the default RNG of ``device``, what compiled code draws
    from), returned on ``device``; a generator on ``device`` keeps the draw off the host."""
    gdev = generator.device if generator is not None else torch.device(device)
    return torch.rand(shape, generator=generator, device=gdev, dtype=dtype).to(device)


def _uniform(shape, low: float, high: float, generator, device, dtype=torch.float32) -> torch.Tensor:
    return low + (high - low) * _rand(shape, generator, device, dtype)


def host_readable(t: torch.Tensor) -> bool:
    """Whether reading ``t``'s values costs nothing: a CPU tensor outside ``torch.compile``.
    Value checks run only then; on an accelerator (or meta) they would stall the step."""
    return t.device.type == "cpu" and not torch.compiler.is_compiling()


def _check(x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor | None:
    if x.dim() != 5:
        raise ValueError(f"expected x of shape (B, T, M, V, C), got {tuple(x.shape)}")
    if lengths is None:
        return None
    lengths = torch.as_tensor(lengths, device=x.device).long().reshape(-1)
    if lengths.numel() != x.shape[0]:
        raise ValueError(f"lengths has {lengths.numel()} entries for a batch of {x.shape[0]}")
    if host_readable(lengths) and (bool((lengths < 0).any()) or bool((lengths > x.shape[1]).any())):
        raise ValueError(f"lengths must lie in [0, T={x.shape[1]}], got {lengths.tolist()}")
    return lengths


def frame_mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """(B, T, 1, 1, 1) bool, True on valid frames."""
    t = torch.arange(T, device=lengths.device)
    return (t[None, :] < lengths[:, None])[:, :, None, None, None]


def _body_mask(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, M, 1, 1) bool, True for body slots that hold any non-zero value."""
    return (x != 0).any(dim=(1, 3, 4), keepdim=True)


def take_frames(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Per-sample frame gather: ``out[b, k] = x[b, index[b, k]]`` for index (B, K)."""
    B, _, M, V, C = x.shape
    idx = index.to(x.device).long()[:, :, None, None, None].expand(-1, -1, M, V, C)
    return torch.gather(x, 1, idx)


# ----------------------------------------------------------------------------- spatial
def shear(x: torch.Tensor, generator: torch.Generator | None = None, r: float = 0.5) -> torch.Tensor:
    """Per-sample shear ``x' = R x`` (R: ones on the diagonal, off-diagonals U(-r, r))."""
    _check(x)
    B, C = x.shape[0], x.shape[-1]
    if C != 3:
        raise ValueError(f"shear needs 3 coordinates, got C={C}")
    off = _uniform((B, 6), -r, r, generator, x.device, x.dtype)   # s1[0..2], then s2[0..2]
    one = torch.ones_like(off[:, 0])
    R = torch.stack([torch.stack([one, off[:, 0], off[:, 3]], 1),      # built on the device:
                     torch.stack([off[:, 1], one, off[:, 4]], 1),      # no index tensor from the host
                     torch.stack([off[:, 2], off[:, 5], one], 1)], 1)
    with float32_island(x):  # an einsum is a matmul: autocast would round the coordinates to bf16
        return torch.einsum("btmvc,bdc->btmvd", x, R)


def scale(x: torch.Tensor, generator: torch.Generator | None = None,
          low: float = 0.8, high: float = 1.2) -> torch.Tensor:
    """Multiply each sample by one factor U(low, high)."""
    _check(x)
    f = _uniform((x.shape[0],), low, high, generator, x.device, x.dtype)
    return x * f.view(-1, 1, 1, 1, 1)


def _choose_joints(shape_lead, V: int, k: int, generator, device) -> torch.Tensor:
    """Bool mask (*shape_lead, V) with exactly k distinct joints per leading index."""
    if not 0 <= k <= V:
        raise ValueError(f"joints={k} must lie in [0, V={V}]")
    ranks = _rand((*shape_lead, V), generator, device).argsort(dim=-1).argsort(dim=-1)
    return ranks < k


def joint_noise(x: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator | None = None,
                joints: int = 5, amp: float = 0.2, per_frame: bool = False) -> torch.Tensor:
    """Add U(-amp, amp) to ``joints`` random joints on the valid frames of non-empty bodies.

    ``per_frame=False`` (reference): the same joints and offsets on every frame;
    ``per_frame=True``: new joints and offsets for each frame.
    """
    lengths = _check(x, lengths)
    B, T, M, V, C = x.shape
    lead = (B, T) if per_frame else (B,)
    chosen = _choose_joints(lead, V, joints, generator, x.device)
    noise = _uniform((*lead, V, C), -amp, amp, generator, x.device, x.dtype) * chosen[..., None]
    noise = noise[:, :, None] if per_frame else noise[:, None, None]  # -> (B, T|1, 1, V, C)
    keep = frame_mask(lengths, T) & _body_mask(x)
    return x + noise * keep


# ----------------------------------------------------------------------------- temporal
def time_interpolate(x: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """s'_t = s_t + r (s_{t+1} - s_t), r ~ U(0, 1) per sample; the last valid frame is kept."""
    lengths = _check(x, lengths)
    B, T = x.shape[:2]
    r = _rand((B,), generator, x.device, x.dtype).view(-1, 1, 1, 1, 1)
    nxt = torch.cat([x[:, 1:], torch.zeros_like(x[:, :1])], dim=1)
    inner = frame_mask(lengths - 1, T)
    out = torch.where(inner, x + r * (nxt - x), x) * frame_mask(lengths, T)
    return out, lengths.clone()


def temporal_crop(x: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator | None = None,
                  max_ratio: float = 0.2) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop round(L * U(0, max_ratio)) frames, split at random between start and end."""
    lengths = _check(x, lengths)
    B, T = x.shape[:2]
    ratio = _uniform((B,), 0.0, max_ratio, generator, x.device)
    crop = torch.round(lengths.float() * ratio).long()  # half to even, as numpy's round
    begin = torch.floor(_rand((B,), generator, x.device) * (crop + 1)).long()
    begin = torch.minimum(begin, crop)
    new_len = lengths - crop
    t = torch.arange(T, device=x.device)
    src = (begin[:, None] + t[None, :]).clamp(max=T - 1)
    out = take_frames(x, src) * frame_mask(new_len, T)
    return out, new_len


def crossclr_temporal_crop(x: torch.Tensor, generator: torch.Generator | None = None,
                           pad_ratio: float = 1 / 6) -> torch.Tensor:
    """CrosSCLR crop for fixed-length input (e.g. frame50): mirror pad, random T window."""
    _check(x)
    B, T = x.shape[:2]
    pad = min(int(math.floor(T * pad_ratio + 1e-9)), T)
    if pad == 0:
        return x.clone()
    padded = torch.cat([x[:, :pad].flip(1), x, x[:, T - pad:].flip(1)], dim=1)
    start = torch.floor(_rand((B,), generator, x.device) * (2 * pad + 1)).long()
    start = start.clamp(max=2 * pad)
    idx = start[:, None] + torch.arange(T, device=x.device)[None, :]
    return take_frames(padded, idx)


# ----------------------------------------------------------------------------- Hi-TRS policy
def _apply_spatial(name: str, x, lengths, generator):
    if name == "shear":
        return shear(x, generator)
    if name == "noise":
        return joint_noise(x, lengths, generator)
    if name == "scale":
        return scale(x, generator)
    raise ValueError(f"unknown spatial augmentation {name!r}; choose from {', '.join(SPATIAL_OPS)}")


def _apply_temporal(name: str, x, lengths, generator):
    if name == "interp":
        return time_interpolate(x, lengths, generator)
    if name == "crop":
        return temporal_crop(x, lengths, generator)
    raise ValueError(f"unknown temporal augmentation {name!r}; choose from {', '.join(TEMPORAL_OPS)}")


def hitrs_augment(x: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator | None = None,
                  p: float = 0.5, spatial: Sequence[str] = PAPER_SPATIAL,
                  temporal: Sequence[str] = TEMPORAL_OPS) -> tuple[torch.Tensor, torch.Tensor]:
    """With probability ``p`` per sample: one spatial op, then one temporal op (uniform choice).

    Samples that are not selected are returned unchanged. Each op runs once on the whole batch
    and is kept by the samples that chose it (a loop over op names, never over samples; no
    data-dependent shape). Always float32 math, also under autocast (the caller's dtype is kept).
    """
    with float32_island(x):
        return _hitrs_augment(x, lengths, generator, p, spatial, temporal)


def _hitrs_augment(x, lengths, generator, p, spatial, temporal):
    lengths = _check(x, lengths)
    for name in spatial:
        if name not in SPATIAL_OPS:
            raise ValueError(f"unknown spatial augmentation {name!r}; choose from {', '.join(SPATIAL_OPS)}")
    for name in temporal:
        if name not in TEMPORAL_OPS:
            raise ValueError(f"unknown temporal augmentation {name!r}; choose from {', '.join(TEMPORAL_OPS)}")
    B = x.shape[0]
    selected = _rand((B,), generator, x.device) < p
    s_pick = (_rand((B,), generator, x.device) * max(len(spatial), 1)).long()
    t_pick = (_rand((B,), generator, x.device) * max(len(temporal), 1)).long()
    # every op runs on the whole batch and each sample keeps the result of the op it chose:
    # fixed shapes and no host read (the draws of the samples that did not choose an op are
    # discarded, so the distribution is the per-subset one, the random stream is not)
    out, new_len = x, lengths
    for k, name in enumerate(spatial):
        chosen = selected & (s_pick == k)
        out = torch.where(chosen.view(-1, 1, 1, 1, 1), _apply_spatial(name, out, new_len, generator), out)
    for k, name in enumerate(temporal):
        chosen = selected & (t_pick == k)
        moved, moved_len = _apply_temporal(name, out, new_len, generator)
        out = torch.where(chosen.view(-1, 1, 1, 1, 1), moved, out)
        new_len = torch.where(chosen, moved_len, new_len)
    return out, new_len
