"""The registered Hi-TRS method: configs, level ablation, embeddings, schedule, a ci pre-training."""
from __future__ import annotations

import math

import pytest
import torch

import methods
from datasets.streams import to_stream
from methods.hitrs import HiTRS, HiTRSNet, PolynomialWarmup, make_config, parse_levels
from tests.support import lr_trace

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one intra-op thread


ALL_LEVELS = ["-", "F", "C", "V", "F+C", "F+V", "C+V", "F+C+V"]
TASK_KEYS = {"F": {"mjp/loss", "mjp/err_mm"}, "C": {"fov/loss", "fov/acc"}, "V": {"cov/loss", "cov/acc", "ncp/loss", "ncp/acc"}}


def smooth_batch(b=8, t=64, seed=0, bodies=1, min_len=24):
    """Synthetic-like skeletons: a base pose plus per-joint sinusoids, zero-padded after each length."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(b, 1, bodies, 25, 3, generator=g) * 0.3
    freq = torch.rand(b, 1, bodies, 25, 3, generator=g) * 0.3 + 0.05
    phase = torch.rand(b, 1, bodies, 25, 3, generator=g) * 6.28
    time = torch.arange(t, dtype=torch.float)[None, :, None, None, None]
    x = base + 0.2 * torch.sin(freq * time + phase)
    lengths = torch.randint(min_len, t + 1, (b,), generator=g)
    lengths[0] = t
    x = x * (torch.arange(t)[None, :] < lengths[:, None])[:, :, None, None, None]
    return x, lengths


def test_registry_and_profiles():
    assert "hitrs" in methods.available()
    for profile in ("paper", "small", "ci"):
        cfg = methods.make_config("hitrs", profile)
        assert cfg.levels == ("F", "C", "V") and cfg.stream == "joint"
    paper = methods.make_config("hitrs", "paper")
    assert (paper.d_model, paper.nhead, paper.d_att, paper.layers, paper.dropout) == (128, 8, 64, 3, 0.2)
    assert (paper.window, paper.stride, paper.dilation) == (7, 7, 2)
    assert (paper.loop.steps, paper.loop.batch_size, paper.loop.accumulation, paper.loop.grad_clip) == (30000, 64, 4, 1.0)
    assert (paper.lr, paper.weight_decay, paper.warmup_steps, paper.lr_end, paper.schedule_horizon) == \
        (4e-4, 0.01, 1000, 2e-6, 50000)
    assert methods.make_config("hitrs", "paper", schedule_horizon="30000").schedule_horizon == 30000
    assert methods.make_config("hitrs", "ci", **{"loop.steps": "7"}).loop.steps == 7


def test_levels_parsing():
    assert parse_levels("F+C+V") == ("F", "C", "V")
    assert parse_levels("V+F") == ("F", "V")
    assert parse_levels("-") == () and parse_levels("") == ()
    assert make_config("ci", levels="C,V").levels == ("C", "V")
    assert make_config("ci", levels="-").levels_name == "-"
    with pytest.raises(ValueError, match="subset of F, C, V"):
        make_config("ci", levels="F+X")
    with pytest.raises(ValueError, match="stream"):
        make_config("ci", stream="velocity")


@pytest.mark.parametrize("levels", ALL_LEVELS)
def test_level_ablation_trains_one_step(levels):
    torch.manual_seed(0)
    method = methods.create("hitrs", "ci", levels=levels)
    x, lengths = smooth_batch()
    optimizer, scheduler = method.configure_pretraining()
    before = {n: p.detach().clone() for n, p in method.named_parameters()}
    method.train()
    for _ in range(2):                           # step 0 has lr 0 (warm-up from zero, as the reference)
        optimizer.zero_grad()
        loss, logs = method.pretrain_loss(x, lengths)
        assert torch.isfinite(loss)
        loss.backward()
        optimizer.step()
        scheduler.step()
    present = set(method.config.levels)
    expected = set().union(*(TASK_KEYS[lv] for lv in present)) | ({"loss"} if present else set())
    assert set(logs) == expected
    changed = {n for n, p in method.named_parameters() if not torch.equal(p, before[n])}
    uses = {"F": ["heads.joint", "encoder.frame"], "C": ["heads.frame_order", "encoder.clip", "encoder.frame"],
            "V": ["heads.clip_order", "heads.next_clip", "encoder.video", "encoder.clip", "encoder.frame"]}
    trained = {prefix for lv in present for prefix in uses[lv]}
    for prefix in ["heads.joint", "heads.frame_order", "heads.clip_order", "heads.next_clip",
                   "encoder.frame", "encoder.clip", "encoder.video"]:
        hit = any(n.startswith(f"net.{prefix}") for n in changed)
        assert hit == (prefix in trained), (levels, prefix)


def test_pretrain_loss_splits_two_body_input():
    method = methods.create("hitrs", "ci", aug_p=0.0)
    x, lengths = smooth_batch(b=3, bodies=2)
    x[1, :, 1] = 0                                  # sample 1 has one person
    method.eval()
    loss, logs = method.pretrain_loss(x, lengths)
    assert torch.isfinite(loss) and logs["loss"] == pytest.approx(loss.item())


def test_generator_is_seeded_and_resumable():
    x, lengths = smooth_batch()
    a = methods.create("hitrs", "ci", seed=3)
    b = methods.create("hitrs", "ci", seed=3)
    b.load_state_dict(a.state_dict())
    a.eval(), b.eval()                               # no dropout: losses depend on the generator only
    assert a.pretrain_loss(x, lengths)[1] == b.pretrain_loss(x, lengths)[1]
    state = a.pretraining_state()
    first = a.pretrain_loss(x, lengths)[1]
    c = methods.create("hitrs", "ci", seed=99)
    c.load_state_dict(a.state_dict())
    c.load_pretraining_state(state)
    c.eval()
    assert c.pretrain_loss(x, lengths)[1] == first


@pytest.mark.parametrize("stream", ["joint", "motion", "bone"])
def test_embeddings_streams_and_bodies(stream):
    # the raw stream path: the input options (test_hitrs_input_options.py) off whatever a profile sets
    method = methods.create("hitrs", "ci", stream=stream, center_input=False, motion_scale=1.0).eval()
    x, lengths = smooth_batch(b=4, t=40, bodies=2)
    with torch.no_grad():
        video = method.video_embedding(x, lengths)
        assert video.shape == (4, method.video_dim) == (4, 64)
        direct = method.net.encoder.video_embedding(to_stream(x, stream, lengths), lengths)
        assert torch.allclose(video, direct)
        swapped = method.video_embedding(x.flip(2), lengths)
        assert torch.allclose(video, swapped, atol=1e-6)            # (body1 + body2) / 2
        one = method.video_embedding(x[:, :, :1], lengths)          # a missing body = zeros
        x0 = x.clone()
        x0[:, :, 1] = 0
        assert torch.allclose(one, method.video_embedding(x0, lengths), atol=1e-6)
        per_body = [method.net.encoder.video_embedding(to_stream(x[:, :, m:m + 1], stream, lengths), lengths) * 2
                    - method.net.encoder.video_embedding(torch.zeros_like(x[:, :, :1]), lengths) for m in (0, 1)]
        assert torch.allclose(video, (per_body[0] + per_body[1]) / 2, atol=1e-5)
        clips = x[:, :7]
        clip = method.clip_embedding(clips)
        assert clip.shape == (4, method.clip_dim) == (4, 32)
        assert torch.allclose(clip, method.net.encoder.clip_embedding(to_stream(clips, stream)))
    # padding beyond a length never changes the embedding
    x2 = x.clone()
    x2[1, lengths[1]:] = 5.0
    with torch.no_grad():
        assert torch.allclose(method.video_embedding(x2, lengths)[1], video[1], atol=1e-6)


def test_bad_inputs_are_named():
    method = methods.create("hitrs", "ci")
    with pytest.raises(ValueError, match=r"\(B, T, M, 25, 3\)"):
        method.pretrain_loss(torch.zeros(2, 30, 25, 3), torch.tensor([30, 30]))
    with pytest.raises(ValueError, match="at most 2 bodies"):
        method.video_embedding(torch.zeros(1, 30, 3, 25, 3), torch.tensor([30]))
    with pytest.raises(ValueError, match="do not fit"):
        method.video_embedding(torch.zeros(1, 30, 2, 25, 3), torch.tensor([31]))
    with pytest.raises(ValueError, match="clips of 7 frames"):
        method.clip_embedding(torch.zeros(2, 5, 2, 25, 3))


def test_polynomial_warmup_schedule():
    f = PolynomialWarmup(lr=4e-4, lr_end=2e-6, warmup=1000, horizon=50000)
    assert f(0) == 0.0 and f(500) == pytest.approx(0.5) and f(1000) == pytest.approx(1.0)
    mid = 1000 + (50000 - 1000) // 2
    assert f(mid) * 4e-4 == pytest.approx((4e-4 - 2e-6) * 0.5 + 2e-6)
    assert f(50000) * 4e-4 == pytest.approx(2e-6) and f(80000) * 4e-4 == pytest.approx(2e-6)
    method = methods.create("hitrs", "ci")
    cfg = method.config
    lrs = lr_trace(method, cfg.schedule_horizon + 5)
    assert lrs[0] == 0.0 and lrs[cfg.warmup_steps] == pytest.approx(cfg.lr)
    assert lrs[cfg.schedule_horizon] == pytest.approx(cfg.lr_end) and lrs[-1] == pytest.approx(cfg.lr_end)


def test_ci_pretraining_loss_falls():
    """~40 optimizer steps of the ci profile on synthetic-like data (CPU, seconds)."""
    torch.manual_seed(0)
    method: HiTRS = methods.create("hitrs", "ci")
    loop = method.config.loop
    optimizer, scheduler = method.configure_pretraining()
    x_all, len_all = smooth_batch(b=64, t=loop.max_frames, seed=1)
    method.train()
    history = []
    for step in range(loop.steps):
        rows = torch.arange(step * loop.batch_size, (step + 1) * loop.batch_size) % 64
        optimizer.zero_grad()
        loss, logs = method.pretrain_loss(x_all[rows], len_all[rows])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(method.parameters(), loop.grad_clip)
        optimizer.step()
        scheduler.step()
        history.append(logs)
    assert all(math.isfinite(h["loss"]) for h in history)
    first = sum(h["loss"] for h in history[:8]) / 8
    last = sum(h["loss"] for h in history[-8:]) / 8
    assert last < 0.9 * first, (first, last)
    assert sum(h["mjp/loss"] for h in history[-8:]) < sum(h["mjp/loss"] for h in history[:8])


def test_reference_init_starts_a_levels_blocks_identical():
    """Issue 14.2: the authors' encoder deep-copies one block per level."""
    torch.manual_seed(0)
    ref = HiTRSNet(make_config("paper", d_model=16, nhead=2, d_att=8, layers=3))
    ind = HiTRSNet(make_config("paper", d_model=16, nhead=2, d_att=8, layers=3, init="independent"))
    assert make_config("paper").init == "reference"
    for level in ("frame", "clip", "video"):
        blocks = getattr(ref.encoder, level).blocks
        first = blocks[0].state_dict()
        for block in blocks[1:]:
            assert all(torch.equal(first[k], v) for k, v in block.state_dict().items())
            assert all(p is not q for p, q in zip(blocks[0].parameters(), block.parameters()))  # copies, not ties
        other = getattr(ind.encoder, level).blocks
        assert not torch.equal(other[0].qkv.weight, other[1].qkv.weight)
    with pytest.raises(ValueError, match="HiTRSConfig.init"):
        make_config("ci", init="copy")
