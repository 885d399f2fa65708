"""The planner: --task all covers every table cell from the methods' declared axes, explicit
flags narrow it, work is shared, shards are disjoint, and a method defined only in the tests
runs through the ci profile and --dry-run with no edit elsewhere."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import methods
from benchmarks import run
from benchmarks.runner import cli, plan
from reports.tables import SPECS, matches

from .toy_method import ToyMethod, make_config
from tests.support import CACHE

ROOT = Path(__file__).resolve().parents[2]


def _plan(*argv: str) -> plan.Plan:
    opts = cli.parse(list(argv), methods.available())
    return plan.build(opts, opts.profile or "ci")


def _planned_records(p: plan.Plan) -> list[dict]:
    """What the records of a plan will say (the keys tables match on)."""
    out = [{"variant": j.variant, "stream": j.stream, "levels": j.levels, "task": r.task, "label_fraction": r.fraction}
           for j in p.jobs for r in j.runs]
    return out + [{"variant": e.variant, "stream": "3s", "levels": e.levels, "task": e.task,
                   "label_fraction": e.fraction} for e in p.ensembles]


def _empty_cells(p: plan.Plan, rows=None) -> list:
    recs = _planned_records(p)
    empty = []
    for key, make in SPECS.items():
        spec = make()
        for (row, col), cell in spec.cells.items():
            if rows is not None and not rows(key, row, col):
                continue
            if not any(r["task"] == spec.task and r["label_fraction"] == cell.fraction and matches(r, cell.match)
                       for r in recs):
                empty.append((key, row, col))
    return empty


def test_task_all_plans_every_table_cell_with_shared_pretrainings():
    p = _plan("--method", "all", "--task", "all", "--profile", "ci")
    assert _empty_cells(p) == []
    # 9 Hi-TRS (3 streams + 6 other level sets), 1 CrosSCLR for its 3 streams, 1 MCC; random init none
    assert p.counts() == {"pre-trainings": 11, "fine-tunings": 58, "evaluations": 10}
    assert not any(j.needs_pretraining for j in p.jobs if j.levels == "-")
    variants = {j.variant for j in p.jobs}
    assert {"hitrs-random", "mcc-random", "crossclr-random", "zero-velocity", "crossclr"} <= variants


def test_method_hitrs_task_all_fills_every_hitrs_cell():
    p = _plan("--method", "hitrs", "--task", "all", "--profile", "ci")
    hitrs_rows = lambda key, row, col: key == "table3" or row.startswith("Hi-TRS") or row.startswith("Zero")  # noqa: E731
    assert _empty_cells(p, hitrs_rows) == []
    assert {j.method for j in p.jobs} == {"hitrs", plan.ZERO_VELOCITY}


def test_explicit_flags_narrow_the_plan():
    joint = _plan("--method", "all", "--task", "all", "--profile", "ci", "--streams", "joint")
    assert {j.stream for j in joint.jobs} == {"joint"} and not joint.ensembles
    main = _plan("--method", "hitrs", "--task", "all", "--profile", "ci", "--levels", "F+C+V")
    assert {j.levels for j in main.jobs if j.method == "hitrs"} == {"F+C+V"} and len(main.ensembles) == 4
    single = _plan("--method", "hitrs", "--task", "recognition", "--fractions", "1.0", "--profile", "ci")
    assert [(j.variant, j.levels, [(r.task, r.fraction) for r in j.runs]) for j in single.jobs] == \
        [("hitrs", "F+C+V", [("recognition", 1.0)])]
    ablation = _plan("--method", "hitrs", "--task", "detection", "--levels=-,F", "--profile", "ci")
    assert {(j.variant, j.levels, j.needs_pretraining) for j in ablation.jobs} == {("hitrs-random", "-", False),
                                                                                   ("hitrs", "F", True)}


def test_shards_are_disjoint_whole_units():
    p = _plan("--method", "all", "--task", "all", "--profile", "ci", "--seeds", "0,1")
    parts = [p.part(k, 3) for k in (1, 2, 3)]
    ids = [id(u) for part in parts for u in part.units]
    assert sorted(ids) == sorted(id(u) for u in p.units) and len(set(ids)) == len(ids)
    owner = {}
    for k, part in enumerate(parts):
        for j in part.jobs:
            if j.needs_pretraining:
                assert owner.setdefault(plan.pretrain_key(j), k) == k   # one pre-training, one part
        for e in part.ensembles:
            assert {j.stream for j in part.jobs if (j.method, j.levels, j.seed) == (e.method, e.levels, e.seed)} \
                >= set(plan.THREE_STREAMS)
    assert all(part.units for part in parts)
    assert [id(u) for u in p.part(2, 3).units] == [id(u) for u in parts[1].units]   # deterministic


def test_bad_shard_is_a_usage_error():
    with pytest.raises(cli.UsageError, match="--shard 3/2"):
        cli.parse(["--shard", "3/2"], methods.available())


@pytest.fixture
def toy():
    methods.register("toy", make_config)(ToyMethod)
    yield "toy"
    methods.unregister("toy")


def test_planner_asks_the_declared_axes(toy):
    p = _plan("--method", "toy", "--task", "all", "--profile", "ci")
    assert {(j.variant, j.levels) for j in p.jobs} == {("toy", None), ("toy-motion", None), ("toy-random", "-"),
                                                        (plan.ZERO_VELOCITY, None)}
    assert not p.ensembles   # two streams declared: no '-3s'


def test_toy_method_runs_through_ci_and_dry_run(toy, tmp_path, capsys):
    args = ["--method", "toy", "--task", "all", "--profile", "ci", "--fractions", "1.0", "--workers", "1",
            "--cache-dir", str(CACHE), "--no-progress", "--out", str(tmp_path / "r")]
    assert run.main(args + ["--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "2 pre-trainings, 8 fine-tunings, 1 evaluations" in text and "toy/pretrain" in text
    assert not (tmp_path / "r").exists()
    assert run.main(args) == 0
    recs = [json.loads(f.read_text()) for f in (tmp_path / "r" / "records").glob("*.json")]
    got = {(r["variant"], r["task"]) for r in recs}
    assert got == {(v, t) for v in ("toy", "toy-random") for t in ("recognition", "detection", "prediction")} | \
        {("toy-motion", "recognition"), ("toy-motion", "detection"), ("zero-velocity", "prediction")}
    assert all(r["metrics"] for r in recs)
    assert (tmp_path / "r" / "report" / "report.html").exists()


def test_paper_estimate_work_comes_from_the_registry_and_the_plan(toy):
    from benchmarks.perf import estimate

    work = estimate.paper_work()
    assert {w.method for w in work} == set(methods.available()) and "toy" in {w.method for w in work}
    pre = [w for w in work if w.phase == "pretrain"]
    assert len(pre) == 11 + 2                       # the ci plan's 11, toy's joint and motion
    hitrs = methods.make_config("hitrs", "paper")
    assert all(w.samples == hitrs.loop.steps * hitrs.loop.batch_size * hitrs.loop.accumulation
               for w in pre if w.method == "hitrs")
    rec = [w for w in work if w.method == "toy" and w.phase == "finetune"]
    assert len(rec) == 6                            # toy, toy-motion, toy-random x 100% / 10%


def test_worker_processes_claim_each_unit_once(tmp_path, monkeypatch):
    from benchmarks.runner.parallel import CLAIMS_ENV, claim

    assert claim(0) and claim(0)                      # not a worker: runs everything
    monkeypatch.setenv(CLAIMS_ENV, str(tmp_path))
    assert claim(0) and not claim(0) and claim(1) and not claim(1)
    p = _plan("--method", "all", "--task", "all", "--profile", "ci")
    weights = [u.weight for u in p.part(1, 1).units]
    assert weights == sorted(weights, reverse=True)   # claimed heaviest first
