"""The runner under torchrun: 2 CPU processes (gloo) pre-train and fine-tune with DDP; rank 0
alone writes one record per run."""
from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.runner.records import load_records
from tests.support import CACHE as TEST_CACHE, free_port

ROOT = Path(__file__).resolve().parents[2]


def test_torchrun_two_cpu_processes(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists() and shutil.which("torchrun") is None:
        pytest.skip("torchrun not found next to the interpreter or on PATH")
    cmd = [str(torchrun if torchrun.exists() else shutil.which("torchrun")), "--nproc_per_node=2",
           f"--master_port={free_port()}", "-m", "benchmarks.run", "--method", "hitrs", "--task", "recognition",
           "--fractions", "1.0", "--profile", "ci", "--device", "cpu", "--out", str(tmp_path / "out"),
           "--cache-dir", str(TEST_CACHE), "--no-progress", "--no-report",
           "--set", "recognition.linear_eval=false", "--set", "hitrs.loop.steps=8"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (record,) = load_records(tmp_path / "out")
    assert record["provenance"]["world_size"] == 2
    assert all(math.isfinite(v) for v in record["metrics"].values())
    assert len(list((tmp_path / "out" / "pretrain").glob("*/encoder.pt"))) == 1
