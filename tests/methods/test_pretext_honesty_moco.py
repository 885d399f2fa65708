"""Properties that make the memory-bank (MoCo) pretext tasks of MCC and CrosSCLR honest, tested
through the public ``MomentumPair`` / ``KeyQueue`` and the methods' ``pretrain_loss``:

* the key (momentum) encoder is not trained by the loss: after ``backward`` none of its
  parameters holds a gradient, and the keys carry no autograd graph (MoCo's stop-gradient);
* the negatives are the queue as it was BEFORE this step: when the logits read the queue, it
  does not hold any key of the current batch (otherwise each sample's own positive key sits
  among its negatives, and the instance task contradicts itself), and the negative logits are
  exactly q . queue-before-the-step (no key of this batch slipped in another way).

The queue is observed from outside: each ``MomentumPair``'s queue is swapped for a ``KeyQueue``
subclass that records every read of ``keys`` (a snapshot at the moment of reading) and every
``enqueue``; the order of events inside one ``pretrain_loss`` is what is checked. Each pair's
``logits`` is wrapped to compare what it returns with the queue it read.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import methods
from methods.moco import KeyQueue, MomentumPair, info_nce
from tests.support import toy_skeletons


class SpyQueue(KeyQueue):
    """A KeyQueue that logs ("read", snapshot of keys) and ("enqueue", keys written) in order."""

    def __init__(self, size, dim):
        super().__init__(size, dim)
        self.__dict__["events"] = []
        self.__dict__["inside"] = False

    def __getattr__(self, name):
        value = super().__getattr__(name)
        if name == "keys" and not self.__dict__.get("inside", True):
            self.__dict__["events"].append(("read", value.detach().clone()))
        return value

    def enqueue(self, keys, gather=True):
        self.__dict__["inside"] = True
        try:
            written = super().enqueue(keys, gather)
        finally:
            self.__dict__["inside"] = False
        self.events.append(("enqueue", written.detach().clone()))
        return written


def spy_on_queues(model: nn.Module) -> list[SpyQueue]:
    spies = []
    pairs = [m for m in model.modules() if isinstance(m, MomentumPair)]
    assert pairs, "no MomentumPair in the method"
    for pair in pairs:
        spy = SpyQueue(pair.queue.size, pair.queue.dim)
        spy.load_state_dict(pair.queue.state_dict())
        pair.queue = spy
        spies.append(spy)
    return spies


def assert_negatives_exclude_own_keys(spies: list[SpyQueue]) -> None:
    for spy in spies:
        reads = [snap for kind, snap in spy.events if kind == "read"]
        written = [k for kind, k in spy.events if kind == "enqueue"]
        assert reads, "the loss never read the queue"
        assert len(written) == 1, f"{len(written)} enqueues in one step"
        own = F.normalize(written[0].float(), dim=1)
        for snap in reads:
            sims = F.normalize(snap.float(), dim=1) @ own.t()
            assert not (sims > 1 - 1e-5).any(), \
                f"{int((sims > 1 - 1e-5).any(1).sum())} of the current batch's keys are negatives"
        spy.events.clear()


def key_outputs(model: nn.Module) -> list[torch.Tensor]:
    """Wrap every pair's ``key`` so the keys it returns are kept."""
    seen = []
    for pair in (m for m in model.modules() if isinstance(m, MomentumPair)):
        def wrapped(*args, _key=pair.key, **kwargs):
            out = _key(*args, **kwargs)
            seen.append(out)
            return out
        pair.key = wrapped
    return seen


def logits_calls(model: nn.Module) -> list[tuple]:
    """Wrap every pair's ``logits`` to keep (q, k, queue as read at the call, l_pos, l_neg)."""
    seen = []
    for pair in (m for m in model.modules() if isinstance(m, MomentumPair)):
        def wrapped(q, k, _pair=pair, _logits=pair.logits):
            queue = _pair.queue.keys.detach().clone()
            out = _logits(q, k)
            seen.append((q.detach(), k.detach(), queue, out[1].detach(), out[2].detach()))
            return out
        pair.logits = wrapped
    return seen


def assert_negatives_are_the_old_queue(calls: list[tuple]) -> None:
    """l_pos = q.k, l_neg = q . (queue before the enqueue); no negative equals a row's positive."""
    for q, k, queue, l_pos, l_neg in calls:
        torch.testing.assert_close(l_pos[:, 0], (q.float() * k.float()).sum(1), rtol=0, atol=1e-5)
        torch.testing.assert_close(l_neg, q.float() @ queue.float().t(), rtol=0, atol=1e-5)
        assert not torch.isclose(l_neg, l_pos, rtol=0, atol=1e-6).any(), "a row's own key is among its negatives"
    calls.clear()


def assert_key_encoders_untouched(model: nn.Module) -> None:
    pairs = [m for m in model.modules() if isinstance(m, MomentumPair)]
    for pair in pairs:
        keys = {id(p) for p in pair.encoder_k.parameters()}
        query = {id(p) for p in pair.encoder_q.parameters()}
        assert not keys & query, "key and query encoder share parameters"
        got = [n for n, p in pair.encoder_k.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0]
        assert not got, f"the key encoder received gradients: {got[:3]}"
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in pair.encoder_q.parameters()), \
            "the query encoder got no gradient either: the test would prove nothing"


# ---- MomentumPair on its own ---------------------------------------------------------------------
def test_momentum_pair_trains_only_the_query_encoder_against_the_old_queue():
    torch.manual_seed(0)
    pair = MomentumPair(nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4)), queue_size=8, dim=4,
                        momentum=0.9, temperature=0.1)
    spies = spy_on_queues(pair)
    calls = logits_calls(pair)
    for step in range(4):
        x = torch.randn(4, 6)
        q, k = pair.query(x + 0.1 * torch.randn(4, 6)), pair.key(x)
        assert not k.requires_grad and k.grad_fn is None
        logits, _, _ = pair.logits(q, k)
        pair.zero_grad()
        info_nce(logits).backward()
        pair.queue.enqueue(k)
        assert_key_encoders_untouched(pair)
        assert_negatives_exclude_own_keys(spies)
        assert len(calls) == 1
        assert_negatives_are_the_old_queue(calls)
        pair.update_key_encoder()


# ---- the methods --------------------------------------------------------------------------------
CASES = [("mcc", False), ("crossclr", False), ("crossclr", True)]


@pytest.mark.parametrize("name,cross_view", CASES, ids=["mcc", "crossclr-single-view", "crossclr-cross-view"])
def test_method_step_trains_no_key_encoder_and_keeps_own_keys_out_of_negatives(name, cross_view, one_thread):
    """Three pre-training steps of the ci model (the queue fills with earlier batches' keys):
    at every step the key encoders get no gradient, the keys carry no graph, and no read of
    the queue before the step's enqueue holds one of the step's own keys."""
    torch.manual_seed(0)
    model = methods.create(name, "ci")
    model.train()
    spies = spy_on_queues(model)
    keys = key_outputs(model)
    calls = logits_calls(model)
    if hasattr(model, "on_step_start"):
        model.on_step_start(3 if cross_view else 0, 4)
        assert bool(getattr(model, "cross_view", False)) == cross_view
    batch = model.config.loop.batch_size
    for step in range(3):
        x, lengths = toy_skeletons(batch, seed=step, t_max=48)
        model.zero_grad()
        loss, _ = model.pretrain_loss(x, lengths)
        loss.backward()
        assert keys and all(not k.requires_grad for k in keys), "a key carries a gradient graph"
        keys.clear()
        assert_key_encoders_untouched(model)
        assert_negatives_exclude_own_keys(spies)
        if name == "crossclr":                       # MCC builds its logits with multi_positive_logits
            assert len(calls) == 3
        assert_negatives_are_the_old_queue(calls)
        model.after_optimizer_step()
