"""Method-side configuration: the generic pre-training loop settings every method carries.

The profile machinery (``resolve_profile``, ``apply_overrides``, ``to_dict``, ``config_hash``)
lives in ``plumbing.config`` and is re-exported here for the methods' configs.
"""
from __future__ import annotations

import dataclasses

from plumbing.config import PROFILES, apply_overrides, config_hash, resolve_profile, to_dict  # noqa: F401


@dataclasses.dataclass(frozen=True)
class PretrainLoop:
    """How the generic pre-training engine drives any method (one per method config, field
    name ``loop``). Effective batch = ``batch_size * accumulation`` whatever the world size
    (under DDP each rank takes ``batch_size / world`` of every micro-batch)."""

    steps: int = 30_000          # optimizer steps
    batch_size: int = 64         # samples per micro-batch
    accumulation: int = 4        # micro-batches per optimizer step
    grad_clip: float = 1.0       # max grad norm; 0 disables
    max_frames: int = 300        # longer sequences are cut
    log_every: int = 50          # optimizer steps between log lines
    checkpoint_every: int = 1000 # optimizer steps between resumable checkpoints
    batching: str = "uniform"    # "uniform" random batches (both references) | "bucket" by length
    #: run each step's ``accumulation`` micro-batches as ONE micro-batch whose losses are
    #: computed per group of ``batch_size`` (methods with ``fuses_accumulation``, Hi-TRS): the
    #: same loss and gradients, one kernel launch where there were ``accumulation``
    fuse_accumulation: bool = False

    def __post_init__(self):
        if self.batching not in ("uniform", "bucket"):
            raise ValueError(f"loop.batching: {self.batching!r} unknown; choose uniform (the references' "
                             "shuffled batches) or bucket (length-grouped, less padding)")
