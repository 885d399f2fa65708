"""Where this process stands under torch.distributed; ``(0, 1)`` when it is not initialised."""
from __future__ import annotations


def rank_and_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def rank() -> int:
    return rank_and_world()[0]
