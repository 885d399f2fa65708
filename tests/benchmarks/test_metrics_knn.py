"""kNN retrieval (cosine) on frozen embeddings: hand-made cases and a brute-force cross-check."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from benchmarks.metrics import knn_accuracy, knn_predict


def test_cosine_not_euclidean():
    train = np.array([[10.0, 0.0], [0.9, 1.1]])       # class 0 points along x but far away
    test = np.array([[1.0, 0.05]])                     # Euclidean-nearest is row 1, cosine-nearest row 0
    assert knn_predict(train, [0, 1], test).tolist() == [0]
    assert knn_predict(train * 7.5, [0, 1], test * 0.01).tolist() == [0]   # scale does not matter


def test_majority_then_similarity_tie_break():
    angles = np.deg2rad([0.0, 10.0, 20.0, 25.0])
    train = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    labels = [1, 0, 0, 1]
    q = np.array([[1.0, 0.0]])
    assert knn_predict(train, labels, q, k=1).tolist() == [1]
    assert knn_predict(train, labels, q, k=3).tolist() == [0]          # two votes beat one nearer vote
    assert knn_predict(train, labels, q, k=2).tolist() == [1]          # 1-1 tie: the larger similarity sum
    assert knn_accuracy(train, labels, np.vstack([q, q]), [1, 0], k=3) == 0.5


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 5))
def test_matches_brute_force_for_k1(seed, chunk):
    rng = np.random.default_rng(seed)
    train, test = rng.normal(size=(23, 4)), rng.normal(size=(11, 4))
    labels = rng.integers(0, 5, size=23)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    want = labels[np.argmax(unit(test) @ unit(train).T, axis=1)]
    np.testing.assert_array_equal(knn_predict(train, labels, test, k=1, chunk=chunk), want)


def test_bad_inputs():
    with pytest.raises(ValueError, match="same d"):
        knn_predict(np.zeros((3, 2)), [0, 1, 2], np.zeros((1, 3)))
    with pytest.raises(ValueError, match="k must be in 1..3"):
        knn_predict(np.ones((3, 2)), [0, 1, 2], np.ones((1, 2)), k=4)
    with pytest.raises(ValueError, match="one label per training row"):
        knn_predict(np.ones((3, 2)), [0, 1], np.ones((1, 2)))
