"""Random-walk skeleton sequences of NTU lengths, packed in memory, batched by one gather.

Throughput needs realistic shapes, not realistic motion: every joint follows a Gaussian random
walk around a fixed rest pose (so every clip moves, as Hi-TRS's frame-order task needs), the
whole body drifts, and a fraction of samples has a second person. Values are in metres in
camera space (root about 3 m in front of the camera), like NTU.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..engine.data import window_indices

JOINTS, COORDS = 25, 3


@dataclass
class SkeletonBank:
    """``frames (F, M, 25, 3)`` float32 of all sequences back to back; ``starts``/``lengths`` (N,)."""

    frames: torch.Tensor
    starts: torch.Tensor
    lengths: torch.Tensor

    def __len__(self) -> int:
        return int(self.lengths.numel())

    @property
    def bodies(self) -> int:
        return int(self.frames.shape[1])

    def batch(self, items, pad_to: int | None = None, pin: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, T, M, 25, 3)`` zero-padded after each length and ``lengths (B,)``; ``T`` is the
        longest sample of the batch (or ``pad_to``). One index_select, no loop over samples."""
        items = torch.as_tensor(np.asarray(items), dtype=torch.long)
        lengths = self.lengths[items]
        t_max = int(lengths.max()) if pad_to is None else int(pad_to)
        if t_max < int(lengths.max()):
            raise ValueError(f"SkeletonBank.batch: pad_to={pad_to} is shorter than the longest sample ({int(lengths.max())})")
        t = torch.arange(t_max)
        idx = self.starts[items, None] + torch.minimum(t[None, :], lengths[:, None] - 1)
        shape = (len(items), t_max, self.bodies, JOINTS, COORDS)
        out = torch.empty(shape, dtype=torch.float32, pin_memory=pin)
        torch.index_select(self.frames, 0, idx.reshape(-1), out=out.view(-1, self.bodies, JOINTS, COORDS))
        out.mul_((t[None, :] < lengths[:, None]).to(out.dtype)[:, :, None, None, None])
        return out, lengths

    def clips(self, items, window: int = 7, dilation: int = 4, seed: int = 0,
              pin: bool = False) -> torch.Tensor:
        """``(B, window, M, 25, 3)`` detection windows centred on one random frame per sample
        (zero outside the sequence, as ``benchmarks.engine.data.FrameBank.clips``)."""
        items = torch.as_tensor(np.asarray(items), dtype=torch.long)
        lengths = self.lengths[items]
        g = torch.Generator().manual_seed(seed)
        centre = (torch.rand(len(items), generator=g) * lengths).long()
        idx, valid = window_indices(centre, lengths, window, dilation)
        out = torch.empty((len(items), window, self.bodies, JOINTS, COORDS), dtype=torch.float32, pin_memory=pin)
        torch.index_select(self.frames, 0, (self.starts[items, None] + idx).reshape(-1),
                           out=out.view(-1, self.bodies, JOINTS, COORDS))
        out.mul_(valid.to(out.dtype)[:, :, None, None, None])
        return out

    def crops(self, items, total: int, body: int = 0, seed: int = 0, pin: bool = False) -> torch.Tensor:
        """``(B, total, 25, 3)`` random ``total``-frame windows of body ``body`` (prediction);
        every item must have at least ``total`` frames."""
        items = torch.as_tensor(np.asarray(items), dtype=torch.long)
        lengths = self.lengths[items]
        if bool((lengths < total).any()):
            raise ValueError(f"SkeletonBank.crops: items shorter than {total} frames")
        g = torch.Generator().manual_seed(seed)
        first = (torch.rand(len(items), generator=g) * (lengths - total + 1)).long()
        idx = (self.starts[items] + first)[:, None] + torch.arange(total)[None, :]
        out = torch.empty((len(items), total, JOINTS, COORDS), dtype=torch.float32, pin_memory=pin)
        torch.index_select(self.frames[:, body], 0, idx.reshape(-1), out=out.view(-1, JOINTS, COORDS))
        return out


def random_walk_bank(lengths: np.ndarray, bodies: int, seed: int, two_person_fraction: float = 0.0,
                     step_m: float = 0.01) -> SkeletonBank:
    """Sequences of the given ``lengths`` with ``bodies`` slots; body 2 (when ``bodies == 2``)
    is present in ``two_person_fraction`` of the samples, zeros otherwise."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.ndim != 1 or len(lengths) == 0 or lengths.min() < 1:
        raise ValueError("random_walk_bank: lengths must be a non-empty 1-D array of positive frame counts")
    if bodies not in (1, 2):
        raise ValueError(f"random_walk_bank: bodies must be 1 or 2, got {bodies}")
    rng = np.random.default_rng([seed, 4242])
    n, total = len(lengths), int(lengths.sum())
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    sample_of_frame = np.repeat(np.arange(n), lengths)
    rest = rng.normal(0.0, 0.25, (JOINTS, COORDS)).astype(np.float32)          # one rest pose
    steps = rng.normal(0.0, step_m, (total, bodies, JOINTS + 1, COORDS)).astype(np.float32)
    walk = np.cumsum(steps, axis=0)
    walk -= (walk[starts] - steps[starts])[sample_of_frame]                    # restart per sample
    root = np.stack([rng.uniform(-0.5, 0.5, (n, bodies)), rng.uniform(-0.3, 0.3, (n, bodies)),
                     rng.uniform(2.5, 3.5, (n, bodies))], axis=-1).astype(np.float32)
    if bodies == 2:
        root[:, 1, 0] += 0.8                                                   # second person beside
    frames = rest[None, None] + walk[:, :, :JOINTS] + walk[:, :, JOINTS:] + root[sample_of_frame][:, :, None]
    if bodies == 2:
        absent = rng.random(n) >= two_person_fraction
        frames[absent[sample_of_frame], 1] = 0.0
    return SkeletonBank(torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32)),
                        torch.from_numpy(starts.astype(np.int64)), torch.from_numpy(lengths))
