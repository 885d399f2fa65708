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
            "mcc": {"instance_top1", "embedding_spread"},
            "crossclr": {f"{m}_{s}" for m in ("instance_top1", "embedding_spread") for s in ("joint", "motion", "bone")}}


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


def test_weight_change_is_zero_for_an_untouched_encoder_and_grows_with_the_step():
    torch.manual_seed(0)
    initial = methods.create("mcc", "ci")
    trained = methods.create("mcc", "ci")
    trained.load_state_dict(initial.state_dict())
    assert pretext.weight_change(trained, initial) == 0.0
    frozen = [p for p in trained.parameters() if not p.requires_grad]
    assert frozen                                        # the momentum key encoder
    with torch.no_grad():
        for p in trained.parameters():
            p.mul_(1.01 if p.requires_grad else 2.0)     # every trained weight moves by 1 %
    # the key encoder doubled, and is left out
    assert pretext.weight_change(trained, initial) == pytest.approx(1.0, rel=1e-6)


def test_weight_change_is_reported_beside_the_pretext_metrics(ntu, one_thread):
    torch.manual_seed(0)
    initial = methods.create("crossclr", "ci")
    metrics = pretext.evaluate(initial, ntu, "xsub", torch.device("cpu"), initial=initial)
    assert metrics["weight_change"] == 0.0 and set(metrics) == EXPECTED["crossclr"] | {"weight_change"}


def test_embedding_spread_separates_a_collapsed_batch_from_a_spread_one():
    from methods.moco import embedding_spread

    same = torch.ones(8, 16) + 1e-4 * torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
    orthogonal = torch.eye(16)[:8] * 3.0
    assert embedding_spread(same) == pytest.approx(0.0, abs=1e-3)
    assert embedding_spread(orthogonal) == pytest.approx(100.0)
    assert embedding_spread(torch.stack([orthogonal[0], -orthogonal[0]])) == pytest.approx(200.0)   # antipodal
