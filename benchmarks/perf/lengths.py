"""NTU-60 sequence-length distribution for the synthetic perf input.

Throughput of a variable-length model depends on the lengths it sees, so the perf input must
have NTU's lengths, not 300 frames each. The figures used:

* literature: NTU RGB+D 60 sequences average about 80 frames (the figure quoted in issue 7 and
  commonly cited for NTU-60); the conventional tensor caps them at 300 frames;
* measured: the real fixture files in ``../shared/fixtures/ntu60`` (5 files of one performer,
  103 / 158 / 104 / 99 / 54 frames: mean 103.6) -- too few to fit a distribution, so they only
  set the spread (coefficient of variation 0.32) and are reported next to the model;
* model (our choice): log-normal with mean ``LITERATURE_MEAN`` and sigma ``SIGMA`` (coefficient
  of variation 0.42, a little wider than the five fixtures), rounded and clipped to
  ``[MIN_FRAMES, MAX_FRAMES]``.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

LITERATURE_MEAN = 80.0       # frames, NTU-60 (issue 7 / commonly quoted)
MAX_FRAMES = 300             # the conventional NTU tensor's T
MIN_FRAMES = 20              # our floor (Hi-TRS pre-training drops sequences of <= 18 frames)
SIGMA = 0.4                  # log-normal shape (our choice, see module docstring)
TWO_PERSON_FRACTION = 0.185  # 47.5k bodies / 40,091 samples - 1 (below)

# Dataset sizes of the paper's protocol (data.md / protocols.md; PKU frames from the official
# release: 1,076 videos, about 3.4 M frames in Part I, of which the xsub training part is ~88%).
NTU60_XSUB_TRAIN = 40_091
NTU60_XSUB_TRAIN_BODIES = 47_500       # every body its own sample (about 18% two-person samples)
NTU60_PRED_TRAIN = 30_000               # xsub training sequences with >= 75 frames (approx.)
PKU_XSUB_TRAIN_FRAMES = 3_000_000
NTU60_XSUB_TEST = 16_487
PKU_XSUB_TEST_FRAMES = 400_000          # the other ~12% of Part I's frames (approx.)
NTU60_PRED_TEST = 12_000                # xsub test sequences with >= 75 frames (approx.)

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "ntu60"


def sample_lengths(n: int, seed: int, max_frames: int = MAX_FRAMES, min_frames: int = MIN_FRAMES,
                   mean: float = LITERATURE_MEAN, sigma: float = SIGMA) -> np.ndarray:
    """``n`` int64 lengths, log-normal (mean ``mean`` before clipping), clipped to
    ``[min_frames, max_frames]`` (a profile's ``max_frames`` cuts longer ones, as the runner).

    Stratified: one draw inside each of ``n`` equal-probability slices, shuffled, so that even
    a bank of a few dozen samples has the distribution's mean and tail (a plain random draw of
    24 lengths can be 15% off, and both patterns would then time an unrepresentative set)."""
    if n < 0 or max_frames < 1:
        raise ValueError(f"sample_lengths: need n >= 0 and max_frames >= 1, got n={n}, max_frames={max_frames}")
    rng = np.random.default_rng([seed, 8080])
    p = (np.arange(n) + rng.random(n)) / max(n, 1)
    z = math.sqrt(2.0) * torch.special.erfinv(torch.from_numpy(2.0 * p - 1.0)).numpy()
    mu = math.log(mean) - sigma * sigma / 2.0
    raw = np.rint(np.exp(mu + sigma * z))
    return rng.permutation(np.clip(raw, min(min_frames, max_frames), max_frames).astype(np.int64))


def summary(lengths) -> dict:
    """count / mean / std / min / median / max of a length array (JSON-ready)."""
    a = np.asarray(lengths, dtype=np.float64)
    if a.size == 0:
        return {"count": 0}
    return {"count": int(a.size), "mean": round(float(a.mean()), 2), "std": round(float(a.std()), 2),
            "min": int(a.min()), "median": float(np.median(a)), "max": int(a.max())}


def _shown(folder: Path) -> str:
    """``../shared/...`` when under the shared folder (no machine-specific absolute paths in results)."""
    try:
        return "../" + str(Path(folder).resolve().relative_to(FIXTURES.parents[2]))
    except ValueError:
        return str(folder)


def fixture_lengths(folder: Path = FIXTURES) -> tuple[np.ndarray | None, str]:
    """Valid frames (any body non-zero) of every real ``.skeleton`` file in ``folder``, or
    ``(None, reason)`` when the fixtures are not available on this machine."""
    files = sorted(Path(folder).glob("*.skeleton"))
    if not files:
        return None, f"no .skeleton files in {_shown(folder)}"
    from datasets import read_ntu_skeleton

    out = []
    for path in files:
        xyz = read_ntu_skeleton(path)
        out.append(int(np.any(xyz != 0, axis=(1, 2, 3)).sum()))
    return np.asarray(out, dtype=np.int64), f"{len(files)} files in {_shown(folder)}"


def describe(sampled: np.ndarray) -> dict:
    """The JSON block that says which length distribution a run used."""
    real, source = fixture_lengths()
    return {
        "model": f"log-normal, mean {LITERATURE_MEAN:g} frames, sigma {SIGMA:g}, stratified, clipped to "
                 f"[{MIN_FRAMES}, {MAX_FRAMES}]; each workload then cuts at its profile's max_frames "
                 "(rows: mean_length)",
        "literature": {"mean": LITERATURE_MEAN, "max": MAX_FRAMES,
                       "source": "NTU RGB+D 60: mean about 80 frames (issue 7), tensors capped at 300"},
        "fixtures": {**summary(real), "source": source} if real is not None else {"missing": source},
        "sampled": summary(sampled),
        "two_person_fraction": TWO_PERSON_FRACTION,
    }
