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


def weight_change(trained, initial) -> float:
    """``100 x |theta_end - theta_start| / |theta_start|`` over the trained parameters (those
    with gradients; momentum key encoders follow them). A pre-training that learns nothing
    (zero learning rate, gradients cut, an optimizer that never steps) leaves 0 here whatever its
    pretext accuracies do; on short CI runs those accuracies vary too much from seed to seed to
    show it (MCC's instance top-1 on the held-out batch: 34-84 % healthy, 28-34 % frozen)."""
    start = dict(initial.named_parameters())
    moved = total = 0.0
    for name, p in trained.named_parameters():
        if not p.requires_grad or name not in start:
            continue
        p0 = start[name].detach().to(p.device, torch.float64)
        moved += float((p.detach().to(torch.float64) - p0).pow(2).sum())
        total += float(p0.pow(2).sum())
    return 100.0 * (moved ** 0.5) / max(total ** 0.5, 1e-12)


def evaluate(method, cache, split: str, device: torch.device, initial=None) -> dict[str, float]:
    """``method.pretext_metrics`` on the held-out batch (``{}`` for a method without pretext),
    plus ``weight_change`` against ``initial`` (the method as its pre-training started) when given."""
    data = sequence_set(cache, held_out_rows(cache, split), method.config.loop.max_frames,
                        split_bodies=type(method).split_bodies_for_pretraining)
    x, lengths, _ = data.batch(np.arange(len(data)))
    method.to(device)
    own = getattr(method, "generator", None)   # the MoCo methods draw their views on the CPU
    generator = torch.Generator(device=own.device if isinstance(own, torch.Generator) else device)
    generator.manual_seed(EVAL_SEED)
    metrics = method.pretext_metrics(x.to(device), lengths.to(device), generator)
    if initial is not None:
        metrics = {**metrics, "weight_change": weight_change(method, initial)}
    return {k: round(float(v), 6) for k, v in sorted(metrics.items())}
