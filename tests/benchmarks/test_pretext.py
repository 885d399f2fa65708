"""Pretext metrics after pre-training (benchmarks/engine/pretext.py): a fixed held-out batch, fixed
random choices, nothing about the model changed."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import datasets
import methods
from benchmarks.engine import pretext
from tests.support import CACHE

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = {"hitrs": {"masked_joint_err_mm", "frame_order_acc", "clip_order_acc", "next_clip_acc"},
            "mcc": {"instance_top1"},
            "crossclr": {"instance_top1_joint", "instance_top1_motion", "instance_top1_bone"}}


@pytest.fixture(scope="module")
def ntu():
    return datasets.ensure_synthetic(CACHE / "synthetic-small", size="small", seed=0, progress=False)["ntu"]


def test_held_out_rows_are_test_videos_spread_over_the_split(ntu):
    rows = pretext.held_out_rows(ntu, "xsub")
    test = set(ntu.indices("xsub", "test").tolist())
    assert len(rows) == pretext.HELD_OUT_SAMPLES and set(rows.tolist()) <= test
    assert ntu.manifest["label"].to_numpy()[rows].tolist().count(0) < len(rows) // 4  # not one class


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_pretext_metrics_are_deterministic_and_leave_the_model_alone(ntu, name, one_thread):
    torch.manual_seed(0)
    method = methods.create(name, config=methods.make_config(name, "ci"))
    method.train()
    before = {k: v.clone() for k, v in method.state_dict().items()}
    own = method.generator.get_state() if isinstance(getattr(method, "generator", None), torch.Generator) else None
    first = pretext.evaluate(method, ntu, "xsub", torch.device("cpu"))
    second = pretext.evaluate(method, ntu, "xsub", torch.device("cpu"))
    assert first == second and set(first) == EXPECTED[name]
    assert all(isinstance(v, float) for v in first.values())
    assert method.training
    assert all(torch.equal(before[k], v) for k, v in method.state_dict().items())  # queues, BN statistics
    if own is not None:
        assert torch.equal(method.generator.get_state(), own)


def test_random_init_hitrs_has_no_pretext(ntu):
    method = methods.create("hitrs", config=methods.make_config("hitrs", "ci", levels="-"))
    assert pretext.evaluate(method, ntu, "xsub", torch.device("cpu")) == {}
