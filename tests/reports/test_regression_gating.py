"""Every gated metric can fail: trivial floors, ``"gated": false`` entries listed (never silently
passing), malformed baselines refused with one line, and the committed baseline's gating checked
independently of the code that wrote it (issue 30, item 1)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks import ci_baseline
from reports import regression
from reports.regression import compare, gating
from tests.support import Results

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "results" / "ci_baseline.json"


def entry(variant, task, fraction, metric, mean, tol, direction="higher", **extra):
    return {"variant": variant, "task": task, "label_fraction": fraction, "metric": metric, "mean": mean,
            "std": tol / 3, "tolerance": tol, "direction": direction, **extra}


def _base(*entries, num_classes=16):
    return {"profile": "ci", "dataset": None, "num_classes": num_classes, "entries": list(entries)}


# ---- floors ------------------------------------------------------------------------------------
def test_trivial_floors():
    zv = entry("zero-velocity", "prediction", 1.0, "mpjpe@6", 78.0, 3.0, "both")
    entries = [
        entry("mcc", "recognition", 1.0, "top1", 30.0, 20.0),            # chance 1/16
        entry("mcc", "recognition", 1.0, "linear_top5", 70.0, 20.0),     # chance 5/16
        entry("hitrs", "pretext", None, "frame_order_acc", 60.0, 3.0),   # binary
        entry("mcc", "detection", 1.0, "mAP_a", 20.0, 5.0),              # 0
        entry("hitrs", "pretext", None, "masked_joint_err_mm", 300.0, 30.0, "lower"),
        entry("mcc", "prediction", 1.0, "mpjpe@6", 86.0, 5.0, "both"), zv]
    g = gating(_base(*entries))
    assert [x["floor"] for x in g] == [pytest.approx(6.25), pytest.approx(31.25), 50.0, 0.0, None, 78.0, None]
    assert g[1]["floor_source"] == "chance 5/16"
    assert [x["gated"] for x in g] == [True, True, True, True, True, True, True]
    assert gating(_base(entries[0], num_classes=3))[0]["floor"] == pytest.approx(100 / 3)
    # top-5 of 3 classes is always right: the floor is 100
    assert gating(_base(entries[1], num_classes=3))[0]["floor"] == pytest.approx(100.0)


@pytest.mark.parametrize("e, gated", [
    (entry("hitrs", "recognition", 1.0, "top1", 26.2, 26.8), False),    # the example: 26.2 - 26.8 < 6.25
    (entry("hitrs", "recognition", 1.0, "top1", 26.2, 19.9), True),     # 6.3 > 6.25
    (entry("hitrs", "recognition", 1.0, "top1", 26.25, 20.0), False),   # exactly at chance: cannot fail above it
    (entry("mcc", "detection", 1.0, "mAP_a", 20.0, 20.0), False),       # threshold 0
    (entry("mcc", "detection", 1.0, "mAP_a", 20.0, 19.0), True),
    (entry("hitrs", "pretext", None, "clip_order_acc", 62.0, 43.0), False),
    (entry("mcc", "pretext", None, "weight_change", 3.0, 2.1), True),
])
def test_threshold_must_clear_the_floor(e, gated):
    assert gating(_base(e))[0]["gated"] is gated


def test_two_sided_band_must_exclude_zero_velocity():
    zv = entry("zero-velocity", "prediction", 0.1, "mpjpe", 88.9, 3.0, "both")
    inside = entry("mcc", "prediction", 0.1, "mpjpe", 101.1, 12.7, "both")      # 88.4 .. 113.8 holds 88.9
    outside = entry("hitrs", "prediction", 0.1, "mpjpe", 99.7, 8.6, "both")     # 91.1 .. 108.3
    other_fraction = entry("crossclr", "prediction", 1.0, "mpjpe", 101.1, 12.7, "both")  # no zero velocity at 1.0
    g = gating(_base(zv, inside, outside, other_fraction))
    assert [x["gated"] for x in g] == [True, False, True, True]
    assert g[1]["floor"] == 88.9 and g[3]["floor"] is None


def test_random_init_reference_is_reported_not_gated_on():
    pre = entry("mcc", "recognition", 1.0, "top1", 31.1, 21.8, stream="joint")
    ref = entry("mcc-random", "recognition", 1.0, "top1", 30.0, 20.0, stream="joint")
    motion = entry("hitrs-motion", "recognition", 1.0, "top1", 40.0, 10.0, stream="motion")
    g = gating(_base(pre, ref, motion))
    assert g[0]["gated"] and g[0]["reference"] == 30.0 and g[0]["separates_reference"] is False
    assert g[1]["reference"] is None and g[2]["reference"] is None


# ---- compare: ungated entries are listed, never silently passing --------------------------------
def _records(tmp_path, top1):
    res = Results(tmp_path)
    for seed, v in enumerate(top1):
        res.add("hitrs", "hitrs", "joint", "F+C+V", "recognition", 1.0, seed, {"top1": v, "top5": v + 30})
    return res.records


def test_ungated_entries_cannot_fail_and_are_counted(tmp_path):
    gated = entry("hitrs", "recognition", 1.0, "top5", 70.0, 20.0)      # threshold 50 > 31.25
    ungated = entry("hitrs", "recognition", 1.0, "top1", 26.2, 26.8)    # threshold -0.6 < 6.25
    recs = _records(tmp_path, [0.0, 0.0])                               # top1 0, top5 30: both collapsed
    md, failures = compare(recs, _base(gated, ungated))
    assert [f["metric"] for f in failures] == ["top5"]                  # the ungated top1 can not fail...
    assert "⚪ **1 of 2 metrics not gated: no signal at ci**" in md     # ...and is listed, with a count
    assert "⚪ not gated: no signal at ci (floor 6.25, chance 1/16)" in md
    md, failures = compare(_records(tmp_path / "ok", [25.0, 27.0]), _base(gated, ungated))
    assert failures == [] and "✅ All 1 gated metrics within tolerance." in md and "1 of 2 metrics not gated" in md


def test_an_entry_marked_ungated_is_listed_and_a_missing_one_still_fails(tmp_path):
    marked = entry("hitrs", "recognition", 1.0, "top5", 70.0, 20.0, gated=False)
    absent = entry("mcc", "recognition", 1.0, "top1", 26.2, 26.8)
    md, failures = compare(_records(tmp_path, [0.0, 0.0]), _base(marked, absent))
    assert [(f["variant"], f["reason"].split(":")[0]) for f in failures] == [("mcc", "missing")]
    assert "2 of 2 metrics not gated" in md


def test_committed_style_regression_line_unchanged_when_everything_is_gated(tmp_path):
    md, failures = compare(_records(tmp_path, [25.0, 27.0]), _base(entry("hitrs", "recognition", 1.0, "top5", 56.0, 20.0)))
    assert failures == [] and "✅ All 1 metrics within tolerance." in md and "not gated" not in md


# ---- malformed baselines: one line, never a TypeError / RecursionError ----------------------------
GOOD = entry("hitrs", "recognition", 1.0, "top5", 70.0, 20.0)
BAD = [
    (["abc"], "entry 0 is str"),
    ([dict(GOOD, mean="abc")], "mean must be a finite number"),
    ([dict(GOOD, mean=float("nan"))], "mean must be a finite number"),
    ([dict(GOOD, tolerance=float("inf"))], "tolerance must be a finite number"),
    ([dict(GOOD, tolerance=None)], "tolerance must be a finite number"),
    ([dict(GOOD, mean=True)], "mean must be a finite number"),
    ([dict(GOOD, tolerance=-1.0)], "tolerance must be >= 0"),
    ([dict(GOOD, variant=["x"])], "variant must be text"),
    ([dict(GOOD, direction="up")], "direction must be"),
    ([dict(GOOD, gated="no")], "gated must be true or false"),
    ([dict(GOOD, label_fraction="all")], "label_fraction must be"),
]


@pytest.mark.parametrize("entries, message", BAD, ids=[m for _, m in BAD])
def test_malformed_entries_give_one_line(entries, message):
    with pytest.raises(ValueError, match=message) as err:
        compare([], _base(*entries))
    assert "\n" not in str(err.value) and len(str(err.value)) < 400


def test_deeply_nested_baselines_give_one_line(tmp_path):
    deep = {"v": 1}
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(ValueError, match="mean must be a finite number") as err:
        compare([], _base(dict(GOOD, mean=deep)))
    assert len(str(err.value)) < 400
    path = tmp_path / "deep.json"
    path.write_text('{"entries": ' + "[" * 200000 + "]" * 200000 + "}")
    with pytest.raises(ValueError, match="deep.json: cannot read the regression baseline") as err:
        compare([], path)
    assert "\n" not in str(err.value)


def _write(tmp_path, base, name="b.json"):
    path = tmp_path / name
    path.write_text(json.dumps(base, allow_nan=True))
    return path


@pytest.mark.parametrize("base", [
    _base(dict(GOOD, mean=float("nan"))), _base(dict(GOOD, mean="abc")), _base("text"),
    {"entries": "nope"}, _base(dict(GOOD, tolerance=float("-inf")))])
def test_regression_cli_refuses_with_exit_2_and_one_line(tmp_path, capsys, base):
    path = _write(tmp_path, base)
    assert regression.main([str(tmp_path), "--baseline", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("reports.regression:")


def test_regression_cli_exit_codes(tmp_path, capsys):
    recs = Results(tmp_path)
    for seed in (0, 1):
        recs.add("hitrs", "hitrs", "joint", "F+C+V", "recognition", 1.0, seed, {"top1": 25.0, "top5": 55.0})
    ok = _write(tmp_path, _base(entry("hitrs", "recognition", 1.0, "top5", 56.0, 20.0)), "ok.json")
    assert regression.main([str(tmp_path), "--baseline", str(ok)]) == 0
    bad = _write(tmp_path, _base(entry("hitrs", "recognition", 1.0, "top5", 90.0, 20.0)), "bad.json")
    assert regression.main([str(tmp_path), "--baseline", str(bad)]) == 1
    assert "❌" in capsys.readouterr().out


@pytest.mark.parametrize("content", ['{"entries": [{"mean": "abc"}]}', "[" * 100000, '{"entries": ["x"]}',
                                     json.dumps(_base(dict(GOOD, mean=float("nan"))))])
def test_regate_cli_refuses_with_exit_2_and_one_line(tmp_path, capsys, content):
    path = tmp_path / "b.json"
    path.write_text(content)
    assert ci_baseline.main(["--regate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot re-gate" in err
    assert path.read_text() == content                                  # not rewritten


# ---- the committed baseline, checked independently ------------------------------------------------
def _independent_floor(e, entries):
    """The rule spelled again here: chance for top-k of 16 classes, 50 for order tasks, zero
    velocity for MPJPE, 0 for every other higher-is-better metric, none otherwise."""
    m = e["metric"]
    if e["task"] == "prediction":
        if e["variant"] == "zero-velocity":
            return None
        (zv,) = [x for x in entries if x["variant"] == "zero-velocity" and x["metric"] == m
                 and x["label_fraction"] == e["label_fraction"]]
        return zv["mean"]
    if e["task"] == "recognition":
        return 100 * (5 if m.endswith("top5") else 1) / 16
    if m in ("frame_order_acc", "clip_order_acc"):
        return 50.0
    return 0.0 if e["direction"] == "higher" else None


def test_committed_baseline_has_no_ungated_yet_passing_entry():
    base = json.loads(COMMITTED.read_text())
    entries = base["entries"]
    assert base["num_classes"] == 16
    n_ungated = 0
    for e in entries:
        floor = _independent_floor(e, entries)
        lo, hi = e["mean"] - e["tolerance"], e["mean"] + e["tolerance"]
        if floor is None:
            can_fail = True
        elif e["direction"] == "higher":
            can_fail = lo > floor
        elif e["direction"] == "lower":
            can_fail = hi < floor
        else:
            can_fail = not lo <= floor <= hi
        assert e["gated"] is can_fail, (e["variant"], e["task"], e["label_fraction"], e["metric"], lo, hi, floor)
        assert e["floor"] == (None if floor is None else pytest.approx(floor))
        n_ungated += not can_fail
    assert base["ungated"] == n_ungated > 0


def test_committed_baseline_gating_is_current():
    """Re-gating the committed file changes nothing: its annotation is what the code computes."""
    base = json.loads(COMMITTED.read_text())
    assert ci_baseline.regate(base) == base


def test_regate_cli_rewrites_only_the_gating(tmp_path, capsys):
    base = json.loads(COMMITTED.read_text())
    stripped = dict(base, entries=[{k: v for k, v in e.items() if k not in ci_baseline.GATING_KEYS}
                                   for e in base["entries"]])
    del stripped["num_classes"], stripped["ungated"], stripped["gating_rule"]
    path = tmp_path / "ci_baseline.json"
    path.write_text(json.dumps(stripped))
    assert ci_baseline.main(["--regate", str(path)]) == 0
    assert json.loads(path.read_text()) == base
    assert f"{base['ungated']} not gated" in capsys.readouterr().out


def test_baseline_from_records_writes_the_gating():
    recs = []
    for seed in range(5):
        for variant, top1 in (("hitrs", 26.0 + 3 * (seed % 2)), ("mcc", 6.0 + 10 * (seed % 2))):
            recs.append({"seed": seed, "dataset": "synthetic-ntu", "variant": variant, "stream": "joint",
                         "levels": None, "task": "recognition", "label_fraction": 1.0,
                         "metrics": {"top1": top1}, "pretext": None})
    base = ci_baseline.baseline_from_records(recs, [0, 1, 2, 3, 4])
    by = {e["variant"]: e for e in base["entries"]}
    assert base["num_classes"] == 16 and base["ungated"] == 1
    assert by["hitrs"]["gated"] is True and by["mcc"]["gated"] is False
    assert math.isclose(by["mcc"]["floor"], 6.25)
