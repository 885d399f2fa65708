"""Files from outside are data, never code (issue 15): planted checkpoints, torn logs, bad
records, hostile names and paths, oversized raw files, bad prepare targets, the torchrun lock."""
from __future__ import annotations

import io
import json
import os
import random
import string
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import datasets
import methods
from benchmarks import run
from benchmarks.engine.data import sequence_set
from plumbing.files import CorruptFileError, load_checked, save_checked, sha256_bytes
from benchmarks.engine.pretrain import _rng_state, _set_rng_state, pretrain, read_log_lines
from benchmarks.runner.records import load_records
from datasets import SkeletonFormatError
from plumbing.files import check_name, path_under
from plumbing.locks import LockBusyError, file_lock
from datasets.meta import parse_ntu_name, parse_ntu_names
from datasets.readers.pku import parse_pku_name, read_pku_labels
from reports import summary
from reports.build import build
from reports.records import load
from tests.support import CACHE as TEST_CACHE, ToyCache, ntu_text, random_ntu_frames, write

ROOT = Path(__file__).resolve().parents[2]
RUN = ["--method", "hitrs", "--task", "recognition", "--fractions", "1.0", "--profile", "ci", "--no-progress",
       "--no-report", "--cache-dir", str(TEST_CACHE), "--set", "recognition.linear_eval=false",
       "--set", "hitrs.loop.steps=3", "--set", "recognition.epochs_pretrained=1"]


class _Plant:
    """A pickle that creates ``marker`` when unpickled by a plain (code-running) unpickler."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _plant(path: Path, marker: Path) -> None:
    buffer = io.BytesIO()
    torch.save({"model": _Plant(marker)}, buffer)
    path.write_bytes(buffer.getvalue())
    Path(str(path) + ".sha256").write_text(sha256_bytes(buffer.getvalue()) + "\n")  # a "valid" checksum


# ---- checkpoints -----------------------------------------------------------------------------
@pytest.mark.parametrize("writer", ["torch.save", "pickle.dumps"])
def test_planted_pickle_with_matching_checksum_is_refused(tmp_path, writer):
    import pickle

    marker = tmp_path / "pwned"
    _plant(tmp_path / "state.pt", marker)
    if writer == "pickle.dumps":  # a plain (legacy-format) pickle, not a torch zip file
        blob = pickle.dumps({"model": _Plant(marker)})
        (tmp_path / "state.pt").write_bytes(blob)
        (tmp_path / "state.pt.sha256").write_text(sha256_bytes(blob) + "\n")
    with pytest.raises(CorruptFileError, match="refused, not a plain tensor checkpoint"):
        load_checked(tmp_path / "state.pt")
    assert not marker.exists()


def test_planted_encoder_in_out_runs_no_code_and_is_trained_again(tmp_path, capsys):
    """The issue's 'done when': a checkpoint planted in --out (with its .sha256) runs nothing;
    the run refuses it, trains again and writes its record. The summary deleted in between
    does not stop the second run either."""
    out = tmp_path / "results"
    assert run.main(RUN + ["--out", str(out)]) == 0
    (encoder,) = (out / "pretrain").glob("*/encoder.pt")
    marker = tmp_path / "pwned"
    _plant(encoder, marker)
    _plant(encoder.with_name("state.pt"), marker)
    (out / "summary.csv").unlink()
    capsys.readouterr()
    assert run.main(RUN + ["--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert not marker.exists(), "the planted pickle ran"
    assert "unusable" in printed.out + printed.err and "refused" in printed.out + printed.err
    assert "ignoring unusable checkpoint" in printed.out + printed.err
    load_checked(encoder)  # the retrained encoder is a plain tensor checkpoint again
    assert len(load_records(out)) == 2
    assert len((out / "summary.csv").read_text().splitlines()) == 3


def test_rng_state_round_trips_through_weights_only(tmp_path):
    method = methods.create("hitrs", profile="ci")
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    save_checked({"rng": _rng_state(method)}, tmp_path / "s.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    _set_rng_state(method, load_checked(tmp_path / "s.pt")["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


# ---- pretrain.log ----------------------------------------------------------------------------
def _pretrain(folder, stop_after=None):
    cfg = methods.make_config("hitrs", "ci", **{"loop.steps": 6, "loop.log_every": 1, "loop.checkpoint_every": 2,
                                                 "loop.batch_size": 4, "loop.accumulation": 1})
    method = methods.create("hitrs", config=cfg)
    data = sequence_set(ToyCache(), np.arange(24), 40, split_bodies=True)
    return pretrain(method, data, folder, pretrain_id="torn", seed=0, device=torch.device("cpu"), progress=False,
                    log=lambda m: None, stop_after=stop_after)


def test_torn_last_log_line_does_not_stop_a_rerun(tmp_path):
    folder = tmp_path / "p"
    _pretrain(folder, stop_after=3)
    log = folder / "pretrain.log"
    with open(log, "ab") as fh:
        fh.write(b'{"step": 4, "lr": 0.0003, "lo')  # killed mid-write
    result = _pretrain(folder)
    assert result.steps == 6 and result.resumed_from == 3
    lines = log.read_bytes().decode().splitlines()
    steps = [json.loads(line)["step"] for line in lines]  # every line whole again
    assert steps == [1, 2, 3, 4, 5, 6]


def test_log_reader_skips_torn_foreign_and_huge_lines(tmp_path):
    log = tmp_path / "pretrain.log"
    huge = b'{"step": 3, "pad": "' + b"x" * 3_000_000 + b'"}\n'
    log.write_bytes(b'{"step": 1}\n[1, 2]\n{"step": "2"}\n' + huge + b'{"step": 4}\nnot json\n{"step": 5}')
    kept, bad = read_log_lines(log, max_line=1 << 16)
    assert [e["step"] for e in kept] == [1, 4] and bad == 5
    kept, _ = read_log_lines(log, up_to_step=1)
    assert [e["step"] for e in kept] == [1]


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(0, 400), junk=st.binary(max_size=40))
def test_fuzz_log_reader_never_raises_and_keeps_whole_lines(tmp_path_factory, cut, junk):
    whole = b"".join(json.dumps({"step": k, "loss": 1.0 / k}).encode() + b"\n" for k in range(1, 9))
    log = tmp_path_factory.mktemp("log") / "pretrain.log"
    log.write_bytes(whole[:cut] + junk)
    kept, _ = read_log_lines(log)
    complete = whole[:cut].count(b"\n")
    assert [e["step"] for e in kept][:complete] == list(range(1, complete + 1))
    assert all(type(e["step"]) is int for e in kept)


# ---- records ---------------------------------------------------------------------------------
GOOD = {"run_id": "r1", "method": "mcc", "variant": "mcc", "task": "detection", "dataset": "synthetic-pkummd",
        "split": "xsub", "label_fraction": 1.0, "seed": 0, "profile": "ci", "metrics": {"mAP_a": 10.0}}


@pytest.mark.parametrize("bad", [
    {"label_fraction": "abc"}, {"label_fraction": 0}, {"metrics": [1, 2]}, {"metrics": {"mAP_a": "high"}},
    {"seed": "0"}, {"task": 3}, {"provenance": "x"}, {"levels": 5}, {"seed": True},
])
def test_wrong_typed_records_are_skipped_and_listed_everywhere(tmp_path, bad, capsys):
    folder = tmp_path / "records"
    folder.mkdir()
    (folder / "good.json").write_text(json.dumps(GOOD))
    (folder / "bad.json").write_text(json.dumps({**GOOD, "run_id": "r2", **bad}))
    (folder / "torn.json").write_bytes(json.dumps(GOOD).encode()[:30])
    loaded = load(tmp_path)
    assert [r["run_id"] for r in loaded.records] == ["r1"]
    assert sorted(Path(s.split(":")[0]).name for s in loaded.skipped) == ["bad.json", "torn.json"]
    assert [r["run_id"] for r in load_records(tmp_path)] == ["r1"]
    info = build(tmp_path, tmp_path / "out")  # no traceback
    assert len(info["skipped"]) == 2
    assert summary.main(["--results", str(tmp_path)]) == 0
    assert len((tmp_path / "summary.csv").read_text().splitlines()) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and "torn.json" in err


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                     max_leaves=8)


@settings(max_examples=80, deadline=None)
@given(field=st.sampled_from(sorted(GOOD) + ["levels", "provenance", "config", "artifacts"]), value=_JSON)
def test_fuzz_record_fields_never_crash_the_reader_or_the_summary(tmp_path_factory, field, value):
    from reports.records import frame

    root = tmp_path_factory.mktemp("res")
    (root / "records").mkdir()
    (root / "records" / "r.json").write_text(json.dumps({**GOOD, field: value}))
    loaded = load(root)
    assert len(loaded.records) + len(loaded.skipped) == 1
    frame(loaded.records)
    summary.write_summary(root, warn=lambda line: None)


def test_summary_command_without_records(tmp_path, capsys):
    assert summary.main(["--results", str(tmp_path)]) == 2
    assert "no records folder" in capsys.readouterr().err


# ---- names and output paths ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["S\u0660\u0660\u0661C001P001R001A001", "S001C001P001R001A001\n",
                                  "S001C001P001R001A0011", "xS001C001P001R001A001", "S001C001P001R001A\uff10\uff10\uff11"])
def test_ntu_names_are_whole_ascii_strings(name):
    with pytest.raises(SkeletonFormatError):
        parse_ntu_name(name)
    with pytest.raises(SkeletonFormatError):
        parse_ntu_names(["S001C001P001R001A002", name])


@pytest.mark.parametrize("name", ["\u0660\u0660\u0660\u0661-L", "0001-L\n", "0001-LM", "0001-l"])
def test_pku_names_are_whole_ascii_strings(name):
    with pytest.raises(SkeletonFormatError):
        parse_pku_name(name)


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(), max_size=24))
def test_check_name_admits_only_plain_ascii_names(name):
    try:
        check_name(name, "name")
    except ValueError:
        return
    assert name.isascii() and name.isprintable() and "/" not in name and ".." not in name and name[0] != "."
    assert set(name) <= set(string.ascii_letters + string.digits + "_.+-")


@pytest.mark.parametrize("parts", [("..", "x"), ("/etc/passwd",), ("a", "..", "..", "b")])
def test_path_under_refuses_escapes(tmp_path, parts):
    with pytest.raises(ValueError, match="outside"):
        path_under(tmp_path / "out", *parts)


def test_path_under_refuses_a_symlink_out(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "link").symlink_to(tmp_path)
    with pytest.raises(ValueError, match="outside"):
        path_under(tmp_path / "out", "link", "x.txt")
    assert path_under(tmp_path / "out", "sub", "x.txt") == tmp_path / "out" / "sub" / "x.txt"


def test_subset_and_proposal_files_stay_under_out(tmp_path):
    from benchmarks.runner.records import write_artifacts
    from datasets.subsets import make_subset

    class Evil:
        dataset, path, is_detection = "../../escaped", tmp_path, True
        manifest = __import__("pandas").DataFrame({"name": ["0001-L"], "split:xsub": ["train"]})

        def indices(self, split, part):
            return np.array([0])

    with pytest.raises(ValueError, match="not a plain file name"):
        make_subset(Evil(), "xsub", 1.0, 0, tmp_path / "out" / "subsets")
    with pytest.raises(ValueError, match="not a plain file name"):
        write_artifacts(tmp_path / "out", "run1", {"proposals": {"../../../escaped": np.zeros((0, 4))}})
    assert not list(tmp_path.rglob("*escaped*"))


# ---- raw files and prepare -------------------------------------------------------------------
def _ntu_raw(folder: Path, names) -> Path:
    rng = np.random.default_rng(0)
    for name in names:
        write(folder / name, ntu_text(random_ntu_frames(rng, 4)))
    return folder


def test_duplicates_by_parsed_fields_are_listed_as_bad(tmp_path):
    raw = _ntu_raw(tmp_path / "raw", ["S001C001P001R001A001.skeleton", "S001C001P001R001A002.skeleton",
                                      "more/S001C001P001R001A001.skeleton"])
    datasets.prepare("ntu60", raw, tmp_path / "cache", progress=False, log=lambda m: None)
    cache = datasets.open_cache(tmp_path / "cache")
    assert cache.names == ["S001C001P001R001A001", "S001C001P001R001A002"]
    assert "duplicate sample" in (tmp_path / "cache" / "bad_files.txt").read_text()


def _prepare_cli(args, capsys):
    from datasets.__main__ import main

    code = main(["prepare", *args, "--no-progress"])
    return code, capsys.readouterr().err.strip().splitlines()


def test_prepare_out_is_a_file_or_unwritable(tmp_path, capsys):
    raw = _ntu_raw(tmp_path / "raw", ["S001C001P001R001A001.skeleton"])
    target = tmp_path / "a-file"
    target.write_text("keep me")
    code, err = _prepare_cli(["ntu60", "--raw", str(raw), "--out", str(target)], capsys)
    assert code == 2 and len(err) == 1 and "is a file" in err[0]
    assert target.read_text() == "keep me"
    code, err = _prepare_cli(["ntu60", "--raw", str(raw), "--out", str(target / "cache")], capsys)
    assert code == 2 and len(err) == 1 and "cannot write there" in err[0]


def test_prepare_where_every_file_is_bad_exits_non_zero(tmp_path, capsys):
    raw = tmp_path / "raw"
    write(raw / "S001C001P001R001A001.skeleton", "garbage\n")
    write(raw / "S001C001P001R001A002.skeleton", "1\n")
    code, err = _prepare_cli(["ntu60", "--raw", str(raw), "--out", str(tmp_path / "cache")], capsys)
    assert code == 2 and "none of the 2 input file(s)" in err[-1]
    assert not (tmp_path / "cache" / "meta.json").exists()
    assert len((tmp_path / "cache" / "bad_files.txt").read_text().splitlines()) == 2


def test_huge_raw_files_are_refused_before_reading(tmp_path):
    huge = tmp_path / "S001C001P001R001A001.skeleton"
    with open(huge, "wb") as fh:  # a sparse 120 MB file: refused by its size, never read
        fh.truncate(120 * 2**20)
    with pytest.raises(SkeletonFormatError, match="larger than"):
        datasets.read_ntu_skeleton(huge)
    long_line = write(tmp_path / "0001-L.txt", "1 " * 200_000 + "\n")
    with pytest.raises(SkeletonFormatError, match=r"0001-L.txt:1: a line of 400,000 bytes"):
        datasets.read_pku_skeleton(long_line)


def test_pku_label_beyond_the_video_end_is_a_bad_line(tmp_path):
    labels = write(tmp_path / "0002-L.txt", "3,10,90,1\n7,100,5000000,2\n")
    with pytest.raises(SkeletonFormatError, match=r"0002-L.txt:2: interval beyond the end of the 1040-frame video"):
        read_pku_labels(labels, 51, num_frames=1040)
    assert read_pku_labels(labels, 51).shape == (2, 4)  # without the length: format checks only


# ---- locks -----------------------------------------------------------------------------------
def test_non_blocking_lock_reports_a_busy_lock(tmp_path):
    with file_lock(tmp_path / "x.lock"):
        with pytest.raises(LockBusyError):
            with file_lock(tmp_path / "x.lock", blocking=False):
                pass
    with file_lock(tmp_path / "x.lock", blocking=False):
        pass


def test_second_torchrun_job_on_the_same_pretraining_is_refused(tmp_path):
    import torch.distributed as tdist

    from benchmarks.runner.cli import UsageError
    from benchmarks.engine.distributed import Dist

    tdist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        job = SimpleNamespace(dist=Dist(rank=0, world=2))  # rank 0 of a (pretend) 2-process job
        with file_lock(tmp_path / ".p.lock"):  # another job holds the pre-training
            with pytest.raises(UsageError, match="being trained by another job"):
                with run.Runner._job_lock(job, tmp_path / ".p.lock", "hitrs-abc"):
                    pass
        with run.Runner._job_lock(job, tmp_path / ".p.lock", "hitrs-abc"):
            assert os.path.exists(tmp_path / ".p.lock")
    finally:
        tdist.destroy_process_group()
