"""Figure helpers: the bone graph, graceful refusals, the timeline colour codes."""
from __future__ import annotations

import numpy as np
import pytest

from reports import figures
from reports.records import norm_levels


def test_bone_graph_is_ntu():
    streams = pytest.importorskip("datasets.streams")
    pairs = [(c - 1, p - 1) for c, p in streams.NTU_BONE_PAIRS if c != p]
    assert figures.BONES.tolist() == [list(p) for p in pairs] and len(pairs) == 24


def test_segments_follow_bones():
    joints = np.arange(25 * 3, dtype=float).reshape(25, 3)
    seg = figures._segments_many(joints[None])[0]
    assert seg.shape == (24, 2, 2)
    np.testing.assert_array_equal(seg[0], [joints[0, :2], joints[1, :2]])  # joint 1 -> parent 2


def test_figures_refuse_cleanly(tmp_path):
    assert "no detection record" in figures.fig2_timelines([], "x", tmp_path).reason
    assert "no prediction record" in figures.fig3_skeletons([], "x", tmp_path).reason
    bad = tmp_path / "p.npz"
    np.savez(bad, target=np.zeros((2, 25, 25, 3)), predicted=np.zeros((2, 24, 25, 3)))
    assert "unusable" in figures.fig3_skeletons([("MCC", bad)], "x", tmp_path).reason
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    np.savez(a, names=np.array(["v1"]), gt_0=np.zeros(5, int), pred_0=np.zeros(5, int))
    np.savez(b, names=np.array(["v2"]), gt_0=np.zeros(5, int), pred_0=np.zeros(5, int))
    assert "share no test video" in figures.fig2_timelines([("A", a), ("B", b)], "x", tmp_path).reason
    assert not list(tmp_path.glob("*.png"))


def test_pretrain_log_reader_skips_bad_lines(tmp_path):
    log = tmp_path / "pretrain.log"
    log.write_text('{"step": 2, "loss": 1.0, "mjp/loss": 0.5}\nnot json\n{"step": 1, "loss": 2.0, "mjp/loss": 1.0}\n')
    df, bad = figures.read_log(log)
    assert bad == 1 and df["step"].tolist() == [1, 2]
    fig = figures.fig4_pretrain_curves([("hitrs", log)], tmp_path)
    assert not fig.reason and fig.png[:4] == b"\x89PNG"


def test_resolve_relative_paths(tmp_path):
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "artifacts" / "t.npz").write_bytes(b"x")
    assert figures.resolve("artifacts/t.npz", tmp_path) == tmp_path / "artifacts" / "t.npz"
    assert figures.resolve("artifacts/missing.npz", tmp_path) is None
    assert figures.resolve(None, tmp_path) is None


@pytest.mark.parametrize("raw,want", [("C+F", "F+C"), ("V+F+C", "F+C+V"), ("-", "-"), ("", "-"),
                                      (None, None), (("F", "V"), "F+V"), ("F,C", "F+C")])
def test_levels_normalisation(raw, want):
    assert norm_levels(raw) == want


def test_timeline_codes():
    gt = np.array([0, 0, 3, 3, 3, 0, 5, 5])
    pred = np.array([0, 3, 3, 4, 0, 0, 5])  # one frame short: padded as background
    np.testing.assert_array_equal(figures.timeline_codes(gt, pred), [0, 2, 1, 2, 0, 0, 1, 0])
