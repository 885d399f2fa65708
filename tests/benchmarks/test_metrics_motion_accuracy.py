"""MPJPE and top-k accuracy against hand-computed values."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.metrics import mpjpe, mpjpe_per_horizon, topk_accuracy


def test_mpjpe_hand():
    target = np.zeros((2, 1, 2, 3))
    pred = target.copy()
    pred[0, 0, 0] = [3, 4, 0]     # 5
    pred[0, 0, 1] = [0, 0, 12]    # 12
    pred[1, 0, 0] = [1, 2, 2]     # 3
    # pred[1, 0, 1] exact          0
    assert mpjpe(pred, target) == pytest.approx((5 + 12 + 3 + 0) / 4)


def test_mpjpe_accepts_torch_and_is_symmetric():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 4, 25, 3)), rng.normal(size=(3, 4, 25, 3))
    assert mpjpe(torch.tensor(a), torch.tensor(b)) == pytest.approx(mpjpe(b, a))
    assert mpjpe(a, a) == 0.0


def test_mpjpe_per_horizon_hand():
    s, t, j = 2, 4, 3
    target = np.zeros((s, t, j, 3))
    pred = np.zeros_like(target)
    pred[:, :, :, 0] = np.arange(1, t + 1)[None, :, None]  # frame k (1-based) is off by k along x
    pred[1, 2, 0, 0] += 3                                   # one joint of sample 1 at frame 3: 6
    out = mpjpe_per_horizon(pred, target, horizons=(1, 3, 4))
    assert out == {"mpjpe@1": pytest.approx(1.0), "mpjpe@3": pytest.approx((3 * 5 + 6) / 6),
                   "mpjpe@4": pytest.approx(4.0)}
    assert mpjpe(pred, target) == pytest.approx((1 + 2 + 3 + 4) / 4 + 3 / (s * t * j))


@pytest.mark.parametrize("pred,target,kw,msg", [
    (np.zeros((2, 3)), np.zeros((2, 4)), {}, "differ"),
    (np.zeros((2, 5, 3, 3)), np.zeros((2, 5, 3, 3)), {"horizons": (6,)}, "1..5"),
    (np.zeros((5, 3, 3)), np.zeros((5, 3, 3)), {"horizons": (1,)}, "samples, frames"),
])
def test_mpjpe_bad_input(pred, target, kw, msg):
    with pytest.raises(ValueError, match=msg):
        (mpjpe_per_horizon if kw else mpjpe)(pred, target, **kw)


def test_topk_hand():
    logits = np.array([[0.1, 0.5, 0.2, 0.0, 0.3, 0.9],   # true 5: rank 0
                       [0.9, 0.5, 0.2, 0.0, 0.3, 0.1],   # true 1: rank 1
                       [0.9, 0.5, 0.2, 0.0, 0.3, 0.1],   # true 3: rank 5
                       [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]])  # true 4: rank 4
    labels = np.array([5, 1, 3, 4])
    assert topk_accuracy(logits, labels) == {"top1": 0.25, "top5": 0.75}
    assert topk_accuracy(torch.tensor(logits), torch.tensor(labels), ks=(2, 6)) == {"top2": 0.5, "top6": 1.0}


def test_topk_ties_count_in_favour():
    assert topk_accuracy(np.array([[1.0, 1.0, 0.0]]), np.array([1]), ks=(1,)) == {"top1": 1.0}


@pytest.mark.parametrize("logits,labels,msg", [
    (np.zeros(3), np.zeros(3), "samples, classes"),
    (np.zeros((2, 3)), np.zeros(3), "labels must be"),
    (np.zeros((2, 3)), np.array([0, 3]), "0..2"),
    (np.zeros((0, 3)), np.zeros(0), "no samples"),
])
def test_topk_bad_input(logits, labels, msg):
    with pytest.raises(ValueError, match=msg):
        topk_accuracy(logits, labels)
