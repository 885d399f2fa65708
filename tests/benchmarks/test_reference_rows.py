"""Reference rows: the zero-velocity predictor's MPJPE, and the '-3s' combination of every
task that has one returning the same TaskOutput type as a task run."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import datasets
from benchmarks.config import make_run_config
from benchmarks.tasks import ENSEMBLE_TASKS, TaskContext, TaskOutput, prediction, recognition
from tests.support import CACHE as TEST_CACHE

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ntu():
    return datasets.ensure_synthetic(TEST_CACHE / "synthetic-small", size="small", seed=0, progress=False)["ntu"]


def _ctx(cache, task_config, rows):
    return TaskContext(method_name="zero-velocity", make_method=None, pretrained=False,
                       train_cache=cache, test_cache=cache, train_rows=rows, test_rows=rows, task_config=task_config,
                       device=torch.device("cpu"), seed=0, progress=False)


def test_zero_velocity_repeats_the_last_observed_pose(ntu):
    cfg = make_run_config("ci").prediction
    rows = ntu.indices(cfg.split, "test")
    out = prediction.zero_velocity(_ctx(ntu, cfg, rows))
    assert isinstance(out, TaskOutput)
    total = cfg.observe + cfg.predict
    lengths = ntu.manifest["length"].to_numpy()
    errors = []   # (sample, predicted frame) mean joint error, one sequence at a time (independent of the task code)
    for row in rows[lengths[rows] >= total]:
        seq = ntu.gather(ntu.offsets[row] + np.arange(total))[:, 0] * 1000.0     # (total, 25, 3) mm, body 1
        if not np.abs(seq).reshape(total, -1).sum(axis=1).all():
            continue   # the sensor lost body 1 in some frame: such windows are not scored (docs/metrics.md)
        errors.append(np.linalg.norm(seq[cfg.observe:] - seq[cfg.observe - 1], axis=-1).mean(axis=-1))
    errors = np.stack(errors)
    assert out.metrics["mpjpe"] == pytest.approx(errors.mean(), rel=1e-5)
    for h in cfg.horizons:
        assert out.metrics[f"mpjpe@{h}"] == pytest.approx(errors[:, h - 1].mean(), rel=1e-5)
    assert out.metrics["mpjpe@3"] < out.metrics[f"mpjpe@{cfg.horizons[-1]}"]   # the error grows with the horizon


def test_recognition_three_stream_combination_is_a_task_output():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 40)
    outs = []
    for _ in range(3):
        probs = rng.dirichlet(np.ones(5), size=40)
        outs.append(TaskOutput(metrics={}, outputs={"probs": probs, "labels": labels}))
    combined = recognition.combine_streams(outs, None)
    assert isinstance(combined, TaskOutput)
    mean = np.mean([o.outputs["probs"] for o in outs], axis=0)
    assert combined.metrics["top1"] == pytest.approx(100.0 * np.mean(mean.argmax(1) == labels))
    assert "linear_top1" not in combined.metrics
    assert set(ENSEMBLE_TASKS) == {"recognition", "detection"}
