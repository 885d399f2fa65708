"""Every method at its paper configuration, every stream, under CPU bf16 autocast (the CUDA
casting rules): pre-training loss (augmentations on), gradients and the three downstream
embeddings compute, and the bf16 loss is within 5% of an identical fp32 twin (same weights,
inputs, generator state and global RNG)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import methods
from benchmarks.perf.synthetic import random_walk_bank

STREAMS = ("joint", "motion", "bone")
BATCH = 8           # divides every paper queue size (MoCo enqueues whole batches)
# the CPU run is the CI check; the CUDA run (same twins, CUDA's own bf16 kernels) runs where a GPU is
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                               reason="no CUDA device here"))]


def _inputs(bodies: int, device: str = "cpu"):
    lengths = torch.as_tensor(np.random.default_rng(3).integers(30, 50, BATCH))
    bank = random_walk_bank(lengths.numpy(), bodies, 3, two_person_fraction=0.5)
    t = int(lengths.max())
    index = (bank.starts[:, None] + torch.arange(t)[None, :]).clamp(max=bank.frames.shape[0] - 1)
    x = bank.frames[index] * (torch.arange(t)[None, :] < lengths[:, None])[..., None, None, None]
    return x.contiguous().to(device), lengths.to(device)


def _twins(name: str, stream: str, device: str = "cpu", **overrides):
    torch.manual_seed(0)
    a = methods.create(name, "paper", stream=stream, **overrides)
    b = methods.create(name, "paper", stream=stream, **overrides)
    b.load_state_dict(a.state_dict())
    a.to(device), b.to(device)
    for key, value in vars(a).items():           # method generators: identical random draws
        if isinstance(value, torch.Generator):
            getattr(b, key).set_state(value.get_state())
    return a.train(), b.train()


def _loss(method, x, lengths, bf16: bool):
    torch.manual_seed(11)                         # dropout masks (seeds CUDA too)
    kind = x.device.type
    ctx = torch.autocast(kind, dtype=torch.bfloat16) if bf16 else torch.autocast(kind, enabled=False)
    with ctx:
        loss, logs = method.pretrain_loss(x, lengths)
    return loss, logs


def _check_pretraining(name: str, stream: str, device: str = "cpu", **overrides):
    x, lengths = _inputs(1 if name == "hitrs" else 2, device)
    fp32, bf16 = _twins(name, stream, device, **overrides)
    loss32, _ = _loss(fp32, x, lengths, bf16=False)
    loss16, logs = _loss(bf16, x, lengths, bf16=True)
    assert loss16.dtype == torch.float32, "losses stay float32 under autocast"
    assert torch.isfinite(loss16) and all(np.isfinite(v) for v in logs.values())
    rel = abs(float(loss16.detach()) - float(loss32.detach())) / abs(float(loss32.detach()))
    assert rel < 0.05, f"{name}/{stream}: bf16 loss {float(loss16):.5f} vs fp32 {float(loss32):.5f} ({rel:.1%})"
    loss16.backward()
    grads = [p.grad for p in bf16.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    assert all(p.dtype == torch.float32 for p in bf16.parameters()), "weights stay float32 (autocast casts copies)"
    return rel


def _check_embeddings(name: str, stream: str, device: str = "cpu"):
    fp32, bf16 = _twins(name, stream, device)
    fp32.eval(), bf16.eval()
    x, lengths = _inputs(2, device)
    clips = x[:, 10:17]
    with torch.no_grad():
        for call, args in (("video_embedding", (x, lengths)),  # video_embedding also feeds prediction
                           ("clip_embedding", (clips,))):
            ref = getattr(fp32, call)(*args)
            with torch.autocast(x.device.type, dtype=torch.bfloat16):
                got = getattr(bf16, call)(*args)
            assert got.shape == ref.shape and torch.isfinite(got).all(), f"{name}/{stream} {call}"
            cos = torch.nn.functional.cosine_similarity(got.float(), ref, dim=1)
            assert float(cos.min()) > 0.98, f"{name}/{stream} {call}: cosine to fp32 {float(cos.min()):.4f}"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("name", ["hitrs", "mcc", "crossclr"])
def test_paper_pretraining_under_bf16_matches_fp32_twin(name, stream, device, one_thread):
    _check_pretraining(name, stream, device)


def test_hitrs_paper_shear_always_drawn_under_bf16(one_thread):
    """Regression (issue 11): the shear einsum, made bf16 by autocast, was written into the
    float32 batch -> 'Index put requires the source and destination dtypes match' at step 1."""
    _check_pretraining("hitrs", "motion", aug_p=1.0, aug_spatial=("shear",))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("name", ["hitrs", "mcc", "crossclr"])
def test_paper_embeddings_under_bf16(name, stream, device, one_thread):
    _check_embeddings(name, stream, device)
