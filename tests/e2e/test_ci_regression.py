"""End to end: the `ci` profile of every method and task, checked against the committed
baseline (tolerances from the measured seed-to-seed spread), plus bit-for-bit repeatability.

The exact seed-0 comparison with the baseline is a determinism check, not a regression check:
every legitimate change of the pipeline moves seed 0, so it runs only on request
(``HITRS_CHECK_DETERMINISM=1 pytest tests/test_ci_regression.py``)."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from benchmarks import run
from benchmarks.runner.records import load_records
from reports.regression import compare
from tests.support import CACHE

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "results" / "ci_baseline.json"
HELD_BACK_SEED = "7"      # not one of the baseline's seeds (0-4)
REGENERATE = "regenerate it with 'python -m benchmarks.ci_baseline'"


def _run(out: Path, *args: str) -> None:
    code = run.main(["--profile", "ci", "--out", str(out), "--cache-dir", str(CACHE), "--no-progress", *args])
    assert code == 0


@pytest.fixture(scope="module")
def ci_results(tmp_path_factory):
    """A healthy ``--method all --task all`` run of the held-back seed."""
    out = tmp_path_factory.mktemp("ci-run")
    _run(out, "--method", "all", "--task", "all", "--seeds", HELD_BACK_SEED)
    return out


@pytest.fixture(scope="module")
def baseline():
    if not BASELINE.exists():
        pytest.fail(f"{BASELINE} missing: {REGENERATE}")
    return json.loads(BASELINE.read_text())


def test_ci_run_writes_every_record(ci_results):
    recs = load_records(ci_results)
    combos = {(r["method"], r["task"], r["label_fraction"]) for r in recs}
    assert combos == {(m, t, f) for m in ("hitrs", "mcc", "crossclr")
                      for t in ("recognition", "detection", "prediction") for f in (1.0, 0.1)} | \
        {("zero-velocity", "prediction", f) for f in (1.0, 0.1)}
    variants = {r["variant"] for r in recs}
    assert {"hitrs-3s", "crossclr-3s", "hitrs-random", "mcc-random", "crossclr-random", "zero-velocity"} <= variants
    for r in recs:
        assert {"method", "task", "dataset", "label_fraction", "seed", "metrics", "config", "provenance"} <= set(r)
        assert r["dataset"].startswith("synthetic")
        assert all(isinstance(v, float) for v in r["metrics"].values())
        assert (r["subset"]["sha256"] if r["stream"] != "3s" else r["subset"] is None) and len(r["config_sha256"]) == 64
        # every pre-trained record carries its pre-training's pretext metrics, also kept in meta.json
        if r["pretrain"] is None:
            assert r.get("pretext") is None
            continue
        meta = json.loads((ci_results / "pretrain" / r["pretrain"]["id"] / "meta.json").read_text())
        assert r["pretext"] == meta["pretext"] and r["pretext"]
    assert set(next(r for r in recs if r["variant"] == "hitrs")["pretext"]) == {
        "masked_joint_err_mm", "frame_order_acc", "clip_order_acc", "next_clip_acc", "weight_change"}
    assert (ci_results / "summary.csv").exists()
    assert (ci_results / "report" / "report.html").exists()


def test_ci_tables_have_no_empty_cell(ci_results):
    import pandas as pd

    for key in ("table1", "table2", "table3"):
        cells = pd.read_csv(ci_results / "report" / f"{key}.csv")
        empty = cells[cells["n_seeds"] == 0]
        assert empty.empty, f"{key}: no finite value for {empty[['row', 'col']].values.tolist()}"
    table2 = (ci_results / "report" / "table2.md").read_text()
    assert "Zero-velocity †" in table2 and "not from the paper" in table2


@pytest.mark.parametrize("variant", ["mcc", "crossclr", "hitrs"])
def test_baseline_metrics_carry_signal(baseline, variant):
    """Chance on 16 classes is 6.25 %: fine-tuned and linear top-1 at 100 % labels, and detection
    at 100 %, are well above it in the committed baseline."""
    mean = {(e["variant"], e["task"], e["label_fraction"], e["metric"]): e["mean"] for e in baseline["entries"]}
    assert set(baseline["seeds"]) >= {0, 1, 2, 3, 4} and int(HELD_BACK_SEED) not in baseline["seeds"]
    assert mean[(variant, "recognition", 1.0, "top1")] > 2 * 6.25
    assert mean[(variant, "recognition", 1.0, "linear_top1")] > 2 * 6.25
    assert mean[(variant, "detection", 1.0, "mAP_a")] > 10.0


def test_held_back_seed_passes_the_regression_check(ci_results):
    markdown, failures = compare(ci_results, BASELINE)
    assert not failures, markdown


# (--set value, narrowed run: method, task, fraction). Pre-training that learns nothing must show
# in the pretext metrics; a downstream head that learns nothing in its task's metrics. The MoCo
# methods' ci pre-trainings are too short for their instance top-1 to separate a frozen encoder
# (MCC 28-34 %) from a trained one (34-84 %); their ``weight_change`` (2.8-3.9 % healthy, 0 at
# lr 0) does.
BROKEN = [("hitrs.lr=0", "hitrs", "prediction", "0.1"),
          ("mcc.lr=0", "mcc", "prediction", "0.1"),
          ("crossclr.lr=0", "crossclr", "prediction", "0.1"),
          *[(f"{task}.lr=0", method, task, "1.0") for method in ("hitrs", "mcc", "crossclr")
            for task in ("recognition", "detection", "prediction")]]


def _key(failure: dict) -> tuple:
    return tuple(failure.get(k) for k in ("variant", "stream", "levels", "task", "label_fraction", "metric"))


# measured with the baseline of seeds 0-4 and held-back seed 7: fine-tuned top-1 spreads so much
# over seeds at ci that no gated threshold sits above chance, and a head that learns nothing
# (lr 0 on the pre-trained encoder) lands inside the spread. Strict: a sharper gate (issue 30,
# item 2: bigger ci test sets, more seeds) makes these pass, and then the marks must go.
NOT_FLAGGED_AT_CI = {
    ("recognition.lr=0", "hitrs"): "Hi-TRS fine-tuned top-1 21.2 +- 5.2 (seeds 0-4), threshold 5.7 below chance "
                                   "6.25; lr 0 gives 7.4 on seed 7 and linear / kNN do not use the fine-tuned head",
    ("recognition.lr=0", "mcc"): "MCC fine-tuned top-1 27.2 +- 7.8 (seeds 0-4), threshold 3.7 below chance; lr 0 "
                                 "gives 25.9 on seed 7 (a random head on the pre-trained encoder; 3.7 with the "
                                 "previous baseline's draws)",
}


def _broken_param(setting, method, task, fraction):
    reason = NOT_FLAGGED_AT_CI.get((setting, method))
    marks = [pytest.mark.xfail(strict=True, reason=f"not flagged at ci: {reason}")] if reason else []
    return pytest.param(setting, method, task, fraction, id=f"{method}-{setting}", marks=marks)


@pytest.mark.parametrize("setting, method, task, fraction", [_broken_param(*b) for b in BROKEN])
def test_broken_learning_is_flagged(ci_results, tmp_path, setting, method, task, fraction):
    scope = setting.split(".")[0]
    out = tmp_path / "broken"
    if scope == task:  # a downstream head: reuse the healthy run's pre-trainings
        shutil.copytree(ci_results / "pretrain", out / "pretrain")
    _run(out, "--method", method, "--task", task, "--fractions", fraction, "--seeds", HELD_BACK_SEED,
         "--set", setting, "--no-report")
    broken = load_records(out)
    # the healthy run stands in for everything the narrowed run did not redo
    replaced = (lambda r: r["method"] == method) if scope == method else (lambda r: (r["method"], r["task"]) == (method, task))
    healthy = [r for r in load_records(ci_results) if not replaced(r)]
    markdown, failures = compare(healthy + broken, BASELINE)
    # only what the breakage adds: a metric the healthy run alone already fails is not its signal
    _, healthy_failures = compare(load_records(ci_results), BASELINE)
    known = {_key(f) for f in healthy_failures}
    flagged = [f for f in failures if not f["reason"].startswith("missing") and _key(f) not in known]
    assert flagged, f"--set {setting} was not flagged:\n{markdown}"
    assert {f["variant"] for f in flagged} == {method}, markdown
    if scope == method:
        assert any(f["task"] == "pretext" for f in flagged), markdown
    else:
        assert any(f["task"] == task for f in flagged), markdown


@pytest.mark.skipif(os.environ.get("HITRS_CHECK_DETERMINISM") != "1",
                    reason="opt-in determinism check: set HITRS_CHECK_DETERMINISM=1 (seed 0 moves with every "
                           "legitimate pipeline change; the regression check is the tolerance test)")
def test_ci_seed0_exact_on_the_baseline_platform(tmp_path, baseline):
    import platform

    if (baseline.get("torch"), baseline.get("platform")) != (torch.__version__, platform.machine()):
        pytest.skip(f"baseline made with torch {baseline.get('torch')} on {baseline.get('platform')}; here torch "
                    f"{torch.__version__} on {platform.machine()}: only the seed-spread tolerance applies")
    _run(tmp_path, "--method", "all", "--task", "all", "--seeds", "0", "--no-report")
    got = {}
    for r in load_records(tmp_path):
        for m, v in r["metrics"].items():
            got[(r["variant"], r["stream"], r.get("levels"), r["task"], r["label_fraction"], m)] = v
        for m, v in (r.get("pretext") or {}).items():
            got[(r["variant"], r["stream"], r.get("levels"), "pretext", None, m)] = v
    moved = [(e["variant"], e["task"], e["label_fraction"], e["metric"], e["per_seed"]["0"],
              got.get((e["variant"], e["stream"], e.get("levels"), e["task"], e["label_fraction"], e["metric"])))
             for e in baseline["entries"] if "0" in e["per_seed"]]
    moved = [m for m in moved if m[5] is None or abs(m[5] - m[4]) > 1e-6 * max(1.0, abs(m[4]))]
    assert not moved, f"seed-0 metrics differ from results/ci_baseline.json: {moved[:10]}"


def _hitrs_recognition(out: Path) -> tuple[dict, dict]:
    code = run.main(["--method", "hitrs", "--task", "recognition", "--fractions", "1.0", "--profile", "ci",
                     "--out", str(out), "--cache-dir", str(CACHE), "--no-progress", "--no-report", "--fresh",
                     "--set", "recognition.linear_eval=false"])
    assert code == 0
    (record,) = load_records(out)
    weights = torch.load(next((out / "pretrain").glob("*/encoder.pt")), weights_only=False)["model"]
    return record["metrics"], weights


def test_cpu_run_is_bitwise_repeatable(tmp_path):
    metrics_a, weights_a = _hitrs_recognition(tmp_path / "a")
    metrics_b, weights_b = _hitrs_recognition(tmp_path / "b")
    assert metrics_a == metrics_b
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
