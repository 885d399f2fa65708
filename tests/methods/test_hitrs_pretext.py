"""Hi-TRS pretext tasks and windowing on hand-built inputs."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from methods.hitrs import clip_attention_mask, window_counts, window_index
from methods.hitrs.encoder import sincos_1d, sincos_2d
from methods.hitrs.pretext import (frame_order_centres, info_nce, mask_joints, masked_smooth_l1, order_loss,
                                   sample_swap)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one intra-op thread



def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ---- windows ---------------------------------------------------------------------------------
def reference_windows(length, w, s, d):
    """The reference's loop, re-stated from hitrs.md: pad, step, stop rule, clamp a short window."""
    p = (w // 2) * d
    frames = length + 2 * p
    out, start = [], 0
    while True:
        idx = [min(start + j * d, frames - 1) for j in range(w)]
        out.append(idx)
        start += s
        if idx[-1] >= frames - 1 - p and start + (w - 1) * d > frames - 1:
            return out


@pytest.mark.parametrize("length,expected", [(64, 10), (100, 15), (300, 43)])
def test_window_counts_examples(length, expected):
    assert window_counts(torch.tensor([length])).item() == expected


@pytest.mark.parametrize("w,s,d", [(7, 7, 2), (5, 3, 1), (7, 1, 2), (3, 4, 3)])
def test_window_index_matches_reference_loop(w, s, d):
    lengths = torch.arange(1, 130)
    idx, valid, counts = window_index(lengths, w, s, d)
    for i, length in enumerate(lengths.tolist()):
        ref = reference_windows(length, w, s, d)
        assert counts[i].item() == len(ref)
        assert valid[i].sum().item() == len(ref)
        assert idx[i, :len(ref)].tolist() == ref
    if s == 1:
        assert torch.equal(counts, lengths)     # stride 1: one clip centred on every frame


def test_clip_attention_mask():
    mask = clip_attention_mask(7)
    assert mask.shape == (176, 176)
    blocked = ~mask
    assert blocked[0].sum().item() == 24                     # the other joints of frame 0
    assert mask[0, 0] and mask[0, 25] and mask[25, 0]        # itself; same joint, next frame
    assert not mask[0, 1] and not mask[30, 49]               # same frame
    assert blocked[:175].sum(1).eq(24).all()
    assert mask[-1].all() and mask[:, -1].all()              # fuse token sees / is seen by all


def test_sincos_tables():
    t = sincos_1d(25, 8)
    assert torch.allclose(t[3, 0], torch.tensor(math.sin(3.0)))
    assert torch.allclose(t[3, 1], torch.tensor(math.cos(3.0)))
    assert torch.allclose(t[3, 2], torch.tensor(math.sin(3 * 10000 ** (-2 / 8))))
    t2 = sincos_2d(16, 7, 25)                                # (frames, joints, channels)
    assert t2.shape == (7, 25, 16)
    assert torch.allclose(t2[2, 5, :8], sincos_1d(25, 8)[5])   # first half: joint index
    assert torch.allclose(t2[2, 5, 8:], sincos_1d(7, 8)[2])    # second half: frame index


# ---- masked joint prediction -----------------------------------------------------------------
def coded_sequence(b, t, v=25):
    """Every joint holds (frame + 10, joint + 10, sample + 10): replacements reveal their source."""
    tt, vv = torch.meshgrid(torch.arange(t), torch.arange(v), indexing="ij")
    s = torch.stack([tt + 10.0, vv + 10.0, torch.zeros_like(tt, dtype=torch.float)], -1)
    s = s[None].repeat(b, 1, 1, 1)
    s[..., 2] = torch.arange(b, dtype=torch.float)[:, None, None] + 10
    return s


def test_masking_ratios_and_sources():
    b, t = 64, 100
    lengths = torch.randint(20, t + 1, (b,), generator=gen(1))
    s = coded_sequence(b, t)
    valid = torch.arange(t)[None] < lengths[:, None]
    s = s * valid[..., None, None]
    masked, picked = mask_joints(s, lengths, gen(2))
    assert not picked[~valid].any()                           # padding never picked
    n_valid = valid.sum().item() * 25
    assert abs(picked.sum().item() / n_valid - 0.15) < 0.01
    token = (masked == 1.0).all(-1) & picked
    changed = (masked != s).any(-1)
    other = changed & ~token
    kept = picked & ~changed
    n = picked.sum().item()
    assert abs(token.sum().item() / n - 0.8) < 0.01
    assert abs(other.sum().item() / n - 0.1) < 0.01
    assert abs(kept.sum().item() / n - 0.1) < 0.01
    assert not (changed & ~picked).any()                      # only picked joints change
    bi, ti, vi = other.nonzero(as_tuple=True)
    src = masked[bi, ti, vi]
    src_t, src_v, src_b = (src[:, 0] - 10).long(), (src[:, 1] - 10).long(), (src[:, 2] - 10).long()
    assert torch.equal(src_b, bi)                             # same sequence
    assert (src_t != ti).all() and (src_v != vi).all()        # another frame, another joint
    assert (src_t < lengths[bi]).all() and (src_t >= 0).all()
    assert len(set(src_t.tolist())) > 50 and len(set(src_v.tolist())) == 25


def test_masked_smooth_l1_matches_selected_mean():
    pred, target = torch.randn(4, 9, 25, 3), torch.randn(4, 9, 25, 3)
    picked = torch.rand(4, 9, 25) < 0.3
    direct = F.smooth_l1_loss(pred[picked] * 10, target[picked] * 10)
    assert torch.allclose(masked_smooth_l1(pred, target, picked, 10.0), direct)
    assert masked_smooth_l1(pred, target, torch.zeros_like(picked), 10.0).item() == 0.0


# ---- order verification ----------------------------------------------------------------------
def test_swap_constraints_and_uniformity():
    n = torch.tensor([0, 1, 2, 3, 4, 7, 10, 43] * 500)
    perm, ok = sample_swap(n, 43, gen(3))
    assert torch.equal(ok, n >= 2)
    ident = torch.arange(43).expand_as(perm)
    moved = perm != ident
    assert (moved.sum(1) == torch.where(ok, 2, 0)).all()      # exactly two swapped
    rows = ok.nonzero().flatten()
    a = moved[rows].float().argmax(1)                          # first moved position
    c = 42 - moved[rows].flip(1).float().argmax(1)             # last moved position
    r = torch.arange(len(rows))
    assert torch.equal(perm[rows, a], c) and torch.equal(perm[rows, c], a)
    assert (c < n[rows]).all()
    assert ((c - a >= 2) | ((n[rows] == 2) & (a == 0) & (c == 1))).all()
    assert r.numel() == int(ok.sum())
    # n = 7: the 15 pairs at distance >= 2, drawn uniformly
    perm7, _ = sample_swap(torch.full((15000,), 7), 7, gen(4))
    moved7 = perm7 != torch.arange(7)
    assert (moved7.sum(1) == 2).all()
    code = (moved7.long() * (2 ** torch.arange(7))).sum(1)    # which two positions moved
    values, counts = code.unique(return_counts=True)
    expect = {2 ** a + 2 ** c for a, c in itertools.combinations(range(7), 2) if c - a >= 2}
    assert set(values.tolist()) == expect and len(expect) == 15
    assert (counts - 1000).abs().max() < 150

def test_frame_order_centres_only_where_motion():
    b, t = 3, 60
    s = torch.zeros(b, t, 25, 3) + 0.5
    s[0, 30:34] += torch.arange(4.0)[:, None, None] * 0.1          # motion at frames 31..34 (34 drops back)
    s[2, :, 0, 0] = torch.arange(float(t))                          # moves everywhere
    lengths = torch.tensor([60, 60, 40])
    seen = set()
    for seed in range(200):
        centre, ok = frame_order_centres(s, lengths, 7, 2, gen(seed))
        assert ok.tolist() == [True, False, True]
        c = centre[0].item()
        assert any(31 <= c - 6 + 2 * j <= 34 for j in range(7)), c   # covers a moving frame
        assert centre[2].item() < 40
        seen.add(c)
    assert seen == {c for c in range(60) if any(31 <= c - 6 + 2 * j <= 34 for j in range(7))}


def test_order_loss_masks_samples():
    orig, perm = torch.randn(5, 2), torch.randn(5, 2)
    weight = torch.tensor([1.0, 0, 1, 1, 0])
    loss, acc = order_loss(orig, perm, weight)
    keep = weight.bool()
    direct = F.cross_entropy(torch.cat([orig[keep], perm[keep]]),
                             torch.tensor([1] * 3 + [0] * 3))
    assert torch.allclose(loss, direct)
    pred = torch.cat([orig[keep], perm[keep]]).argmax(1)
    assert acc.item() == pytest.approx((pred == torch.tensor([1] * 3 + [0] * 3)).float().mean().item())


# ---- next-clip InfoNCE -----------------------------------------------------------------------
def test_info_nce_matches_direct_formula():
    pred, target = torch.randn(6, 16), torch.randn(6, 16)
    loss, acc = info_nce(pred, target, 0.07)
    total, hits = 0.0, 0
    for i in range(6):
        sims = [float(pred[i] @ target[j] / (pred[i].norm() * target[j].norm())) / 0.07 for j in range(6)]
        total += -sims[i] + math.log(sum(math.exp(v) for v in sims))
        hits += int(max(range(6), key=lambda j: sims[j]) == i)
    assert loss.item() == pytest.approx(total / 6, rel=1e-5)
    assert acc.item() == pytest.approx(hits / 6)
    valid = torch.tensor([True, False, True, True, False, True])
    sub, _ = info_nce(pred[valid], target[valid], 0.07)
    masked, _ = info_nce(pred, target, 0.07, valid=valid)
    assert masked.item() == pytest.approx(sub.item(), rel=1e-5)
    aligned, acc_aligned = info_nce(target * 3, target, 0.07)
    assert acc_aligned.item() == 1.0 and aligned.item() < loss.item()


# ---- the joint forward reads the right frames --------------------------------------------------
class _CoordsAsFeatures(torch.nn.Module):
    """Stand-in F-TRS: a joint's feature is its (frame, joint, sample) code, zero-padded to d."""

    def __init__(self, d):
        super().__init__()
        self.d = d
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x):
        return F.pad(x, (0, self.d - x.shape[-1])) * self.scale


def test_pretext_forward_gathers_reference_frames():
    import methods
    from methods.hitrs.pretext import pretext_losses

    method = methods.create("hitrs", "ci", mask_prob=0.0)
    enc, cfg = method.net.encoder, method.config
    enc.frame = _CoordsAsFeatures(cfg.d_model)
    seen = {}
    enc.clip.register_forward_hook(lambda mod, inp, out: seen.update(clip=inp[0].detach()) or None)
    enc.video.register_forward_hook(lambda mod, inp, out: seen.update(video=(inp[0].detach(), inp[1])) or None)
    b, t = 4, 60
    lengths = torch.tensor([60, 45, 33, 20])
    s = coded_sequence(b, t) * (torch.arange(t)[None] < lengths[:, None])[..., None, None]
    s[..., 0] = torch.where(s[..., 0] > 0, s[..., 0], 0)
    pretext_losses(enc, method.net.heads, s, lengths, cfg, gen(5))
    frames = seen["clip"][..., 0, 0] - 10                # frame code of joint 0 (-10 = zero padding)
    counts = window_counts(lengths)
    n_video = counts - 1
    orig, perm = frames[:b], frames[b:2 * b]
    for i in range(b):
        centre = orig[i, 3].item()                       # middle slot = the centre frame
        expect = torch.tensor([centre - 6 + 2 * j for j in range(7)], dtype=torch.float)
        expect[(expect < 0) | (expect >= lengths[i])] = -10
        assert torch.equal(orig[i], expect)
        moved = (perm[i] != orig[i]).nonzero().flatten()
        assert len(moved) == 2 and moved[1] - moved[0] >= 2
        assert torch.equal(perm[i].sort().values, orig[i].sort().values)
    windows = frames[2 * b:-b]
    last = frames[-b:]
    row = 0
    for i in range(b):
        for k in range(n_video[i].item()):
            assert windows[row].tolist() == [f if 0 <= f < lengths[i] else -10
                                             for f in (7 * k - 6 + 2 * j for j in range(7))]
            row += 1
        k = counts[i].item() - 1
        assert last[i].tolist() == [f if 0 <= f < lengths[i] else -10 for f in (7 * k - 6 + 2 * j for j in range(7))]
    assert row == windows.shape[0]
    table, valid = seen["video"]
    assert torch.equal(valid[:b], torch.arange(table.shape[1])[None] < n_video[:, None])
    for i in range(b):
        diff = (table[i] != table[b + i]).any(-1).nonzero().flatten()
        assert len(diff) == 2 and diff[1] < n_video[i]
        assert diff[1] - diff[0] >= 2 or (n_video[i] == 2 and diff.tolist() == [0, 1])
    assert n_video.tolist() == [8, 6, 4, 2]
