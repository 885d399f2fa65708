"""The one interface every self-supervised skeleton method implements.

Input convention, shared by every method and every call below (the runner never reshapes
data for a particular method):

* ``x``: float32 ``(B, T, M, V, C)`` raw joint coordinates in metres (camera space), ``M``
  body slots (1 for single-person pre-training samples, 2 downstream), ``V = 25`` NTU joints,
  ``C = 3``; zero-padded after each sample's length.
* ``lengths``: int64 ``(B,)`` valid frames per sample.

A method converts ``x`` to its stream (joint / motion / bone), applies its own preprocessing
(e.g. CrosSCLR's frame50) and its own pre-training augmentations internally, batched on the
tensors' device. Downstream heads live in the runner; a method only produces embeddings.
"""
from __future__ import annotations

import abc
import contextlib
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn


def optimizer_options(params) -> dict:
    """``fused=True`` where every parameter is on CUDA (a few kernels per step for all
    tensors, step counters on the device: no host read), else torch's default implementation
    (CPU numbers stay what they were)."""
    params = list(params)
    return {"fused": True} if params and all(p.device.type == "cuda" for p in params) else {}


class SkeletonMethod(nn.Module, abc.ABC):
    """Base class: pre-training loss + three downstream embeddings."""

    #: registry name, e.g. "hitrs"; set by ``@methods.register``
    name: ClassVar[str]
    #: fixed input length the method resamples to (None = variable length, up to loop.max_frames);
    #: stated in every record's ``protocol`` block
    input_frames: ClassVar[int | None] = None
    #: pre-training treats every body of a sample as its own single-person sample (Hi-TRS)
    split_bodies_for_pretraining: ClassVar[bool] = False
    #: one pre-training produces every stream's encoder (CrosSCLR); the cache key then omits
    #: the stream and the downstream model uses ``config.stream``'s encoder
    pretrains_all_streams: ClassVar[bool] = False
    #: variant axes the planner asks for (``--task all`` plans every variant the tables need):
    #: the streams whose models the tables report (all three give the '-3s' ensemble rows) ...
    table_streams: ClassVar[tuple[str, ...]] = ("joint",)
    #: ... the pre-trained level sets of a level ablation (Table 3; empty: the method has no levels) ...
    level_sets: ClassVar[tuple[str, ...]] = ()
    #: ... and the level set of the method's main rows (None: no level axis)
    default_levels: ClassVar[str | None] = None
    #: ``pretrain_loss`` honours the capacity ``loss_groups`` (per-group losses: an accumulation's
    #: micro-batches fused into one, ``loop.fuse_accumulation``)
    fuses_accumulation: ClassVar[bool] = False

    @classmethod
    def variant_overrides(cls, stream: str, levels: str | None) -> dict[str, Any]:
        """Config overrides that select one variant; ``levels`` '-' is random initialisation
        (no pre-training), which only methods with a level axis see in their config."""
        return {"stream": stream}

    def __init__(self, config: Any):
        super().__init__()
        self.config = config
        #: draw every random number from the device's default RNG instead of the method's own
        #: generator: what ``torch.compile`` can trace, and the only RNG of the ``meta`` device
        self.use_default_rng = False
        self._capacities: dict[str, int] = {}

    # ---- static shapes ------------------------------------------------------------------
    def capacities(self, lengths: np.ndarray, frames: int, use: str, exact: bool = False) -> dict[str, int]:
        """Host side, before a batch reaches the device: sizes of the packed tensors a step on
        samples of these ``lengths`` (padded to ``frames``) needs, rounded up to a few values
        (``methods.packing.bucket``; ``exact``: not rounded) so that steps repeat their shapes.
        ``use``: "pretrain" (``pretrain_loss``) or "embed" (``video_embedding``). Default: none
        (every shape follows from the batch shape)."""
        return {}

    @contextlib.contextmanager
    def static_shapes(self, capacities: dict[str, int]):
        """Run the calls inside with these ``capacities`` (the engine's step sets them)."""
        saved, self._capacities = self._capacities, dict(capacities)
        try:
            yield self
        finally:
            self._capacities = saved

    # ---- pre-training -------------------------------------------------------------------
    @abc.abstractmethod
    def pretrain_loss(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total pre-training loss of one (micro-)batch and per-task logs (losses, accuracies)
        as 0-d tensors on the device: the engine reads them every ``loop.log_every`` steps, so
        computing a log never makes the host wait."""

    @abc.abstractmethod
    def configure_pretraining(self) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        """Optimizer and per-optimizer-step LR scheduler from ``self.config``."""

    def on_step_start(self, step: int, total_steps: int) -> None:
        """Called before each optimizer step's micro-batches (phase switches, e.g. CrosSCLR)."""

    def after_optimizer_step(self) -> None:
        """Hook after each optimizer step (momentum encoders, queues)."""

    def pretraining_state(self) -> dict[str, Any]:
        """Extra state to checkpoint besides ``state_dict`` (buffers already included)."""
        return {}

    def load_pretraining_state(self, state: dict[str, Any]) -> None:
        pass

    def pretext_metrics(self, x: torch.Tensor, lengths: torch.Tensor,
                        generator: torch.Generator) -> dict[str, float]:
        """Pretext-task quality on a held-out batch (eval mode, every random choice from
        ``generator``, nothing about the model changed): the most direct sign that pre-training
        learned. Names ending in ``_mm`` / ``_err`` are errors (lower is better), the rest
        accuracies in percent. Default: none."""
        return {}

    # ---- downstream embeddings ----------------------------------------------------------
    @property
    @abc.abstractmethod
    def video_dim(self) -> int: ...

    @property
    @abc.abstractmethod
    def clip_dim(self) -> int: ...

    @abc.abstractmethod
    def video_embedding(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``(B, video_dim)`` for recognition (both bodies combined the method's way); of the
        observed frames, it also initialises the motion-prediction decoder."""

    @abc.abstractmethod
    def clip_embedding(self, clips: torch.Tensor) -> torch.Tensor:
        """``(N, clip_dim)`` for detection: ``clips`` ``(N, 7, M, V, C)`` are the 7 frames
        (stride 1, dilation 4) the runner sampled around each frame, zero where outside."""

    def detection_frames(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Whole videos ``(B, T, M, V, C)`` -> the frames detection windows are cut from: the
        method's stream computed over the whole sequence (motion = difference of consecutive
        video frames, as in pre-training, not of a window's dilated frames). Default: raw
        frames, and ``detection_clip_embedding`` = ``clip_embedding`` converts each window."""
        return x

    def detection_clip_embedding(self, clips: torch.Tensor) -> torch.Tensor:
        """``clip_embedding`` of windows cut from ``detection_frames``' output."""
        return self.clip_embedding(clips)

    def encoder_parameters(self):
        """Parameters fine-tuned downstream (default: all); linear evaluation freezes them."""
        return self.parameters()
