"""Pretext-task metrics of a finished pre-training on a fixed held-out batch.

The last training batch's accuracies are noisy (one random batch, augmented, mid-update); these
are evaluated after training on the same test-split videos for every method and seed, with
every random choice (masks, views, swaps) drawn from a generator of a fixed seed, so two runs
of one pre-training give the same numbers and two seeds differ only by what they learned.
"""
from __future__ import annotations

import numpy as np
import torch

from .data import sequence_set

HELD_OUT_SAMPLES = 32   # videos (Hi-TRS splits their bodies); spread evenly over the test split
EVAL_SEED = 20220       # the generator of masks / views / permutations, the same for every seed


def held_out_rows(cache, split: str, count: int = HELD_OUT_SAMPLES) -> np.ndarray:
    """``count`` test rows of ``split`` spread evenly (every class is represented on the synthetic data)."""
    rows = np.asarray(cache.indices(split, "test"))
    if len(rows) == 0:
        raise ValueError(f"{cache.dataset}: split {split!r} has no test videos for the pretext evaluation")
    pick = np.unique(np.linspace(0, len(rows) - 1, min(count, len(rows))).round().astype(np.int64))
    return rows[pick]


def evaluate(method, cache, split: str, device: torch.device) -> dict[str, float]:
    """``method.pretext_metrics`` on the held-out batch (``{}`` for a method without pretext)."""
    data = sequence_set(cache, held_out_rows(cache, split), method.config.loop.max_frames,
                        split_bodies=type(method).split_bodies_for_pretraining)
    x, lengths, _ = data.batch(np.arange(len(data)))
    method.to(device)
    own = getattr(method, "generator", None)   # the MoCo methods draw their views on the CPU
    generator = torch.Generator(device=own.device if isinstance(own, torch.Generator) else device)
    generator.manual_seed(EVAL_SEED)
    metrics = method.pretext_metrics(x.to(device), lengths.to(device), generator)
    return {k: round(float(v), 6) for k, v in sorted(metrics.items())}
