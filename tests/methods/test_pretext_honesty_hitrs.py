"""Properties that make Hi-TRS's pretext tasks honest, tested through the public functions
``methods.hitrs.pretext.mask_joints`` / ``pretext_losses`` on the ``ci`` model.

What an honest pretext task needs (the spec: ../shared/spec/hitrs.md, "Pre-training tasks"):

* masked-joint prediction must not see what it predicts: F-TRS reads the MASKED input, so the
  prediction at a joint replaced by the [MASK] token cannot depend on that joint's original
  value; and the masking follows the configured rates (15 % picked; of those 80 % token, 10 %
  another joint of another frame, 10 % kept);
* the order tasks must be balanced (as many originals as permuted copies) and the permuted copy
  must differ from the original only by its order (same frames / clips, same length and
  key-padding mask), so neither the label prior nor the mask can tell them apart;
* next-clip prediction must not be able to copy its target: the target window shares no real
  frame with what V-TRS reads.

The tests observe the pipeline from outside: a forward hook on ``encoder.frame`` records what
F-TRS reads, a hook on ``heads.joint`` records the predictions and, through their gradient, which
joints the loss scores (the picked ones). Nothing here reads private helpers, so they hold for any
implementation of ``pretext_losses`` that keeps its signature.
"""
from __future__ import annotations

import math

import pytest
import torch

import methods
from methods.hitrs.config import make_config
from methods.hitrs.pretext import mask_joints, pretext_losses

#: the reference's masking (hitrs.md, task 1), spelled here independently of the config
SPEC_MASK = {"mask_prob": 0.15, "mask_token_prob": 0.8, "mask_random_prob": 0.1, "mask_value": 1.0}
Z = 5.0   # binomial bounds: |rate - p| < Z sd (deterministic seeds; a swap of 0.8 / 0.1 is > 100 sd)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def coded(b: int, t: int, lengths: torch.Tensor) -> torch.Tensor:
    """(b, t, 25, 3): joint v of frame f of sample i holds (f + 10, v + 10, i + 10) plus a small
    jitter (so values are distinct and no joint equals the [MASK] vector); zero beyond ``lengths``."""
    f, v = torch.meshgrid(torch.arange(t, dtype=torch.float), torch.arange(25, dtype=torch.float), indexing="ij")
    s = torch.stack([f + 10, v + 10, torch.zeros_like(f)], -1)[None].repeat(b, 1, 1, 1)
    s[..., 2] = torch.arange(b, dtype=torch.float)[:, None, None] + 10
    s = s + 0.3 * torch.rand(s.shape, generator=gen(99))
    return s * (torch.arange(t)[None] < lengths[:, None])[..., None, None]


def decode_rows(rows: torch.Tensor, b: int, t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Which (sample, frame) each F-TRS input row is: the code most of its 25 joints carry
    (masked joints are a minority); ``-1`` for padding rows (all zero)."""
    code = rows.floor() - 10                                   # (N, 25, 3): frame, joint, sample codes
    frame = code[..., 0].long().mode(dim=1).values
    sample = code[..., 2].long().mode(dim=1).values
    ok = (frame >= 0) & (frame < t) & (sample >= 0) & (sample < b)
    return torch.where(ok, sample, -1), torch.where(ok, frame, -1)


class Observed:
    """One ``pretext_losses`` call seen from outside: F-TRS inputs, joint predictions, picked joints."""

    def __init__(self, method, s, lengths, seed, backward=True):
        enc, heads = method.net.encoder, method.net.heads
        inputs, preds = [], []
        h1 = enc.frame.register_forward_hook(lambda mod, args, out: inputs.append(args[0].detach().clone()))

        def keep(mod, args, out):
            out.retain_grad()
            preds.append(out)
        h2 = heads.joint.register_forward_hook(keep)
        try:
            self.loss, self.logs = pretext_losses(enc, heads, s, lengths, method.config, gen(seed))
            if backward:
                self.loss.backward()
        finally:
            h1.remove()
            h2.remove()
        assert len(inputs) == 1 and len(preds) == 1, "F-TRS and the joint head run once per call"
        self.rows = inputs[0].reshape(-1, 25, 3)
        self.pred = preds[0].detach().reshape(-1, 25, 3)
        grad = preds[0].grad
        self.picked = (grad.reshape(-1, 25, 3) != 0).any(-1) if backward else None
        assert self.rows.shape[0] == self.pred.shape[0], "one prediction row per F-TRS input row"


def classify(obs: Observed, s: torch.Tensor, mask_value: float):
    """Per F-TRS row and joint: the original value, and token / replaced / kept masks."""
    bi, fi = decode_rows(obs.rows, *s.shape[:2])
    real = bi >= 0
    orig = torch.zeros_like(obs.rows)
    orig[real] = s[bi[real], fi[real]]
    token = (obs.rows == mask_value).all(-1) & real[:, None]
    changed = (obs.rows != orig).any(-1) & real[:, None]
    return real, orig, token, changed & ~token


def binomial_ok(hits: int, n: int, p: float) -> bool:
    return abs(hits / n - p) < Z * math.sqrt(p * (1 - p) / n)


# ---- masked-joint prediction -------------------------------------------------------------------
@pytest.mark.parametrize("profile", ["paper", "small", "ci"])
def test_masking_configuration_is_the_references(profile):
    """Every profile masks as the reference does (spelled out above, not read from the config)."""
    cfg = make_config(profile)
    assert {k: getattr(cfg, k) for k in SPEC_MASK} == SPEC_MASK


@pytest.mark.parametrize("levels", ["F", "F+C+V"])
def test_prediction_at_a_masked_joint_ignores_its_original_value(levels):
    """No leakage: change the ORIGINAL value of every joint that was replaced by the [MASK] token
    (the masking draws stay the same: same generator seed) and the prediction at those joints
    stays exactly the same, while the loss, which scores them against the new values, moves.

    Caught bugs: F-TRS reading the unmasked input (no token ever reaches F-TRS, and the inputs
    move with the originals), a head that sees the target, a token computed from the value."""
    method = methods.create("hitrs", "ci", levels=levels)
    mask_value = method.config.mask_value
    b, t = 12, 40
    lengths = torch.tensor([40, 38, 33, 30, 28, 25, 40, 22, 21, 36, 19, 40])
    s1 = coded(b, t, lengths)
    run1 = Observed(method, s1, lengths, seed=3)
    real, orig, token, replaced = classify(run1, s1, mask_value)
    assert int(token.sum()) >= 200, f"only {int(token.sum())} joints reached F-TRS as the [MASK] token"
    # what the loss scores is the head's prediction against the ORIGINAL value of the picked joints
    picked = run1.picked
    err = (run1.pred - orig).norm(dim=-1)[picked].mean() * 1000
    assert float(run1.logs["mjp/err_mm"]) == pytest.approx(float(err), rel=1e-4)
    scale = method.config.regression_scale
    smooth = torch.nn.functional.smooth_l1_loss(run1.pred[picked] * scale, orig[picked] * scale)
    assert float(run1.logs["mjp/loss"]) == pytest.approx(float(smooth), rel=1e-4)
    assert torch.equal(run1.picked[token], torch.ones(int(token.sum()), dtype=torch.bool)), \
        "a [MASK]-token joint is not scored by the loss"

    bi, fi = decode_rows(run1.rows, b, t)
    s2 = s1.clone()
    r, v = token.nonzero(as_tuple=True)
    s2[bi[r], fi[r], v] += torch.tensor([0.61, -0.47, 0.83])           # new originals for the token joints
    method.zero_grad()
    run2 = Observed(method, s2, lengths, seed=3)
    assert torch.equal(run2.picked, run1.picked), "which joints are masked depends on their values"
    assert run2.rows.shape == run1.rows.shape
    # inputs move only where a replacement copied a (now moved) token joint of another frame
    moved = (run2.rows != run1.rows).any(-1)
    assert not (moved & ~replaced).any(), "F-TRS input changed at a joint that was not a random replacement"
    same_rows = ~moved.any(1)
    checked = token & same_rows[:, None]
    assert int(checked.sum()) >= 0.8 * int(token.sum())
    torch.testing.assert_close(run2.pred[checked], run1.pred[checked], rtol=0, atol=1e-6)
    assert abs(float(run2.logs["mjp/loss"]) - float(run1.logs["mjp/loss"])) > 1e-3, \
        "the loss did not see the new originals: the test would prove nothing"


def test_masking_rates_through_pretext_losses_match_the_config():
    """Over ~100 k joints: picked 15 %, of the picked 80 % token / 10 % another joint / 10 %
    kept, measured on what F-TRS reads and on which joints the loss scores. Catches swapped
    probabilities in ``mask_joints`` or in the arguments ``pretext_losses`` passes it."""
    method = methods.create("hitrs", "ci", levels="F")
    cfg = method.config
    b, t = 48, 90
    lengths = torch.randint(19, t + 1, (b,), generator=gen(4))
    picked = token = replaced = valid = 0
    for seed in range(3):
        s = coded(b, t, lengths)
        obs = Observed(method, s, lengths, seed=seed)
        real, orig, tok, rep = classify(obs, s, cfg.mask_value)
        assert not obs.picked[~real].any(), "a padding joint was scored"
        assert not ((tok | rep) & ~obs.picked).any(), "a joint changed but is not scored"
        valid += int(real.sum()) * 25
        picked += int(obs.picked.sum())
        token += int(tok.sum())
        replaced += int(rep.sum())
        method.zero_grad()
    assert valid == 3 * int(lengths.sum()) * 25, "every real frame goes through F-TRS exactly once"
    assert binomial_ok(picked, valid, cfg.mask_prob), picked / valid
    assert binomial_ok(token, picked, cfg.mask_token_prob), token / picked
    assert binomial_ok(replaced, picked, cfg.mask_random_prob), replaced / picked
    kept = picked - token - replaced
    assert binomial_ok(kept, picked, 1 - cfg.mask_token_prob - cfg.mask_random_prob), kept / picked


@pytest.mark.parametrize("probs", [(0.15, 0.8, 0.1), (0.3, 0.5, 0.25)])
def test_mask_joints_rates_and_replacements(probs):
    """``mask_joints`` itself over many draws, with the reference rates and another setting
    (so a hard-coded 0.8 / 0.1 fails too); replacements come from another frame and joint of
    the same sequence, inside its length; nothing outside the length is picked."""
    prob, token_prob, random_prob = probs
    b, t = 64, 80
    lengths = torch.randint(2, t + 1, (b,), generator=gen(5))
    s = coded(b, t, lengths)
    valid = (torch.arange(t)[None] < lengths[:, None])[..., None].expand(b, t, 25)
    n = picked_n = tok_n = rep_n = 0
    for seed in range(4):
        masked, picked = mask_joints(s, lengths, gen(10 + seed), prob=prob, token_prob=token_prob,
                                     random_prob=random_prob, value=1.0)
        assert not picked[~valid].any()
        tok = (masked == 1.0).all(-1)
        changed = (masked != s).any(-1)
        rep = changed & ~tok
        assert not (changed & ~picked).any()
        src = masked[rep].floor() - 10                             # the copied joint's code
        bi, ti, vi = rep.nonzero(as_tuple=True)
        assert torch.equal(src[:, 2].long(), bi)
        assert (src[:, 0].long() != ti).all() and (src[:, 1].long() != vi).all()
        assert (src[:, 0].long() < lengths[bi]).all()
        n += int(valid.sum())
        picked_n += int(picked.sum())
        tok_n += int(tok.sum())
        rep_n += int(rep.sum())
    assert binomial_ok(picked_n, n, prob), picked_n / n
    assert binomial_ok(tok_n, picked_n, token_prob), tok_n / picked_n
    assert binomial_ok(rep_n, picked_n, random_prob), rep_n / picked_n


# ---- order verification and next-clip prediction -----------------------------------------------
class ConstantLogits(torch.nn.Module):
    """A head that ignores its input: the same logits for every sample."""

    def __init__(self, logits):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.tensor(logits))

    def forward(self, x):
        return self.logits.expand(x.shape[0], -1)


def smooth_sequences(b, t, lengths, seed=0):
    """Random walks (every frame moves, so every sequence has a frame-order clip), zero padded."""
    steps = 0.02 * torch.randn(b, t, 25, 3, generator=gen(seed))
    s = steps.cumsum(1) + torch.rand(b, 1, 25, 3, generator=gen(seed + 1))
    return s * (torch.arange(t)[None] < lengths[:, None])[..., None, None]


@pytest.mark.parametrize("answer", [[0.0, 5.0], [5.0, 0.0]])
def test_order_labels_are_balanced(answer):
    """A classifier that always answers "original" (or always "permuted") scores exactly 50 %
    on frame order and clip order: as many permuted copies as originals, equally weighted, also
    when short samples drop out of a task. Catches a label or weight given to one copy only."""
    method = methods.create("hitrs", "ci", levels="C+V")
    heads = method.net.heads
    heads.frame_order = ConstantLogits(answer)
    heads.clip_order = ConstantLogits(answer)
    b, t = 10, 48
    lengths = torch.tensor([48, 45, 40, 33, 30, 27, 24, 21, 20, 19])
    s = smooth_sequences(b, t, lengths)
    s[3] = 0.5 * (torch.arange(t)[:, None, None] < lengths[3])        # a still sequence: no frame-order clip
    _, logs = pretext_losses(method.net.encoder, heads, s, lengths, method.config, gen(1))
    assert float(logs["fov/acc"]) == pytest.approx(0.5, abs=1e-6)
    assert float(logs["cov/acc"]) == pytest.approx(0.5, abs=1e-6)


def test_next_clip_with_a_blind_predictor_is_at_chance():
    """A next-clip head that ignores the video answers every sample the same: it can find its
    own target in at most one row (ties go to one column), i.e. chance 1/B, not better."""
    method = methods.create("hitrs", "ci", levels="V")
    heads = method.net.heads
    d = heads.next_clip.out_features
    heads.next_clip = ConstantLogits([1.0] * d)
    b, t = 16, 48
    lengths = torch.randint(19, t + 1, (b,), generator=gen(6))
    _, logs = pretext_losses(method.net.encoder, heads, smooth_sequences(b, t, lengths), lengths,
                             method.config, gen(2))
    assert float(logs["ncp/acc"]) <= 1.0 / b + 1e-6


class FrameCode(torch.nn.Module):
    """Stand-in F-TRS: every joint's feature is its frame's code (+1; 0 on padding frames), so
    what C-TRS and V-TRS read says which original frames they got."""

    def __init__(self, d):
        super().__init__()
        self.d = d
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x):
        code = torch.where(x[..., :1].abs() > 0, x[..., :1].floor() - 9, torch.zeros_like(x[..., :1]))
        return code.expand(*x.shape[:-1], self.d) * self.scale


def _clip_inputs(method, s, lengths, seed):
    enc = method.net.encoder
    enc.frame = FrameCode(method.config.d_model)
    seen = {}
    h1 = enc.clip.register_forward_hook(lambda mod, args, out: seen.update(clip=args[0].detach()))
    h2 = enc.video.register_forward_hook(lambda mod, args, out: seen.update(video=(args[0].detach(), args[1])))
    try:
        pretext_losses(enc, method.net.heads, s, lengths, method.config, gen(seed))
    finally:
        h1.remove()
        h2.remove()
    return seen


def test_permuted_copies_differ_from_the_original_only_by_order():
    """The permuted copy of frame order / clip order holds the same frames / clips as the
    original, the same key-padding mask and length, and swaps only positions inside the
    sequence: neither the mask nor the length nor a frame from elsewhere tells it apart.
    Catches a swap into padding clips, a permuted copy cut from another window or sequence."""
    method = methods.create("hitrs", "ci", mask_prob=0.0)
    b, t = 12, 48
    lengths = torch.tensor([48, 46, 44, 40, 36, 33, 30, 28, 25, 22, 20, 19])
    s = coded(b, t, lengths)
    seen = _clip_inputs(method, s, lengths, seed=7)
    frames = seen["clip"][:, :, 0, 0]                  # (groups x B, window): frame code + 1, 0 = padding
    orig, perm = frames[:b], frames[b:2 * b]
    assert torch.equal(orig.sort(1).values, perm.sort(1).values)      # same frames
    assert ((orig != perm).sum(1) == 2).all()                         # exactly one swap per sample
    table, valid = seen["video"]
    assert torch.equal(valid[:b], valid[b:])                          # same clips in use
    n = valid[:b].sum(1)
    for i in range(b):
        o, p = table[i, : n[i]], table[b + i, : n[i]]
        assert torch.equal(table[i, n[i]:], table[b + i, n[i]:])       # padding slots untouched
        assert sorted(map(tuple, o.tolist())) == sorted(map(tuple, p.tolist()))
        assert (o != p).any(-1).sum() == 2


def test_next_clip_target_shares_no_frame_with_the_video_input():
    """The next-clip target (the last window) is made of frames that no window V-TRS reads
    contains: predicting it cannot be done by copying part of the input."""
    method = methods.create("hitrs", "ci", mask_prob=0.0, levels="V")
    b, t = 12, 48
    lengths = torch.tensor([48, 46, 44, 40, 36, 33, 30, 28, 25, 22, 20, 19])
    seen = _clip_inputs(method, coded(b, t, lengths), lengths, seed=8)
    frames = seen["clip"][:, :, 0, 0]
    target = frames[-b:]
    video_clips = frames[:-b]
    table, valid = seen["video"]
    n = valid[:b].sum(1)                               # originals; the permuted copies follow
    assert video_clips.shape[0] == int(n.sum())
    start = 0
    for i in range(b):
        own = video_clips[start:start + n[i]]
        start += int(n[i])
        real_target = set(target[i][target[i] > 0].tolist())
        assert real_target, "the target window holds no real frame"
        assert not real_target & set(own[own > 0].tolist()), f"sample {i}: the target's frames are in the input"
        if own.numel():
            assert max(real_target) > own.max(), f"sample {i}: the target is not the clip that comes next"


# ---- the padding pattern: measured, known not to hold ------------------------------------------
def _padding_separates(table_a, table_b):
    return (table_a != table_b).flatten(1).any(1)


@pytest.mark.xfail(strict=True, reason=(
    "known, as the reference does it: windows are zero-padded by 6 frames at each end and the swap "
    "may move a padding frame (frame order) or the always-padded first window (clip order), so the "
    "padding pattern alone tells the permuted copy in about 21 % (frame order) and 70 % (clip order) "
    "of ci-length samples; strict so that a fix shows up"))
def test_padding_pattern_alone_does_not_tell_the_permuted_copy():
    """Content-blind F-TRS (1 on a real frame, 0 on padding): if the permuted copies were not
    solvable from padding, original and permuted would look identical to it in every sample."""
    method = methods.create("hitrs", "ci", mask_prob=0.0)
    enc = method.net.encoder

    class Blind(FrameCode):
        def forward(self, x):
            return (x.abs().sum((-1, -2)) > 0).float()[..., None, None].expand(*x.shape[:-1], self.d) * self.scale
    enc.frame = Blind(method.config.d_model)
    seen = {}
    enc.clip.register_forward_hook(lambda mod, args, out: seen.update(clip=args[0].detach()))
    enc.video.register_forward_hook(lambda mod, args, out: seen.update(video=args[0].detach()))
    b, t = 64, 48
    lengths = torch.randint(19, t + 1, (b,), generator=gen(9))
    pretext_losses(enc, method.net.heads, smooth_sequences(b, t, lengths), lengths, method.config, gen(9))
    fov = _padding_separates(seen["clip"][:b], seen["clip"][b:2 * b]).float().mean()
    cov = _padding_separates(seen["video"][:b], seen["video"][b:]).float().mean()
    assert fov == 0 and cov == 0, f"padding alone separates {fov:.0%} (frame order), {cov:.0%} (clip order)"
