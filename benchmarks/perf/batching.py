"""What ``loop.batching`` changes, measured on NTU-like lengths (docs/perf.md "Batch composition").

    python -m benchmarks.perf.batching [--samples 40000] [--time]

Prints, per batch size (64 = Hi-TRS micro-batch, 128 = CrosSCLR) and epoch order (uniform /
bucket): the mean length spread inside a batch, the share of in-batch negatives with the same
number of 7-frame clips, and padded / valid frames. ``--time`` also times Hi-TRS pre-training
steps (forward + backward, one CPU thread, reduced widths) for both orders, alternating runs.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from ..engine.data import BATCHING, BucketBatches, batch_composition
from .lengths import sample_lengths


def composition(lengths: np.ndarray, batch: int, seed: int = 0) -> dict[str, dict[str, float]]:
    out = {}
    for mode in BATCHING:
        batches = BucketBatches.for_mode(mode, lengths, batch, seed=seed, drop_last=True).epoch(0)
        padded = sum(int(lengths[b].max()) * len(b) for b in batches)
        out[mode] = {**batch_composition(lengths, batches),
                     "padded_per_valid": padded / sum(int(lengths[b].sum()) for b in batches)}
    return out


def time_hitrs(lengths: np.ndarray, batch: int = 16, batches: int = 8, rounds: int = 4) -> dict[str, float]:
    """Median ms per sample of Hi-TRS pre-training steps (d_model 32, 2 layers) per order."""
    import methods
    torch.set_num_threads(1)
    method = methods.create("hitrs", "ci", d_model=32, nhead=2, d_att=16, layers=2)
    g = torch.Generator().manual_seed(0)
    times: dict[str, list[float]] = {mode: [] for mode in BATCHING}
    for r in range(rounds):
        for mode in BATCHING:
            order = BucketBatches.for_mode(mode, lengths, batch, seed=r, drop_last=True).epoch(0)[:batches]
            start, n = time.perf_counter(), 0
            for items in order:
                lens = torch.from_numpy(lengths[items])
                t = int(lens.max())
                x = torch.randn(len(items), t, 1, 25, 3, generator=g)
                x = x * (torch.arange(t)[None] < lens[:, None])[..., None, None, None]
                loss, _ = method.pretrain_loss(x, lens)
                loss.backward()
                n += len(items)
            times[mode].append((time.perf_counter() - start) / n * 1000)
    return {mode: statistics.median(v) for mode, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=40_000, help="NTU-like lengths to draw (default 40000)")
    parser.add_argument("--time", action="store_true", help="also time Hi-TRS pre-training steps on CPU")
    args = parser.parse_args(argv)
    if args.samples < 256:
        parser.error("--samples: need at least 256 lengths for batches of 128")
    lengths = sample_lengths(args.samples, seed=0)
    for batch in (64, 128):
        for mode, c in composition(lengths, batch).items():
            print(f"batch {batch:3d} {mode:7s}: spread {c['length_spread']:6.1f} frames, same-clip-count negatives "
                  f"{100 * c['same_length_negatives']:4.1f}%, padded/valid frames {c['padded_per_valid']:.2f}")
    if args.time:
        for mode, ms in time_hitrs(sample_lengths(2048, seed=0)).items():
            print(f"hitrs step {mode:7s}: {ms:.1f} ms/sample (median of 4 rounds)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
