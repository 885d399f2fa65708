"""Recognition protocols beside the supplementary's (issue 14.6): the Hi-TRS code's fine-tuning
(train_on_NTU_AR.py) and CrosSCLR's official linear evaluation; the record says which ran."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

import datasets
import methods
from benchmarks.config import RecognitionConfig, make_run_config
from benchmarks.tasks import protocols, recognition
from benchmarks.tasks.common import TaskContext
from tests.support import CACHE as TEST_CACHE

CACHE = TEST_CACHE / "synthetic-small"


def test_hitrs_code_lr_factors_per_epoch():
    """lr_lambda_ft / lr_lambda_train_scratch stepped before each epoch: epoch e uses lambda(e + 1)."""
    ft = [1.0] * 20 + [0.5] * 10 + [0.25] * 10 + [0.125] * 10 + [0.0625] * 10 + [0.03125] * 10
    assert [protocols.hitrs_code_factor(e, True) for e in range(70)] == ft
    assert protocols.hitrs_code_factor(200, True) == 0.0025          # the code's floor
    scratch = [1.0] * 30 + [0.5] * 10 + [0.25] * 10 + [0.125] * 5 + [0.0125] * 15
    assert [protocols.hitrs_code_factor(e, False) for e in range(70)] == pytest.approx(scratch)


@pytest.mark.filterwarnings("ignore:Detected call of")
def test_hitrs_code_optimizer_groups_clip_and_schedule():
    cfg = RecognitionConfig(protocol="hitrs_code")
    model = recognition.VideoClassifier(methods.create("hitrs", "ci"), 10)
    optimizer, scheduler, epochs, clip = protocols.finetune_optimizer(model, cfg, pretrained=True)
    assert isinstance(optimizer, torch.optim.AdamW) and (epochs, clip) == (70, 1.0)
    decay, plain = optimizer.param_groups
    assert (decay["weight_decay"], plain["weight_decay"]) == (0.01, 0.0)
    names = {id(p): n for n, p in model.named_parameters()}
    plain_names = {names[id(p)] for p in plain["params"]}
    assert "head.bias" in plain_names and "method.net.encoder.frame.pos" in plain_names
    assert "method.net.encoder.clip.fuse" in plain_names
    assert any(n.endswith("attn_norm.weight") for n in plain_names)
    assert "head.weight" in {names[id(p)] for p in decay["params"]}
    trace = []
    for _ in range(70):
        trace.append(optimizer.param_groups[0]["lr"])
        scheduler.step()
    assert trace == pytest.approx([4e-4 * protocols.hitrs_code_factor(e, True) for e in range(70)])
    assert protocols.finetune_batching(cfg) == "uniform"
    assert protocols.finetune_batching(RecognitionConfig()) == "bucket"
    sup = protocols.finetune_optimizer(model, RecognitionConfig(), pretrained=False)
    assert isinstance(sup[0], torch.optim.Adam) and sup[2:] == (70, 0.0)


def _official_linear(features, labels, classes, batch, seed):
    """CrosSCLR's linear_evaluation loop written out: SGD(3.0, momentum 0.9, no decay), heads
    N(0, .02) / zero bias, lr = base * 0.1 ** (epoch > 80) with 1-based epochs, one classifier
    on averaged logits."""
    heads = [nn.Linear(f.shape[1], classes) for f in features]
    for h in heads:
        h.weight.data.normal_(0.0, 0.02)
        h.bias.data.fill_(0)
    opt = torch.optim.SGD([p for h in heads for p in h.parameters()], lr=3.0, momentum=0.9, nesterov=False,
                          weight_decay=0.0)
    g = torch.Generator().manual_seed(seed)
    for epoch in range(1, 101):                # the official meta_info["epoch"] counts from 1
        for group in opt.param_groups:
            group["lr"] = 3.0 * 0.1 ** np.sum(epoch > np.array([80]))
        order = torch.randperm(len(labels), generator=g)
        for i in range(0, len(order), batch):
            items = order[i:i + batch]
            out = sum(h(f[items]) for h, f in zip(heads, features)) / len(heads)
            loss = nn.functional.cross_entropy(out, labels[items])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return heads


def test_crossclr_linear_protocol_equals_the_official_loop():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (48,), generator=g)
    features = [torch.randn(48, 6, generator=g) * 0.1 + labels[:, None] * 0.05 for _ in range(3)]
    cfg = RecognitionConfig(linear_protocol="crossclr", batch_size=16)
    torch.manual_seed(3)
    ours = protocols.train_linear(features, labels, 4, cfg, seed=5)
    torch.manual_seed(3)
    theirs = _official_linear(features, labels, 4, 16, seed=5)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a.weight, b.weight, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(a.bias, b.bias, rtol=1e-5, atol=1e-6)
    probs = protocols.linear_probs(ours, features)
    assert probs.shape == (48, 4) and np.isfinite(probs).all()


def test_protocol_names_are_validated_and_recorded():
    with pytest.raises(ValueError, match="recognition.protocol"):
        RecognitionConfig(protocol="official")
    with pytest.raises(ValueError, match="recognition.linear_protocol"):
        make_run_config("ci", {"recognition.linear_protocol": "sgd"})
    cfg = make_run_config("paper", {"recognition.protocol": "hitrs_code", "recognition.linear_protocol": "crossclr"})
    assert (cfg.recognition.protocol, cfg.recognition.linear_protocol) == ("hitrs_code", "crossclr")
    paper = make_run_config("paper").recognition
    assert (paper.protocol, paper.linear_protocol) == ("supplementary", "suite")


def test_supplementary_grad_clip_is_off_unless_set_and_validated():
    model = nn.Linear(4, 2)
    assert protocols.finetune_optimizer(model, make_run_config("paper").recognition, pretrained=True)[3] == 0.0
    clipped = make_run_config("paper", {"recognition.grad_clip": 1.0}).recognition
    assert protocols.finetune_optimizer(model, clipped, pretrained=True)[3] == 1.0
    with pytest.raises(ValueError, match="recognition.grad_clip"):
        RecognitionConfig(grad_clip=-1.0)


def test_hitrs_code_finetune_and_crossclr_linear_run_end_to_end(monkeypatch, one_thread):
    """A short run of both protocols on the synthetic world, and the joint "-3S" classifier."""
    world = datasets.ensure_synthetic(CACHE, size="small", seed=0, progress=False)
    cache = world["ntu"]
    monkeypatch.setattr(protocols, "HITRS_CODE", dataclasses.replace(protocols.HITRS_CODE, epochs=2))
    monkeypatch.setattr(protocols, "CROSSCLR_LINEAR", dataclasses.replace(protocols.CROSSCLR_LINEAR, epochs=3))
    base = make_run_config("ci").recognition
    cfg = dataclasses.replace(base, protocol="hitrs_code", linear_protocol="crossclr", max_frames=48)
    rows = cache.indices(cfg.split, "train")[:48]
    outputs = []
    for stream in ("joint", "motion", "bone"):
        config = methods.make_config("hitrs", "ci", stream=stream)
        ctx = TaskContext(method_name="hitrs",
                          make_method=lambda c=config: methods.create("hitrs", config=c), pretrained=True,
                          train_cache=cache, test_cache=cache, train_rows=rows,
                          test_rows=cache.indices(cfg.split, "test")[:24], task_config=cfg,
                          device=torch.device("cpu"), seed=0, progress=False)
        out = recognition.run(ctx)
        assert np.isfinite(list(out.metrics.values())).all() and "linear_top1" in out.metrics
        assert out.outputs["linear_features"]["train"].shape == (48, 64)
        outputs.append(out)
    metrics = recognition.combine_streams(outputs, ctx).metrics
    assert 0.0 <= metrics["linear_top1"] <= 100.0 and "top1" in metrics


def _ill_scaled(seed: int = 0):
    """4 separable classes hidden in features far from zero with a 1e-3 spread, as an untrained
    or unnormalised encoder gives them."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(64) % 4
    centres = torch.randn(4, 12, generator=g)
    signal = centres[labels] + 0.3 * torch.randn(64, 12, generator=g)
    return 40.0 + 1e-3 * signal, labels


def test_standardized_uses_the_training_statistics_for_every_part():
    train = _ill_scaled()[0].double()
    test = train[:10] + 2e-3
    out = protocols.standardized({"train": train, "test": test})
    torch.testing.assert_close(out["train"].mean(0), torch.zeros(12, dtype=train.dtype), atol=1e-9, rtol=0)
    torch.testing.assert_close(out["train"].std(0, unbiased=False), torch.ones(12, dtype=train.dtype), atol=1e-9, rtol=0)
    shift = 2e-3 / train.std(0, unbiased=False)
    torch.testing.assert_close(out["test"], out["train"][:10] + shift, atol=1e-6, rtol=0)
    single = protocols.standardized({"train": train.float()})["train"]  # float32 in, float32 out, as precise
    assert single.dtype == torch.float32
    torch.testing.assert_close(single.mean(0), torch.zeros(12), atol=1e-5, rtol=0)


def test_standardized_linear_evaluation_ignores_a_per_dimension_affine_change():
    """z-scoring makes the probe see the same inputs whatever offset and positive scale each
    feature dimension has; a constant dimension (an untrained unit) becomes zero, not NaN."""
    train, _ = _ill_scaled()
    scale, offset = torch.linspace(0.01, 100.0, 12), torch.linspace(-300.0, 300.0, 12)
    a = protocols.standardized({"train": train.double()})["train"]
    b = protocols.standardized({"train": train.double() * scale + offset})["train"]
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    constant = protocols.standardized({"train": torch.full((8, 3), 7.0)})["train"]
    assert torch.equal(constant, torch.zeros(8, 3))


def test_linear_standardize_is_off_in_paper_and_rescues_ill_scaled_features():
    assert make_run_config("paper").recognition.linear_standardize is False
    train, labels = _ill_scaled()
    cfg = RecognitionConfig(linear_lr=0.01, linear_epochs=30, batch_size=16)

    def accuracy(features):
        torch.manual_seed(0)
        heads = protocols.train_linear([features], labels, 4, cfg, seed=0)
        return (protocols.linear_probs(heads, [features]).argmax(1) == labels.numpy()).mean()
    assert accuracy(train) <= 0.5          # raw: one learning rate cannot fit this scale
    assert accuracy(protocols.standardized({"train": train})["train"]) >= 0.9
