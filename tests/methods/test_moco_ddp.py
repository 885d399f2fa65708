"""Momentum memory bank under DDP: 2 CPU processes (gloo) must end with identical queues."""

import pytest
import torch
import torch.distributed as dist
from torch import nn

import methods
from methods.moco import MomentumPair, info_nce, shuffled_forward
from tests.support import spawn_ranks

WORLD, BATCH, STEPS, K = 2, 4, 5, 24


class _Loss(nn.Module):
    def __init__(self, pair, generator):
        super().__init__()
        self.pair, self.generator = pair, generator

    def forward(self, x_q, x_k):
        q, k = self.pair.query(x_q), self.pair.key(x_k, self.generator)
        loss = info_nce(self.pair.logits(q, k)[0])
        return loss, k, self.pair.queue.enqueue(k)


class _MethodForward(nn.Module):
    """What the pre-training engine wraps in DDP: forward = the method's pre-training loss."""

    def __init__(self, method):
        super().__init__()
        self.method = method

    def forward(self, x, lengths):
        return self.method.pretrain_loss(x, lengths)


def _crossclr_step(rank):
    """One CrosSCLR ci step under DDP: three queues, shuffle-BN through ST-GCN."""
    torch.manual_seed(0)
    method = methods.create("crossclr", "ci")
    forward = nn.parallel.DistributedDataParallel(_MethodForward(method))
    opt, _ = method.configure_pretraining()
    data = torch.Generator().manual_seed(200 + rank)
    lengths = torch.randint(30, 60, (8,), generator=data)
    x = torch.randn(8, 60, 2, 25, 3, generator=data) * (torch.arange(60)[None, :] < lengths[:, None])[..., None, None, None]
    method.on_step_start(0, 1)
    loss, _ = forward(x, lengths)
    opt.zero_grad()
    loss.backward()
    opt.step()
    method.after_optimizer_step()
    return {"queues": torch.stack([method.pairs[s].queue.keys for s in ("joint", "motion", "bone")]),
            "ptrs": [int(method.pairs[s].queue.ptr) for s in ("joint", "motion", "bone")],
            "q_weight": method.pairs["bone"].encoder_q.backbone.blocks[3].tconv.weight.detach(),
            "aug_seed": method.generator.initial_seed()}


def _worker(rank, port, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        torch.manual_seed(0)  # same initial weights and queue on both ranks
        pair = MomentumPair(nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 4)),
                            queue_size=K, dim=4, momentum=0.9, temperature=0.2)
        model = nn.parallel.DistributedDataParallel(_Loss(pair, torch.Generator().manual_seed(7)))
        opt = torch.optim.SGD(pair.encoder_q.parameters(), lr=0.1)
        data = torch.Generator().manual_seed(100 + rank)  # different data on each rank
        local, gathered = [], []
        for _ in range(STEPS):
            x_q, x_k = torch.randn(BATCH, 6, generator=data), torch.randn(BATCH, 6, generator=data)
            loss, k, written = model(x_q, x_k)
            opt.zero_grad()
            loss.backward()
            opt.step()
            pair.update_key_encoder()
            local.append(k)
            gathered.append(written)
        # shuffle-BN must hand every rank back its own samples (exact with running statistics)
        for buffer in pair.encoder_k.buffers():  # running stats drift per rank between DDP broadcasts
            dist.broadcast(buffer, src=0)
        pair.encoder_k.eval()
        x = torch.randn(BATCH, 6, generator=data)
        shuffle_err = (shuffled_forward(pair.encoder_k, x, generator=torch.Generator().manual_seed(1))
                       - pair.encoder_k(x)).abs().max()
        torch.save({"queue": pair.queue.keys, "ptr": pair.queue.ptr, "local": torch.cat(local),
                    "gathered": torch.cat(gathered), "shuffle_err": shuffle_err,
                    "weight_k": pair.encoder_k[0].weight, "crossclr": _crossclr_step(rank)}, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """Both ranks' saved state after the run (one spawn for the tests below)."""
    return spawn_ranks(_worker, WORLD, tmp_path_factory.mktemp("ddp"))


def test_ddp_ranks_hold_identical_queues(ddp_run):
    r0, r1 = ddp_run
    torch.testing.assert_close(r0["queue"], r1["queue"], rtol=0, atol=0)
    torch.testing.assert_close(r0["weight_k"], r1["weight_k"], rtol=0, atol=0)
    assert int(r0["ptr"]) == int(r1["ptr"]) == (STEPS * BATCH * WORLD) % K
    # every step enqueued rank 0's keys then rank 1's keys
    expected = torch.cat([torch.cat([a, b]) for a, b in zip(r0["local"].split(BATCH), r1["local"].split(BATCH))])
    torch.testing.assert_close(r0["gathered"], expected)
    assert not torch.allclose(r0["local"], r1["local"])  # the ranks saw different data
    last = expected[-K:]
    start = (STEPS * BATCH * WORLD) % K
    torch.testing.assert_close(r0["queue"].roll(-start, dims=0), last)
    assert r0["shuffle_err"] < 1e-6 and r1["shuffle_err"] < 1e-6


def test_ddp_crossclr_step_keeps_the_three_queues_identical(ddp_run):
    r0, r1 = (r["crossclr"] for r in ddp_run)
    torch.testing.assert_close(r0["queues"], r1["queues"], rtol=0, atol=0)
    assert r0["ptrs"] == r1["ptrs"] == [16, 16, 16]            # 8 keys x 2 ranks per queue
    torch.testing.assert_close(r0["q_weight"], r1["q_weight"], rtol=0, atol=0)  # gradients were averaged
    assert r0["aug_seed"] != r1["aug_seed"]                    # different augmentations per rank
