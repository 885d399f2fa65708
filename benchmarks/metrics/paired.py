"""Per-sample outputs of the downstream tasks and paired comparisons of two models on them
(pure functions, numpy only; used by the tasks to build the ``outputs.npz`` artifact and by
``python -m reports.compare``).

Per-sample outputs (what each record keeps, docs/records.md):

* recognition: :func:`topk_outputs` - the true class's rank (classes with a strictly higher
  score, the rule of :func:`topk_accuracy`), the top-k class indices and their probabilities;
* detection: :func:`detection_outputs` - per-frame predicted and true labels, proposals and
  ground-truth intervals per video (ragged arrays flattened with offsets / video indices);
* prediction: :func:`per_frame_error` - per sequence and predicted frame, the error averaged
  over joints, so MPJPE and every MPJPE@h are column means of it.

Paired comparison of models A and B on the same test samples, pooled over seeds (the same
test samples for every seed): the statistic is the mean over seeds of ``metric(A_s) -
metric(B_s)``.

* paired bootstrap: resample the test samples (videos for detection) with replacement, the
  same draw for both models and every seed; the 95 % CI is the 2.5 / 97.5 percentile of the
  resampled statistic;
* paired permutation test: under "A and B are exchangeable" each (seed, sample) pair of
  outputs is swapped between A and B with probability 1/2; two-sided
  ``p = (1 + #{|d*| >= |d|}) / (1 + R)``.

Metrics that are a ratio of per-sample sums (accuracies, mAP_v, frame accuracy, MPJPE) are
computed for a whole chunk of resamples at once (:func:`paired_ratio`); any other metric
(mAP_a) through :func:`paired_generic`, which calls the metric once per resample.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from .pkummd import pkummd_map

__all__ = ["true_rank", "topk_outputs", "detection_outputs", "per_frame_error", "Paired", "paired_ratio",
           "paired_generic", "bootstrap_counts", "video_entries", "detection_map_a", "video_ap",
           "METHOD", "CI_LEVEL"]

CI_LEVEL = 0.95
METHOD = ("paired bootstrap over test samples (videos for detection), percentile {level:.0%} CI; paired "
          "permutation test (A/B swapped per seed and sample with probability 1/2), two-sided, "
          "p = (1 + #|d*| >= |d|) / (1 + R); statistic: mean over seeds of metric(A) - metric(B)")


# -- per-sample outputs ---------------------------------------------------------------------------

def true_rank(scores, labels) -> np.ndarray:
    """int64 (N,): number of classes scoring strictly higher than the true one (0 = top-1);
    ``rank < k`` is exactly :func:`topk_accuracy`'s top-k hit."""
    z = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if z.ndim != 2 or y.shape != (z.shape[0],):
        raise ValueError(f"scores must be (N, classes) and labels (N,), got {z.shape} and {y.shape}")
    true = z[np.arange(len(y)), y]
    return (z > true[:, None]).sum(axis=1)


def topk_outputs(probs, labels, k: int = 5, prefix: str = "") -> dict[str, np.ndarray]:
    """``{prefix}rank`` (N,) int16, ``{prefix}top5_index`` (N, k) int16 (descending probability,
    ties by lower class) and ``{prefix}top5_prob`` (N, k) float32 (the key says top5 whatever k,
    k = min(5, classes))."""
    p = np.asarray(probs, dtype=np.float64)
    k = min(int(k), p.shape[1])
    index = np.argsort(-p, axis=1, kind="stable")[:, :k]
    return {f"{prefix}rank": true_rank(p, labels).astype(np.int16),
            f"{prefix}top5_index": index.astype(np.int16),
            f"{prefix}top5_prob": np.take_along_axis(p, index, axis=1).astype(np.float32)}


def detection_outputs(names: Sequence[str], frame_pred: Sequence[np.ndarray], frame_gt: Sequence[np.ndarray],
                      proposals: Sequence, ground_truth: Sequence, num_classes: int,
                      theta: float) -> dict[str, np.ndarray]:
    """Per video (in test order): per-frame predicted / true labels (flattened, ``frame_offsets``
    (V+1,)), proposals ``(P, 4)`` [label, start, end, confidence] with ``proposal_video`` (P,),
    ground truth ``(G, 4)`` with ``gt_video`` (G,)."""
    lengths = np.asarray([len(f) for f in frame_pred], dtype=np.int64)

    def rows(lists):
        arrays = [np.asarray(r, dtype=np.float64).reshape(-1, 4) if len(r) else np.zeros((0, 4)) for r in lists]
        video = np.concatenate([np.full(len(a), i, dtype=np.int32) for i, a in enumerate(arrays)] or
                               [np.zeros(0, np.int32)])
        return (np.concatenate(arrays) if arrays else np.zeros((0, 4))), video

    props, prop_video = rows(proposals)
    gts, gt_video = rows(ground_truth)
    return {"names": np.asarray([str(n) for n in names]), "frame_offsets": np.concatenate([[0], np.cumsum(lengths)]),
            "frame_pred": np.concatenate([np.asarray(f) for f in frame_pred]).astype(np.int16),
            "frame_gt": np.concatenate([np.asarray(f) for f in frame_gt]).astype(np.int16),
            "proposals": props, "proposal_video": prop_video, "ground_truth": gts, "gt_video": gt_video,
            "num_classes": np.asarray(int(num_classes)), "theta": np.asarray(float(theta))}


def per_frame_error(predicted, target) -> np.ndarray:
    """float64 (S, T): Euclidean joint error averaged over joints, per sequence and predicted
    frame (same unit as the inputs); its mean is MPJPE, column h-1's mean MPJPE@h."""
    p, t = np.asarray(predicted, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if p.shape != t.shape or p.ndim != 4:
        raise ValueError(f"expected two (S, T, J, 3) arrays of one shape, got {p.shape} and {t.shape}")
    return np.linalg.norm(p - t, axis=-1).mean(axis=2)


# -- detection metrics from the per-sample outputs ------------------------------------------------

def video_entries(out: Mapping[str, np.ndarray]) -> list[dict]:
    """The detection artifact as one ``{"proposals", "ground_truth"}`` entry per video."""
    n = len(out["names"])
    props, gts = np.asarray(out["proposals"]).reshape(-1, 4), np.asarray(out["ground_truth"]).reshape(-1, 4)
    pv, gv = np.asarray(out["proposal_video"]), np.asarray(out["gt_video"])
    return [{"proposals": props[pv == v], "ground_truth": gts[gv == v]} for v in range(n)]


def detection_map_a(entries: Sequence[dict], counts, num_classes: int, theta: float) -> float:
    """Official mAP_a (fraction) of the videos ``entries`` taken ``counts[v]`` times each."""
    videos = {f"{v}#{c}": entries[v] for v in range(len(entries)) for c in range(int(counts[v]))}
    return pkummd_map(videos, num_classes, theta)["mAP_a"]


def video_ap(entries: Sequence[dict], num_classes: int, theta: float) -> np.ndarray:
    """(V,) each video's own AP (fraction): mAP_v is their mean."""
    return np.asarray([pkummd_map({"v": e}, num_classes, theta)["mAP_v"] for e in entries], dtype=np.float64)


# -- paired comparisons ---------------------------------------------------------------------------

@dataclass
class Paired:
    """A - B on one metric: ``diff`` (mean over seeds), its percentile CI from the paired
    bootstrap, the permutation ``p``, the per-seed values and their spread."""

    a: float                    # metric of A, mean over seeds
    b: float
    diff: float                 # mean over seeds of A_s - B_s
    ci_low: float
    ci_high: float
    p: float
    per_seed: list[float]       # A_s - B_s
    seed_std: float             # sample std of per_seed (nan for one seed)
    n: int                      # test samples (videos)
    seeds: int
    resamples: int
    rng_seed: int
    extra: dict = field(default_factory=dict)


def bootstrap_counts(rng: np.random.Generator, n: int, r: int) -> np.ndarray:
    """(r, n) int: how often each of n samples is drawn in r resamples of size n."""
    draws = rng.integers(0, n, size=(r, n)) + (np.arange(r) * n)[:, None]
    return np.bincount(draws.ravel(), minlength=r * n).reshape(r, n)


def _rngs(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    return np.random.default_rng([seed, 0]), np.random.default_rng([seed, 1])   # bootstrap, permutation


def _finish(a_s, b_s, boot, perm, n, resamples, seed) -> Paired:
    a_s, b_s = np.asarray(a_s, dtype=np.float64), np.asarray(b_s, dtype=np.float64)
    per_seed = a_s - b_s
    diff = float(per_seed.mean())
    lo, hi = np.quantile(boot, [(1 - CI_LEVEL) / 2, 1 - (1 - CI_LEVEL) / 2])
    tol = 1e-9 * max(1.0, abs(diff))   # a resample equal to the observed value counts (float noise)
    p = (1 + int(np.count_nonzero(np.abs(perm) >= abs(diff) - tol))) / (1 + len(perm))
    return Paired(a=float(a_s.mean()), b=float(b_s.mean()), diff=diff, ci_low=float(lo), ci_high=float(hi),
                  p=float(p), per_seed=per_seed.tolist(),
                  seed_std=float(per_seed.std(ddof=1)) if len(per_seed) > 1 else float("nan"),
                  n=int(n), seeds=len(per_seed), resamples=int(resamples), rng_seed=int(seed))


def _check_resamples(resamples: int) -> None:
    if int(resamples) < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")


def paired_ratio(a_num, b_num, a_den=None, b_den=None, *, scale: float = 1.0, resamples: int = 10000,
                 seed: int = 0, chunk_elements: int = 4_000_000) -> Paired:
    """Paired comparison of a metric ``scale * sum_i num_i / sum_i den_i`` (a mean when ``den``
    is None), per-sample values ``(seeds, N)`` for A and B. Vectorised over a chunk of
    resamples at a time (about ``chunk_elements`` numbers per chunk)."""
    _check_resamples(resamples)
    an, bn = np.atleast_2d(np.asarray(a_num, dtype=np.float64)), np.atleast_2d(np.asarray(b_num, dtype=np.float64))
    ad = np.ones_like(an) if a_den is None else np.atleast_2d(np.asarray(a_den, dtype=np.float64))
    bd = np.ones_like(bn) if b_den is None else np.atleast_2d(np.asarray(b_den, dtype=np.float64))
    if not an.shape == bn.shape == ad.shape == bd.shape or an.shape[1] == 0:
        raise ValueError(f"A and B need per-sample values of one shape (seeds, N >= 1), got {an.shape} and {bn.shape}")
    s, n = an.shape
    boot_rng, perm_rng = _rngs(seed)
    a_s, b_s = scale * an.sum(1) / ad.sum(1), scale * bn.sum(1) / bd.sum(1)
    chunk = max(1, chunk_elements // (s * n + n))
    boot, perm = [], []
    for start in range(0, resamples, chunk):
        r = min(chunk, resamples - start)
        c = bootstrap_counts(boot_rng, n, r).astype(np.float64)            # (r, n), same for A, B, every seed
        boot.append((scale * ((c @ an.T) / (c @ ad.T) - (c @ bn.T) / (c @ bd.T))).mean(axis=1))
    for start in range(0, resamples, chunk):
        r = min(chunk, resamples - start)
        swap = perm_rng.random((r, s, n)) < 0.5                            # take B's output for A
        dn = np.einsum("rsn,sn->rs", swap, bn - an)
        dd = np.einsum("rsn,sn->rs", swap, bd - ad)
        a_perm = (an.sum(1) + dn) / (ad.sum(1) + dd)
        b_perm = (bn.sum(1) - dn) / (bd.sum(1) - dd)
        perm.append((scale * (a_perm - b_perm)).mean(axis=1))
    return _finish(a_s, b_s, np.concatenate(boot), np.concatenate(perm), n, resamples, seed)


def paired_generic(metric: Callable[[int, np.ndarray, np.ndarray], float], seeds: int, n: int, *,
                   resamples: int = 1000, seed: int = 0) -> Paired:
    """Paired comparison of any metric. ``metric(s, take_b, counts)`` scores seed ``s``'s model
    made of, for each sample i, B's output where ``take_b[i]`` (else A's), each sample taken
    ``counts[i]`` times. One call per resample, seed and side (the metric itself vectorised)."""
    _check_resamples(resamples)
    if seeds < 1 or n < 1:
        raise ValueError(f"need at least one seed and one sample, got {seeds} and {n}")
    boot_rng, perm_rng = _rngs(seed)
    ones, none, all_b = np.ones(n, dtype=np.int64), np.zeros(n, dtype=bool), np.ones(n, dtype=bool)
    a_s = [metric(s, none, ones) for s in range(seeds)]
    b_s = [metric(s, all_b, ones) for s in range(seeds)]
    boot = np.empty(resamples)
    for r, counts in enumerate(bootstrap_counts(boot_rng, n, resamples)):
        boot[r] = np.mean([metric(s, none, counts) - metric(s, all_b, counts) for s in range(seeds)])
    perm = np.empty(resamples)
    for r in range(resamples):
        swap = perm_rng.random((seeds, n)) < 0.5
        perm[r] = np.mean([metric(s, swap[s], ones) - metric(s, ~swap[s], ones) for s in range(seeds)])
    return _finish(a_s, b_s, boot, perm, n, resamples, seed)
