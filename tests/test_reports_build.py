"""reports.build end to end on records written by this test module (several seeds, missing
runs, synthetic vs real datasets); table contents are checked against the records."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reports import paper_numbers
from reports.build import build, main

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
LEVELS = paper_numbers.LEVEL_SETS

# ---- record / artifact generator (used by the other test_reports_* modules too) --------------
_POSE = np.array([  # rough standing NTU skeleton, millimetres, joints 1..25 (x right, y up, z depth)
    (0, 0), (0, 250), (0, 580), (0, 680), (-170, 480), (-200, 230), (-210, 0), (-215, -70), (170, 480), (200, 230),
    (210, 0), (215, -70), (-90, -20), (-100, -420), (-105, -820), (-110, -880), (90, -20), (100, -420), (105, -820),
    (110, -880), (0, 500), (-220, -140), (-180, -90), (220, -140), (180, -90)], dtype=float)
ROWS_T1 = {"MCC": ("mcc", "mcc", "joint", None), "CrosSCLR-3S": ("crossclr", "crossclr-3s", "3s", None),
           "Hi-TRS": ("hitrs", "hitrs", "joint", "F+C+V"), "Hi-TRS-3s": ("hitrs", "hitrs-3s", "3s", "F+C+V")}
ROWS_T2 = {"MCC": ("mcc", "mcc", "joint", None), "CrosSCLR": ("crossclr", "crossclr", "joint", None),
           "Hi-TRS": ("hitrs", "hitrs", "joint", "F+C+V")}


def _motion(rng, frames=75):
    """(frames, 25, 3) skeleton raising its right arm (joints 10-12, 24, 25 rotate about 9)."""
    t = np.linspace(0, 1, frames)[:, None]
    xyz = np.concatenate([_POSE, np.zeros((25, 1))], axis=1)[None].repeat(frames, 0)
    ang = (np.pi * 0.8 * t + rng.normal(0, 0.02))[:, :, None]  # (T, 1, 1)
    arm = [9, 10, 11, 23, 24]
    rel = xyz[:, arm, :2] - xyz[:, [8], :2]
    c, s = np.cos(ang), np.sin(ang)
    xyz[:, arm, 0] = xyz[:, [8], 0] + c[..., 0] * rel[..., 0] + s[..., 0] * rel[..., 1]
    xyz[:, arm, 1] = xyz[:, [8], 1] - s[..., 0] * rel[..., 0] + c[..., 0] * rel[..., 1]
    return xyz + rng.normal(0, 3, xyz.shape)


class Results:
    """Writes records (and artifacts) into ``root`` the way records.md describes them."""

    def __init__(self, root: Path, dataset_det="synthetic-pkummd", dataset_pred="synthetic-ntu", profile="ci"):
        self.root, self.det, self.pred, self.profile = root, dataset_det, dataset_pred, profile
        self.records: list[dict] = []
        self.rng = np.random.default_rng(0)
        self._n = 0

    def add(self, method, variant, stream, levels, task, fraction, seed, metrics, *, dataset=None, profile=None,
            finished="2026-11-26T20:00:00Z", artifacts=None, pretrain=None, split="xsub"):
        self._n += 1
        run_id = f"r{self._n:04d}-{variant}-{task}"
        rec = {"record_version": 1, "run_id": run_id, "method": method, "variant": variant, "stream": stream,
               "levels": levels, "task": task,
               "dataset": dataset or (self.det if task == "detection" else self.pred), "split": split,
               "label_fraction": fraction, "seed": seed, "profile": profile or self.profile, "metrics": metrics,
               "config": {"method": method, "task": task, "lr": 4e-4, "stream": stream},
               "config_sha256": f"{abs(hash((method, task, stream))):064x}"[:64],
               "subset": {"path": "subsets/x.txt", "sha256": "ab" * 32, "count": 10},
               "pretrain": pretrain,
               "provenance": {"git_commit": "0123456789abcdef" * 2 + "01234567", "git_dirty": False, "torch": "2.13.0",
                              "cuda": None, "device": "cpu (x86_64, 2 cores)", "world_size": 1, "wall_time_s": 1.5,
                              "samples_per_s": 100.0, "hostname": "h", "started_at": finished, "finished_at": finished,
                              "python": "3.11.7"},
               "artifacts": artifacts or {}}
        path = self.root / "records" / f"{run_id}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rec))
        self.records.append(rec)
        return rec

    def timelines(self, run_id, quality):
        rng = np.random.default_rng(7)  # same test videos for every method
        out = {"names": np.array(["0291-M", "0292-L", "0300-R"]), "num_classes": np.array(51)}
        for i in range(3):
            gt = np.zeros(600, dtype=np.int64)
            for s in range(40, 560, 130):
                gt[s:s + rng.integers(50, 90)] = rng.integers(1, 52)
            pred = gt.copy()
            shift = int(30 * (1 - quality))
            pred = np.roll(pred, shift)
            flip = self.rng.random(600) > quality + 0.1
            pred[flip & (pred != 0)] = 7
            out[f"gt_{i}"], out[f"pred_{i}"] = gt, pred
        path = self.root / "artifacts" / run_id / "timelines.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **out)
        return str(path.relative_to(self.root))

    def predictions(self, run_id, error_mm):
        rng = np.random.default_rng(3)
        seqs = np.stack([_motion(rng) for _ in range(4)])  # (S, 75, 25, 3)
        noise = self.rng.normal(0, 1, (4, 25, 25, 3)) * error_mm * np.linspace(0.2, 1.5, 25)[None, :, None, None]
        out = {"observed": seqs[:, :50], "target": seqs[:, 50:], "predicted": seqs[:, 50:] + noise,
               "horizons": np.array([3, 6, 12, 18, 25])}
        path = self.root / "artifacts" / run_id / "predictions.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **out)
        return str(path.relative_to(self.root))

    def pretrain_log(self, pid, tasks):
        path = self.root / "pretrain" / pid / "pretrain.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        steps = np.arange(0, 200, 5)
        lines = []
        for s in steps:
            per = {f"{t}/loss": float((i + 1) * np.exp(-s / (60 + 30 * i)) + 0.05 * self.rng.random())
                   for i, t in enumerate(tasks)}
            lines.append(json.dumps({"step": int(s), "lr": 1e-3, "loss": sum(per.values()), **per}))
        path.write_text("\n".join(lines) + "\n")
        return {"id": pid, "checkpoint": f"pretrain/{pid}/encoder.pt", "log": str(path), "steps": 200}


def make_results(root: Path, seeds=(0, 1, 2), skip=(), artifacts=True, **kw) -> Results:
    """Detection rows of Tables 1 and 3, prediction rows of Table 2, artifacts for seed 0.

    ``skip``: (variant, task, fraction, levels) tuples not to write (missing runs);
    ``artifacts=False`` writes records only (no timelines, predictions, logs: a faster build).
    """
    res = Results(root, **kw)
    rng = np.random.default_rng(1)
    logs = {"hitrs": res.pretrain_log("hitrs-p0", ["mjp", "fov", "cov", "ncp"]),
            "mcc": res.pretrain_log("mcc-p0", ["mcc"]),
            "crossclr": res.pretrain_log("crossclr-p0", ["moco", "cross"])} if artifacts else {}
    det = [(name, *ROWS_T1[name]) for name in ROWS_T1] + [("Hi-TRS", "hitrs", _t3_variant(lv), "joint", lv)
                                                          for lv in LEVELS if lv != "F+C+V"]
    for i, (row, method, variant, stream, levels) in enumerate(det):
        for frac in ((1.0, 0.1) if levels in (None, "F+C+V") else (1.0,)):
            if (variant, "detection", frac, levels) in skip:
                continue
            for seed in seeds:
                base = 20 + 3 * i + (10 if frac == 1.0 else 0)
                arts = {}
                if seed == seeds[0] and frac == 1.0 and levels in (None, "F+C+V"):
                    arts = {"timelines": None}
                rec = res.add(method, variant, stream, levels, "detection", frac, seed,
                              {"mAP_a": base + rng.normal(0, 1), "mAP_v": base + 5 + rng.normal(0, 1),
                               "f1": base, "ap_all": base},
                              pretrain=logs.get(method) if stream != "3s" else None)
                if arts and artifacts:
                    rec["artifacts"] = {"timelines": res.timelines(rec["run_id"], 0.5 + 0.1 * i)}
                    (root / "records" / f"{rec['run_id']}.json").write_text(json.dumps(rec))
    for i, (row, (method, variant, stream, levels)) in enumerate(ROWS_T2.items()):
        for frac in (1.0, 0.1):
            if (variant, "prediction", frac, levels) in skip:
                continue
            for seed in seeds:
                err = 120 - 10 * i + (0 if frac == 1.0 else 20)
                rec = res.add(method, variant, stream, levels, "prediction", frac, seed,
                              {"mpjpe": err + rng.normal(0, 2), **{f"mpjpe@{h}": err * h / 15 for h in (3, 6, 12, 18, 25)}},
                              pretrain=logs.get(method))
                if seed == seeds[0] and frac == 1.0 and artifacts:
                    rec["artifacts"] = {"predictions": res.predictions(rec["run_id"], err / 3)}
                    (root / "records" / f"{rec['run_id']}.json").write_text(json.dumps(rec))
    return res


# ---- helpers -------------------------------------------------------------------------------
def _t3_variant(levels: str) -> str:
    """Table 3's '-' column is Hi-TRS at random initialisation (variant ``hitrs-random``)."""
    return "hitrs-random" if levels == "-" else "hitrs"


def _expected(res: Results, variant, task, frac, metric, levels=None, dataset=None):
    vals = [r["metrics"][metric] for r in res.records if r["variant"] == variant and r["task"] == task
            and r["label_fraction"] == frac and (levels is None or r["levels"] == levels)
            and (dataset is None or r["dataset"] == dataset)]
    return vals


def _csv(out: Path, key: str) -> pd.DataFrame:
    return pd.read_csv(out / f"{key}.csv", keep_default_na=True)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    res = make_results(root, skip={("crossclr-3s", "detection", 0.1, None), ("hitrs", "detection", 1.0, "C+V"),
                                   ("crossclr", "prediction", 0.1, None)})
    out = root / "report"
    info = build(root, out)
    return res, out, info


def test_all_outputs_written(built):
    _, out, info = built
    for key in ("table1", "table2", "table3"):
        for ext in ("md", "tex", "csv"):
            assert (out / f"{key}.{ext}").stat().st_size > 0
    for key in ("fig1_map_a", "fig2_timelines", "fig3_skeletons", "fig4_pretrain_curves"):
        assert "reason" not in info["figures"][key], info["figures"][key]
        assert (out / f"{key}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "<svg" in (out / f"{key}.svg").read_text()[:2000]
    assert (out / "report.html").exists() and info["records"] == len(built[0].records)


@pytest.mark.parametrize("row,variant,levels", [("MCC", "mcc", None), ("CrosSCLR-3S", "crossclr-3s", None),
                                                ("Hi-TRS", "hitrs", "F+C+V"), ("Hi-TRS-3s", "hitrs-3s", "F+C+V")])
def test_table1_cells_match_records(built, row, variant, levels):
    res, out, _ = built
    df = _csv(out, "table1")
    for frac in (1.0, 0.1):
        for metric in ("mAP_a", "mAP_v"):
            cell = df[(df["row"] == row) & (df["metric"] == metric) & np.isclose(df["label_fraction"], frac)]
            assert len(cell) == 1
            cell = cell.iloc[0]
            vals = _expected(res, variant, "detection", frac, metric, levels)
            assert cell["paper"] == paper_numbers.TABLE1["values"][row][(frac, metric)]
            if not vals:  # crossclr-3s at 10% was not run: kept, shown missing
                assert cell["n_seeds"] == 0 and np.isnan(cell["ours_mean"]) and np.isnan(cell["diff"])
                continue
            assert cell["n_seeds"] == 3 and cell["seeds"] == "0 1 2"
            assert cell["ours_mean"] == pytest.approx(np.mean(vals), rel=1e-5)
            assert cell["ours_std"] == pytest.approx(np.std(vals, ddof=1), rel=1e-5)
            assert cell["diff"] == pytest.approx(np.mean(vals) - cell["paper"], rel=1e-5, abs=1e-4)


def test_table2_and_3_cells_match_records(built):
    res, out, _ = built
    t2 = _csv(out, "table2")
    for row, (_, variant, _, levels) in ROWS_T2.items():
        for frac in (1.0, 0.1):
            cell = t2[(t2["row"] == row) & np.isclose(t2["label_fraction"], frac)].iloc[0]
            vals = _expected(res, variant, "prediction", frac, "mpjpe")
            assert cell["n_seeds"] == len(vals)
            if vals:
                assert cell["ours_mean"] == pytest.approx(np.mean(vals), rel=1e-5)
    t3 = _csv(out, "table3")
    assert list(t3["col"].unique()) == list(LEVELS)
    for lv in LEVELS:
        for metric in ("mAP_a", "mAP_v"):
            cell = t3[(t3["col"] == lv) & (t3["row"] == metric)].iloc[0]
            vals = _expected(res, _t3_variant(lv), "detection", 1.0, metric, lv)
            assert cell["paper"] == paper_numbers.TABLE3["values"][metric][lv]
            assert cell["n_seeds"] == len(vals) == (0 if lv == "C+V" else 3)
            if vals:
                assert cell["ours_mean"] == pytest.approx(np.mean(vals), rel=1e-5)


def test_markdown_shows_missing_and_synthetic_caption(built):
    _, out, _ = built
    md = (out / "table1.md").read_text()
    assert "SYNTHETIC data (synthetic-pkummd) — not comparable to the paper's PKU-MMD numbers" in md
    row = next(line for line in md.splitlines() if line.startswith("| CrosSCLR-3S"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3].startswith("— (41.6, Δ —)") and cells[4].startswith("— (60.9")
    assert re.match(r"^\d+\.\d ± \d+\.\d+ \(60\.1, Δ [+−]\d+\.\d\)$", cells[1])
    # 2 skipped + reference rows without records; Hi-TRS random init at 100% is Table 3's "-" runs
    assert "16 of 32 cells have no run" in md and "not from the paper" in md
    assert "| MCC random init † | — (—, Δ —)" in md
    assert re.search(r"\| Hi-TRS random init † \| \d+\.\d ± [\d.]+ \(—, Δ —\) \| [^|]+ \| — \(—, Δ —\)", md)
    md2 = (out / "table2.md").read_text()
    assert "not comparable to the paper's NTU-60 numbers" in md2
    md3 = (out / "table3.md").read_text()
    assert "| F+C+V |" in md3 and md3.count("| mAP_") == 2


def test_latex_is_booktabs_and_balanced(built):
    _, out, _ = built
    for key in ("table1", "table2", "table3"):
        tex = (out / f"{key}.tex").read_text()
        assert all(k in tex for k in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}", r"\caption{"))
        assert tex.count("{") == tex.count("}")
        assert r"\textbf{SYNTHETIC data" in tex
        assert "%" not in tex.replace(r"\%", "").split("\n", 1)[1]  # every percent sign escaped
    assert r"\cmidrule(lr){2-3}" in (out / "table1.tex").read_text()


def test_real_dataset_has_no_synthetic_flag_and_notes_profile(tmp_path):
    res = make_results(tmp_path, seeds=(0,), dataset_det="pkummd", dataset_pred="ntu60", profile="small",
                       artifacts=False)
    build(tmp_path, tmp_path / "out")
    md = (tmp_path / "out" / "table1.md").read_text()
    assert "SYNTHETIC" not in md and "Ours: pkummd, split xsub, profile small" in md
    assert "reduced schedule" in md
    html = (tmp_path / "out" / "report.html").read_text()
    assert "SYNTHETIC" not in html
    # one seed: the value alone, no ± std
    t1 = _csv(tmp_path / "out", "table1")
    mcc = t1[(t1["row"] == "MCC") & (t1["col"] == "100% mAP_a")].iloc[0]
    assert mcc["ours_std"] == 0 and mcc["n_seeds"] == 1
    assert f"| MCC | {mcc['ours_mean']:.1f} (58.6" in md
    assert res.records


def test_datasets_never_averaged_together(tmp_path):
    res = Results(tmp_path)
    res.add("mcc", "mcc", "joint", None, "detection", 1.0, 0, {"mAP_a": 10.0, "mAP_v": 20.0})
    res.add("mcc", "mcc", "joint", None, "detection", 1.0, 0, {"mAP_a": 50.0, "mAP_v": 60.0}, dataset="pkummd")
    build(tmp_path, tmp_path / "out")
    t1 = _csv(tmp_path / "out", "table1")
    got = t1[(t1["row"] == "MCC") & (t1["col"] == "100% mAP_a")].set_index("dataset")["ours_mean"]
    assert got.to_dict() == {"pkummd": 50.0, "synthetic-pkummd": 10.0}
    md = (tmp_path / "out" / "table1.md").read_text()
    assert md.index("Ours: pkummd") < md.index("Ours: synthetic-pkummd")  # real data first


def test_rerun_of_a_seed_keeps_the_latest(tmp_path):
    res = Results(tmp_path)
    res.add("mcc", "mcc", "joint", None, "detection", 1.0, 0, {"mAP_a": 10.0}, finished="2026-01-01T00:00:00Z")
    res.add("mcc", "mcc", "joint", None, "detection", 1.0, 0, {"mAP_a": 30.0}, finished="2026-02-01T00:00:00Z")
    res.add("mcc", "mcc", "joint", None, "detection", 1.0, 1, {"mAP_a": 20.0}, finished="2026-01-15T00:00:00Z")
    build(tmp_path, tmp_path / "out")
    cell = _csv(tmp_path / "out", "table1").query("row == 'MCC' and col == '100% mAP_a'").iloc[0]
    assert (cell["ours_mean"], cell["n_seeds"]) == (25.0, 2)


def test_levels_and_stream_matching(tmp_path):
    res = Results(tmp_path)
    res.add("hitrs", "hitrs", "joint", "C+F", "detection", 1.0, 0, {"mAP_a": 40.0})  # normalised to F+C
    res.add("hitrs", "hitrs", None, None, "detection", 1.0, 0, {"mAP_a": 44.0})  # defaults: joint, F+C+V
    res.add("hitrs", "hitrs-bone", "bone", "F+C+V", "detection", 1.0, 0, {"mAP_a": 99.0})  # other stream: no row
    build(tmp_path, tmp_path / "out")
    t3 = _csv(tmp_path / "out", "table3").query("row == 'mAP_a'").set_index("col")
    assert t3.loc["F+C", "ours_mean"] == 40.0 and t3.loc["F+C+V", "ours_mean"] == 44.0
    assert t3["n_seeds"].sum() == 2
    t1 = _csv(tmp_path / "out", "table1").query("row == 'Hi-TRS' and col == '100% mAP_a'").iloc[0]
    assert t1["ours_mean"] == 44.0


def test_no_records_gives_all_missing_tables(tmp_path):
    (tmp_path / "records").mkdir()
    info = build(tmp_path, tmp_path / "out")
    md = (tmp_path / "out" / "table1.md").read_text()
    assert "No detection records found" in md and md.count("— (") == 32
    assert "reason" in info["figures"]["fig2_timelines"]
    assert (tmp_path / "out" / "report.html").exists()


def test_unreadable_record_is_listed_not_dropped_silently(tmp_path):
    res = Results(tmp_path)
    res.add("mcc", "mcc", "joint", None, "detection", 1.0, 0, {"mAP_a": 10.0})
    (tmp_path / "records" / "broken.json").write_text("{not json")
    info = build(tmp_path, tmp_path / "out")
    assert len(info["skipped"]) == 1 and "broken.json" in info["skipped"][0]
    assert "broken.json" in (tmp_path / "out" / "report.html").read_text()


def test_cli(tmp_path, capsys):
    assert main(["--results", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    assert "no records folder" in capsys.readouterr().err
    make_results(tmp_path, seeds=(0,), artifacts=False)
    assert main(["--results", str(tmp_path), "--out", str(tmp_path / "o")]) == 0
    assert "table1: table1.md, table1.tex, table1.csv" in capsys.readouterr().out


def _spec_rows(block: str) -> dict[str, list[float]]:
    return {m.group(1).strip(): [float(v) for v in m.group(2).split("|") if v.strip()]
            for m in re.finditer(r"^\| ([^|]+?) \|((?: [\d.]+ \|)+)\s*$", block, re.M)}


def test_paper_numbers_match_protocols_spec():
    spec = SHARED / "spec" / "protocols.md"
    if not spec.exists():
        pytest.skip(f"{spec} not found")
    text = spec.read_text()
    t1, rest = text.split("Table 1", 1)[1].split("Table 2", 1)
    t2, t3 = rest.split("Table 3", 1)
    rows1, rows2, rows3 = _spec_rows(t1), _spec_rows(t2), _spec_rows(t3)
    names = {"MCC": "MCC", "CrosSCLR-3S": "CrosSCLR-3S", "Hi-TRS": "Ours (Hi-TRS)", "Hi-TRS-3s": "Ours-3s"}
    cols = [(1.0, "mAP_a"), (1.0, "mAP_v"), (0.1, "mAP_a"), (0.1, "mAP_v")]
    assert len(rows1) == 4 and len(rows2) == 3 and len(rows3) == 2
    for ours, theirs in names.items():
        assert [paper_numbers.TABLE1["values"][ours][c] for c in cols] == rows1[theirs]
    for ours, theirs in {"MCC": "MCC", "CrosSCLR": "CrosSCLR", "Hi-TRS": "Ours"}.items():
        assert [paper_numbers.TABLE2["values"][ours][(f, "mpjpe")] for f in (1.0, 0.1)] == rows2[theirs]
    for metric in ("mAP_a", "mAP_v"):
        assert [paper_numbers.TABLE3["values"][metric][lv] for lv in LEVELS] == rows3[metric]


def test_nan_runs_are_not_shown_as_missing(tmp_path):
    res = Results(tmp_path)
    res.add("mcc", "mcc", "joint", None, "prediction", 1.0, 0, {"mpjpe": None})
    build(tmp_path, tmp_path / "out")
    md = (tmp_path / "out" / "table2.md").read_text()
    assert "| MCC | NaN (90.4, Δ —)" in md and "1 cells have runs without a finite value" in md
    assert "13 of 14 cells have no run" in md
