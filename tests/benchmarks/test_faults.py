"""Faults: SIGKILL / SIGINT mid pre-training and resume, truncated checkpoints, NaN losses,
unwritable or full output folders. Resumed runs must end bit-for-bit like uninterrupted ones."""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import methods
from benchmarks import run
from benchmarks.engine.data import sequence_set
from plumbing.files import CorruptFileError, load_checked, save_checked
from benchmarks.engine.pretrain import DivergedError, pretrain
from benchmarks.runner.records import load_records
from tests.support import CACHE, ToyCache

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--method", "hitrs", "--task", "recognition", "--fractions", "1.0", "--profile", "ci",
        "--cache-dir", str(CACHE), "--no-progress", "--no-report",
        "--set", "hitrs.loop.checkpoint_every=4", "--set", "recognition.linear_eval=false"]


def _cmd(out: Path) -> list[str]:
    return [sys.executable, "-m", "benchmarks.run", *ARGS, "--out", str(out)]


def _weights(out: Path) -> dict:
    return torch.load(next((out / "pretrain").glob("*/encoder.pt")), weights_only=False)["model"]


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole")
    subprocess.run(_cmd(out), cwd=ROOT, check=True, capture_output=True)
    (record,) = load_records(out)
    return record["metrics"], _weights(out)


def _start_and_wait_for_checkpoint(out: Path) -> subprocess.Popen:
    proc = subprocess.Popen(_cmd(out), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline:
        if list((out / "pretrain").glob("*/state.pt.sha256")) or proc.poll() is not None:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"run ended before a checkpoint could be interrupted: {proc.communicate()}"
    return proc


def test_sigkill_mid_pretraining_then_resume_gives_same_metrics(tmp_path, uninterrupted):
    out = tmp_path / "killed"
    proc = _start_and_wait_for_checkpoint(out)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "records").exists() or not list((out / "records").glob("*.json"))
    resumed = subprocess.run(_cmd(out), cwd=ROOT, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout + resumed.stderr
    (record,) = load_records(out)
    metrics, weights = uninterrupted
    assert record["metrics"] == metrics
    assert _same(_weights(out), weights)


def test_sigint_checkpoints_and_says_how_to_resume(tmp_path, uninterrupted):
    out = tmp_path / "interrupted"
    proc = _start_and_wait_for_checkpoint(out)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Re-run the same command to resume" in err
    # a truncated latest checkpoint is detected and the previous one (or scratch) is used
    state = next((out / "pretrain").glob("*/state.pt"))
    state.write_bytes(state.read_bytes()[:100])
    resumed = subprocess.run(_cmd(out), cwd=ROOT, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "ignoring unusable checkpoint" in resumed.stdout + resumed.stderr
    assert _same(_weights(out), uninterrupted[1])


def test_truncated_checkpoint_is_detected(tmp_path):
    path = save_checked({"w": torch.arange(1000.0)}, tmp_path / "c.pt")
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CorruptFileError, match="checksum"):
        load_checked(path)
    (tmp_path / "c.pt.sha256").unlink()
    with pytest.raises(CorruptFileError, match="did not finish"):
        load_checked(path)


def test_nan_batch_stops_with_step_and_no_final_checkpoint(tmp_path):
    cache = ToyCache()
    cache.seqs[5, 3, 0, 4] = np.nan  # one NaN joint in one sample
    method = methods.create("hitrs", profile="ci")
    data = sequence_set(cache, np.arange(24), 40, split_bodies=True)
    with pytest.raises(DivergedError, match=r"non-finite pre-training loss at step \d+") as err:
        pretrain(method, data, tmp_path / "p", pretrain_id="nan", seed=0, device=torch.device("cpu"), progress=False)
    assert "No metrics were written" in str(err.value)
    assert not (tmp_path / "p" / "encoder.pt").exists()


def test_unwritable_out_fails_before_training(capsys):
    with pytest.raises(SystemExit) as exc:
        run.main(ARGS + ["--out", "/proc/hitrs-cannot-write-here"])
    assert exc.value.code == 2
    assert "cannot write there" in capsys.readouterr().err


def test_full_disk_fails_before_training(tmp_path, monkeypatch, capsys):
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=10 * 2**20))
    with pytest.raises(SystemExit) as exc:
        run.main(ARGS + ["--out", str(tmp_path / "r")])
    assert exc.value.code == 2
    assert "MiB free" in capsys.readouterr().err


def test_corrupted_cache_is_refused_then_rebuilt(tmp_path):
    import datasets

    caches = datasets.ensure_synthetic(tmp_path / "world", size="small", seed=0, progress=False)
    data = caches["ntu"].path / "data.bin"
    original = caches["ntu"].sequence(3).copy()
    blob = bytearray(data.read_bytes())
    blob[1000:1004] = b"\xff\xff\xff\xff"  # flip one float in place: same size, wrong content
    data.write_bytes(bytes(blob))
    with pytest.raises(datasets.CorruptCacheError, match="checksum"):
        datasets.open_cache(caches["ntu"].path)
    rebuilt = datasets.ensure_synthetic(tmp_path / "world", size="small", seed=0, progress=False)
    np.testing.assert_array_equal(rebuilt["ntu"].sequence(3), original)


def test_two_runs_sharing_a_results_folder(tmp_path):
    out = tmp_path / "shared"
    procs = [subprocess.Popen(_cmd(out), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    records = load_records(out)
    assert len(records) == 2 and records[0]["run_id"] != records[1]["run_id"]
    assert records[0]["metrics"] == records[1]["metrics"]  # same config, same seed, same numbers
    assert sum("[run] pre-training hitrs" in log for log in logs) == 1  # one trained, the other waited and reused
    assert sum("reusing pre-training" in log for log in logs) == 1
    summary = (out / "summary.csv").read_text().splitlines()
    assert len(summary) == 3
