"""Fault injection on the output tree (issue 26): every place a run writes under --out is checked
before any training; a bad one is one line, exit code 2, nothing written anywhere (inside or
outside --out), earlier results untouched. A failure after training (artifacts, summary,
report) keeps the record and names what to fix in one line."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from benchmarks import run
from benchmarks.runner.outputs import OutputError, check_output_dir
from plumbing.files import UnsafePathError, path_under
from plumbing.locks import LockPathError, file_lock
from tests.support import CACHE

BASE = ["--method", "hitrs", "--task", "detection", "--levels=-", "--smoke", "--profile", "ci",
        "--fractions", "1.0", "--no-progress", "--cache-dir", str(CACHE)]
EARLIER = "records/earlier.json"


def _tree(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (links not followed) with a digest of its content."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_file():
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                out[rel] = "dir" if p.is_dir() else "other"
    return out


@pytest.fixture
def results(tmp_path):
    """An --out holding an earlier result, and a folder outside it that links may point to."""
    out, outside = tmp_path / "R", tmp_path / "outside"
    (out / "records").mkdir(parents=True)
    (out / EARLIER).write_text('{"task": "recognition", "dataset": "x", "label_fraction": 1.0, "metrics": {}}\n')
    outside.mkdir()
    return out, outside


def _refused(argv, capsys, needle, watch=()):
    before = {Path(w): _tree(Path(w)) for w in watch}
    with pytest.raises(SystemExit) as exc:
        run.main(argv)
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    err = [line for line in lines if line.startswith("error:")]
    assert len(err) == 1 and needle in err[0], lines
    assert not any("Traceback" in line for line in lines)
    for w, tree in before.items():
        assert _tree(w) == tree, f"{w} changed although the run was refused"
    return err[0]


def _plant(out: Path, outside: Path, where: str, how: str) -> None:
    target = out / where
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_dir() and not target.is_symlink():
        target.rmdir() if not any(target.iterdir()) else None
    if how == "file":
        target.write_text("not a folder\n")
    elif how == "link-out":
        target.symlink_to(outside, target_is_directory=True)
    elif how == "dangling":   # a link inside --out to nothing
        target.symlink_to(target.parent / "gone")
    elif how == "dir":
        target.mkdir()
    elif how == "fifo":
        os.mkfifo(target)


@pytest.mark.parametrize("where", ["artifacts", "subsets", "report", "pretrain"])
@pytest.mark.parametrize("how, needle", [("file", "is a file where the run writes a folder"),
                                         ("link-out", "outside --out"),
                                         ("dangling", "dangling link")])
def test_bad_output_folders_are_refused_before_training(results, capsys, where, how, needle):
    out, outside = results
    _plant(out, outside, where, how)
    line = _refused(BASE + ["--out", str(out)], capsys, needle, watch=[out, outside])
    assert str(out / where) in line
    assert (out / EARLIER).exists()


@pytest.mark.parametrize("how, needle", [("file", "is a file where the run writes a folder"),
                                         ("link-out", "outside --out")])
def test_records_folder_that_is_a_file_or_a_link_out(tmp_path, capsys, how, needle):
    out, outside = tmp_path / "R", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    _plant(out, outside, "records", how)
    _refused(BASE + ["--out", str(out)], capsys, needle, watch=[out, outside])


@pytest.mark.parametrize("where, how, needle", [
    ("summary.csv", "dir", "is a folder where the run writes a file"),
    ("summary.csv", "fifo", "not a regular file"),
    ("summary.csv", "link-out", "outside --out"),
    (".summary.lock", "dangling", "lock file"),
    (".summary.lock", "dir", "is a folder where the run writes a file"),
])
def test_bad_output_files_are_refused_before_training(results, capsys, where, how, needle):
    out, outside = results
    _plant(out, outside, where, how)
    _refused(BASE + ["--out", str(out)], capsys, needle, watch=[out, outside])
    assert not (out / "gone").exists()


@pytest.mark.parametrize("argv, needle", [
    (["--out", ""], "--out '': empty folder name"),
    (["--out", "   "], "--out '': empty folder name"),
    (["--cache-dir", ""], "--cache-dir '': empty folder name"),
    (["--out"], "expected one argument"),
])
def test_empty_or_missing_folder_values(tmp_path, capsys, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    argv = [a for a in BASE if a not in ("--cache-dir", str(CACHE))] + argv
    _refused(argv, capsys, needle)
    assert list(tmp_path.iterdir()) == [], "nothing may be written into the current directory"


def test_pretraining_folders_and_locks_are_checked(tmp_path):
    out, outside = tmp_path / "R", tmp_path / "outside"
    (out / "pretrain").mkdir(parents=True)
    outside.mkdir()
    check_output_dir(out, pretrain_ids=["hitrs-abc"])   # absent: fine
    (out / "pretrain" / "hitrs-abc").write_text("x")
    with pytest.raises(OutputError, match="pretrain/hitrs-abc is a file"):
        check_output_dir(out, pretrain_ids=["hitrs-abc"])
    (out / "pretrain" / "hitrs-abc").unlink()
    (out / "pretrain" / "hitrs-abc").mkdir()
    (out / "pretrain" / "hitrs-abc" / "pretrain.log").symlink_to(outside / "log")
    with pytest.raises(OutputError, match="pretrain.log is a link .* outside --out"):
        check_output_dir(out, pretrain_ids=["hitrs-abc"])
    (out / "pretrain" / "hitrs-abc" / "pretrain.log").unlink()
    (out / "pretrain" / ".hitrs-abc.lock").symlink_to(out / "pretrain" / "inside.lock")
    with pytest.raises(OutputError, match="link where the run keeps a lock file"):
        check_output_dir(out, pretrain_ids=["hitrs-abc"])
    assert list(outside.iterdir()) == []


def test_links_that_stay_inside_out_are_allowed(tmp_path):
    out = tmp_path / "R"
    (out / "real_records").mkdir(parents=True)
    (out / "records").symlink_to(out / "real_records")
    assert check_output_dir(out) == out


def test_the_writers_verify_their_paths_again(tmp_path):
    """A link planted after the check (during training) is still refused at write time."""
    from benchmarks.runner import records

    out, outside = tmp_path / "R", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (out / "records").symlink_to(outside)
    (out / "artifacts").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="outside"):
        path_under(out, "records", "x.json")
    with pytest.raises(UnsafePathError, match="outside"):
        records.write_artifacts(out, "run1", {"timelines": {"a": __import__("numpy").zeros(3)}})
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("how", ["dangling", "dir", "fifo"])
def test_lock_never_follows_links_or_opens_non_files(tmp_path, how):
    (tmp_path / "outside").mkdir()
    _plant(tmp_path, tmp_path / "outside", "x.lock", how)
    with pytest.raises(LockPathError, match="x.lock"):
        with file_lock(tmp_path / "x.lock"):
            pass
    assert not (tmp_path / "gone").exists()


def test_failures_after_training_keep_the_record_and_say_what_to_fix(results, capsys, monkeypatch):
    """The artifacts, the summary and the report all fail after the run trained: the record is
    written, each failure is one line naming the fix, the exit code is 1, no traceback."""
    from benchmarks.runner import records

    out, _ = results
    (out / "report").mkdir()
    (out / "report" / "report.html").mkdir()      # the report's last file cannot be written

    def no_artifacts(*a, **k):
        raise OSError(28, "No space left on device")

    def no_summary(*a, **k):
        raise OSError(13, "Permission denied")

    monkeypatch.setattr(records, "write_artifacts", no_artifacts)
    monkeypatch.setattr(records, "write_summary", no_summary)
    assert run.main(BASE + ["--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("[run] ")]
    assert any("artifacts of" in line and "No space left" in line and "record is kept" in line for line in lines)
    assert any("summary not written" in line and "python -m reports.summary --results" in line for line in lines)
    assert any("report not built" in line and "python -m reports.build --results" in line for line in lines)
    new = [p for p in (out / "records").glob("*.json") if p.name != "earlier.json"]
    assert len(new) == 1 and '"artifacts": {}' in new[0].read_text()
    assert (out / EARLIER).exists()
