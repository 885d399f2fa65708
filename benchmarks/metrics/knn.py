"""k-nearest-neighbour retrieval on frozen embeddings (cosine; k=1 by default): the protocol
peers report beside linear evaluation, because it needs no training at all."""
from __future__ import annotations

import numpy as np

from .motion import to_numpy

__all__ = ["knn_predict", "knn_accuracy"]


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def knn_predict(train_features, train_labels, test_features, k: int = 1, chunk: int = 2048) -> np.ndarray:
    """int64 predicted class per test row: majority label of its ``k`` most cosine-similar
    training rows; a tie between classes goes to the larger summed similarity, then the lower
    class id. Test rows are scored ``chunk`` at a time (bounded memory on NTU-size splits)."""
    train, test = _unit(to_numpy(train_features)), _unit(to_numpy(test_features))
    labels = np.asarray(to_numpy(train_labels)).astype(np.int64)
    if train.ndim != 2 or test.ndim != 2 or train.shape[1] != test.shape[1]:
        raise ValueError(f"features must be (n, d) with the same d, got {train.shape} and {test.shape}")
    if labels.shape != (len(train),) or len(train) == 0:
        raise ValueError(f"need one label per training row and at least one row, got {labels.shape} for {len(train)}")
    if not 1 <= int(k) <= len(train):
        raise ValueError(f"k must be in 1..{len(train)} (training rows), got {k}")
    k, classes = int(k), int(labels.max()) + 1
    out = np.empty(len(test), dtype=np.int64)
    for start in range(0, len(test), chunk):
        sim = test[start:start + chunk] @ train.T                           # (c, n_train)
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k] if k < len(train) else np.tile(np.arange(len(train)), (len(sim), 1))
        top_sim = np.take_along_axis(sim, top, axis=1).astype(np.float64)
        rows = np.repeat(np.arange(len(sim)), k)
        # a vote counts 2k+1, similarities sum to at most k in size: only ties fall to similarity
        score = np.zeros((len(sim), classes))
        np.add.at(score, (rows, labels[top].ravel()), (2 * k + 1) + top_sim.ravel())
        out[start:start + chunk] = score.argmax(axis=1)
    return out


def knn_accuracy(train_features, train_labels, test_features, test_labels, k: int = 1) -> float:
    """Share of test rows whose kNN prediction is their label (fraction in [0, 1])."""
    truth = np.asarray(to_numpy(test_labels)).astype(np.int64)
    pred = knn_predict(train_features, train_labels, test_features, k)
    if truth.shape != pred.shape or len(truth) == 0:
        raise ValueError(f"need one label per test row (and at least one), got {truth.shape} for {pred.shape}")
    return float((pred == truth).mean())
