"""Paired comparisons (issue 28, item 2): the statistics of benchmarks/metrics/paired.py against
cases with a known answer, and ``python -m reports.compare`` on planted records."""
from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest

from benchmarks.metrics import paired as P
from benchmarks.metrics.paired import paired_generic, paired_ratio
from reports import compare as C
from tests.support import Results


# -- the statistics ------------------------------------------------------------------------------

def test_identical_predictions_give_zero_with_a_ci_containing_zero_and_p_one():
    rng = np.random.default_rng(0)
    correct = (rng.random((3, 200)) < 0.6).astype(float)
    res = paired_ratio(correct, correct, scale=100.0, resamples=2000, seed=1)
    assert res.diff == 0.0 and res.ci_low <= 0.0 <= res.ci_high and res.p == 1.0
    assert res.per_seed == [0.0, 0.0, 0.0] and res.seed_std == 0.0


def test_a_model_better_on_every_sample_gives_a_ci_above_zero():
    rng = np.random.default_rng(1)
    b = rng.random((2, 60))
    a = b + 0.05 + rng.random((2, 60))           # higher on every sample and seed
    res = paired_ratio(a, b, resamples=4000, seed=2)
    assert res.diff > 0 and res.ci_low > 0 and res.p == pytest.approx(1 / 4001)
    err_b = 50 + rng.random((2, 60))             # MPJPE: A lower on every sequence -> CI below 0
    res = paired_ratio(err_b - 1.0, err_b, resamples=1000, seed=2)
    assert res.diff == pytest.approx(-1.0) and res.ci_high < 0 and res.ci_low == pytest.approx(-1.0)


def test_hand_computed_small_case():
    """A right on samples 1-3, B on sample 1 only: d = (0, 1, 1, 0), observed 50 points. The
    bootstrap mean of 4 draws of d is 25 x Binomial(4, 1/2): P(0, 25, 50, 75, 100) = (1, 4, 6, 4, 1) / 16,
    so the 95 % percentile interval is [0, 100]; the exact permutation distribution of the swapped
    difference is +50, 0, 0, -50 (samples 2 and 3 flipped or not), so P(|T| >= 50) = 1/2."""
    a, b = np.array([[1.0, 1, 1, 0]]), np.array([[1.0, 0, 0, 0]])
    res = paired_ratio(a, b, scale=100.0, resamples=40000, seed=3)
    assert (res.a, res.b, res.diff) == (75.0, 25.0, 50.0)
    assert (res.ci_low, res.ci_high) == (0.0, 100.0)
    assert res.p == pytest.approx(0.5, abs=0.01)
    counts = P.bootstrap_counts(np.random.default_rng([3, 0]), 4, 40000)   # the draws paired_ratio made
    boot = 25.0 * counts[:, 1:3].sum(axis=1)
    freq = np.bincount((boot / 25).astype(int), minlength=5) / len(boot)
    assert np.allclose(freq, np.array([1, 4, 6, 4, 1]) / 16, atol=0.01)


def test_ratio_of_sums_and_seeds_pooled():
    """frame accuracy = correct frames / frames over videos; two seeds: the statistic is the mean
    of the per-seed differences, their spread reported apart."""
    frames = np.array([[10.0, 30.0], [10.0, 30.0]])
    a = np.array([[10.0, 15.0], [5.0, 30.0]])      # seed 0: 25/40 = 62.5 %; seed 1: 35/40 = 87.5 %
    b = np.array([[0.0, 15.0], [5.0, 20.0]])       # 15/40 = 37.5 %; 25/40 = 62.5 %
    res = paired_ratio(a, b, frames, frames, scale=100.0, resamples=500, seed=0)
    assert res.per_seed == pytest.approx([25.0, 25.0]) and res.diff == pytest.approx(25.0)
    assert res.a == pytest.approx(75.0) and res.b == pytest.approx(50.0) and res.seed_std == pytest.approx(0.0)


def test_the_per_resample_loop_agrees_with_the_vectorised_statistic():
    """paired_generic (one metric call per resample, what mAP_a uses) draws the same resamples:
    on a mean metric it gives paired_ratio's numbers exactly."""
    rng = np.random.default_rng(5)
    a, b = rng.random((2, 30)), rng.random((2, 30))

    def metric(s, take_b, counts):
        values = np.where(take_b, b[s], a[s])
        return float((counts * values).sum() / counts.sum())

    fast = paired_ratio(a, b, resamples=300, seed=9)
    slow = paired_generic(metric, 2, 30, resamples=300, seed=9)
    assert slow.diff == pytest.approx(fast.diff) and slow.p == fast.p
    assert (slow.ci_low, slow.ci_high) == pytest.approx((fast.ci_low, fast.ci_high))


def test_detection_map_of_a_resample_counts_a_video_as_often_as_it_is_drawn():
    entry = {"proposals": np.array([[1, 0, 10, 0.9], [2, 20, 30, 0.8]]), "ground_truth": np.array([[1, 0, 10, 1.0]])}
    other = {"proposals": np.array([[2, 0, 10, 0.7]]), "ground_truth": np.array([[2, 0, 10, 1.0]])}
    from benchmarks.metrics import pkummd_map
    twice = pkummd_map({"a": entry, "a2": entry, "b": other}, 2, 0.5)["mAP_a"]
    assert P.detection_map_a([entry, other], [2, 1], 2, 0.5) == twice
    assert P.detection_map_a([entry, other], [1, 1], 2, 0.5) == pkummd_map({"a": entry, "b": other}, 2, 0.5)["mAP_a"]


# -- the CLI on planted records --------------------------------------------------------------------

def _npz(res: Results, run_id: str, arrays: dict) -> dict:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    path = res.root / "artifacts" / run_id / "outputs.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    return {"outputs": str(path.relative_to(res.root)), "outputs_sha256": hashlib.sha256(buf.getvalue()).hexdigest()}


def _recognition(res: Results, variant: str, seed: int, hit_rate: float, names=None, n=60):
    rng = np.random.default_rng([seed, int(hit_rate * 100)])
    names = np.asarray([f"S{i:03d}" for i in range(n)]) if names is None else names
    rank = np.where(rng.random(n) < hit_rate, 0, rng.integers(1, 8, n)).astype(np.int16)
    labels = np.arange(n, dtype=np.int16) % 8
    metrics = {"top1": 100 * float(np.mean(rank < 1)), "top5": 100 * float(np.mean(rank < 5))}
    rec = res.add(variant, variant, "joint", None, "recognition", 1.0, seed, metrics)
    rec["artifacts"] = _npz(res, rec["run_id"], {"names": names, "label": labels, "rank": rank})
    (res.root / "records" / f"{rec['run_id']}.json").write_text(json.dumps(rec))
    return rec


def _planted(tmp_path, seeds=(0, 1, 2)):
    res = Results(tmp_path)
    for s in seeds:
        _recognition(res, "good", s, 0.9)
        _recognition(res, "bad", s, 0.3)
    return res


def test_cli_prints_the_difference_ci_p_method_resamples_and_seed(tmp_path, capsys):
    _planted(tmp_path)
    assert C.main(["--results", str(tmp_path), "good", "bad", "--resamples", "2000", "--seed", "5"]) == 0
    out = capsys.readouterr().out
    assert "paired bootstrap" in out and "permutation" in out and "Resamples: 2000" in out and "seed 5" in out
    rows = C.compare(tmp_path, "good", "bad", resamples=2000, seed=5)
    top1 = next(r for r in rows if r.metric == "top1")
    assert top1.seeds == [0, 1, 2] and top1.result.ci_low > 0 and top1.result.p < 0.01
    assert len(top1.result.per_seed) == 3 and np.isfinite(top1.result.seed_std)
    same = next(r for r in C.compare(tmp_path, "good", "good", resamples=500) if r.metric == "top1")
    assert same.result.diff == 0 and same.result.ci_low <= 0 <= same.result.ci_high and same.result.p == 1.0


def test_detection_and_prediction_through_the_cli(tmp_path):
    res = Results(tmp_path)
    entries = {"proposals": np.array([[1, 0, 10, 0.9], [1, 20, 30, 0.4], [2, 40, 50, 0.8]]),
               "ground_truth": np.array([[1, 0, 10, 1.0], [2, 40, 52, 1.0]])}
    for variant, shift in (("good", 0), ("bad", 8)):
        for seed in (0, 1):
            names = np.asarray(["v0", "v1", "v2", "v3"])
            props = entries["proposals"].copy()
            props[:, 1:3] += shift
            out = {"names": names, "frame_offsets": np.array([0, 60, 120, 180, 240]),
                   "frame_pred": np.zeros(240, np.int16), "frame_gt": np.zeros(240, np.int16),
                   "proposals": np.concatenate([props] * 4), "proposal_video": np.repeat(np.arange(4), 3),
                   "ground_truth": np.concatenate([entries["ground_truth"]] * 4), "gt_video": np.repeat(np.arange(4), 2),
                   "num_classes": np.asarray(2), "theta": np.asarray(0.5)}
            per = P.video_entries(out)
            metrics = {"mAP_a": 100 * P.detection_map_a(per, np.ones(4, int), 2, 0.5),
                       "mAP_v": 100 * float(P.video_ap(per, 2, 0.5).mean()), "frame_acc": 100.0, "f1": 1.0}
            rec = res.add(variant, variant, "joint", None, "detection", 1.0, seed, metrics)
            rec["artifacts"] = _npz(res, rec["run_id"], out)
            (res.root / "records" / f"{rec['run_id']}.json").write_text(json.dumps(rec))
            err = np.full((5, 25), 40.0 + shift)
            rec = res.add(variant, variant, "joint", None, "prediction", 1.0, seed,
                          {"mpjpe": float(err.mean()), "mpjpe@3": float(err[:, 2].mean())})
            rec["artifacts"] = _npz(res, rec["run_id"], {"names": np.asarray([f"p{i}" for i in range(5)]),
                                                         "frame_error": err, "horizons": np.asarray([3])})
            (res.root / "records" / f"{rec['run_id']}.json").write_text(json.dumps(rec))
    rows = {(r.setting["task"], r.metric): r.result for r in C.compare(tmp_path, "good", "bad", resamples=200,
                                                                       map_resamples=30)}
    assert set(rows) == {("detection", "mAP_a"), ("detection", "mAP_v"), ("detection", "frame_acc"),
                         ("prediction", "mpjpe"), ("prediction", "mpjpe@3")}      # f1 has no per-sample form
    assert rows[("detection", "mAP_a")].diff > 0 and rows[("detection", "mAP_a")].resamples == 30
    assert rows[("detection", "frame_acc")].diff == 0 and rows[("detection", "frame_acc")].p == 1.0
    assert rows[("prediction", "mpjpe")].diff == pytest.approx(-8.0) and rows[("prediction", "mpjpe")].ci_high < 0


def _one_error_line(capsys, argv, needle):
    assert C.main(argv) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def test_unknown_variant(tmp_path, capsys):
    _planted(tmp_path, seeds=(0,))
    _one_error_line(capsys, ["--results", str(tmp_path), "good", "nosuch"], "unknown variant 'nosuch'")


def test_no_records_folder(tmp_path, capsys):
    _one_error_line(capsys, ["--results", str(tmp_path / "none"), "a", "b"], "no records folder")


def test_different_test_sets(tmp_path, capsys):
    res = Results(tmp_path)
    _recognition(res, "good", 0, 0.9)
    _recognition(res, "other", 0, 0.5, names=np.asarray([f"T{i:03d}" for i in range(60)]))
    _one_error_line(capsys, ["--results", str(tmp_path), "good", "other"], "different test sets")


def test_missing_artifact(tmp_path, capsys):
    res = _planted(tmp_path, seeds=(0,))
    old = res.add("old", "old", "joint", None, "recognition", 1.0, 0, {"top1": 10.0})   # written before item 1
    assert old["artifacts"] == {}
    _one_error_line(capsys, ["--results", str(tmp_path), "good", "old"], "no per-sample outputs artifact")
    (tmp_path / res.records[0]["artifacts"]["outputs"]).unlink()
    _one_error_line(capsys, ["--results", str(tmp_path), "good", "bad"], "missing")


def test_tampered_artifact(tmp_path, capsys):
    res = _planted(tmp_path, seeds=(0,))
    path = tmp_path / res.records[1]["artifacts"]["outputs"]
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["rank"][:] = 0                       # every sample made right
    np.savez_compressed(path, **arrays)
    _one_error_line(capsys, ["--results", str(tmp_path), "good", "bad"], "does not match the sha256")


def test_artifact_of_another_run(tmp_path, capsys):
    """A file whose sha256 was put in the record too, but whose samples give other numbers."""
    res = _planted(tmp_path, seeds=(0,))
    rec = res.records[1]
    rec["artifacts"] = res.records[0]["artifacts"]
    (tmp_path / "records" / f"{rec['run_id']}.json").write_text(json.dumps(rec))
    _one_error_line(capsys, ["--results", str(tmp_path), "good", "bad"], "does not belong to the record")


def test_html_report_has_the_paired_section(tmp_path):
    from reports.build import build

    res = Results(tmp_path)
    for s in (0, 1):
        _recognition(res, "hitrs", s, 0.9)
        _recognition(res, "mcc", s, 0.3)
    res.add("crossclr", "crossclr", "joint", None, "recognition", 1.0, 0, {"top1": 40.0})   # no outputs artifact
    page = (tmp_path / "report" / "report.html")
    build(tmp_path, tmp_path / "report")
    text = page.read_text()
    section = text[text.index('id="paired"'):text.index("<h2>Figures</h2>")]
    assert "hitrs vs mcc" in section and "paired bootstrap" in section and "2000 resamples" in section
    assert 'class="dataframe paired"' in section and "top1" in section
    assert "hitrs vs crossclr" in section and "not compared" in section and "no per-sample outputs" in section
