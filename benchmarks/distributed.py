"""One process or many under torchrun: rank/world from the environment, DDP helpers."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def init_from_env(device_kind: str) -> Dist:
    """Initialise torch.distributed when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device_kind == "cuda" else "gloo"
        if device_kind == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return Dist(rank, world, local_rank)


def barrier(d: Dist) -> None:
    if d.enabled:
        dist.barrier()


def all_reduce_mean(value: torch.Tensor, d: Dist) -> torch.Tensor:
    if d.enabled:
        value = value.clone()
        dist.all_reduce(value)
        value /= d.world
    return value


def broadcast_object(obj, d: Dist):
    if not d.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_gather_cat(t: torch.Tensor, d: Dist) -> torch.Tensor:
    """Concatenate a variable-length first dimension across ranks (evaluation outputs)."""
    if not d.enabled:
        return t
    sizes = [torch.zeros(1, dtype=torch.long, device=t.device) for _ in range(d.world)]
    dist.all_gather(sizes, torch.tensor([t.shape[0]], device=t.device))
    biggest = int(max(s.item() for s in sizes))
    padded = torch.zeros((biggest, *t.shape[1:]), dtype=t.dtype, device=t.device)
    padded[: t.shape[0]] = t
    parts = [torch.zeros_like(padded) for _ in range(d.world)]
    dist.all_gather(parts, padded)
    return torch.cat([p[: int(s.item())] for p, s in zip(parts, sizes)])
