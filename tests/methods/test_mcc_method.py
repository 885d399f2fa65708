"""MCC, reconstructed from the paper's description: config, loss, embeddings, ci loop."""
import math

import pytest
import torch
import torch.nn.functional as F

import methods
from methods.mcc import MCC, multi_positive_logits
from methods.moco import info_nce, multi_positive_nce
from tests.support import pretraining_steps, toy_skeletons




def test_registry_and_paper_config():
    assert "mcc" in methods.available()
    cfg = methods.make_config("mcc", "paper")
    assert (cfg.hidden_channels, cfg.hidden_dim) == (64, 256)      # standard ST-GCN
    assert (cfg.queue_size, cfg.momentum, cfg.temperature) == (32768, 0.999, 0.07)
    assert (cfg.lr, cfg.weight_decay) == (0.1, 1e-4)
    assert cfg.loop.batch_size * cfg.loop.accumulation == 128
    assert "reconstructed from the paper's description" in MCC.__doc__
    with pytest.raises(ValueError, match="speed_min"):
        methods.make_config("mcc", "ci", speed_min=1.5)


def test_multi_positive_logits_layout_and_loss():
    torch.manual_seed(0)
    b, k, d, t = 4, 6, 5, 0.2
    q, queue = F.normalize(torch.randn(b, d), dim=1), F.normalize(torch.randn(k, d), dim=1)
    keys = {n: F.normalize(torch.randn(b, d), dim=1) for n in ("key", "speed", "interpolated", "broken")}
    logits, mask = multi_positive_logits(q, keys, queue, t)
    assert logits.shape == mask.shape == (b, 4 + k)
    cols = [(q * keys[n]).sum(1) for n in ("key", "speed", "interpolated", "broken")]
    torch.testing.assert_close(logits[:, :4], torch.stack(cols, 1) / t)
    torch.testing.assert_close(logits[:, 4:], q @ queue.t() / t)
    assert mask[0].tolist() == [1, 1, 1, 0] + [0] * k
    logp = F.log_softmax(logits, 1)
    torch.testing.assert_close(multi_positive_nce(logits, mask), -(logp[:, :3].sum(1) / 3).mean())
    # without the extra views it is plain MoCo InfoNCE
    plain, plain_mask = multi_positive_logits(q, {"key": keys["key"]}, queue, t)
    torch.testing.assert_close(multi_positive_nce(plain, plain_mask), info_nce(plain))


def test_views_and_one_pretraining_step(one_thread):
    torch.manual_seed(0)
    model = methods.create("mcc", "ci")
    x, lengths = toy_skeletons(8)
    views = model.views(x, lengths)
    assert set(views) == {"anchor", "key", "speed", "interpolated", "broken"}
    assert all(v.shape == (8, model.config.frames, 2, 25, 3) for v in views.values())
    assert (views["anchor"][:, :, 1] == 0).all()                  # the empty body stays empty
    assert not torch.allclose(views["anchor"], views["key"])
    loss, logs = model.pretrain_loss(x, lengths)
    loss.backward()
    assert math.isfinite(float(loss.detach())) and int(model.pair.queue.ptr) == 8
    assert {"mcc/loss", "mcc/acc", "mcc/key_sim", "mcc/broken_sim"} <= set(logs)
    grads = [p.grad for p in model.pair.encoder_q.parameters()]
    assert all(g is not None for g in grads) and all(p.grad is None for p in model.pair.encoder_k.parameters())
    lean = methods.create("mcc", "ci", use_speed=False, use_interpolation=False, use_broken=False)
    assert set(lean.views(x, lengths)) == {"anchor", "key"}


@pytest.mark.parametrize("stream", ["joint", "motion"])
def test_downstream_embeddings(stream, one_thread):
    torch.manual_seed(0)
    model = methods.create("mcc", "ci", stream=stream).eval()
    x, lengths = toy_skeletons(4)
    with torch.no_grad():
        video = model.video_embedding(x, lengths)
        clip = model.clip_embedding(x[:, 20:27])
        padded = model.video_embedding(torch.cat([x, torch.zeros(4, 30, 2, 25, 3)], dim=1), lengths)
        moved = model.video_embedding(x + torch.tensor([1.0, 0.0, -0.5]) * (x != 0), lengths)
    assert video.shape == clip.shape == (4, model.video_dim) == (4, 32)
    torch.testing.assert_close(padded, video)
    torch.testing.assert_close(moved, video, atol=1e-4, rtol=1e-4)   # centred: translation-invariant
    assert all(any(p is q for q in model.pair.encoder_q.backbone.parameters()) for p in model.encoder_parameters())


def test_ci_pretraining_loss_falls(one_thread):
    torch.manual_seed(0)
    x, lengths = toy_skeletons(64)
    model = methods.create("mcc", "ci")
    batch = model.config.loop.batch_size
    losses = [loss for loss, _ in pretraining_steps(model, x, lengths)]
    warm = model.config.queue_size // batch  # the queue holds only real keys from here on
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[warm:warm + 4]) / 4 > sum(losses[-4:]) / 4 + 0.3
