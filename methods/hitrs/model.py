"""Hi-TRS behind the suite's ``SkeletonMethod`` interface (registered as ``"hitrs"``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from datasets.precision import float32_island
from methods import register
from methods.base import SkeletonMethod, optimizer_options
from methods.packing import bucket
from methods.rng import DeviceGenerators
from plumbing.rank import rank

from .config import HiTRSConfig, make_config
from .network import HiTRSNet, input_stream, model_input, model_stream, stream_scale
from .pretext import pretext_losses
from .windows import pad_frames, window_counts


@dataclass(frozen=True)
class PolynomialWarmup:
    """LR factor: linear warm-up from 0, then polynomial decay to ``lr_end`` at ``horizon``
    (the reference's ``get_polynomial_decay_schedule_with_warmup``), constant after."""

    lr: float
    lr_end: float
    warmup: int
    horizon: int
    power: float = 1.0

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return step / max(1, self.warmup)
        if step > self.horizon or self.lr <= self.lr_end:
            return self.lr_end / self.lr if self.lr > self.lr_end else 1.0
        remaining = 1.0 - (step - self.warmup) / max(1, self.horizon - self.warmup)
        return ((self.lr - self.lr_end) * remaining ** self.power + self.lr_end) / self.lr


def no_weight_decay(name: str) -> bool:
    """Biases, LayerNorm parameters, position tables and fuse tokens (the reference's list)."""
    parts = name.split(".")
    return parts[-1] == "bias" or (len(parts) > 1 and "norm" in parts[-2]) or parts[-1] in ("pos", "fuse")


@register("hitrs", make_config)
class HiTRS(SkeletonMethod):
    """Hierarchical transformer (F-TRS -> C-TRS -> V-TRS) with the four reference pretext tasks."""

    split_bodies_for_pretraining = True
    fuses_accumulation = True            # pretext_losses' LossGroups
    #: significant bits of the packed capacities (``methods.packing.bucket``), measured over one
    #: paper epoch of NTU-like lengths (``python -m benchmarks.perf.shapes``): pre-training
    #: (uniform batches of 64) 4-5 shapes at 7 % padding with 3 bits (8 at 4 % with 4);
    #: fine-tuning (length-bucketed batches of 128, sizes spread over 10x) 5 at 12 % with 2 bits
    capacity_bits: ClassVar[dict[str, int]] = {"pretrain": 3, "embed": 2}
    table_streams = ("joint", "motion", "bone")                      # Hi-TRS and Hi-TRS-3s rows
    level_sets = ("F", "C", "V", "F+C", "F+V", "C+V", "F+C+V")       # Table 3 ablation
    default_levels = "F+C+V"

    @classmethod
    def variant_overrides(cls, stream: str, levels: str | None) -> dict:
        return {"stream": stream, "levels": levels or cls.default_levels}

    def __init__(self, config: HiTRSConfig):
        super().__init__(config)
        self.net = HiTRSNet(config)
        self._generators = DeviceGenerators(config.seed + rank())

    # ---- randomness ---------------------------------------------------------------------
    def generator(self, device: torch.device | str) -> torch.Generator | None:
        """The method's generator on ``device`` (masking, sampling, augmentation), seeded from
        ``config.seed`` (+ the process rank under torch.distributed); None (the device's
        default RNG) with ``use_default_rng`` or on ``meta``, which has no generator."""
        return None if self.use_default_rng else self._generators.get(device)

    def pretraining_state(self) -> dict:
        return {"generators": self._generators.state()}

    def load_pretraining_state(self, state: dict) -> None:
        self._generators.load(state.get("generators", {}))

    # ---- pre-training -------------------------------------------------------------------
    def pretrain_loss(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Augment (training mode) -> stream -> mask -> one forward with the tasks of ``levels``.

        ``x`` (B, T, M, 25, 3) raw joints; M > 1 is split into single-body samples here
        (the runner normally does it already, ``split_bodies_for_pretraining``).
        """
        cfg = self.config
        if x.dim() != 5 or x.shape[-2:] != (25, 3):
            raise ValueError(f"hitrs.pretrain_loss: expected x of shape (B, T, M, 25, 3), got {tuple(x.shape)}")
        lengths = lengths.to(x.device).long()
        if not cfg.levels:
            return torch.zeros((), device=x.device, requires_grad=True), {}
        if x.shape[2] > 1:
            from datasets.preprocess import split_bodies
            x, lengths = split_bodies(x, lengths)
        gen = self.generator(x.device)
        with float32_island(x):  # augmentation and stream conversion: float32 coordinates
            x = model_input(x, self.config)
            if self.training and cfg.aug_p > 0:
                from datasets.augment import hitrs_augment
                x, lengths = hitrs_augment(x, lengths, gen, p=cfg.aug_p, spatial=cfg.aug_spatial,
                                           temporal=cfg.aug_temporal)
            s = model_stream(x, self.config, lengths)[:, :, 0]
        loss, logs = pretext_losses(self.net.encoder, self.net.heads, s, lengths, cfg, gen, self._capacities)
        logs = self._in_stream_units(logs)
        logs["loss"] = loss.detach()
        return loss, {k: v.float() for k, v in logs.items()}

    def capacities(self, lengths: np.ndarray, frames: int, use: str, exact: bool = False) -> dict[str, int]:
        """F-TRS frames (``length + 2p`` per sample) and V-TRS clips of pre-training; C-TRS clips
        of both bodies for an embedding. From the lengths before augmentation: it only shortens."""
        cfg = self.config
        bits = self.capacity_bits[use]
        size = (lambda n: max(int(n), 1)) if exact else (lambda n: bucket(int(n), bits))
        lengths = np.minimum(np.asarray(lengths, dtype=np.int64), frames)
        counts = window_counts(torch.from_numpy(lengths), cfg.window, cfg.stride, cfg.dilation,
                               max_length=frames).numpy()
        if use == "pretrain":
            return {"pretext_frames": size((lengths + 2 * pad_frames(cfg.window, cfg.dilation)).sum()),
                    "pretext_clips": size(np.maximum(counts - 1, 0).sum())}
        return {"embed_clips": size(2 * counts.sum())}

    def _in_stream_units(self, logs: dict) -> dict:
        """The masked-joint error back in millimetres of the unscaled stream (``stream_scale``)."""
        scale = stream_scale(self.config)
        if scale != 1 and "mjp/err_mm" in logs:
            logs = {**logs, "mjp/err_mm": logs["mjp/err_mm"] / scale}
        return logs

    #: pretext log -> reported pretext metric (percent accuracies, millimetres)
    PRETEXT = {"mjp/err_mm": "masked_joint_err_mm", "fov/acc": "frame_order_acc",
               "cov/acc": "clip_order_acc", "ncp/acc": "next_clip_acc"}

    @torch.no_grad()
    def pretext_metrics(self, x: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        """The four pretext tasks of ``levels`` on ``x`` in eval mode (no augmentation, no dropout)."""
        if not self.config.levels:
            return {}
        was_training = self.training
        self.eval()
        try:
            lengths = lengths.to(x.device).long()
            if x.shape[2] > 1:
                from datasets.preprocess import split_bodies
                x, lengths = split_bodies(x, lengths)
            s = input_stream(x, self.config, lengths)[:, :, 0]   # as pre-training sees it
            logs = self._in_stream_units(pretext_losses(self.net.encoder, self.net.heads, s, lengths,
                                                        self.config, generator)[1])
        finally:
            self.train(was_training)
        accuracy = {k for k in self.PRETEXT if k.endswith("/acc")}
        return {self.PRETEXT[k]: float(v) * (100.0 if k in accuracy else 1.0)
                for k, v in logs.items() if k in self.PRETEXT}

    def configure_pretraining(self):
        """AdamW (no decay on biases / norms / position tables / fuse tokens) + warm-up/poly LR."""
        cfg = self.config
        decay, plain = [], []
        for name, param in self.named_parameters():
            if param.requires_grad:
                (plain if no_weight_decay(name) else decay).append(param)
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                       {"params": plain, "weight_decay": 0.0}],
                                      lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, **optimizer_options(decay + plain))
        schedule = PolynomialWarmup(cfg.lr, cfg.lr_end, cfg.warmup_steps, cfg.schedule_horizon, cfg.decay_power)
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)

    # ---- downstream ---------------------------------------------------------------------
    @property
    def video_dim(self) -> int:
        return 4 * self.config.d_model

    @property
    def clip_dim(self) -> int:
        return 2 * self.config.d_model

    def video_embedding(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """V-TRS fuse token per body, (body 1 + body 2) / 2 (a missing body is zeros, still encoded)."""
        lengths = lengths.to(x.device).long()
        return self.net.encoder.video_embedding(input_stream(x, self.config, lengths), lengths,
                                                self._capacities.get("embed_clips"))

    def clip_embedding(self, clips: torch.Tensor) -> torch.Tensor:
        """C-TRS fuse token of the 7-frame clip per body, (body 1 + body 2) / 2. The stream is
        computed on the clip as given (motion = difference of consecutive clip frames)."""
        return self.net.encoder.clip_embedding(input_stream(clips, self.config))

    def detection_frames(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The stream over whole videos (motion x_t - x_(t-1) as in pre-training)."""
        return input_stream(x, self.config, lengths.to(x.device).long())

    def detection_clip_embedding(self, clips: torch.Tensor) -> torch.Tensor:
        """C-TRS embedding of windows already in the stream."""
        return self.net.encoder.clip_embedding(clips)

    def encoder_parameters(self):
        """F/C/V-TRS (the pretext heads are not used downstream)."""
        return self.net.encoder.parameters()
