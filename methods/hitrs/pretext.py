"""The four Hi-TRS pretext tasks, batched, computed in one forward pass.

1. masked joint prediction (F), 2. frame-order verification (C), 3. clip-order verification and
4. next-clip InfoNCE (V). C-TRS and V-TRS read the F-TRS features of the MASKED input. Every
random choice draws from the caller's ``torch.Generator``; no Python loop runs per sample.
Samples too short for a task are weighted out of that task's loss.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from datasets.precision import float32_island

from ..moco import gather_with_local_grad
from ..packing import pack
from .config import COORDS, HiTRSConfig
from .encoder import HiTRSEncoder
from .windows import count_for, pad_frames, pad_sequence, window_index


class PretextHeads(nn.Module):
    """Task heads: joint regressor (d->3), frame-order (2d->2), clip-order (4d->2), next clip (4d->2d)."""

    def __init__(self, cfg: HiTRSConfig):
        super().__init__()
        d = cfg.d_model
        self.joint = nn.Linear(d, COORDS)
        self.frame_order = nn.Linear(2 * d, 2)
        self.clip_order = nn.Linear(4 * d, 2)
        self.next_clip = nn.Linear(4 * d, 2 * d)


# ---- random choices --------------------------------------------------------------------------
def mask_joints(s: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator, prob: float = 0.15,
                token_prob: float = 0.8, random_prob: float = 0.1, value: float = 1.0
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT-style joint masking of ``s`` (B, T, V, C) -> (masked copy, picked (B, T, V) bool).

    Each valid joint is picked with ``prob``; of the picked, ``token_prob`` become ``[value]*C``,
    ``random_prob`` take a different joint of a different (valid) frame, the rest stay.
    """
    b, t, v, _ = s.shape
    dev = s.device
    lengths = lengths.to(dev)
    u = torch.rand((4, b, t, v), generator=generator, device=dev)
    frame = torch.arange(t, device=dev)
    picked = (u[0] < prob) & (frame[None, :] < lengths[:, None])[..., None]
    token = picked & (u[1] < token_prob)
    other = picked & (u[1] >= token_prob) & (u[1] < token_prob + random_prob) & (lengths >= 2)[:, None, None]
    n_other = (lengths - 1).clamp(min=1)[:, None, None]
    src_f = torch.minimum((u[2] * n_other).long(), n_other - 1)
    src_f = (src_f + (src_f >= frame[None, :, None]).long()).clamp(max=t - 1)        # skip own frame
    joint = torch.arange(v, device=dev)
    src_j = (u[3] * (v - 1)).long().clamp(max=v - 2)
    src_j = src_j + (src_j >= joint).long()                                          # skip own joint
    flat = (src_f * v + src_j).reshape(b, t * v, 1).expand(-1, -1, s.shape[-1])
    source = s.reshape(b, t * v, -1).gather(1, flat).view_as(s)
    masked = torch.where(other[..., None], source, s)
    masked = torch.where(token[..., None], torch.full_like(s, value), masked)
    return masked, picked


def frame_motion(s: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, T): sum |s_t - s_{t-1}| over joints and coordinates for 1 <= t < length, else 0."""
    diff = (s[:, 1:] - s[:, :-1]).abs().flatten(2).sum(-1)
    motion = F.pad(diff, (1, 0))
    t = torch.arange(s.shape[1], device=s.device)
    return motion * (t[None, :] < lengths.to(s.device)[:, None])


def frame_order_centres(s: torch.Tensor, lengths: torch.Tensor, window: int, dilation: int,
                        generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick one stride-1 clip per sequence among those with mean motion > 0.

    Returns the clip's centre frame ``(B,)`` (= its first index in padded coordinates) and
    whether the sequence had any such clip ``(B,)``. The mean counts frames 1..length-1 only.
    """
    b, t = s.shape[:2]
    dev = s.device
    lengths = lengths.to(dev)
    p = pad_frames(window, dilation)
    motion = F.pad(frame_motion(s, lengths), (p, p))                  # padded coordinates
    idx = torch.arange(t, device=dev)[:, None] + torch.arange(window, device=dev)[None, :] * dilation
    total = motion[:, idx].sum(-1)                                    # (B, T)
    orig = (idx - p)[None]                                            # original frame of each slot
    count = ((orig >= 1) & (orig < lengths[:, None, None])).sum(-1)
    mean = total / count.clamp(min=1)
    valid = (mean > 0) & (count > 0) & (torch.arange(t, device=dev)[None, :] < lengths[:, None])
    score = torch.rand((b, t), generator=generator, device=dev).masked_fill(~valid, -1.0)
    return score.argmax(dim=1), valid.any(dim=1)


def sample_swap(n: torch.Tensor, size: int, generator: torch.Generator | None,
                draw_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, swap two positions < n[i] that are >= 2 apart (n == 2: swap 0 and 1), uniformly.

    Returns the permutation ``(B, size)`` (identity where impossible) and ``ok`` ``(B,)``.
    The scores are drawn for ``draw_size`` >= ``size`` positions (default ``size``) and cut to
    ``size``: a batch laid out at its own width and at a static one then swaps the same pair.
    """
    dev = n.device
    b = n.shape[0]
    pos = torch.arange(size, device=dev)
    first, second = pos[:, None], pos[None, :]
    inside = second[None] < n[:, None, None]                                   # (B, size, size)
    pairs = ((second - first >= 2)[None] | ((n == 2)[:, None, None] & (first == 0) & (second == 1))) & inside
    flat = pairs.flatten(1)
    drawn = draw_size or size
    score = torch.rand((b, drawn, drawn), generator=generator, device=dev)[:, :size, :size].flatten(1)
    score = score.masked_fill(~flat, -1.0)
    pick = score.argmax(dim=1)
    a, c = pick // size, pick % size
    ok = flat.any(dim=1)
    perm = pos.repeat(b, 1)
    perm = perm.scatter(1, a[:, None], c[:, None]).scatter(1, c[:, None], a[:, None])
    return torch.where(ok[:, None], perm, pos.expand(b, -1)), ok


# ---- losses ----------------------------------------------------------------------------------
class LossGroups:
    """Per-group means: the micro-batches of a gradient accumulation fused into one batch.

    ``count`` equal groups of consecutive samples; every loss and accuracy is its group's mean,
    averaged over the groups, so one micro-batch of ``count x b`` samples gives the same loss
    (and gradients) as ``count`` micro-batches of ``b`` averaged, as the engine's accumulation
    does. ``count == 1``: the plain mean (the same arithmetic as always)."""

    def __init__(self, batch: int, count: int = 1, device=None):
        if count < 1 or batch % count:
            raise ValueError(f"{batch} samples cannot form {count} equal loss groups (loop.fuse_accumulation "
                             "needs batch_size x accumulation samples per micro-batch)")
        self.count, self.per_group = count, batch // count
        self.of_sample = torch.arange(batch, device=device) // self.per_group if count > 1 else None

    def ratio(self, num: torch.Tensor, den: torch.Tensor, group: torch.Tensor | None = None) -> torch.Tensor:
        """``sum(num) / max(sum(den), 1)`` per group (rows of ``num``/``den`` in group ``group``), averaged."""
        if self.count == 1:
            return num.sum() / den.sum().clamp(min=1)
        rows = lambda t: t.reshape(t.shape[0], -1).sum(1)      # noqa: E731 - per-row totals
        totals = num.new_zeros(self.count).index_add(0, group, rows(num))
        counts = den.new_zeros(self.count).index_add(0, group, rows(den))
        return (totals / counts.clamp(min=1)).mean()


ONE_GROUP = LossGroups(1)


def masked_smooth_l1(pred: torch.Tensor, target: torch.Tensor, picked: torch.Tensor, scale: float,
                     groups: LossGroups = ONE_GROUP, row_group: torch.Tensor | None = None) -> torch.Tensor:
    """Smooth-L1 (beta 1) mean over the coordinates of picked joints only; 0 when none (float32)."""
    with float32_island(pred):
        err = F.smooth_l1_loss(pred.float() * scale, target.float() * scale, reduction="none", beta=1.0)
        w = picked[..., None].to(err.dtype)
        return groups.ratio(err * w, w * err.shape[-1], row_group)


def order_loss(orig_logits: torch.Tensor, perm_logits: torch.Tensor, weight: torch.Tensor,
               groups: LossGroups = ONE_GROUP) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy with label 1 = original order, 0 = permuted; weighted mean and accuracy (float32)."""
    with float32_island(orig_logits):
        logits = torch.cat([orig_logits.float(), perm_logits.float()])
        labels = torch.cat([torch.ones_like(weight, dtype=torch.long), torch.zeros_like(weight, dtype=torch.long)])
        w = torch.cat([weight, weight]).float()
        ce = F.cross_entropy(logits, labels, reduction="none")
        group = None if groups.of_sample is None else torch.cat([groups.of_sample, groups.of_sample])
        return groups.ratio(ce * w, w, group), groups.ratio((logits.argmax(1) == labels).float() * w, w, group)


def info_nce(pred: torch.Tensor, target: torch.Tensor, temperature: float,
             valid: torch.Tensor | None = None, groups: LossGroups = ONE_GROUP) -> tuple[torch.Tensor, torch.Tensor]:
    """InfoNCE over the batch: L2-normalised ``pred`` vs ``target``, the other rows' targets are
    negatives. ``valid`` rows/columns (bool) take part; others are excluded. Returns loss, top-1 acc.
    With ``groups``, the negatives are the rows of the same group (the reference's micro-batch).

    Under torch.distributed the targets of every rank are gathered (gradient only through the
    local part), so the negatives are the global batch's, as on one device. Float32 also under
    autocast: the similarity matmul feeds a softmax at temperature 0.07."""
    with float32_island(pred):
        return _info_nce(pred, target, temperature, valid, groups)


def _info_nce(pred, target, temperature, valid, groups):
    p = F.normalize(pred.float(), dim=1)
    t = F.normalize(target.float(), dim=1)
    if valid is None:
        valid = torch.ones(p.shape[0], dtype=torch.bool, device=p.device)
    t_all, offset = gather_with_local_grad(t)
    valid_all = gather_with_local_grad(valid.float())[0] > 0.5
    logits = p @ t_all.T / temperature
    labels = offset + torch.arange(logits.shape[0], device=logits.device)
    keep = valid_all[None, :]
    if groups.of_sample is not None:
        if offset or t_all.shape[0] != p.shape[0]:
            raise ValueError("loss groups (loop.fuse_accumulation) run on one process only")
        keep = keep & (groups.of_sample[:, None] == groups.of_sample[None, :])
    logits = logits.masked_fill(~keep, -1e4)                    # finite: no NaN even if all invalid
    w = valid.float()
    ce = F.cross_entropy(logits, labels, reduction="none")
    return groups.ratio(ce * w, w, groups.of_sample), groups.ratio((logits.argmax(1) == labels).float() * w, w,
                                                                   groups.of_sample)


# ---- the joint forward -----------------------------------------------------------------------
def pretext_losses(encoder: HiTRSEncoder, heads: PretextHeads, s: torch.Tensor, lengths: torch.Tensor,
                   cfg: HiTRSConfig, generator: torch.Generator | None,
                   capacities: dict[str, int] | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """All pretext tasks of ``cfg.levels`` on single-body stream sequences ``s`` (B, T, 25, 3).

    ``capacities`` (host ints, ``HiTRS.capacities``): ``pretext_frames`` / ``pretext_clips`` slots
    for the frames F-TRS encodes and the clips V-TRS reads; every shape then follows from
    ``(B, T)`` and the capacities (no host read). Absent: exactly the batch's own.
    ``loss_groups``: this batch is that many micro-batches of an accumulation, fused
    (``LossGroups``: per-group means and next-clip negatives, as the micro-batches would give).
    Returns the summed loss and detached per-task logs ("mjp/loss", "mjp/err_mm", "fov/loss", "fov/acc",
    "cov/loss", "cov/acc", "ncp/loss", "ncp/acc").
    """
    levels = set(cfg.levels)
    capacities = capacities or {}
    dev = s.device
    lengths = lengths.to(dev).long()
    b, t = s.shape[:2]
    per_group = LossGroups(b, capacities.get("loss_groups", 1), dev)
    w, d = cfg.window, cfg.dilation
    p = pad_frames(w, d)
    s = pad_sequence(s, lengths, 0)                                    # zero beyond lengths
    if "F" in levels or cfg.mask_without_f:
        masked, picked = mask_joints(s, lengths, generator, cfg.mask_prob, cfg.mask_token_prob,
                                     cfg.mask_random_prob, cfg.mask_value)
    else:
        masked, picked = s, torch.zeros(s.shape[:3], dtype=torch.bool, device=dev)

    # F-TRS once, on every frame some task may read: [0, length + 2p) of the padded sequence
    mp = F.pad(masked, (0, 0, 0, 0, p, p))
    needed = torch.arange(t + 2 * p, device=dev)[None, :] < (lengths + 2 * p)[:, None]
    frames = pack(needed, capacities.get("pretext_frames"))
    frame_feats = encoder.frame(frames.gather(mp))                     # (N, 25, d)
    feats = frames.unpack(frame_feats)                                 # (B, T + 2p, 25, d)

    losses: dict[str, torch.Tensor] = {}
    logs: dict[str, torch.Tensor] = {}
    if "F" in levels:
        target = frames.gather(F.pad(s, (0, 0, 0, 0, p, p)))
        pick = frames.keep(F.pad(picked, (0, 0, p, p)))
        pred = heads.joint(frame_feats)
        row_group = None if per_group.of_sample is None else per_group.of_sample[frames.index // (t + 2 * p)]
        losses["mjp"] = masked_smooth_l1(pred, target, pick, cfg.regression_scale, per_group, row_group)
        # mean Euclidean error of the masked joints in millimetres (stream units are metres)
        err = (pred.detach().float() - target.float()).norm(dim=-1)
        logs["mjp/err_mm"] = 1000.0 * per_group.ratio(err * pick, pick.float(), row_group)

    batch = torch.arange(b, device=dev)[:, None]
    offsets = torch.arange(w, device=dev) * d
    groups: list[torch.Tensor] = []
    if "C" in levels:
        centre, fov_ok = frame_order_centres(s, lengths, w, d, generator)
        clip = feats[batch, centre[:, None] + offsets]                 # (B, w, 25, d)
        perm, _ = sample_swap(torch.full((b,), w, device=dev), w, generator)
        groups += [clip, clip[batch, perm]]
    if "V" in levels:
        idx, _, counts = window_index(lengths, w, cfg.stride, d, max_length=t)
        n_video = counts - 1                                           # the last clip is the target
        most = max(count_for(t, w, cfg.stride, d) - 1, 1)              # what T allows (static)
        width = most if "pretext_clips" in capacities else max(int(n_video.max()), 1)
        video_valid = torch.arange(width, device=dev)[None, :] < n_video[:, None]
        clips = pack(video_valid, capacities.get("pretext_clips"))
        vb, vk = clips.index // width, clips.index % width
        groups += [feats[vb[:, None], idx[vb, vk]], feats[batch, idx[batch[:, 0], counts - 1]]]
    if groups:
        clip_emb = encoder.clip(torch.cat(groups)).split([g.shape[0] for g in groups])
    if "C" in levels:
        logits = heads.frame_order(torch.cat(clip_emb[:2]))
        losses["fov"], logs["fov/acc"] = order_loss(logits[:b], logits[b:], fov_ok.float(), per_group)
    if "V" in levels:
        win_emb, last_emb = clip_emb[-2], clip_emb[-1].detach()
        table = clips.unpack(win_emb)                                  # (B, width, 2d), zero past n_video
        perm_v, cov_ok = sample_swap(n_video, width, generator, draw_size=most)
        permuted = table.gather(1, perm_v[..., None].expand_as(table))
        video = encoder.video(torch.cat([table, permuted]), torch.cat([video_valid, video_valid]))
        losses["cov"], logs["cov/acc"] = order_loss(heads.clip_order(video[:b]), heads.clip_order(video[b:]),
                                                    cov_ok.float(), per_group)
        losses["ncp"], logs["ncp/acc"] = info_nce(heads.next_clip(video[:b]), last_emb, cfg.nce_temperature,
                                                  valid=n_video >= 1, groups=per_group)
    for name, value in losses.items():
        logs[f"{name}/loss"] = value.detach()
    total = sum(losses.values()) if losses else feats.sum() * 0.0
    return total, logs
