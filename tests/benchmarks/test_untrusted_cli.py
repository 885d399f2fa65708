"""Every bad input of ``python -m benchmarks.run`` stops before any work: one line on stderr
naming the flag / file, exit code 2, nothing written to --out (issue 15)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

import methods
from benchmarks import run
from benchmarks.runner import cli, plan, preflight
from tests.support import CACHE as TEST_CACHE

ROOT = Path(__file__).resolve().parents[2]
WORLD = TEST_CACHE / "synthetic-small"
BASE = ["--profile", "ci", "--no-progress", "--no-report", "--cache-dir", str(TEST_CACHE)]


@pytest.fixture(scope="module")
def world():
    import datasets

    return datasets.ensure_synthetic(WORLD, size="small", seed=0, progress=False)


def _fails(argv, out, capsys, needle):
    with pytest.raises(SystemExit) as exc:
        run.main(argv + BASE + ["--out", str(out)])
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    err = [line for line in lines if line.startswith("error:")]  # progress notes of the data step aside
    assert len(err) == 1 and needle in err[0], lines
    assert not out.exists(), "nothing may be written before the input is validated"
    return err[0]


@pytest.mark.parametrize("argv, needle", [
    (["--seeds", "-1"], "--seeds -1"),
    (["--seeds", "4294967296"], "0..4294967295"),
    (["--set", "run.synthetic_size=huge"], "synthetic_size"),
    (["--set", "detection.postprocess=bogus"], "postprocess"),
    (["--set", "recognition.lr=nan"], "not a finite number"),
    (["--set", "recognition.lr=inf"], "not a finite number"),
    (["--set", "recognition.lr=-0.1"], ">= 0"),
    (["--set", "recognition.batch_size=0"], "> 0"),
    (["--set", "hitrs.dropout=1.5"], "[0, 1]"),
    (["--set", "hitrs.seed=-3"], "seed"),
    (["--set", "hitrs.loop=5"], "group of settings"),
    (["--set", "run.recognition=5"], "group of settings"),
])
def test_bad_values_fail_before_any_work(argv, needle, tmp_path, capsys):
    _fails(["--method", "hitrs", "--task", "recognition"] + argv, tmp_path / "r", capsys, needle)


def test_zero_learning_rate_is_allowed(tmp_path, capsys):
    """lr=0 freezes the weights; the regression tests rely on it, so it must pass validation."""
    assert run.main(["--method", "hitrs", "--task", "recognition", "--dry-run", "--set", "recognition.lr=0",
                     "--set", "hitrs.lr=0"] + BASE + ["--out", str(tmp_path / "r")]) == 0


def test_unknown_split_is_refused_before_pretraining(world, tmp_path, capsys):
    line = _fails(["--method", "hitrs", "--task", "recognition", "--set", "recognition.split=nosuch"],
                  tmp_path / "r", capsys, "recognition.split=nosuch")
    assert "xsub" in line


def test_unknown_pretraining_split(world, tmp_path, capsys):
    _fails(["--method", "hitrs", "--task", "recognition", "--set", "run.pretrain_split=nosuch"],
           tmp_path / "r", capsys, "--set run.pretrain_split=nosuch")


def test_pkummd_cache_alone_needs_an_ntu_cache(world, tmp_path, capsys):
    _fails(["--method", "hitrs", "--task", "detection", "--data", f"pkummd={world['pkummd'].path}"],
           tmp_path / "r", capsys, "needs an NTU-layout cache")


def test_pkummd_cache_passed_as_ntu60_is_refused(world, tmp_path, capsys):
    _fails(["--method", "hitrs", "--task", "recognition", "--data", f"ntu60={world['pkummd'].path}"],
           tmp_path / "r", capsys, "pass it as --data pkummd=DIR")


def test_ntu_cache_passed_as_pkummd_is_refused(world, tmp_path, capsys):
    _fails(["--method", "hitrs", "--task", "detection", "--data", f"ntu60={world['ntu'].path}",
            "--data", f"pkummd={world['ntu'].path}"], tmp_path / "r", capsys, "pass it as --data ntu60=DIR")


def _edited_cache(src: Path, dst: Path, edit_manifest=None, edit_meta=None) -> Path:
    shutil.copytree(src, dst)
    meta = json.loads((dst / "meta.json").read_text())
    meta.pop("checksums")  # edited files: no checksums to verify
    if edit_manifest is not None:
        man = pd.read_csv(dst / "manifest.csv", dtype={"name": str, "view": str}, keep_default_na=False)
        edit_manifest(man)
        man.to_csv(dst / "manifest.csv", index=False)
    if edit_meta is not None:
        edit_meta(meta)
    (dst / "meta.json").write_text(json.dumps(meta))
    return dst


def test_split_without_test_samples(world, tmp_path, capsys):
    def all_train(man):
        man["split:xsub"] = "train"

    cache = _edited_cache(world["ntu"].path, tmp_path / "ntu", all_train)
    _fails(["--method", "hitrs", "--task", "recognition", "--data", f"ntu60={cache}"], tmp_path / "r", capsys,
           "has no test samples")


def test_empty_ntu_cache_is_not_mistaken_for_none(world, tmp_path, capsys):
    """An opened cache with 0 samples is falsy: the runner must say what is wrong with it, not
    'AttributeError: NoneType' (the `or` vs `is None` bug)."""
    def empty_split(man):
        man["split:xsub"] = "test"

    cache = _edited_cache(world["ntu"].path, tmp_path / "ntu", empty_split)
    _fails(["--method", "hitrs", "--task", "recognition", "--data", f"ntu60={cache}"], tmp_path / "r", capsys,
           "fewer than one pre-training batch")


def test_bare_meta_json(tmp_path, capsys):
    cache = tmp_path / "ntu"
    cache.mkdir()
    (cache / "meta.json").write_text(json.dumps({"format_version": 1}))
    line = _fails(["--method", "hitrs", "--task", "recognition", "--data", f"ntu60={cache}"], tmp_path / "r",
                  capsys, "incomplete or malformed meta.json")
    assert "datasets prepare ntu60" in line


@pytest.mark.parametrize("field, value", [("dataset", "../../escape"), ("dataset", "ntu\n60"),
                                          ("splits", ["xsub/../../x"])])
def test_unsafe_names_in_meta_json(world, tmp_path, capsys, field, value):
    def edit(meta):
        meta[field] = value

    cache = _edited_cache(world["ntu"].path, tmp_path / "ntu", edit_meta=edit)
    _fails(["--method", "hitrs", "--task", "recognition", "--data", f"ntu60={cache}"], tmp_path / "r", capsys,
           "not a plain file name")


def test_unsafe_sample_name_in_manifest(world, tmp_path, capsys):
    def edit(man):
        man.loc[3, "name"] = "../../../../tmp/evil"

    cache = _edited_cache(world["ntu"].path, tmp_path / "ntu", edit)
    _fails(["--method", "hitrs", "--task", "recognition", "--data", f"ntu60={cache}"], tmp_path / "r", capsys,
           "manifest.csv:5")


def test_unwritable_cache_dir(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")  # a folder below a regular file cannot be created (also as root)
    with pytest.raises(SystemExit) as exc:
        run.main(["--method", "hitrs", "--task", "recognition", "--profile", "ci", "--no-progress",
                  "--cache-dir", str(blocker / "cache"), "--out", str(tmp_path / "r")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--cache-dir" in err[0] and "writable" in err[0]
    assert not (tmp_path / "r").exists()


def _plan(argv, world):
    opts = cli.parse(argv + ["--profile", "ci"], methods.available())
    run_cfg = plan.run_config(opts, "ci")
    return opts, run_cfg, plan.Data(ntu=world["ntu"], pkummd=world["pkummd"]), plan.build(opts, "ci").jobs


def test_warnings_for_tiny_test_sets_and_subsets_equal_to_the_full_set(world, tmp_path):
    def one_per_class(man):  # train: one sample per class; test: 3 samples
        first = man.groupby("label").head(1).index
        man["split:xsub"] = "none"
        man.loc[first, "split:xsub"] = "train"
        man.loc[man.index.difference(first)[:3], "split:xsub"] = "test"

    cache = __import__("datasets").open_cache(_edited_cache(world["ntu"].path, tmp_path / "ntu", one_per_class))
    opts, run_cfg, data, jobs = _plan(["--method", "hitrs", "--task", "recognition", "--fractions", "1.0,0.1",
                                       "--levels", "-"], world)
    data.ntu = cache
    seen: list[str] = []
    preflight.check_plan(opts, run_cfg, data, jobs, warn=seen.append)
    assert any("only 3 test samples" in w for w in seen), seen
    assert any("--fractions 0.1" in w and "same as 1.0" in w for w in seen), seen


def test_no_warnings_on_the_synthetic_world(world):
    opts, run_cfg, data, jobs = _plan(["--method", "all", "--task", "all"], world)
    seen: list[str] = []
    preflight.check_plan(opts, run_cfg, data, jobs, warn=seen.append)
    assert seen == []


def test_out_that_is_a_file_is_refused_and_kept(tmp_path, capsys):
    target = tmp_path / "results"
    target.write_text("keep me")
    with pytest.raises(SystemExit) as exc:
        run.main(["--method", "hitrs", "--task", "recognition"] + BASE + ["--out", str(target)])
    assert exc.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "--out" in err[0] and "is a file" in err[0]
    assert target.read_text() == "keep me"
