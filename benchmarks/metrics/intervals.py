"""Per-frame class probabilities -> scored intervals (detection post-processing), and back.

The supplementary frames detection as per-frame classification (label 0 = background) but
does not say how frames become the scored intervals the PKU-MMD metric needs, so both
published choices are here (metrics.md), selected by ``method``:

* ``"threshold"`` (default): moving mean over ``window`` frames, a frame is active when
  1 - P(background) >= ``threshold``, each run of active frames is one interval; its class is
  the argmax over classes >= 1 of the run's mean (raw) probabilities, its confidence that mean.
  Default because smoothing + one activity decision per frame gives one interval per action even
  when the per-frame argmax flickers between similar classes inside it; with "argmax_runs" a
  flicker splits an action into short pieces that each fail the 0.5 overlap and count as false
  positives.
* ``"argmax_runs"``: each maximal run of one non-background per-frame argmax (optionally on
  smoothed probabilities) is an interval, confidence = the mean raw probability of its class
  over the run; runs shorter than ``min_length`` frames are dropped.

Intervals are ``[label, start, end, confidence]`` with frame indices, ``end`` exclusive.
All steps are vectorised (cumulative sums for means, ``np.diff`` for run lengths).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["IntervalConfig", "frames_to_intervals", "labels_to_intervals", "intervals_to_labels",
           "moving_mean", "METHODS"]

METHODS = ("threshold", "argmax_runs")


@dataclass(frozen=True)
class IntervalConfig:
    """Post-processing parameters (stored with each detection result)."""

    method: str = "threshold"
    window: int = 10  # moving-mean length in frames (1 = no smoothing)
    threshold: float = 0.4  # "threshold": active when 1 - P(background) >= threshold
    min_length: int | None = None  # drop shorter intervals; None -> 1 (threshold) / 3 (argmax_runs)
    argmax_window: int = 1  # "argmax_runs": smoothing before the per-frame argmax

    def kwargs(self) -> dict:
        return {"method": self.method, "window": self.window, "threshold": self.threshold,
                "min_length": self.min_length, "argmax_window": self.argmax_window}


def moving_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Centred moving mean along axis 0 over ``window`` frames ([t - w//2, t - w//2 + w)),
    averaging only the frames inside the sequence at its ends (no zero padding bias)."""
    if window < 1:
        raise ValueError(f"window must be >= 1 frame, got {window}")
    t = x.shape[0]
    cs = np.concatenate([np.zeros((1,) + x.shape[1:]), np.cumsum(x, axis=0, dtype=np.float64)])
    lo = np.clip(np.arange(t) - window // 2, 0, t)
    hi = np.clip(np.arange(t) - window // 2 + window, 0, t)
    count = (hi - lo).reshape((-1,) + (1,) * (x.ndim - 1))
    return (cs[hi] - cs[lo]) / count


def _runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and (exclusive) ends of maximal runs of equal values."""
    change = np.nonzero(np.diff(values))[0] + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(values)]])
    return starts, ends


def _check_probs(probs) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"probs must be (T, C+1) per-frame probabilities with column 0 = background, got shape {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError("probs contains NaN or inf; pass softmax probabilities")
    return p


def frames_to_intervals(probs, method: str = "threshold", *, window: int = 10, threshold: float = 0.4,
                        min_length: int | None = None, argmax_window: int = 1) -> list[list]:
    """Scored intervals ``[[label, start, end, conf], ...]`` (sorted by start) from ``(T, C+1)``
    per-frame probabilities. See the module docstring for the two methods."""
    p = _check_probs(probs)
    if method not in METHODS:
        raise ValueError(f"unknown post-processing method {method!r}; choose one of {', '.join(METHODS)}")
    if min_length is None:
        min_length = 1 if method == "threshold" else 3
    if min_length < 1:
        raise ValueError(f"min_length must be >= 1, got {min_length}")
    t = p.shape[0]
    if t == 0:
        return []
    cs = np.concatenate([np.zeros((1, p.shape[1])), np.cumsum(p, axis=0)])
    if method == "threshold":
        active = (1.0 - moving_mean(p[:, :1], window)[:, 0]) >= threshold
        starts, ends = _runs(active.astype(np.int8))
        keep = active[starts]
        starts, ends = starts[keep], ends[keep]
        means = (cs[ends] - cs[starts]) / (ends - starts)[:, None]
        labels = np.argmax(means[:, 1:], axis=1) + 1
    else:
        sm = moving_mean(p, argmax_window) if argmax_window > 1 else p
        frame_label = np.argmax(sm, axis=1)
        starts, ends = _runs(frame_label)
        labels = frame_label[starts]
        keep = labels != 0
        starts, ends, labels = starts[keep], ends[keep], labels[keep]
        means = (cs[ends] - cs[starts]) / (ends - starts)[:, None]
    conf = means[np.arange(len(labels)), labels]
    long = (ends - starts) >= min_length
    return [[int(a), int(b), int(c), float(d)] for a, b, c, d in
            zip(labels[long], starts[long], ends[long], conf[long])]


def labels_to_intervals(labels) -> list[list]:
    """Ground-truth rows ``[label, start, end, 1.0]`` from per-frame labels (0 = background)."""
    lab = np.asarray(labels)
    if lab.ndim != 1:
        raise ValueError(f"labels must be a 1-D per-frame array, got shape {lab.shape}")
    if len(lab) == 0:
        return []
    starts, ends = _runs(lab)
    keep = lab[starts] != 0
    return [[int(a), int(b), int(c), 1.0] for a, b, c in zip(lab[starts][keep], starts[keep], ends[keep])]


def intervals_to_labels(rows, length: int) -> np.ndarray:
    """Per-frame int64 labels (0 = background) painted from intervals, later rows on top;
    used for the detection timelines (``pred_<i>`` in timelines.npz)."""
    out = np.zeros(int(length), dtype=np.int64)
    if len(rows) == 0:
        return out
    arr = np.asarray(rows, dtype=np.float64)
    lab = arr[:, 0].astype(np.int64)
    s = np.clip(np.floor(arr[:, 1]).astype(np.int64), 0, length)
    e = np.clip(np.ceil(arr[:, 2]).astype(np.int64), 0, length)
    n = np.maximum(e - s, 0)
    idx = np.repeat(np.arange(len(arr)), n)  # row of every painted frame
    offset = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    owner = np.full(int(length), -1, dtype=np.int64)
    np.maximum.at(owner, s[idx] + offset, idx)  # the latest row covering a frame wins
    painted = owner >= 0
    out[painted] = lab[owner[painted]]
    return out
