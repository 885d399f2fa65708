"""Hi-TRS next-clip InfoNCE under DDP (issue 14.4): 2 gloo CPU processes, each with half of
the global batch, gather the targets so the negatives are the global batch's; loss and
gradients then equal one process holding the whole batch."""

import pytest
import torch
import torch.distributed as dist

from methods.hitrs.pretext import info_nce
from methods.moco import gather_with_local_grad
from tests.support import spawn_ranks

WORLD, BATCH, DIM, T = 2, 8, 5, 0.1


def _data():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(BATCH, DIM, generator=g), torch.randn(BATCH, DIM, generator=g)
    valid = torch.ones(BATCH, dtype=torch.bool)
    valid[[1, 6]] = False                      # one excluded sample on each rank
    return pred, target, valid


def _worker(rank, port, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        pred, target, valid = _data()
        share = slice(rank * BATCH // WORLD, (rank + 1) * BATCH // WORLD)
        local = pred[share].clone().requires_grad_(True)
        loss, acc = info_nce(local, target[share], T, valid[share])
        loss.backward()
        # uneven sizes and the local autograd graph of the gathering primitive
        x = torch.arange(rank + 2, dtype=torch.float32).requires_grad_(True)
        gathered, offset = gather_with_local_grad(x * 2)
        gathered.sum().backward()
        torch.save({"loss": loss.detach(), "acc": acc, "grad": local.grad, "gathered": gathered.detach(),
                    "offset": offset, "x_grad": x.grad}, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    return spawn_ranks(_worker, WORLD, tmp_path_factory.mktemp("hitrs_ddp"))


def test_gathered_negatives_equal_one_process_with_the_global_batch(ranks):
    pred, target, valid = _data()
    whole = pred.clone().requires_grad_(True)
    loss, acc = info_nce(whole, target, T, valid)
    loss.backward()
    # equal valid counts per rank: the global loss is the ranks' mean, DDP averages gradients
    torch.testing.assert_close(torch.stack([r["loss"] for r in ranks]).mean(), loss.detach())
    torch.testing.assert_close(torch.stack([r["acc"] for r in ranks]).mean(), acc)
    torch.testing.assert_close(torch.cat([r["grad"] for r in ranks]) / WORLD, whole.grad)
    # rank-local negatives only (the old behaviour) give a different loss
    local_only = torch.stack([info_nce(pred[s], target[s], T, valid[s])[0]
                              for s in (slice(0, 4), slice(4, 8))]).mean()
    assert abs(float(local_only) - float(loss.detach())) > 1e-3


def test_gather_with_local_grad_handles_uneven_sizes(ranks):
    expected = torch.cat([torch.arange(2.0) * 2, torch.arange(3.0) * 2])
    for rank, r in enumerate(ranks):
        torch.testing.assert_close(r["gathered"], expected)
        assert r["offset"] == (0, 2)[rank]
        torch.testing.assert_close(r["x_grad"], torch.full((rank + 2,), 2.0))   # only the local part
