"""Sliding clips over a variable-length sequence, exactly as the reference cuts them.

The sequence is zero-padded with ``p = (window // 2) * dilation`` frames at both ends
(length ``F = L + 2p``); window ``k`` reads padded frames ``k*stride + j*dilation`` (j < window),
i.e. it is centred on original frame ``k*stride``. Windowing stops after the first window whose
last index is ``>= F - 1 - p`` and whose successor would end past ``F - 1``; a window that runs
off the end repeats the last index (never happens for 7/7/2). 64 frames -> 10 windows, 100 -> 15,
300 -> 43. Everything is batched: per-sample counts, one gather.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from datasets.augment import host_readable


def pad_frames(window: int, dilation: int) -> int:
    """Zero frames added at each end of a sequence before windowing."""
    return (window // 2) * dilation


def _check_lengths(lengths: torch.Tensor) -> torch.Tensor:
    lengths = torch.as_tensor(lengths).long()
    if lengths.dim() != 1:
        raise ValueError(f"lengths must be a 1-D tensor of frame counts, got shape {tuple(lengths.shape)}")
    if lengths.numel() and host_readable(lengths) and int(lengths.min()) < 1:
        raise ValueError(f"every sample needs at least one frame; got lengths {lengths.tolist()}")
    return lengths


def window_counts(lengths: torch.Tensor, window: int = 7, stride: int = 7, dilation: int = 2,
                  max_length: int | None = None) -> torch.Tensor:
    """Number of clips per sample, ``(B,)`` int64 (the reference's stopping rule, vectorised).
    ``max_length`` (a bound on the lengths, e.g. the padded T) keeps the host from reading them."""
    lengths = _check_lengths(lengths)
    p = pad_frames(window, dilation)
    span = (window - 1) * dilation
    padded = lengths + 2 * p                                     # F per sample
    if lengths.numel() == 0:
        return lengths.clone()
    longest = int(padded.max()) if max_length is None else max_length + 2 * p
    kmax = (longest - 1) // stride + 2                           # a stop is always reached before this
    k = torch.arange(kmax, device=lengths.device)
    last = torch.minimum(k * stride + span, (padded - 1)[:, None])
    stop = (last >= (padded - 1 - p)[:, None]) & ((k + 1) * stride + span > (padded - 1)[:, None])
    return stop.int().argmax(dim=1) + 1                          # first window that stops, + 1


def count_for(length: int, window: int = 7, stride: int = 7, dilation: int = 2) -> int:
    """Clips of one ``length``-frame sequence: ``window_counts``' rule in plain integers (static
    sizes are Python ints, which ``torch.compile`` keeps constant; a test checks the two agree)."""
    p, span = pad_frames(window, dilation), (window - 1) * dilation
    last_index = length + 2 * p - 1
    for k in range((last_index) // stride + 2):
        if min(k * stride + span, last_index) >= last_index - p and (k + 1) * stride + span > last_index:
            return k + 1
    raise AssertionError("the windowing rule always stops")   # unreachable: k = kmax - 1 stops


def window_index(lengths: torch.Tensor, window: int = 7, stride: int = 7, dilation: int = 2,
                 num_windows: int | None = None, max_length: int | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Padded-frame indices ``(B, K, window)``, validity ``(B, K)`` bool and counts ``(B,)``.

    ``K`` is ``num_windows``, else the clip count of ``max_length`` (static: what the padded
    T allows), else the batch maximum (read on the host); indices of windows past a sample's
    count are still in range (they read zero padding) but flagged invalid.
    """
    lengths = _check_lengths(lengths)
    counts = window_counts(lengths, window, stride, dilation, max_length)
    if num_windows is not None:
        num = int(num_windows)
    elif max_length is not None:
        num = count_for(max_length, window, stride, dilation)
    else:
        num = int(counts.max())
    dev = lengths.device
    k = torch.arange(num, device=dev)
    j = torch.arange(window, device=dev)
    idx = k[:, None] * stride + j[None, :] * dilation                          # (K, w)
    limit = (lengths + 2 * pad_frames(window, dilation) - 1)[:, None, None]    # (B, 1, 1)
    idx = torch.minimum(idx[None], limit)                                       # repeat last index
    valid = k[None, :] < counts[:, None]
    return idx, valid, counts


def pad_sequence(x: torch.Tensor, lengths: torch.Tensor, pad: int) -> torch.Tensor:
    """Zero everything at/after each length (dim 1 = time) and add ``pad`` zero frames both ends."""
    t = torch.arange(x.shape[1], device=x.device)
    keep = (t[None, :] < lengths.to(x.device)[:, None]).view(*x.shape[:2], *([1] * (x.dim() - 2)))
    x = x * keep
    return F.pad(x, (0, 0) * (x.dim() - 2) + (pad, pad))


def frame_windows(x: torch.Tensor, lengths: torch.Tensor, window: int = 7, stride: int = 7,
                  dilation: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` (B, T, ...) -> clips ``(B, K, window, ...)`` and validity ``(B, K)``.

    Invalid (batch-padding) clips are zero, as the reference's collate function makes them.
    """
    lengths = _check_lengths(lengths).to(x.device)
    if lengths.shape[0] != x.shape[0] or (host_readable(lengths) and int(lengths.max()) > x.shape[1]):
        raise ValueError(f"lengths {lengths.tolist()} do not fit x of shape {tuple(x.shape)} (B, T, ...)")
    idx, valid, _ = window_index(lengths, window, stride, dilation, max_length=x.shape[1])
    xp = pad_sequence(x, lengths, pad_frames(window, dilation))
    b = torch.arange(x.shape[0], device=x.device)[:, None]
    clips = xp[b, idx.flatten(1)].view(x.shape[0], *idx.shape[1:], *x.shape[2:])
    clips = clips * valid.view(*valid.shape, *([1] * (clips.dim() - 2)))
    return clips, valid
