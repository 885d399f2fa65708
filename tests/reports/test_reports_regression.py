"""reports.regression.compare: the PR-comment summary of metrics outside tolerance."""
from __future__ import annotations

import json

import pytest

from reports.regression import compare
from tests.support import Results


def _records(tmp_path):
    res = Results(tmp_path)
    for seed, (a, m) in enumerate([(30.0, 100.0), (32.0, 102.0)]):
        res.add("hitrs", "hitrs", "joint", "F+C+V", "detection", 1.0, seed, {"mAP_a": a, "mAP_v": a + 5})
        res.add("mcc", "mcc", "joint", None, "prediction", 0.1, seed, {"mpjpe": m})
    res.add("mcc", "mcc", "joint", None, "prediction", 0.1, 0, {"mpjpe": 500.0}, profile="small")  # other profile
    return res


def _baseline(**over):
    entries = [{"variant": "hitrs", "task": "detection", "label_fraction": 1.0, "metric": "mAP_a", "mean": 31.5,
                "std": 1.0, "tolerance": 1.0},
               {"variant": "mcc", "task": "prediction", "label_fraction": 0.1, "metric": "mpjpe", "mean": 101.0,
                "std": 1.0, "tolerance": 2.0}]
    for i, kv in over.items():
        entries[int(i[1:])].update(kv)
    return {"profile": "ci", "dataset": None, "entries": entries}


def test_within_tolerance(tmp_path):
    res = _records(tmp_path)
    md, failures = compare(res.records, _baseline())
    assert failures == []
    assert "✅ All 2 metrics within tolerance" in md
    assert "| mcc | prediction | 0.1 | mpjpe | 101.00 ± 1.00 | 101.00 (2) | +0.00 | 2.00 | ✅ ok |" in md


def test_outside_tolerance_is_listed(tmp_path):
    res = _records(tmp_path)
    md, failures = compare(res.records, _baseline(e0={"mean": 29.0}))  # now 31.0: |Δ| 2.0 > 1.0
    assert len(failures) == 1
    f = failures[0]
    assert (f["variant"], f["metric"], f["current"], f["delta"]) == ("hitrs", "mAP_a", 31.0, 2.0)
    assert "❌ **1 of 2 metrics outside tolerance**" in md
    assert "| hitrs | detection | 1 | mAP_a | 29.00 ± 1.00 | 31.00 (2) | +2.00 | 1.00 | ❌ |Δ| 2 > tolerance 1 |" in md


def test_missing_metric_fails_and_other_profiles_ignored(tmp_path):
    res = _records(tmp_path)
    base = _baseline()
    base["entries"].append({"variant": "crossclr", "task": "prediction", "label_fraction": 1.0, "metric": "mpjpe",
                            "mean": 90.0, "std": 0.5, "tolerance": 1.0})
    md, failures = compare(res.records, base)
    assert [f["variant"] for f in failures] == ["crossclr"] and "missing" in failures[0]["reason"]
    # the 'small' profile record (500 mm) would fail mcc if it were not filtered out
    assert all(f["variant"] != "mcc" for f in failures)
    base["profile"] = "small"
    _, failures = compare(res.records, base)
    assert {f["variant"] for f in failures} == {"hitrs", "mcc", "crossclr"}


def test_from_paths_and_bad_baseline(tmp_path):
    _records(tmp_path)
    path = tmp_path / "ci_baseline.json"
    path.write_text(json.dumps(_baseline()))
    md, failures = compare(tmp_path, path)
    assert not failures and md.startswith("### Benchmark regression check")
    with pytest.raises(ValueError, match="lacks"):
        compare([], {"entries": [{"variant": "x"}]})
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="bad.json"):
        compare([], tmp_path / "bad.json")


def test_one_sided_entries_fail_only_on_a_loss_of_quality(tmp_path):
    res = _records(tmp_path)  # now: hitrs mAP_a 31.0, mcc mpjpe 101.0
    worse = _baseline(e0={"mean": 35.0, "direction": "higher"}, e1={"mean": 95.0, "direction": "lower"})
    _, failures = compare(res.records, worse)
    assert [(f["metric"], f["reason"]) for f in failures] == [
        ("mAP_a", "dropped by 4 > tolerance 1"), ("mpjpe", "rose by 6 > tolerance 2 (lower is better)")]
    better = _baseline(e0={"mean": 25.0, "direction": "higher"}, e1={"mean": 110.0, "direction": "lower"})
    assert compare(res.records, better)[1] == []
    assert len(compare(res.records, _baseline(e0={"mean": 25.0, "direction": "both"}))[1]) == 1


def test_pretext_entries_read_the_records_pretext(tmp_path):
    res = _records(tmp_path)
    for i, r in enumerate(res.records):
        r["pretext"] = {"masked_joint_err_mm": 500.0 + 10 * r["seed"]} if r["variant"] == "hitrs" else None
    entry = {"variant": "hitrs", "stream": "joint", "levels": "F+C+V", "task": "pretext", "label_fraction": None,
             "metric": "masked_joint_err_mm", "mean": 505.0, "std": 5.0, "tolerance": 20.0, "direction": "lower"}
    md, failures = compare(res.records, {"profile": "ci", "entries": [entry]})
    assert failures == [] and "| hitrs | pretext | — | masked_joint_err_mm | 505.00" in md
    for r in res.records:
        if r["variant"] == "hitrs":
            r["pretext"] = {"masked_joint_err_mm": 3500.0}
    _, failures = compare(res.records, {"profile": "ci", "entries": [entry]})
    assert [(f["variant"], f["task"], f["metric"], f["levels"]) for f in failures] == [
        ("hitrs", "pretext", "masked_joint_err_mm", "F+C+V")]
    _, failures = compare([r for r in res.records if r["variant"] != "hitrs"], {"profile": "ci", "entries": [entry]})
    assert failures[0]["reason"].startswith("missing")
