"""Batched view construction for the MCC reconstruction.

Every view is a per-sample grid of (fractional) source frame positions ``times (B, F)``,
read with linear interpolation, so the anchor, its speed-changed and interpolated positives
and its motion-broken negative differ only in their grids.
"""
from __future__ import annotations

import math

import torch

from datasets.augment import _rand as _draw
from datasets.augment import take_frames


def _rand(shape, generator, device) -> torch.Tensor:
    """U[0, 1) from ``generator`` on its own device (None: ``device``'s default RNG)."""
    return _draw(shape, generator, device)


def read_frames(x: torch.Tensor, lengths: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """``(B, F, M, V, C)``: linear interpolation of ``x`` at ``times`` (clamped to the valid frames)."""
    last = (lengths.to(x.device).long() - 1).clamp(min=0).to(times.dtype)[:, None]
    t = torch.minimum(times.clamp(min=0), last)
    i0 = t.floor().long()
    i1 = torch.minimum(i0 + 1, last.long())
    w = (t - i0.to(t.dtype)).to(x.dtype)[:, :, None, None, None]
    return take_frames(x, i0) * (1 - w) + take_frames(x, i1) * w


def full_grid(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """``(B, frames)`` evenly spaced over all valid frames (downstream input)."""
    u = torch.linspace(0, 1, frames, device=lengths.device)
    return (lengths.float() - 1).clamp(min=0)[:, None] * u[None, :]


def crop_grid(lengths: torch.Tensor, frames: int, crop_min: float, generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random window of ``U(crop_min, 1)`` of the valid span; returns ``(times, span)``."""
    dev = lengths.device
    span_all = (lengths.float() - 1).clamp(min=0)
    span = span_all * (crop_min + (1 - crop_min) * _rand(lengths.shape, generator, dev))
    start = (span_all - span) * _rand(lengths.shape, generator, dev)
    u = torch.linspace(0, 1, frames, device=dev)
    return start[:, None] + span[:, None] * u[None, :], span


def speed_grid(anchor: torch.Tensor, span: torch.Tensor, lengths: torch.Tensor, low: float, high: float,
               generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The anchor's window played ``s`` times faster (log-uniform ``s`` in [low, high]), same
    centre, kept inside the valid frames; returns ``(times, s)``."""
    dev = anchor.device
    s = torch.exp(math.log(low) + (math.log(high) - math.log(low)) * _rand(span.shape, generator, dev))
    span_all = (lengths.float() - 1).clamp(min=0)
    new_span = torch.minimum(span * s, span_all)
    centre_t = (anchor[:, 0] + anchor[:, -1]) / 2
    start = torch.minimum((centre_t - new_span / 2).clamp(min=0), span_all - new_span)
    u = torch.linspace(0, 1, anchor.shape[1], device=dev)
    return start[:, None] + new_span[:, None] * u[None, :], torch.where(span > 0, new_span / span.clamp(min=1e-6), s)


def jitter_grid(anchor: torch.Tensor, generator) -> torch.Tensor:
    """The anchor's grid moved by random sub-frame offsets (|offset| < 1/2 frame and < half the
    grid step, so the order is kept): interpolated in-between skeletons."""
    step = (anchor[:, -1] - anchor[:, 0]) / max(anchor.shape[1] - 1, 1)
    limit = torch.minimum(step / 2, torch.full_like(step, 0.5))[:, None]
    return anchor + (2 * _rand(anchor.shape, generator, anchor.device) - 1) * limit * 0.999


def broken_grid(anchor: torch.Tensor, segments: int, reverse_prob: float, generator) -> torch.Tensor:
    """Motion-broken grid: the anchor reversed (with ``reverse_prob``) or its ``segments``
    pieces in a random non-identity order."""
    b, f = anchor.shape
    dev = anchor.device
    order = _rand((b, segments), generator, dev).argsort(dim=1)              # new position -> segment
    identity = (order == torch.arange(segments, device=dev)).all(dim=1, keepdim=True)
    order = torch.where(identity, order.roll(1, dims=1), order)
    rank = order.argsort(dim=1)                                              # segment -> new position
    seg = torch.arange(f, device=dev) * segments // f                        # segment of each frame
    key = rank[:, seg] * f + torch.arange(f, device=dev)[None, :]
    shuffled = anchor.gather(1, key.argsort(dim=1))
    reverse = _rand((b, 1), generator, dev) < reverse_prob
    return torch.where(reverse, anchor.flip(1), shuffled)
