"""MAMP behind the suite's ``SkeletonMethod`` interface.

NOT registered yet: registering adds MAMP to every ``--method all`` run (and the CI baseline).
To register, decorate ``MAMP`` with ``@register("mamp", make_config)`` (``from methods import
register``) and add ``"mamp"`` to ``methods._BUILTIN``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from datasets.precision import float32_island
from methods.base import SkeletonMethod, optimizer_options
from methods.rng import DeviceGenerators
from plumbing.rank import rank

from .config import MAMPConfig, make_config
from datasets.streams import to_stream

from .feeder import crop_resize, feeder_input, fit_bodies, seq_translation, sequences
from .network import MAMPNet


@dataclass(frozen=True)
class WarmupCosine:
    """LR factor per optimizer step (util/lr_sched.py, per iteration): linear warm-up from 0 over
    ``warmup`` steps, then a half cosine from ``lr`` to ``min_lr`` at ``total``; ``min_lr`` after."""

    lr: float
    min_lr: float
    warmup: int
    total: int

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return step / self.warmup
        if self.lr <= 0:
            return 1.0
        progress = min((step - self.warmup) / max(1, self.total - self.warmup), 1.0)
        lr = self.min_lr + (self.lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
        return lr / self.lr


def no_weight_decay(name: str, param: torch.Tensor) -> bool:
    """timm 0.3.2 ``add_weight_decay``: 1-D parameters (LayerNorms, biases) and names ending in
    ``.bias``; the position tables and the mask token (3-D / 4-D) ARE decayed, as in the reference."""
    return param.dim() == 1 or name.endswith(".bias")


class MAMP(SkeletonMethod):
    """Masked motion prediction (Mao et al., ICCV 2023) over spatio-temporal joint tokens."""

    input_frames = 120           # paper profile's num_frames (small / ci: config.num_frames)
    PRETEXT = {"mamp/loss": "masked_motion_err"}

    def __init__(self, config: MAMPConfig):
        super().__init__(config)
        self.net = MAMPNet(config)
        self._generators = DeviceGenerators(config.seed + rank())

    # ---- randomness ---------------------------------------------------------------------
    def generator(self, device: torch.device | str) -> torch.Generator | None:
        """The method's generator on ``device`` (crop, rotation, masking); None (the device's
        default RNG) with ``use_default_rng`` or on ``meta``."""
        return None if self.use_default_rng else self._generators.get(device)

    def pretraining_state(self) -> dict:
        return {"generators": self._generators.state()}

    def load_pretraining_state(self, state: dict) -> None:
        self._generators.load(state.get("generators", {}))

    # ---- pre-training -------------------------------------------------------------------
    def model_input(self, x: torch.Tensor, lengths: torch.Tensor, *, train: bool,
                    generator: torch.Generator | None = None, frames: int | None = None) -> torch.Tensor:
        """Raw ``(B, T, M, V, C)`` -> the feeder's ``(B*bodies, frames, V, C)`` body sequences."""
        with float32_island(x):
            return sequences(feeder_input(x, lengths, self.config, train=train, generator=generator, frames=frames))

    def pretrain_loss(self, x: torch.Tensor, lengths: torch.Tensor, *, mask: torch.Tensor | None = None,
                      generator: torch.Generator | None = None):
        """The feeder's training pipeline (training mode; evaluation crop in eval mode), then
        masked motion prediction. ``mask`` ``(B*bodies, L)``: a given mask instead of drawing one;
        ``generator``: instead of the method's own."""
        if x.dim() != 5 or x.shape[-2:] != (25, 3):
            raise ValueError(f"mamp.pretrain_loss: expected x of shape (B, T, M, 25, 3), got {tuple(x.shape)}")
        gen = generator if generator is not None else self.generator(x.device)
        xs = self.model_input(x, lengths, train=self.training, generator=gen)
        out = self.net.pretrain(xs, mask=mask, generator=gen)
        return out["loss"], {"mamp/loss": out["loss"].detach().float()}

    @torch.no_grad()
    def pretext_metrics(self, x: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        """The masked-motion-prediction loss (standardised targets, lower is better) on ``x`` in
        eval mode: the evaluation crop, no rotation, masks drawn from ``generator``."""
        was_training = self.training
        self.eval()
        try:
            _, logs = self.pretrain_loss(x, lengths, generator=generator)
        finally:
            self.train(was_training)
        return {name: float(logs[key]) for key, name in self.PRETEXT.items()}

    def configure_pretraining(self):
        """AdamW(betas 0.9, 0.95), weight decay except on 1-D parameters and biases (timm's
        rule), per-step warm-up + half-cosine LR (util/lr_sched.py); no gradient clipping."""
        cfg = self.config
        decay, plain = [], []
        for name, param in self.named_parameters():
            if param.requires_grad:
                (plain if no_weight_decay(name, param) else decay).append(param)
        optimizer = torch.optim.AdamW([{"params": plain, "weight_decay": 0.0},
                                       {"params": decay, "weight_decay": cfg.weight_decay}],
                                      lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, **optimizer_options(decay + plain))
        schedule = WarmupCosine(cfg.lr, cfg.min_lr, cfg.warmup_steps, cfg.total_steps)
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)

    # ---- downstream ---------------------------------------------------------------------
    @property
    def video_dim(self) -> int:
        return self.config.dim_feat

    @property
    def clip_dim(self) -> int:
        return self.config.dim_feat

    def _pooled(self, xs: torch.Tensor, samples: int) -> torch.Tensor:
        """Encoder features averaged over bodies, time and joints (the linear-probe head's pooling)."""
        feats = self.net.features(xs)                                          # (S, TP, VP, D)
        return feats.reshape(samples, -1, feats.shape[-1]).mean(dim=1)

    def video_embedding(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The evaluation feeder (centre crop ``test_p``, resized to ``num_frames``, both body
        slots: an absent body's zeros are encoded and averaged in, as the reference), unmasked
        encoder, mean over bodies, tokens: ``(B, dim_feat)``."""
        xs = self.model_input(x, lengths, train=False)
        return self._pooled(xs, x.shape[0])

    def _window_sequences(self, clips: torch.Tensor) -> torch.Tensor:
        """Windows already centred and in the stream ``(N, t, M, V, C)`` -> body sequences:
        ``clip_mode`` "resize" resamples the t frames to ``num_frames`` (the feeder's rule for any
        length), "native" pads them (last frame repeated) to a multiple of ``t_patch_size``."""
        cfg = self.config
        n, t = clips.shape[:2]
        with float32_island(clips):
            x = fit_bodies(clips.float(), torch.full((n,), t, dtype=torch.long, device=clips.device), cfg.bodies)
            if cfg.clip_mode == "resize":
                zero = torch.zeros(n, dtype=torch.long, device=clips.device)
                x = crop_resize(x, zero, zero + t, cfg.num_frames)
            else:
                frames = min(-(-t // cfg.t_patch_size) * cfg.t_patch_size, cfg.num_frames)
                x = torch.cat([x, x[:, -1:].expand(-1, max(frames - t, 0), -1, -1, -1)], dim=1)[:, :frames]
            return sequences(x)

    def clip_embedding(self, clips: torch.Tensor) -> torch.Tensor:
        """The 7-frame window as its own sequence: ``seq_translation`` on its first present frame,
        the stream over its frames, then as ``detection_clip_embedding``."""
        lengths = torch.full((clips.shape[0],), clips.shape[1], dtype=torch.long, device=clips.device)
        return self.detection_clip_embedding(self.detection_frames(clips, lengths))

    def detection_frames(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Whole videos centred once (``seq_translation`` per video), in the stream
        (motion x_(t+1) - x_t, zero at the last valid frame)."""
        cfg = self.config
        with float32_island(x):
            lengths = lengths.to(x.device).long()
            v = seq_translation(fit_bodies(x.float(), lengths, cfg.bodies), cfg.center_joint)
            return to_stream(v, cfg.stream, lengths, forward_motion=True)

    def detection_clip_embedding(self, clips: torch.Tensor) -> torch.Tensor:
        """Unmasked encoder on the window's sequences, pooled: ``(N, dim_feat)``."""
        return self._pooled(self._window_sequences(clips), clips.shape[0])

    def encoder_parameters(self):
        """Patch embedding, position tables, encoder blocks and norm (the decoder is dropped downstream)."""
        skip = ("decoder", "mask_token")
        return (p for n, p in self.net.named_parameters() if not n.startswith(skip))


def create(profile: str = "ci", **overrides) -> MAMP:
    """``MAMP(make_config(profile, **overrides))`` (what ``methods.create("mamp", ...)`` will do)."""
    return MAMP(make_config(profile, **overrides))
