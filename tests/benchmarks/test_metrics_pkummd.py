"""PKU-MMD mAP_a / mAP_v: golden cases of the official script, hand cases, and a literal
(loop-by-loop) transcription of the script's steps from metrics.md as a cross-check."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from benchmarks.metrics import pkummd_ap_all, pkummd_f1, pkummd_map, pkummd_scores

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CASES = SHARED / "reference" / "pkummd_eval_cases.json"


def _golden():
    if not CASES.exists():
        return []
    data = json.loads(CASES.read_text())
    return [pytest.param(data["theta"], c, id=c["name"]) for c in data["cases"]]


@pytest.mark.skipif(not CASES.exists(), reason=f"golden PKU-MMD cases not found at {CASES}")
@pytest.mark.parametrize("theta,case", _golden())
def test_official_script_cases(theta, case):
    got = pkummd_map(case["videos"], num_classes=51, theta=theta)
    assert got["mAP_a"] == pytest.approx(case["expected"]["mAP_a"], abs=1e-9, rel=0)
    assert got["mAP_v"] == pytest.approx(case["expected"]["mAP_v"], abs=1e-9, rel=0)


def test_golden_file_has_all_cases():
    if not CASES.exists():
        pytest.skip(f"golden PKU-MMD cases not found at {CASES}")
    assert len(json.loads(CASES.read_text())["cases"]) == 12


# ---- literal transcription of metrics.md steps 1-4 (loops, lists) -------------------------
def _ov(p, g):
    if int(p[0]) != int(g[0]) or p[4] != g[4]:
        return 0
    return (min(p[2], g[2]) - max(p[1], g[1])) / (max(p[2], g[2]) - min(p[1], g[1]))


def _ref_match(props, theta, gts):
    cur = [-1] * len(props)
    count = [0] * len(gts)
    for x, p in enumerate(props):
        for y, g in enumerate(gts):
            if int(g[0]) != int(p[0]):
                continue
            if _ov(p, g) < theta:
                continue
            if _ov(p, g) < _ov(p, gts[cur[x]]):
                continue
            cur[x] = y
        if cur[x] != -1:
            count[cur[x]] += 1
    return cur, count, sum(c > 0 for c in count)


def _pr(pos, n, ng):
    if n == 0 or ng == 0:
        return 0, 0
    return pos / n, pos / ng


def _ref_ap(props, theta, gts):
    props = sorted(props, key=lambda r: r[3])
    cur, count, pos = _ref_match(props, theta, gts)
    n = len(props)
    best, old_r = _pr(pos, n, len(gts))
    score = 0
    for x in range(len(props)):
        n -= 1
        if cur[x] == -1:
            continue
        count[cur[x]] -= 1
        if count[cur[x]] == 0:
            pos -= 1
        p, r = _pr(pos, n, len(gts))
        best = max(best, p)
        score += best * (old_r - r)
        old_r = r
    return score


def _ref_map(videos, c, theta):
    props = [list(r) + [v] for v, e in videos.items() for r in e["proposals"]]
    gts = [list(r) + [v] for v, e in videos.items() for r in e["ground_truth"]]
    a = sum(_ref_ap([p for p in props if p[0] == k], theta, [g for g in gts if g[0] == k]) for k in range(1, c + 1)) / c
    v = sum(_ref_ap([p for p in props if p[4] == n], theta, [g for g in gts if g[4] == n]) for n in videos) / len(videos)
    return a, v, _ref_ap(props, theta, gts)


def test_reference_transcription_reproduces_golden():
    """Guards the cross-check itself: the loop version must also match the official numbers."""
    if not CASES.exists():
        pytest.skip(f"golden PKU-MMD cases not found at {CASES}")
    data = json.loads(CASES.read_text())
    for c in data["cases"]:
        a, v, _ = _ref_map(c["videos"], 51, data["theta"])
        assert a == pytest.approx(c["expected"]["mAP_a"], abs=1e-9)
        assert v == pytest.approx(c["expected"]["mAP_v"], abs=1e-9)


_row = st.tuples(st.integers(1, 3), st.integers(0, 60), st.integers(1, 40),
                 st.sampled_from([0.1, 0.3, 0.5, 0.7, 0.9, 0.95]))


def _video(rows):
    return [[lab, s, s + d, c] for lab, s, d, c in rows]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.lists(_row, max_size=8), st.lists(_row, max_size=5)), min_size=1, max_size=3),
       st.sampled_from([0.5, 0.1, 0.0, -0.3, 0.9]))
def test_vectorised_equals_literal_steps(vids, theta):
    videos = {f"v{i}": {"proposals": _video(p), "ground_truth": _video(g)} for i, (p, g) in enumerate(vids)}
    got = pkummd_scores(videos, num_classes=4, theta=theta)
    a, v, ap_all = _ref_map(videos, 4, theta)
    assert got["mAP_a"] == pytest.approx(a, abs=1e-12)
    assert got["mAP_v"] == pytest.approx(v, abs=1e-12)
    assert got["ap_all"] == pytest.approx(ap_all, abs=1e-12)


# ---- hand-made cases ----------------------------------------------------------------------
def _one(props, gts):
    return {"v": {"proposals": props, "ground_truth": gts}}


def test_not_voc_tp_fp_tp():
    # ranking TP, FP, TP over 2 ground truths: 0.6667 (VOC AP would be 0.8333)
    v = _one([[1, 0, 100, 0.9], [1, 300, 400, 0.8], [1, 500, 600, 0.7]], [[1, 0, 100, 1], [1, 500, 600, 1]])
    got = pkummd_map(v)
    assert got["mAP_v"] == pytest.approx(2 / 3, abs=1e-12)
    assert got["mAP_a"] == pytest.approx(2 / 3 / 51, abs=1e-12)


def test_not_voc_tp_fp_missed():
    # TP, FP, second ground truth missed: 0.25 (VOC 0.5)
    v = _one([[1, 0, 100, 0.9], [1, 300, 400, 0.8]], [[1, 0, 100, 1], [1, 500, 600, 1]])
    assert pkummd_map(v)["mAP_v"] == pytest.approx(0.25, abs=1e-12)


def test_overlap_has_no_plus_one():
    # [0,100) vs [50,150): 50/150 = 1/3 < 0.5; with +1 it would still be < 0.5, so use theta 1/3:
    v = _one([[1, 0, 100, 0.9]], [[1, 50, 150, 1]])
    assert pkummd_map(v, theta=1 / 3)["mAP_v"] == pytest.approx(1.0)
    assert pkummd_map(v, theta=1 / 3 + 1e-9)["mAP_v"] == 0.0


def test_last_ground_truth_quirk():
    """current = -1 compares against the LAST ground truth of the list: with theta < 0 a
    candidate with negative overlap loses to the last row (other label, overlap 0)."""
    v = _one([[1, 0, 100, 0.9]], [[1, 120, 200, 1], [2, 0, 50, 1]])
    got = pkummd_map(v, num_classes=2, theta=-0.5)
    assert got["mAP_v"] == 0.0  # pooled list ends with the label-2 row: unmatched
    assert got["mAP_a"] == pytest.approx(1 / 2)  # class-1 list ends with the candidate itself


def test_duplicates_count_as_proposals():
    v = _one([[2, 0, 100, 0.9], [2, 5, 100, 0.95]], [[2, 0, 100, 1]])
    assert pkummd_f1(v) == pytest.approx(2 * 0.5 * 1 / 1.5)  # P = 1/2, R = 1


def test_f1_and_ap_all_hand():
    v = _one([[1, 0, 100, 0.9], [1, 300, 400, 0.8], [1, 500, 600, 0.7]], [[1, 0, 100, 1], [1, 500, 600, 1]])
    assert pkummd_f1(v) == pytest.approx(0.8)  # P = 2/3, R = 1
    assert type(pkummd_f1(v)) is float
    assert pkummd_ap_all(v) == pytest.approx(2 / 3)
    assert pkummd_f1(_one([], [[1, 0, 10, 1]])) == 0.0


def test_empty_and_video_without_proposals():
    v = {"a": {"proposals": [[5, 10, 50, 0.4]], "ground_truth": [[5, 10, 50, 2]]},
         "b": {"proposals": [], "ground_truth": [[6, 0, 30, 1]]}}
    assert pkummd_map(v) == pytest.approx({"mAP_a": 1 / 51, "mAP_v": 0.5})
    assert pkummd_map({}) == {"mAP_a": 0.0, "mAP_v": 0.0}


@pytest.mark.parametrize("bad,msg", [
    (_one([[1.5, 0, 10, 0.5]], []), "label"),
    (_one([[60, 0, 10, 0.5]], []), "label"),
    (_one([[1, 0, 10]], []), "label, start, end, confidence"),
    (_one([[1, 0, float("nan"), 0.5]], []), "non-finite"),
    ({"v": {"proposals": []}}, "ground_truth"),
    (_one([[1, 5, 5, 0.5]], [[1, 5, 5, 1]]), "zero frames"),
])
def test_bad_input_names_the_problem(bad, msg):
    with pytest.raises(ValueError, match=msg):
        pkummd_map(bad)
