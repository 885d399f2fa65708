"""--precision and --smoke: the precision helper, the smoke transformation of the resolved
configs, smoke records left out of tables / summary / regression check, and the CI paper-size
smoke of one job per method and task under CPU bf16 autocast."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import methods
from benchmarks import run
from benchmarks.engine import precision
from benchmarks.runner import smoke
from benchmarks.config import make_run_config
from benchmarks.runner.records import write_summary
from reports.build import build
from reports.records import load
from reports.regression import compare
from tests.support import CACHE, Results

ROOT = Path(__file__).resolve().parents[2]


# ---- precision helper -------------------------------------------------------------------------
def test_precision_defaults_and_contexts():
    assert precision.resolve(None, "cpu") == "fp32"
    assert precision.resolve(None, "cuda", "hitrs") == "bf16"          # measured: docs/perf.md
    assert precision.resolve(None, "cuda", "mcc") == precision.resolve(None, "cuda", "crossclr") == "fp32"
    assert precision.resolve("bf16", "cuda", "mcc") == "bf16"           # the flag always wins
    with pytest.raises(ValueError, match="--precision fp16"):
        precision.resolve("fp16", "cpu")
    with precision.autocast("cpu", "bf16"):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    for name in ("fp32", "tf32"):
        with precision.autocast("cpu", name):
            assert not torch.is_autocast_enabled("cpu")
    assert "no TF32" in precision.configure("tf32", "cpu")
    assert precision.configure("bf16", "cpu") is None


def test_bad_precision_flag_exits_2_before_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        run.main(["--precision", "fp16", "--out", str(tmp_path / "out")])
    assert err.value.code == 2
    assert "--precision" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ---- smoke transformation ---------------------------------------------------------------------
@pytest.mark.parametrize("name", ["hitrs", "mcc", "crossclr"])
def test_smoke_keeps_paper_model_and_caps_the_loop(name):
    paper = methods.make_config(name, "paper")
    cfg = smoke.method_config(paper)
    assert cfg.loop.steps == 2 and cfg.loop.batch_size <= 4 and cfg.loop.accumulation <= 2
    assert cfg.loop.batch_size % max(1, getattr(paper, "bn_splits", 1)) == 0
    same = {k: v for k, v in vars(paper).items() if k != "loop"}
    assert same == {k: v for k, v in vars(cfg).items() if k != "loop"}, "architecture and everything else unchanged"
    methods.create(name, config=cfg)


def test_smoke_split_bn_batch_stays_a_multiple():
    cfg = smoke.method_config(methods.make_config("mcc", "paper", bn_splits=8))
    assert cfg.loop.batch_size == 8


def test_smoke_run_config_and_rows():
    cfg = smoke.run_config(make_run_config("paper"))
    assert cfg.recognition.epochs_pretrained == 1 and cfg.recognition.linear_epochs == 1
    assert cfg.detection.epochs == 1 and cfg.prediction.epochs == 1
    assert max(cfg.recognition.batch_size, cfg.detection.batch_size, cfg.prediction.batch_size) <= 4

    class Cache:   # prediction prefers rows long enough for observe + predict
        manifest = {"length": type("L", (), {"to_numpy": lambda self: np.array([10, 80, 20, 90, 100])})()}
    rows = smoke.rows("prediction", Cache(), np.arange(5), cfg.prediction)
    assert rows.tolist() == [1, 3, 4]
    assert smoke.rows("detection", Cache(), np.arange(5), cfg.detection).tolist() == [0]


# ---- reports skip smoke records ---------------------------------------------------------------
def test_smoke_records_are_not_results(tmp_path):
    res = Results(tmp_path)
    res.add("hitrs", "hitrs", "joint", "F+C+V", "detection", 1.0, 0, {"mAP_a": 30.0, "mAP_v": 35.0})
    smoke_rec = res.add("hitrs", "hitrs", "joint", "F+C+V", "detection", 1.0, 1, {"mAP_a": 0.0, "mAP_v": 0.0})
    smoke_rec["smoke"] = True
    (tmp_path / "records" / f"{smoke_rec['run_id']}.json").write_text(json.dumps(smoke_rec))
    baseline = {"profile": "ci", "dataset": None, "entries": [
        {"variant": "hitrs", "task": "detection", "label_fraction": 1.0, "metric": "mAP_a", "mean": 30.0,
         "tolerance": 1.0}]}
    assert compare(tmp_path, baseline)[1] == []                 # the smoke 0.0 does not drag the mean
    assert compare(res.records, baseline)[1] == []
    assert len(compare(res.records, baseline, include_smoke=True)[0]) > 0
    summary = write_summary(tmp_path).read_text()
    assert summary.count("\n") == 2                             # header + the one real record
    out = build(tmp_path, tmp_path / "report")
    assert out["records"] == 1 and out["smoke_left_out"] == 1
    assert "SMOKE" not in (tmp_path / "report" / "table1.md").read_text()
    build(tmp_path, tmp_path / "report_all", include_smoke=True)
    table = (tmp_path / "report_all" / "table1.md").read_text()
    assert "SMOKE run" in table and "ci+smoke" in table


# ---- the CI paper-size smoke ------------------------------------------------------------------
@pytest.mark.slow
def test_paper_smoke_of_every_method_and_task_under_cpu_bf16(tmp_path):
    """One job per method and task (fraction 1.0) at the paper model sizes, CPU bf16 autocast."""
    out = tmp_path / "smoke"
    # the three tasks named (not 'all'): one job per method and task, without the tables' extra variants
    code = run.main(["--method", "all", "--task", "recognition,detection,prediction", "--fractions", "1.0", "--profile", "paper", "--smoke",
                     "--precision", "bf16", "--device", "cpu", "--out", str(out), "--cache-dir", str(CACHE),
                     "--no-progress", "--no-report"])
    assert code == 0
    recs = load(out, include_smoke=True).records
    assert {(r["method"], r["task"]) for r in recs} == {(m, t) for m in ("hitrs", "mcc", "crossclr")
                                                         for t in ("recognition", "detection", "prediction")}
    paper = {m: methods.make_config(m, "paper") for m in ("hitrs", "mcc", "crossclr")}
    for r in recs:
        assert r["smoke"] is True and r["precision"] == "bf16" and r["profile"] == "paper"
        assert r["config"]["smoke"]["steps"] == 2
        cfg = r["config"]["method"]
        assert cfg["loop"]["steps"] == 2
        width = "d_model" if r["method"] == "hitrs" else "hidden_channels"
        assert cfg[width] == getattr(paper[r["method"]], width), "paper model size"
        assert r["metrics"] and all(v is None or np.isfinite(v) for v in r["metrics"].values())
    for log in (out / "pretrain").glob("*/pretrain.log"):
        steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
        assert steps == [1, 2]
    assert (out / "summary.csv").read_text().count("\n") == 1     # header only: smoke records are not results
