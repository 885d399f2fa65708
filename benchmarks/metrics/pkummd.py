"""PKU-MMD detection metrics, reproducing the official evaluation script number for number.

Papers report mAP_a / mAP_v as computed by the official PKU-MMD script, whose AP is not VOC AP
(see docs/metrics.md); these functions follow its steps exactly, quirks included:

* overlap(p, g) = (min(e) - max(s)) / (max(e) - min(s)) for the same label and video, else 0
  (no +1, no clipping: disjoint intervals give negative values);
* a proposal is matched to the ground truth of its label with the highest overlap >= theta
  (ties go to the later one in list order); the comparison baseline is initially the LAST
  ground truth of the whole list (the script's ``ground[-1]`` quirk), so a proposal whose
  overlap with that last row beats every candidate stays unmatched;
* proposals sorted by confidence ascending (stable) and the precision/recall walk of the script.

Everything is vectorised per label group (overlap matrix with numpy); the walk is a cumulative
computation over the sorted proposals, summed sequentially like the script so results agree
to the last bit in practice. Inputs use the runner's layout:
``videos = {name: {"proposals": [[label, start, end, conf], ...], "ground_truth": [...]}}``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

__all__ = ["pkummd_map", "pkummd_f1", "pkummd_ap_all", "pkummd_scores", "Rows"]


@dataclass(frozen=True)
class Rows:
    """Rows of one list (proposals or ground truths), pooled over videos in dict order."""

    label: np.ndarray  # int64
    start: np.ndarray  # float64
    end: np.ndarray  # float64
    conf: np.ndarray  # float64
    video: np.ndarray  # int64 index into the video list

    def __len__(self) -> int:
        return len(self.label)

    def take(self, mask_or_index) -> "Rows":
        return Rows(self.label[mask_or_index], self.start[mask_or_index], self.end[mask_or_index],
                    self.conf[mask_or_index], self.video[mask_or_index])


def _rows(videos: Mapping[str, Mapping[str, Sequence]], key: str, num_classes: int) -> Rows:
    """Parse and validate one kind of row of every video; errors name the video and row."""
    if not isinstance(videos, Mapping):
        raise TypeError("videos must be a dict {name: {'proposals': [...], 'ground_truth': [...]}}")
    parts, vids = [], []
    for vi, (name, entry) in enumerate(videos.items()):
        if not isinstance(entry, Mapping) or key not in entry:
            raise ValueError(f"video {name!r}: missing {key!r} (expected keys 'proposals' and 'ground_truth')")
        rows = entry[key]
        arr = np.asarray(rows, dtype=np.float64) if len(rows) else np.zeros((0, 4))
        if arr.ndim != 2 or arr.shape[1] < 4:
            raise ValueError(f"video {name!r}: {key} rows must be [label, start, end, confidence], got shape {arr.shape}")
        if not np.isfinite(arr[:, :4]).all():
            bad = int(np.nonzero(~np.isfinite(arr[:, :4]).all(1))[0][0])
            raise ValueError(f"video {name!r}: {key} row {bad} has a non-finite value: {list(rows[bad])}")
        lab = arr[:, 0]
        bad = (lab != np.round(lab)) | (lab < 0) | (lab > num_classes)
        if bad.any():
            i = int(np.nonzero(bad)[0][0])
            raise ValueError(f"video {name!r}: {key} row {i} has label {lab[i]!r}; labels must be integers "
                             f"in 0..{num_classes} (num_classes={num_classes})")
        parts.append(arr[:, :4])
        vids.append(np.full(len(arr), vi, dtype=np.int64))
    allr = np.concatenate(parts) if parts else np.zeros((0, 4))
    video = np.concatenate(vids) if vids else np.zeros(0, dtype=np.int64)
    return Rows(allr[:, 0].astype(np.int64), allr[:, 1].copy(), allr[:, 2].copy(), allr[:, 3].copy(), video)


def _overlap(p: Rows, g: Rows) -> np.ndarray:
    """(P, G) overlap matrix of the script: 0 across labels or videos, no +1, no clipping."""
    same = (p.label[:, None] == g.label[None, :]) & (p.video[:, None] == g.video[None, :])
    num = np.minimum(p.end[:, None], g.end[None, :]) - np.maximum(p.start[:, None], g.start[None, :])
    den = np.maximum(p.end[:, None], g.end[None, :]) - np.minimum(p.start[:, None], g.start[None, :])
    if (same & (den == 0)).any():
        i, j = (int(a[0]) for a in np.nonzero(same & (den == 0)))
        raise ValueError(f"proposal [{p.label[i]}, {p.start[i]}, {p.end[i]}] and ground truth "
                         f"[{g.label[j]}, {g.start[j]}, {g.end[j]}] span zero frames together: the "
                         "official overlap divides by zero; drop zero-length intervals")
    out = np.zeros(same.shape)
    np.divide(num, den, out=out, where=same)
    return out


def _match(p: Rows, g: Rows, theta: float) -> np.ndarray:
    """Index of the ground truth each proposal is matched to (-1: none), the script's rule.

    Scanning the same-label ground truths in order and taking g when overlap >= theta and
    overlap >= overlap(p, gts[current]) (current starting at -1 = the last row) ends on the
    LAST ground truth with the maximal candidate overlap m, provided m >= overlap(p, gts[-1]).
    """
    match = np.full(len(p), -1, dtype=np.int64)
    if len(p) == 0 or len(g) == 0:
        return match
    last = g.take(slice(len(g) - 1, len(g)))
    o_last = _overlap(p, last)[:, 0]
    for lab in np.intersect1d(p.label, g.label):  # a loop over classes (<= 52), not samples
        pi = np.nonzero(p.label == lab)[0]
        gi = np.nonzero(g.label == lab)[0]
        o = _overlap(p.take(pi), g.take(gi))
        cand = o >= theta  # the script's label index holds every video's rows of this label
        best = np.where(cand, o, -np.inf).max(axis=1)
        at_best = cand & (o == best[:, None])
        last_best = o.shape[1] - 1 - np.argmax(at_best[:, ::-1], axis=1)
        ok = cand.any(axis=1) & (best >= o_last[pi])
        match[pi[ok]] = gi[last_best[ok]]
    return match


def _ap(p: Rows, g: Rows, theta: float) -> float:
    """The script's ap(): ascending stable sort by confidence, then the precision/recall walk."""
    n, n_gt = len(p), len(g)
    if n == 0 or n_gt == 0:
        return 0.0  # pr() is (0, 0) throughout, so every walk term is 0
    order = np.argsort(p.conf, kind="stable")
    cos = _match(p.take(order), g, theta)
    matched = cos >= 0
    if not matched.any():
        return 0.0
    steps = np.nonzero(matched)[0]
    positive0 = np.count_nonzero(np.bincount(cos[matched], minlength=n_gt))
    # a ground truth stops counting when the last (highest-confidence) proposal matched to it leaves
    lastpos = np.full(n_gt, -1, dtype=np.int64)
    np.maximum.at(lastpos, cos[matched], steps)
    dropped = np.cumsum(np.bincount(lastpos[lastpos >= 0], minlength=n))
    positive = (positive0 - dropped[steps]).astype(np.float64)
    remaining = (n - 1 - steps).astype(np.float64)
    prec = np.zeros(len(steps))
    rec = np.zeros(len(steps))
    live = remaining > 0
    np.divide(positive, remaining, out=prec, where=live)
    np.divide(positive, float(n_gt), out=rec, where=live)
    best = np.maximum.accumulate(np.concatenate([[positive0 / n], prec]))[1:]
    old_rec = np.concatenate([[positive0 / n_gt], rec[:-1]])
    return float(np.cumsum(best * (old_rec - rec))[-1])  # sequential sum, like `score +=`


def _check(num_classes: int, theta: float) -> None:
    if int(num_classes) != num_classes or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if not np.isfinite(theta):
        raise ValueError(f"theta must be a finite number, got {theta!r}")


def pkummd_map(videos: Mapping[str, Mapping[str, Sequence]], num_classes: int = 51,
               theta: float = 0.5) -> dict[str, float]:
    """Official mAP_a (mean AP over classes 1..num_classes) and mAP_v (mean AP over videos).

    Fractions in [0, 1] like the official script. Classes without ground truth count as 0;
    every video in ``videos`` counts for mAP_v, also one without proposals.
    """
    _check(num_classes, theta)
    p = _rows(videos, "proposals", num_classes)
    g = _rows(videos, "ground_truth", num_classes)
    total_a = 0.0
    for c in range(1, num_classes + 1):  # sequential sums mirror the script
        total_a += _ap(p.take(p.label == c), g.take(g.label == c), theta)
    total_v = 0.0
    for v in range(len(videos)):
        total_v += _ap(p.take(p.video == v), g.take(g.video == v), theta)
    return {"mAP_a": total_a / num_classes, "mAP_v": total_v / len(videos) if len(videos) else 0.0}


def pkummd_f1(videos: Mapping[str, Mapping[str, Sequence]], theta: float = 0.5,
              num_classes: int = 51) -> float:
    """F1 of all proposals pooled (every video, every class), as the official script prints it:
    precision = matched ground truths / proposals, recall = matched ground truths / ground truths
    (duplicates count as false positives), F1 = 2PR/(P+R), 0 when undefined."""
    _check(num_classes, theta)
    p = _rows(videos, "proposals", num_classes)
    g = _rows(videos, "ground_truth", num_classes)
    if len(p) == 0 or len(g) == 0:
        return 0.0
    cos = _match(p, g, theta)
    positive = np.count_nonzero(np.bincount(cos[cos >= 0], minlength=len(g)))
    prec, rec = positive / len(p), positive / len(g)
    return 0.0 if prec + rec == 0 else float(2 * prec * rec / (prec + rec))


def pkummd_ap_all(videos: Mapping[str, Mapping[str, Sequence]], theta: float = 0.5,
                  num_classes: int = 51) -> float:
    """The script's AP over all proposals and all ground truths pooled (labels and videos must
    still match for an overlap); a fraction in [0, 1]."""
    _check(num_classes, theta)
    return _ap(_rows(videos, "proposals", num_classes), _rows(videos, "ground_truth", num_classes), theta)


def pkummd_scores(videos: Mapping[str, Mapping[str, Sequence]], num_classes: int = 51,
                  theta: float = 0.5) -> dict[str, float]:
    """mAP_a, mAP_v, f1 and ap_all in one call (fractions in [0, 1])."""
    out = pkummd_map(videos, num_classes, theta)
    out["f1"] = pkummd_f1(videos, theta, num_classes)
    out["ap_all"] = pkummd_ap_all(videos, theta, num_classes)
    return out
