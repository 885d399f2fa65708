"""Metrics of the three downstream tasks (pure functions, numpy only).

* detection: :func:`pkummd_map` (official PKU-MMD mAP_a / mAP_v), :func:`pkummd_f1`,
  :func:`pkummd_ap_all`, :func:`pkummd_scores`; post-processing :func:`frames_to_intervals`;
  PKU-format files :func:`write_proposals` / :func:`read_proposals`;
* motion prediction: :func:`mpjpe`, :func:`mpjpe_per_horizon`;
* recognition: :func:`topk_accuracy`, :func:`knn_accuracy` (kNN retrieval on frozen embeddings).

All return fractions / raw units; the runner converts to percent where records say so.
"""
from .accuracy import topk_accuracy
from .knn import knn_accuracy, knn_predict
from .intervals import (METHODS as INTERVAL_METHODS, IntervalConfig, frames_to_intervals,
                        intervals_to_labels, labels_to_intervals, moving_mean)
from .motion import mpjpe, mpjpe_per_horizon
from .pkummd import pkummd_ap_all, pkummd_f1, pkummd_map, pkummd_scores
from .proposals_io import read_proposals, write_proposals

__all__ = ["pkummd_map", "pkummd_f1", "pkummd_ap_all", "pkummd_scores", "frames_to_intervals",
           "labels_to_intervals", "intervals_to_labels", "moving_mean", "IntervalConfig",
           "INTERVAL_METHODS", "write_proposals", "read_proposals", "mpjpe", "mpjpe_per_horizon",
           "topk_accuracy", "knn_accuracy", "knn_predict"]
