"""MAMP behind the SkeletonMethod interface (not registered yet): losses, optimiser and schedule,
embeddings, determinism, static shapes and the meta device (no host read in a step)."""
from __future__ import annotations

import math

import pytest
import torch

import methods
from methods.mamp import MAMP, PROFILES, WarmupCosine, create, make_config, masking_order, patchify

pytestmark = pytest.mark.usefixtures("one_thread")


def _batch(B=3, T=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, 2, 25, 3, generator=g) * 0.3 + torch.tensor([0.0, 0.2, 3.0])
    lengths = torch.tensor([T, T - 12, 20][:B])
    x[1, lengths[1]:] = 0
    x[2, lengths[2]:] = 0
    x[0, :, 1] = 0                                       # one single-body sample
    return x, lengths


def test_not_registered():
    assert "mamp" not in methods.available()


def test_paper_config_and_parameter_counts():
    cfg = make_config("paper")
    assert (cfg.dim_feat, cfg.depth, cfg.decoder_depth, cfg.num_heads, cfg.num_frames, cfg.t_patch_size) == \
        (256, 8, 3, 8, 120, 4)
    assert (cfg.mask_ratio, cfg.motion_aware_tau, cfg.tokens, cfg.kept_tokens) == (0.9, 0.8, 750, 74)
    assert (cfg.lr, cfg.min_lr, cfg.weight_decay, cfg.betas) == (1e-3, 5e-4, 0.05, (0.9, 0.95))
    assert (cfg.warmup_steps, cfg.total_steps, cfg.loop.steps, cfg.loop.batch_size) == (6260, 125_200, 125_200, 128)
    count = lambda m: sum(p.numel() for p in m.parameters())       # noqa: E731
    assert count(MAMP(cfg)) == 8_789_004                              # the reference model, layer8+3
    assert count(create("paper", decoder_depth=5)) == 10_368_524      # layer8+5


def test_pretrain_loss_backward_and_logs():
    torch.manual_seed(0)
    m = create("ci").train()
    x, lengths = _batch()
    loss, logs = m.pretrain_loss(x, lengths)
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert all(torch.is_tensor(v) and v.dim() == 0 for v in logs.values())
    loss.backward()
    grads = {n: p.grad for n, p in m.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values()), \
        [n for n, g in grads.items() if g is None]
    assert grads["net.embed.weight"].abs().sum() > 0 and grads["net.decoder_pred.weight"].abs().sum() > 0


def test_same_seed_same_loss_and_generator_state():
    x, lengths = _batch()
    a, b = create("ci", seed=3).train(), create("ci", seed=3).train()
    b.load_state_dict(a.state_dict())
    la, lb = a.pretrain_loss(x, lengths)[0], b.pretrain_loss(x, lengths)[0]
    assert torch.equal(la, lb)
    state = a.pretraining_state()
    l2 = a.pretrain_loss(x, lengths)[0]
    a.load_pretraining_state(state)
    assert torch.equal(a.pretrain_loss(x, lengths)[0], l2)


def test_motion_aware_masking_prefers_keeping_still_tokens():
    """Tokens with large motion are masked more often than still ones (tau 0.8 vs uniform)."""
    cfg = make_config("ci")
    xs = torch.zeros(64, cfg.num_frames, 25, 3)
    xs[:, :, :5] = torch.randn(64, cfg.num_frames, 5, 3)          # joints 0-4 move, the rest are still
    patches = patchify(xs, cfg.t_patch_size, cfg.patch_size)
    order = masking_order(patches, 0.8, torch.Generator().manual_seed(0))
    kept = torch.zeros(64, cfg.tokens).scatter_(1, order[:, :cfg.kept_tokens], 1.0).view(64, -1, 25)
    assert kept[:, :, :5].mean() < kept[:, :, 5:].mean()
    uniform = masking_order(patches, 0.0, torch.Generator().manual_seed(0))
    assert uniform.shape == order.shape


def test_optimizer_groups_and_schedule():
    m = create("ci")
    opt, sched = m.configure_pretraining()
    assert [g["weight_decay"] for g in opt.param_groups] == [0.0, m.config.weight_decay]
    decayed = {id(p) for p in opt.param_groups[1]["params"]}
    names = {n for n, p in m.named_parameters() if id(p) in decayed}
    assert "net.temp_embed" in names and "net.mask_token" in names and "net.embed.weight" in names
    assert not any(n.endswith(".bias") or "norm" in n for n in names)
    f = WarmupCosine(1e-3, 5e-4, 10, 110)
    assert f(0) == 0.0 and f(5) == 0.5 and f(10) == 1.0
    assert math.isclose(f(60) * 1e-3, 5e-4 + 5e-4 * 0.5) and math.isclose(f(110) * 1e-3, 5e-4)
    assert math.isclose(f(500) * 1e-3, 5e-4)
    assert opt.param_groups[0]["lr"] == 0.0                     # LambdaLR applied step 0's factor


@pytest.mark.parametrize("clip_mode", ["resize", "native"])
def test_embeddings(clip_mode):
    m = create("ci", clip_mode=clip_mode).eval()
    x, lengths = _batch()
    with torch.no_grad():
        v = m.video_embedding(x, lengths)
        c = m.clip_embedding(x[:, :7])
        frames = m.detection_frames(x, lengths)
        d = m.detection_clip_embedding(frames[:, :7])
    assert v.shape == (3, m.video_dim) and c.shape == (3, m.clip_dim) and d.shape == (3, m.clip_dim)
    assert torch.isfinite(v).all() and torch.isfinite(c).all() and torch.allclose(c, d, atol=1e-6)
    assert v.shape[1] == m.config.dim_feat
    enc = {id(p) for p in m.encoder_parameters()}
    assert enc and all(id(p) in enc for n, p in m.named_parameters() if not ("decoder" in n or "mask_token" in n))


def test_pretext_metrics_leave_state():
    m = create("ci").train()
    x, lengths = _batch()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    out = m.pretext_metrics(x, lengths, torch.Generator().manual_seed(0))
    assert set(out) == {"masked_motion_err"} and math.isfinite(out["masked_motion_err"])
    assert m.training and all(torch.equal(before[k], v) for k, v in m.state_dict().items())


def test_meta_device_step():
    """A whole step on data-less tensors: any host read of device data would raise."""
    m = create("ci").train().to("meta")
    x = torch.empty(2, 40, 2, 25, 3, device="meta")
    lengths = torch.empty(2, dtype=torch.long, device="meta")
    loss, logs = m.pretrain_loss(x, lengths)
    loss.backward()
    assert loss.shape == () and all(v.shape == () for v in logs.values())
    assert m.video_embedding(x, lengths).shape == (2, m.video_dim)


def test_profiles_validate():
    assert set(PROFILES) == {"paper", "small", "ci"}
    with pytest.raises(ValueError, match="num_heads"):
        make_config("ci", dim_feat=15)
    with pytest.raises(ValueError, match="t_patch_size"):
        make_config("ci", num_frames=30, t_patch_size=4)
    with pytest.raises(ValueError, match="stream"):
        make_config("ci", stream="velocity")
