"""Momentum memory bank on one process: queue contents, pointer, momentum, split-BN."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from methods.moco import KeyQueue, MomentumPair, contrastive_logits, info_nce, multi_positive_nce, shuffled_forward


def test_queue_after_several_steps_equals_direct_computation():
    """Train a linear query encoder for 7 steps; replay momentum + enqueue by hand."""
    torch.manual_seed(0)
    dim_in, dim, k_size, batch, m, steps = 6, 4, 12, 4, 0.9, 7
    pair = MomentumPair(nn.Linear(dim_in, dim), queue_size=k_size, dim=dim, momentum=m, temperature=0.2)
    opt = torch.optim.SGD(pair.encoder_q.parameters(), lr=0.5)
    w_k, b_k = pair.encoder_q.weight.detach().clone(), pair.encoder_q.bias.detach().clone()
    queue = pair.queue.keys.clone()
    written = []
    for step in range(steps):
        x_q, x_k = torch.randn(batch, dim_in), torch.randn(batch, dim_in)
        q, k = pair.query(x_q), pair.key(x_k)
        expected_k = F.normalize(x_k @ w_k.t() + b_k, dim=1)       # key encoder by hand
        torch.testing.assert_close(k, expected_k)
        logits, l_pos, l_neg = pair.logits(q, k)
        torch.testing.assert_close(l_neg, q.detach() @ queue.t(), rtol=0, atol=1e-6)  # queue before enqueue
        loss = info_nce(logits)
        opt.zero_grad()
        loss.backward()
        opt.step()
        pair.queue.enqueue(k)
        pair.update_key_encoder()
        w_q, b_q = pair.encoder_q.weight.detach(), pair.encoder_q.bias.detach()
        w_k, b_k = m * w_k + (1 - m) * w_q, m * b_k + (1 - m) * b_q
        written.append(expected_k)
        slots = (torch.arange(batch) + step * batch) % k_size
        queue[slots] = expected_k
        assert int(pair.queue.ptr) == ((step + 1) * batch) % k_size
    torch.testing.assert_close(pair.queue.keys, queue)
    # the last K keys written, in ring order, are the queue (7 steps x 4 keys wrapped twice)
    last = torch.cat(written)[-k_size:]
    start = (steps * batch) % k_size
    torch.testing.assert_close(pair.queue.keys.roll(-start, dims=0), last)
    torch.testing.assert_close(pair.encoder_k.weight, w_k)
    assert not any(p.requires_grad for p in pair.encoder_k.parameters())


def test_queue_rejects_a_batch_that_does_not_divide_k():
    queue = KeyQueue(10, 3)
    with pytest.raises(ValueError, match=r"K=10 is not a multiple of the key batch 4"):
        queue.enqueue(torch.randn(4, 3))
    with pytest.raises(ValueError, match="do not fit"):
        queue.enqueue(torch.randn(5, 2))


def test_logits_are_float32_and_scaled():
    q = F.normalize(torch.randn(3, 4), dim=1)
    k = F.normalize(torch.randn(3, 4), dim=1)
    queue = F.normalize(torch.randn(8, 4), dim=1)
    logits, l_pos, l_neg = contrastive_logits(q.bfloat16(), k.bfloat16(), queue, 0.07)
    assert logits.dtype == torch.float32 and logits.shape == (3, 9)
    torch.testing.assert_close(logits[:, 0], (q.bfloat16().float() * k.bfloat16().float()).sum(1) / 0.07)
    # one positive: the multi-positive loss reduces to plain InfoNCE
    mask = torch.zeros_like(logits)
    mask[:, 0] = 1
    torch.testing.assert_close(multi_positive_nce(logits, mask), info_nce(logits))


def test_split_bn_restores_the_order():
    torch.manual_seed(1)
    enc = nn.Sequential(nn.Linear(5, 5), nn.BatchNorm1d(5))
    x = torch.randn(12, 5)
    gen = torch.Generator().manual_seed(3)
    enc.eval()  # running statistics: the shuffled, split forward must equal the plain one
    torch.testing.assert_close(shuffled_forward(enc, x, 3, gen), enc(x))
    enc.train()  # batch statistics: each group of 4 is normalised on its own
    out = shuffled_forward(enc, x, 3, torch.Generator().manual_seed(3))
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(3))
    groups = perm.view(3, 4)
    for g in groups:  # 3 groups, not samples
        y = out[g]
        torch.testing.assert_close(y.mean(0), enc[1].bias.detach().expand(5), atol=1e-5, rtol=0)
    assert not torch.allclose(out, enc(x))
