"""Batches for the runner: padded variable-length sequences, epoch orders, detection windows.

All methods receive ``x (B, T, M, 25, 3)`` zero-padded plus ``lengths`` (methods/base.py).
Batches are built from the memory-mapped caches of the data layer and padded only to their own
longest sample. Two epoch orders (``loop.batching``): ``uniform`` = consecutive slices of a
random permutation (what both reference codes' shuffling DataLoaders do; the paper profile),
``bucket`` = samples of similar length grouped (less padding, but batch composition then
depends on length: see docs/perf.md "Batch composition").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class SequenceSet:
    """Samples of a cache: row indices, optional single body, labels and clipped lengths."""

    cache: object
    rows: np.ndarray            # (N,) cache row per sample
    bodies: np.ndarray | None   # (N,) body slot to keep (single-person samples) or None = both
    labels: np.ndarray          # (N,) int64
    lengths: np.ndarray         # (N,) frames after clipping to max_frames
    max_frames: int

    def __len__(self) -> int:
        return len(self.rows)

    def batch(self, items: np.ndarray, frames: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Zero-padded ``(B, T, M, V, C)``, lengths and labels of sample positions ``items``
        (one gather from the cache for the whole batch); ``T`` = ``frames`` (a static length,
        at least the longest sample) or the batch's longest sample."""
        lengths = self.lengths[items]
        t = np.arange(int(lengths.max()) if frames is None else max(int(frames), int(lengths.max())))
        valid = t[None, :] < lengths[:, None]
        index = np.where(valid, self.cache.offsets[self.rows[items]][:, None] + t[None, :], 0)
        frames = self.cache.gather(index)                               # (B, T, 2, 25, 3)
        if self.bodies is not None:
            frames = np.take_along_axis(frames, self.bodies[items][:, None, None, None, None], axis=2)
        frames = np.where(valid[:, :, None, None, None], frames, np.float32(0.0))  # exact +0 padding
        return (torch.from_numpy(frames), torch.from_numpy(lengths.astype(np.int64)),
                torch.from_numpy(self.labels[items]))


def sequence_set(cache, rows: np.ndarray, max_frames: int, split_bodies: bool = False,
                 min_length: int = 19) -> SequenceSet:
    """Build a SequenceSet; ``split_bodies`` makes every body its own sample (Hi-TRS
    pre-training) and drops sequences shorter than ``min_length`` frames."""
    manifest = cache.manifest
    rows = np.asarray(rows, dtype=np.int64)
    lengths = np.minimum(manifest["length"].to_numpy()[rows], max_frames).astype(np.int64)
    labels = manifest["label"].to_numpy()[rows].astype(np.int64)
    bodies = None
    if split_bodies:
        count = np.clip(manifest["bodies"].to_numpy()[rows], 1, 2)
        rows = np.repeat(rows, count)
        lengths = np.repeat(lengths, count)
        labels = np.repeat(labels, count)
        bodies = np.concatenate([np.arange(c) for c in count]) if len(count) else np.zeros(0, np.int64)
        keep = lengths >= min_length
        rows, lengths, labels, bodies = rows[keep], lengths[keep], labels[keep], bodies[keep]
    return SequenceSet(cache, rows, bodies, labels, lengths, max_frames)


BATCHING = {"uniform": 1, "bucket": 8}   # epoch order -> length-sorted chunk size in batches


class BucketBatches:
    """Seeded epoch order: shuffle, sort within chunks of ``bucket`` batches by length, shuffle
    the batches (``bucket=1``: uniform random batches). Position (epoch, batch) is resumable.

    Under DDP (``world > 1``) every batch is the global batch: rank ``r`` takes the ``r``-th of
    ``world`` equal shares of it, so the effective batch does not grow with the world size."""

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int, shuffle: bool = True,
                 bucket: int = 8, drop_last: bool = False, rank: int = 0, world: int = 1):
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.bucket = bucket
        self.drop_last = drop_last
        self.rank, self.world = rank, world
        if world > 1 and drop_last and batch_size % world:
            raise ValueError(f"batch size {batch_size} is not divisible by the world size {world}: the global "
                             f"batch is shared evenly between ranks; choose a multiple of {world}")

    @classmethod
    def for_mode(cls, batching: str, lengths: np.ndarray, batch_size: int, seed: int, **kwargs) -> "BucketBatches":
        """The epoch order named by a config's ``batching`` field ("uniform" | "bucket")."""
        if batching not in BATCHING:
            raise ValueError(f"batching {batching!r} unknown; choose one of {', '.join(BATCHING)}")
        return cls(lengths, batch_size, seed, bucket=BATCHING[batching], **kwargs)

    def epoch(self, epoch: int) -> list[np.ndarray]:
        n = len(self.lengths)
        if not self.shuffle:
            order = np.arange(n)
            batches = [order[i:i + self.batch_size] for i in range(0, n, self.batch_size)]
        else:
            rng = np.random.default_rng([self.seed, epoch])
            order = rng.permutation(n)
            chunk = self.batch_size * self.bucket
            pieces = [order[i:i + chunk] for i in range(0, n, chunk)]
            order = np.concatenate([p[np.argsort(self.lengths[p], kind="stable")] for p in pieces]) if pieces else order
            batches = [order[i:i + self.batch_size] for i in range(0, n, self.batch_size)]
            if self.drop_last and batches and len(batches[-1]) < self.batch_size and len(batches) > 1:
                batches = batches[:-1]
            batches = [batches[i] for i in rng.permutation(len(batches))]
        if self.world > 1:  # rank r: the r-th share of every global batch (too-small batches dropped)
            batches = [np.array_split(b, self.world)[self.rank] for b in batches if len(b) >= self.world]
        return batches


def batch_composition(lengths: np.ndarray, batches: list[np.ndarray], resolution: int = 7) -> dict[str, float]:
    """How much a batch's members share their length: mean (max - min) length inside a batch,
    and the share of in-batch (anchor, negative) pairs whose lengths fall into the same
    ``resolution``-frame bin (Hi-TRS: the same number of 7-frame clips, a shortcut cue for
    next-clip InfoNCE; for MoCo, batch-norm statistics then encode length)."""
    lengths = np.asarray(lengths)
    full = [b for b in batches if len(b) > 1]
    if not full:
        return {"length_spread": 0.0, "same_length_negatives": 0.0}
    size = min(len(b) for b in full)
    lens = np.stack([lengths[b[:size]] for b in full])                       # (batches, size)
    bins = lens // resolution
    same = (bins[:, :, None] == bins[:, None, :]).sum(axis=(1, 2)) - size   # pairs i != j
    return {"length_spread": float((lens.max(1) - lens.min(1)).mean()),
            "same_length_negatives": float(same.sum() / (len(full) * size * (size - 1)))}


def window_indices(t: torch.Tensor, length: torch.Tensor, window: int = 7, dilation: int = 4):
    """Frame indices of the ``window``-frame, ``dilation``-spaced window centred on each ``t``
    and a validity mask (frames outside ``[0, length)`` are zero-padded by the caller)."""
    offsets = (torch.arange(window, device=t.device) - window // 2) * dilation
    idx = t[:, None] + offsets[None, :]
    valid = (idx >= 0) & (idx < length[:, None])
    return torch.minimum(idx.clamp(min=0), (length[:, None] - 1).clamp(min=0)), valid


@dataclass
class FrameBank:
    """All frames of a set of long videos, concatenated, with per-frame labels (detection)."""

    frames: torch.Tensor        # (F, 2, 25, 3)
    labels: torch.Tensor        # (F,) per-frame class, 0 = background
    video_start: torch.Tensor   # (F,) first frame of the frame's video in ``frames``
    video_length: torch.Tensor  # (F,)
    frame_in_video: torch.Tensor  # (F,)
    names: list[str]
    starts: list[int]
    lengths: list[int]

    def clips(self, frame_ids: torch.Tensor, window: int, dilation: int) -> torch.Tensor:
        """``(N, window, 2, 25, 3)`` windows centred on global frames ``frame_ids``."""
        t = self.frame_in_video[frame_ids]
        idx, valid = window_indices(t, self.video_length[frame_ids], window, dilation)
        gathered = self.frames[self.video_start[frame_ids, None] + idx]
        return gathered * valid[:, :, None, None, None]


def frame_bank(cache, rows: np.ndarray, transform=None) -> FrameBank:
    """The videos of ``rows``; ``transform(x (1, T, M, V, C), lengths (1,))``, when given, maps
    each whole video first (a method's ``detection_frames``: streams over the whole video)."""
    seqs = [np.asarray(cache.sequence(int(r)), dtype=np.float32) for r in rows]
    if transform is not None:
        with torch.no_grad():
            seqs = [transform(torch.from_numpy(s)[None], torch.tensor([len(s)]))[0].float().cpu().numpy()
                    for s in seqs]
    labels = [np.asarray(cache.frame_labels(int(r)), dtype=np.int64) for r in rows]
    lengths = [len(s) for s in seqs]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if lengths else np.zeros(0, np.int64)
    total = int(sum(lengths))
    video_start = np.repeat(starts, lengths)
    video_length = np.repeat(np.asarray(lengths, np.int64), lengths)
    frame_in_video = np.arange(total, dtype=np.int64) - video_start
    names = cache.manifest["name"].to_numpy()[np.asarray(rows, dtype=np.int64)].tolist()
    return FrameBank(
        frames=torch.from_numpy(np.concatenate(seqs) if seqs else np.zeros((0, 2, 25, 3), np.float32)),
        labels=torch.from_numpy(np.concatenate(labels) if labels else np.zeros(0, np.int64)),
        video_start=torch.from_numpy(video_start), video_length=torch.from_numpy(video_length),
        frame_in_video=torch.from_numpy(frame_in_video), names=names,
        starts=starts.tolist(), lengths=lengths,
    )
