"""The static, sync-free training step (issue 24): meta-device runs, capacities, equality of
the static and variable-shape paths, and one-graph capture under torch.compile."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

import methods
from benchmarks.perf import __main__ as perf_main
from benchmarks.perf.shapes import epoch_shapes
from benchmarks.perf.workloads import PHASES, build
from methods.hitrs.windows import count_for, window_counts
from methods.packing import bucket, pack

PAIRS = [(m, p) for m in ("hitrs", "mcc", "crossclr") for p in PHASES]


def test_meta_device_runs_every_method_and_phase(tmp_path):
    """torch raises on item / nonzero / tolist / boolean indexing of a meta tensor and on mixing
    CPU and meta tensors: a complete run means no step reads device data on the host."""
    code = perf_main.main(["--device", "meta", "--profile", "ci", "--steps", "1", "--warmup", "1",
                           "--flop-steps", "0", "--methods", "hitrs,mcc,crossclr", "--out", str(tmp_path)])
    result = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert code == 0 and result["skipped"] == []
    assert {(r["method"], r["phase"]) for r in result["rows"]} == set(PAIRS)
    assert result["device"] == "meta"


def test_meta_device_refuses_the_reference_pattern(tmp_path):
    with pytest.raises(SystemExit, match="ours pattern only"):
        perf_main.main(["--device", "meta", "--reference-pattern", "--out", str(tmp_path)])


def test_bucket_rounds_up_to_few_sizes():
    assert [bucket(n) for n in (1, 8, 15, 16, 17, 100, 5121)] == [1, 8, 15, 16, 18, 104, 5632]
    assert all(n <= bucket(n, bits) <= n * (1 + 2 ** (1 - bits)) for n in range(1, 3000) for bits in (2, 3, 4))


def test_pack_equals_nonzero_selection():
    g = torch.Generator().manual_seed(0)
    valid = torch.rand(5, 9, generator=g) < 0.4
    table = torch.randn(5, 9, 3, generator=g)
    exact, padded = pack(valid), pack(valid, int(valid.sum()) + 7)
    assert torch.equal(exact.gather(table), table[valid])
    assert torch.equal(padded.gather(table)[padded.ok], table[valid])
    rows = exact.gather(table) * 2
    assert torch.equal(exact.unpack(rows), torch.where(valid[..., None], table * 2, torch.zeros(())))
    assert torch.equal(padded.unpack(padded.gather(table) * 2), exact.unpack(rows))
    with pytest.raises(ValueError, match="capacity 3 is below"):
        pack(valid, 3)


def test_count_for_matches_the_vectorised_rule():
    lengths = torch.arange(1, 320)
    for stride in (7, 14):
        assert window_counts(lengths, 7, stride, 2).tolist() == [count_for(int(n), 7, stride, 2) for n in lengths]


@pytest.mark.parametrize("use", ["pretrain", "embed"])
def test_capacities_bound_what_a_batch_needs(use):
    method = methods.create("hitrs", "ci")
    rng = np.random.default_rng(0)
    for _ in range(50):
        lengths = rng.integers(19, 49, size=8)
        exact = method.capacities(lengths, 48, use, exact=True)
        rounded = method.capacities(lengths, 48, use)
        assert exact.keys() == rounded.keys() and all(rounded[k] >= exact[k] for k in exact)


def test_paper_epoch_has_at_most_eight_shapes_per_phase():
    for name, phase in PAIRS:
        shapes = epoch_shapes(name, phase, "paper")
        assert shapes["static"] <= 8, shapes
    assert epoch_shapes("hitrs", "pretrain", "paper")["variable"] > 500   # what the old layout gave


def _grads(module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in module.parameters() if p.grad is not None])


def _loss_and_grads(method, x, lengths, capacities, seed=5):
    method.zero_grad()
    if hasattr(method, "draws"):
        method.generator.manual_seed(seed)
    else:
        method.generator("cpu").manual_seed(seed)
    with method.static_shapes(capacities):
        loss, _ = method.pretrain_loss(x, lengths)
    loss.backward()
    return loss.detach(), _grads(method)


def _close(a, b, tol=1e-6):
    return float((a - b).norm() / b.norm().clamp(min=1e-30)) <= tol


@pytest.mark.parametrize("levels", ["F", "C", "V", "F+C", "F+V", "C+V", "F+C+V"])
@pytest.mark.parametrize("stream", ["joint", "motion", "bone"])
def test_hitrs_static_path_equals_variable_path(levels, stream):
    torch.manual_seed(0)
    method = methods.create("hitrs", "ci", levels=levels, stream=stream, dropout=0.0).train()
    lengths = torch.tensor([48, 30, 19, 25, 40, 33])
    x = torch.randn(6, 48, 1, 25, 3) * 0.3 * (torch.arange(48)[None] < lengths[:, None])[..., None, None, None]
    loss_v, grad_v = _loss_and_grads(method, x, lengths, {})
    loss_s, grad_s = _loss_and_grads(method, x, lengths, method.capacities(lengths.numpy(), 48, "pretrain"))
    assert _close(loss_s, loss_v) and _close(grad_s, grad_v)


def test_hitrs_embedding_static_equals_variable():
    torch.manual_seed(0)
    method = methods.create("hitrs", "ci", dropout=0.0).eval()
    lengths = torch.tensor([64, 20, 41])
    x = torch.randn(3, 64, 2, 25, 3) * (torch.arange(64)[None] < lengths[:, None])[..., None, None, None]
    with torch.no_grad():
        variable = method.video_embedding(x, lengths)
        with method.static_shapes(method.capacities(lengths.numpy(), 64, "embed")):
            static = method.video_embedding(x, lengths)
    assert _close(static, variable)


@pytest.mark.parametrize("name", ["mcc", "crossclr"])
def test_memory_bank_static_padding_equals_variable(name):
    """The memory-bank methods resample to fixed frames: padding T to the static length
    changes nothing (same draws, same queue)."""
    torch.manual_seed(0)
    method = methods.create(name, "ci", dropout=0.0).train()
    lengths = torch.tensor([40, 25, 33, 21, 30, 28, 37, 22])
    x = torch.randn(8, 40, 2, 25, 3) * (torch.arange(40)[None] < lengths[:, None])[..., None, None, None]
    start = copy.deepcopy(method.state_dict())
    loss_v, grad_v = _loss_and_grads(method, x, lengths, {})
    method.load_state_dict(start)
    padded = torch.cat([x, torch.zeros(8, 80, 2, 25, 3)], dim=1)
    loss_s, grad_s = _loss_and_grads(method, padded, lengths, {})
    assert _close(loss_s, loss_v) and _close(grad_s, grad_v)


@pytest.mark.parametrize("name,phase", PAIRS)
def test_step_is_captured_as_one_graph(name, phase):
    """``torch.compile(fullgraph=True, dynamic=False)`` traces the micro-batch loss of every
    (method, phase) without a graph break (aot_eager: no code generation on CPU)."""
    wl = build(name, phase, "ci", steps=1)
    for module in wl.net.modules():
        if hasattr(module, "use_default_rng"):
            module.use_default_rng = True
    batch = next(wl.host_batches("bucketed", False, 0))
    compiled = torch.compile(wl.net, fullgraph=True, dynamic=False, backend="aot_eager")
    shapes = wl.shapes(batch.capacities) if wl.shapes is not None else torch.enable_grad()
    with shapes:
        loss = compiled(*batch.tensors)
    loss.backward()
    assert torch.isfinite(loss)


def test_fused_accumulation_equals_its_micro_batches(monkeypatch):
    """One micro-batch of 3 x 4 samples with ``loss_groups`` 3 gives the loss and gradients of
    three micro-batches of 4 averaged (next-clip negatives within each group), given the same
    random draws (recorded per micro-batch, replayed concatenated)."""
    from methods.hitrs.pretext import pretext_losses
    torch.manual_seed(0)
    method = methods.create("hitrs", "ci", dropout=0.0)
    encoder, heads, cfg = method.net.encoder, method.net.heads, method.config
    groups, per, frames = 3, 4, 40
    lengths = torch.randint(19, frames + 1, (groups * per,))
    s = torch.randn(groups * per, frames, 25, 3) * (torch.arange(frames)[None] < lengths[:, None])[..., None, None]
    real_rand, drawn = torch.rand, []
    monkeypatch.setattr(torch, "rand", lambda *a, **k: drawn[-1].append(real_rand(*a, **k)) or drawn[-1][-1])
    method.zero_grad()
    micro_losses, micro_logs = [], []
    for k in range(groups):
        drawn.append([])
        part = slice(k * per, (k + 1) * per)
        caps = method.capacities(lengths[part].numpy(), frames, "pretrain")
        loss, logs = pretext_losses(encoder, heads, s[part], lengths[part], cfg, None, caps)
        (loss / groups).backward()
        micro_losses.append(loss.detach())
        micro_logs.append(logs)
    accumulated = _grads(method)
    replay = iter([torch.cat(calls, dim=1 if calls[0].dim() == 4 else 0) for calls in zip(*drawn)])
    monkeypatch.setattr(torch, "rand", lambda *a, **k: next(replay))
    method.zero_grad()
    caps = {**method.capacities(lengths.numpy(), frames, "pretrain"), "loss_groups": groups}
    loss, logs = pretext_losses(encoder, heads, s, lengths, cfg, None, caps)
    loss.backward()
    assert _close(loss.detach(), torch.stack(micro_losses).mean()) and _close(_grads(method), accumulated)
    for key in logs:
        assert _close(logs[key], torch.stack([m[key] for m in micro_logs]).mean(), tol=1e-5), key


def test_engine_fuses_accumulation_into_one_micro_batch(tmp_path):
    """``loop.fuse_accumulation``: the engine steps on batch_size x accumulation samples with
    ``loss_groups``; refused for a method without per-group losses."""
    from benchmarks.engine.pretrain import fused_accumulation
    hitrs = methods.create("hitrs", "ci", **{"loop.accumulation": 2, "loop.fuse_accumulation": True})
    order = [np.arange(i, i + 4) for i in range(0, 20, 4)]
    fused, capacities, accumulation = fused_accumulation(hitrs, lambda epoch: order)
    assert accumulation == 1 and [len(b) for b in fused(0)] == [8, 8]          # the 5th batch is dropped
    assert np.array_equal(fused(0)[1], np.concatenate(order[2:4]))
    assert capacities(np.full(8, 30), 48)["loss_groups"] == 2
    mcc = methods.create("mcc", "ci", **{"loop.accumulation": 2, "loop.fuse_accumulation": True})
    with pytest.raises(ValueError, match="no per-group losses"):
        fused_accumulation(mcc, lambda epoch: order)
