"""``--plugin``: the example method of docs/plugins.md, written to a folder outside the repository,
runs through every task to records and report rows; recognition at 1/5/20% labels with kNN."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import datasets
from benchmarks import run
from benchmarks.config import make_run_config
from benchmarks.runner.records import load_records
from tests.support import CACHE

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "plugins.md"


def example_source() -> str:
    match = re.search(r"<!-- example: framepose.py -->\n```python\n(.*?)```", DOC.read_text(), re.S)
    assert match, f"{DOC}: the example block (<!-- example: framepose.py -->) is gone"
    return match.group(1)


def _run(args, plugin_dir: Path, out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(plugin_dir)}
    cmd = [sys.executable, "-m", "benchmarks.run", "--plugin", "framepose", "--method", "framepose",
           "--profile", "ci", "--out", str(out), "--cache-dir", str(CACHE), "--no-progress", *args]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def plugin_run(tmp_path_factory):
    plugin_dir = tmp_path_factory.mktemp("outside") / "my_methods"
    plugin_dir.mkdir()
    assert ROOT not in plugin_dir.parents
    (plugin_dir / "framepose.py").write_text(example_source())
    out = tmp_path_factory.mktemp("plugin-results")
    first = _run(["--task", "all", "--fractions", "1.0"], plugin_dir, out)
    second = _run(["--task", "recognition", "--fractions", "0.01,0.05,0.2"], plugin_dir, out)
    return plugin_dir, out, first, second


def test_plugin_method_runs_every_task_to_records(plugin_run):
    plugin_dir, out, first, second = plugin_run
    every = load_records(out)
    recs = [r for r in every if r["variant"] == "framepose"]
    assert {(r["task"], r["label_fraction"]) for r in recs} == {
        ("recognition", 1.0), ("detection", 1.0), ("prediction", 1.0),
        ("recognition", 0.01), ("recognition", 0.05), ("recognition", 0.2)}
    # --task all also measures the plugin's encoder at random initialisation (the reference rows)
    assert {r["task"] for r in every if r["variant"] == "framepose-random"} == {"recognition", "detection", "prediction"}
    source = (plugin_dir / "framepose.py").read_bytes()
    import hashlib
    for r in recs:
        assert r["method"] == r["variant"] == "framepose" and r["config"]["method"]["width"] == 32
        assert r["plugins"] == [{"module": "framepose", "file": str(plugin_dir / "framepose.py"),
                                 "methods": ["framepose"], "sha256": hashlib.sha256(source).hexdigest()}]
        assert all(isinstance(v, float) for v in r["metrics"].values())
    assert "reusing pre-training" in second.stdout + second.stderr   # one pre-training serves both runs


def test_records_state_the_protocol(plugin_run):
    _, out, _, _ = plugin_run
    by = {(r["task"], r["label_fraction"]): r for r in load_records(out) if r["variant"] == "framepose"}
    rec = by[("recognition", 1.0)]["protocol"]
    ci = make_run_config("ci").recognition
    assert rec["input_frames"] == {"max": ci.max_frames, "resampled_to": None}
    assert rec["eval_batch_size"] == ci.batch_size
    assert rec["world_size"] == 1 and rec["pretrained"] is True
    assert rec["encoder"]["top1"] == "fine-tuned"
    assert rec["encoder"]["linear_top1"] == rec["encoder"]["knn_top1"] == "frozen"
    assert rec["pretraining"] == {"dataset": "synthetic-ntu", "split": "xsub", "step": 20, "transfer": False}
    det = by[("detection", 1.0)]["protocol"]
    assert det["input_frames"] == {"window": 7, "dilation": 4, "span": 25} and det["eval_batch_size"] == 64
    assert det["pretraining"]["dataset"] == "synthetic-ntu" and det["pretraining"]["transfer"] is True
    pred = by[("prediction", 1.0)]["protocol"]
    assert pred["input_frames"]["observed"] == 30 and set(pred["encoder"].values()) == {"fine-tuned"}


def test_fractions_are_stratified_subsets_pinned_by_name(plugin_run):
    _, out, _, _ = plugin_run
    by = {r["label_fraction"]: r for r in load_records(out) if r["task"] == "recognition" and r["variant"] == "framepose"}
    cache = datasets.open_cache(CACHE / "synthetic-small" / "cache" / "ntu")
    train = cache.indices("xsub", "train")
    classes = len(set(cache.labels[train]))
    counts = {f: by[f]["subset"]["count"] for f in by}
    assert counts[1.0] == len(train) and counts[0.01] == classes     # >= 1 per class
    assert counts[0.01] <= counts[0.05] <= counts[0.2] < counts[1.0]
    for f in (0.01, 0.05, 0.2):
        names = Path(by[f]["subset"]["path"]).read_text().split()
        rows = datasets.load_subset(cache, by[f]["subset"]["path"]).indices
        assert len(names) == counts[f] and set(cache.labels[rows]) == set(cache.labels[train])
        assert Path(by[f]["subset"]["path"]).name == (f"synthetic-ntu_xsub_{f * 100:g}pct_seed0_"
                                                      f"{by[f]['subset']['sha256'][:16]}.txt")   # content-addressed
        assert 0.0 <= by[f]["metrics"]["knn_top1"] <= 100.0


def test_report_shows_plugin_rows_and_fraction_columns(plugin_run):
    _, out, _, _ = plugin_run
    rec = pd.read_csv(out / "report" / "recognition.csv")
    mine = rec[rec["row"] == "framepose"].set_index("col")
    for pct in ("100%", "20%", "5%", "1%"):
        for proto in ("fine-tune", "linear", "kNN"):
            assert mine.loc[f"{pct} {proto}", "n_seeds"] == 1, (pct, proto)
    assert "10% kNN" not in mine.index     # not run and no paper number: left out (named in the caption)
    runs = {r["label_fraction"]: r for r in load_records(out) if r["task"] == "recognition"}
    assert mine.loc["5% kNN", "ours_mean"] == pytest.approx(runs[0.05]["metrics"]["knn_top1"])
    for table, col in (("table1", "100% mAP_a"), ("table2", "100% MPJPE")):
        cells = pd.read_csv(out / "report" / f"{table}.csv").set_index(["row", "col"])
        assert cells.loc[("framepose", col), "n_seeds"] == 1 and pd.isna(cells.loc[("framepose", col), "paper"])
    html = (out / "report" / "report.html").read_text()
    assert "<td>framepose</td>" in html and 'data-table="recognition"' in html


# ---- bad plugins: one line, exit code 2, nothing written ------------------------------------
@pytest.mark.parametrize("source, needle", [
    (None, "module not found"),
    ("x = 1\n", "registers no method"),
    ("raise RuntimeError('broken on purpose')\n", "importing it failed: RuntimeError: broken on purpose"),
    ("import methods\nfrom methods.base import SkeletonMethod\n"
     "@methods.register('hitrs', lambda profile, **kw: None)\nclass Impostor(SkeletonMethod):\n    pass\n",
     "already registered by methods.hitrs"),
])
def test_bad_plugin_exits_2_before_any_work(tmp_path, monkeypatch, capsys, source, needle):
    name = f"eco_bad_plugin_{abs(hash((source, needle))) % 10**8}"
    if source is not None:
        (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "results"
    with pytest.raises(SystemExit) as exc:
        run.main(["--plugin", name, "--out", str(out), "--profile", "ci", "--no-progress"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and f"--plugin {name}" in err[0], err
    assert not out.exists()
    sys.modules.pop(name, None)


def test_detection_without_ntu_data_says_it_is_a_transfer(tmp_path, capsys):
    pku = CACHE / "synthetic-small" / "cache" / "pkummd"
    datasets.ensure_synthetic(CACHE / "synthetic-small", size="small", seed=0, progress=False)
    capsys.readouterr()
    out = tmp_path / "results"
    with pytest.raises(SystemExit) as exc:
        run.main(["--method", "hitrs", "--task", "detection", "--data", f"pkummd={pku}", "--out", str(out),
                  "--profile", "ci", "--no-progress"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "transfer from NTU pre-training" in err[0] and "--data ntu60=DIR" in err[0]
    assert not out.exists()


def test_protocol_block_of_a_summary_record_is_json(plugin_run):
    _, out, _, _ = plugin_run
    for path in (out / "records").glob("*.json"):
        assert "protocol" in json.loads(path.read_text())
