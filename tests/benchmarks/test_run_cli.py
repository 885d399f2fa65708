"""Bad flags: one line on stderr, exit code 2, nothing written to --out."""
from __future__ import annotations

import pytest

from benchmarks import run


@pytest.mark.parametrize("argv, needle", [
    (["--method", "nope"], "--method nope"),
    (["--task", "dance"], "--task dance"),
    (["--fractions", "0"], "(0, 1]"),
    (["--fractions", "1.5"], "(0, 1]"),
    (["--fractions", "abc"], "not a number"),
    (["--streams", "colour"], "--streams colour"),
    (["--levels", "F+X"], "--levels F+X"),
    (["--data", "kinetics=/x"], "unknown data kind"),
    (["--data", "ntu60=/definitely/not/here"], "prepare"),
    (["--set", "recognition.nope=3"], "nope"),
    (["--set", "badformat"], "SCOPE.KEY=VALUE"),
    (["--shard", "0/2"], "--shard 0/2"),
    (["--shard", "two"], "K/N"),
    (["--workers", "-1"], "--workers -1"),
])
def test_bad_flags_exit_2_and_write_nothing(argv, needle, tmp_path, capsys):
    out = tmp_path / "results"
    with pytest.raises(SystemExit) as exc:
        run.main(argv + ["--out", str(out), "--profile", "ci", "--no-progress"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not out.exists()


def test_cuda_request_without_gpu(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the no-GPU error cannot be provoked here")
    with pytest.raises(SystemExit) as exc:
        run.main(["--device", "cuda", "--out", str(tmp_path / "r"), "--profile", "ci"])
    assert exc.value.code == 2
    assert "--device cuda" in capsys.readouterr().err


def test_unwritable_out(tmp_path, capsys):
    import os

    if os.geteuid() == 0:
        pytest.skip("running as root: permissions do not stop writes, use the read-only mount test in test_faults")
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    with pytest.raises(SystemExit) as exc:
        run.main(["--out", str(locked / "r"), "--profile", "ci", "--no-progress", "--method", "hitrs"])
    assert exc.value.code == 2


def test_data_folder_that_is_not_a_cache(tmp_path, capsys):
    raw = tmp_path / "ntu_raw"
    raw.mkdir()
    (raw / "S001C001P001R001A001.skeleton").write_text("1\n0\n")
    out = tmp_path / "results"
    with pytest.raises(SystemExit) as exc:
        run.main(["--data", f"ntu60={raw}", "--task", "recognition", "--out", str(out), "--profile", "ci",
                  "--no-progress"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a prepared cache" in err[0] and "datasets prepare ntu60" in err[0]
    assert not out.exists()
