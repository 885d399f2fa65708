"""CrosSCLR behind the SkeletonMethod interface: config, mining loss, phases, embeddings, ci loop."""
import math

import pytest
import torch
import torch.nn.functional as F

import methods
from datasets.preprocess import frame50
from methods.crossclr import CrosSCLR, cross_view_losses, crossclr_stream, mined_positives
from tests.support import lr_trace, pretraining_steps, toy_skeletons




def test_registry_and_paper_config():
    assert "crossclr" in methods.available()
    cfg = methods.make_config("crossclr", "paper")
    assert (cfg.lr, cfg.sgd_momentum, cfg.weight_decay, cfg.nesterov) == (0.1, 0.9, 1e-4, False)
    assert (cfg.queue_size, cfg.momentum, cfg.temperature, cfg.feature_dim) == (32768, 0.999, 0.07, 128)
    assert (cfg.hidden_channels, cfg.hidden_dim, cfg.topk, cfg.context, cfg.shear) == (16, 256, 1, True, 0.5)
    assert cfg.loop.batch_size * cfg.loop.accumulation == 128 and cfg.loop.steps == 300 * 313
    assert cfg.cross_start == 0.5 and cfg.lr_milestones == (250 / 300,)
    assert CrosSCLR.name == "crossclr" and CrosSCLR.pretrains_all_streams
    with pytest.raises(ValueError, match="stream must be one of"):
        methods.make_config("crossclr", "ci", stream="rgb")
    with pytest.raises(ValueError, match="unknown setting"):
        methods.make_config("crossclr", "ci", cross_epoch=150)


def test_lr_drops_at_the_configured_fraction():
    model = methods.create("crossclr", "ci", **{"loop.steps": 12, "lr": 0.1})
    lrs = lr_trace(model, 12)
    assert lrs[:10] == [0.1] * 10 and lrs[10:] == pytest.approx([0.01, 0.01])  # round(12 * 250/300) = 10


@pytest.mark.parametrize("topk,context", [(1, True), (2, False), (2, True)])
def test_cross_view_loss_equals_a_direct_computation(topk, context):
    torch.manual_seed(0)
    b, k, t = 3, 7, 0.1
    views = ("joint", "motion", "bone")
    l_pos = {v: torch.rand(b, 1) for v in views}
    l_neg = {v: torch.rand(b, k) * 2 - 1 for v in views}
    got = cross_view_losses(l_pos, l_neg, t, topk=topk, context=context)
    for u in views:
        per_pair = []
        for v in views:
            if v == u:
                continue
            rows = []
            for i in range(b):  # sample by sample, written out
                mined = l_neg[v][i].topk(topk).indices
                assert mined_positives(l_neg[v], topk)[i].nonzero().flatten().tolist() == sorted(mined.tolist())
                parts = [l_pos[u][i], l_neg[u][i]] + ([l_neg[u][i] * l_neg[v][i]] if context else [])
                logp = F.log_softmax(torch.cat(parts) / t, 0)
                picked = [logp[0], logp[1 + mined].sum()] + ([logp[1 + k + mined].sum()] if context else [])
                rows.append(-sum(picked) / (1 + topk * (2 if context else 1)))
            per_pair.append(torch.stack(rows).mean())
        torch.testing.assert_close(got[u], (per_pair[0] + per_pair[1]) / 2)


def test_pretraining_steps_fill_aligned_queues_and_switch_phase(one_thread):
    torch.manual_seed(0)
    model = methods.create("crossclr", "ci")
    x, lengths = toy_skeletons(8)
    model.on_step_start(0, 4)
    assert not model.cross_view
    loss, logs = model.pretrain_loss(x, lengths)
    loss.backward()
    assert {"joint/loss", "motion/loss", "bone/loss", "joint/acc", "cross_view"} <= set(logs)
    assert logs["cross_view"] == 0.0 and math.isfinite(float(loss.detach()))
    assert all(int(model.pairs[s].queue.ptr) == 8 for s in ("joint", "motion", "bone"))
    before = {s: model.pairs[s].encoder_k.backbone.data_bn.weight.clone() for s in model.pairs}
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.5)
    model.after_optimizer_step()
    for s in model.pairs:  # every key encoder moved by (1 - m) * 0.5
        moved = model.pairs[s].encoder_k.backbone.data_bn.weight - before[s]
        torch.testing.assert_close(moved, torch.full_like(moved, 0.5 * (1 - model.config.momentum)))
    model.on_step_start(2, 4)
    assert model.cross_view
    loss, logs = model.pretrain_loss(x, lengths)
    assert logs["cross_view"] == 1.0 and math.isfinite(float(loss.detach()))
    assert all(int(model.pairs[s].queue.ptr) == 16 for s in model.pairs)


def test_faithful_bugs_share_the_projection_and_freeze_keys_in_the_cross_phase():
    paper = methods.create("crossclr", "ci", faithful_bugs=False)
    buggy = methods.create("crossclr", "ci", faithful_bugs=True)
    assert buggy.pairs["bone"].encoder_q.projection[2] is buggy.pairs["joint"].encoder_q.projection
    assert paper.pairs["bone"].encoder_q.projection[2] is not paper.pairs["joint"].encoder_q.projection[2]
    assert sum(p.numel() for p in buggy.parameters()) < sum(p.numel() for p in paper.parameters())
    buggy.on_step_start(20, 24)
    with torch.no_grad():
        for p in buggy.parameters():
            if p.requires_grad:
                p.add_(1.0)
    k_joint = buggy.pairs["joint"].encoder_k.backbone.data_bn.weight.clone()
    k_motion = buggy.pairs["motion"].encoder_k.backbone.data_bn.weight.clone()
    buggy.after_optimizer_step()
    torch.testing.assert_close(buggy.pairs["joint"].encoder_k.backbone.data_bn.weight, k_joint)
    assert not torch.allclose(buggy.pairs["motion"].encoder_k.backbone.data_bn.weight, k_motion)


@pytest.mark.parametrize("stream", ["joint", "motion", "bone"])
def test_downstream_embeddings(stream, one_thread):
    torch.manual_seed(0)
    model = methods.create("crossclr", "ci", stream=stream).eval()
    x, lengths = toy_skeletons(4)
    with torch.no_grad():
        video = model.video_embedding(x, lengths)
        clip = model.clip_embedding(x[:, 10:17])
        expected = model.pairs[stream].encoder_q.backbone.features_btmvc(crossclr_stream(frame50(x, lengths), stream))
    assert video.shape == clip.shape == (4, model.video_dim) == (4, 32)
    torch.testing.assert_close(video, expected)
    assert model.clip_dim == model.video_dim
    params = list(model.encoder_parameters())
    assert params and all(any(p is q for q in model.pairs[stream].encoder_q.backbone.parameters()) for p in params)
    # padding after a sample's length does not change its embedding (frame50 uses lengths)
    padded = torch.cat([x, torch.zeros(4, 20, 2, 25, 3)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model.video_embedding(padded, lengths), video)


def test_ci_pretraining_loss_falls(one_thread):
    """ci profile on 64 toy sequences: the single-view loss falls once the queue holds real
    keys; the cross-view phase runs after the configured half."""
    torch.manual_seed(0)
    x, lengths = toy_skeletons(64)
    model = methods.create("crossclr", "ci")
    steps, batch = model.config.loop.steps, model.config.loop.batch_size
    history = pretraining_steps(model, x, lengths)
    totals = [loss for loss, _ in history]
    phases = [logs["cross_view"] for _, logs in history]
    half = steps // 2
    assert phases == [0.0] * half + [1.0] * (steps - half)
    assert all(math.isfinite(v) for v in totals)
    warm = model.config.queue_size // batch  # the queue holds only real keys from here on
    assert sum(totals[warm:warm + 3]) / 3 > sum(totals[half - 3:half]) / 3 + 0.5
