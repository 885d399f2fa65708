"""Recognition accuracy: top-k over a test split."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .motion import to_numpy

__all__ = ["topk_accuracy"]


def topk_accuracy(logits, labels, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """``{"top1": fraction, "top5": fraction}``: share of samples whose true class is among the
    k highest logits. A sample's rank is the number of classes with a STRICTLY higher logit
    (ties resolve in the sample's favour, as ``torch.topk`` with equal values may). k larger
    than the number of classes counts every sample correct. Fractions in [0, 1]."""
    z = to_numpy(logits)
    y = np.asarray(to_numpy(labels), dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"logits must be (samples, classes), got shape {z.shape}")
    if y.shape != (z.shape[0],):
        raise ValueError(f"labels must be ({z.shape[0]},) to match logits, got shape {y.shape}")
    if z.shape[0] == 0:
        raise ValueError("no samples: accuracy is undefined")
    if (y != np.round(y)).any() or y.min() < 0 or y.max() >= z.shape[1]:
        raise ValueError(f"labels must be integers in 0..{z.shape[1] - 1}")
    yi = y.astype(np.int64)
    true = z[np.arange(len(yi)), yi]
    rank = (z > true[:, None]).sum(axis=1)
    out = {}
    for k in ks:
        if int(k) < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        out[f"top{int(k)}"] = float((rank < int(k)).mean())
    return out
