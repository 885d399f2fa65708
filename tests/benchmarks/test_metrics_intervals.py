"""Frames -> intervals post-processing (both methods), hand-computed, plus PKU-format files."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from benchmarks.metrics import (IntervalConfig, frames_to_intervals, intervals_to_labels, labels_to_intervals,
                                moving_mean, pkummd_map, read_proposals, write_proposals)


def _probs(labels, p_fg=0.9, n_cls=3):
    """One-hot-ish per-frame probabilities: background frames [1, 0, ...], action frames
    put ``p_fg`` on their class and the rest on background."""
    labels = np.asarray(labels)
    p = np.zeros((len(labels), n_cls))
    p[labels == 0, 0] = 1.0
    act = labels != 0
    p[act, 0] = 1 - p_fg
    p[np.nonzero(act)[0], labels[act]] = p_fg
    return p


def test_moving_mean_centred_and_edge_averaged():
    x = np.arange(6, dtype=float)[:, None]
    # window 3 covers [t-1, t+2): t=0 -> mean(0,1); t=5 -> mean(4,5)
    np.testing.assert_allclose(moving_mean(x, 3)[:, 0], [0.5, 1, 2, 3, 4, 4.5])
    np.testing.assert_allclose(moving_mean(x, 1), x)


def test_threshold_hand_computed():
    labels = np.zeros(30, dtype=int)
    labels[10:20] = 2
    p = _probs(labels)
    # no smoothing: exactly the action frames, class 2, conf 0.9
    assert frames_to_intervals(p, window=1) == [[2, 10, 20, pytest.approx(0.9)]]
    # window 10 = frames [t-5, t+5): 1 - P(bg) = 0.09 * (#action frames in window);
    # >= 0.4 needs >= 5 action frames: t = 10..20 -> run [10, 21); mean P(class 2) = 9 / 11
    assert frames_to_intervals(p) == [[2, 10, 21, pytest.approx(9 / 11)]]


def test_threshold_class_is_argmax_of_run_mean():
    p = _probs(np.array([0] * 5 + [1] * 3 + [2] * 6 + [0] * 5))
    rows = frames_to_intervals(p, window=1)
    assert rows == [[2, 5, 14, pytest.approx(0.9 * 6 / 9)]]  # one active run, class 2 dominates


def test_argmax_runs_hand_computed():
    labels = np.array([0, 0, 1, 1, 1, 1, 2, 2, 0, 1, 1, 1, 0])
    p = _probs(labels, p_fg=0.8)
    p[3] = [0.1, 0.6, 0.3]  # still class 1, lowers the run mean
    rows = frames_to_intervals(p, method="argmax_runs")  # min_length 3 drops the 2-frame class-2 run
    assert rows == [[1, 2, 6, pytest.approx((0.8 * 3 + 0.6) / 4)], [1, 9, 12, pytest.approx(0.8)]]
    assert len(frames_to_intervals(p, method="argmax_runs", min_length=1)) == 3


def test_config_defaults_and_kwargs():
    cfg = IntervalConfig()
    assert (cfg.method, cfg.window, cfg.threshold) == ("threshold", 10, 0.4)
    p = _probs(np.array([0] * 10 + [3] * 10 + [0] * 10), n_cls=4)
    assert frames_to_intervals(p, **cfg.kwargs()) == frames_to_intervals(p)


def test_all_background_and_all_active():
    assert frames_to_intervals(_probs(np.zeros(20, int))) == []
    assert frames_to_intervals(_probs(np.ones(20, int))) == [[1, 0, 20, pytest.approx(0.9)]]
    assert frames_to_intervals(np.zeros((0, 3))) == []


@pytest.mark.parametrize("probs,kw,msg", [
    (np.zeros(5), {}, "shape"),
    (np.zeros((5, 1)), {}, "shape"),
    (np.full((5, 3), np.nan), {}, "NaN"),
    (np.zeros((5, 3)), {"method": "nms"}, "threshold, argmax_runs"),
    (np.zeros((5, 3)), {"window": 0}, "window"),
])
def test_bad_input(probs, kw, msg):
    with pytest.raises(ValueError, match=msg):
        frames_to_intervals(probs, **kw)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=60))
def test_label_interval_round_trip(labels):
    labels = np.asarray(labels)
    rows = labels_to_intervals(labels)
    np.testing.assert_array_equal(intervals_to_labels(rows, len(labels)), labels)
    # argmax_runs with min_length 1 on one-hot probabilities finds the same intervals
    p = np.eye(5)[labels]
    assert [r[:3] for r in frames_to_intervals(p, method="argmax_runs", min_length=1)] == [r[:3] for r in rows]


def test_perfect_prediction_scores_one():
    labels = np.array([0] * 10 + [4] * 30 + [0] * 10 + [7] * 25 + [0] * 10)
    p = np.eye(8)[labels] * 0.9 + 0.1 / 8
    rows = frames_to_intervals(p, window=1)
    got = pkummd_map({"v": {"proposals": rows, "ground_truth": labels_to_intervals(labels)}}, num_classes=7)
    assert got["mAP_v"] == pytest.approx(1.0)


# ---- PKU-format files ----------------------------------------------------------------------
def test_write_read_round_trip(tmp_path):
    rows = [[3, 10, 52, 0.123456789012345], [1, 0, 9, 1 / 3]]
    path = write_proposals(tmp_path / "sub" / "0291-M.txt", rows)
    assert path.read_text().splitlines() == ["3,10,52,0.123456789012345", f"1,0,9,{1 / 3!r}"]
    assert read_proposals(path) == rows
    assert [p.name for p in path.parent.iterdir()] == ["0291-M.txt"]  # no temporary left


def test_write_is_atomic_on_bad_rows(tmp_path):
    path = write_proposals(tmp_path / "a.txt", [[1, 0, 10, 0.5]])
    with pytest.raises(ValueError, match="label"):
        write_proposals(path, [[1, 0, 10, 0.5], [2.5, 0, 4, 0.1]])
    assert read_proposals(path) == [[1, 0, 10, 0.5]]
    assert len(list(tmp_path.iterdir())) == 1


def test_read_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("1,0,10,0.5\n\n1,0,ten,0.5\n")
    with pytest.raises(ValueError, match=r"bad.txt:3"):
        read_proposals(bad)


def test_file_evaluation_equals_in_memory(tmp_path):
    rng = np.random.default_rng(0)
    videos = {}
    for v in range(3):
        labels = np.repeat(rng.integers(0, 5, 12), rng.integers(5, 30, 12))
        probs = np.eye(6)[labels] * 0.6 + rng.random((len(labels), 6)) * 0.4
        probs /= probs.sum(1, keepdims=True)
        videos[f"v{v}"] = {"proposals": frames_to_intervals(probs), "ground_truth": labels_to_intervals(labels)}
        write_proposals(tmp_path / f"v{v}.txt", videos[f"v{v}"]["proposals"])
    from_files = {k: {"proposals": read_proposals(tmp_path / f"{k}.txt"), "ground_truth": e["ground_truth"]}
                  for k, e in videos.items()}
    assert pkummd_map(from_files, num_classes=5) == pkummd_map(videos, num_classes=5)
