"""MCC, reconstructed from the paper's description (Su, Lin, Wu, ICCV 2021; no public code).

What the MCC abstract and the Hi-TRS supplementary give: an ST-GCN encoder with a momentum
memory bank; a speed-changed clip of a sequence is a positive (motion consistency), a
motion-broken clip a negative, and skeleton interpolation models motion continuity. This
suite's reconstruction (every choice beyond that is ours, see docs/baselines.md):

* anchor (query) and key: independent random windows of the sequence, resampled to
  ``frames``, then shear;
* extra positives through the key encoder: the anchor's window at a different speed
  (log-uniform factor in [speed_min, speed_max]) and the anchor's grid shifted by random
  sub-frame offsets (linearly interpolated skeletons);
* a hard negative: the anchor's frames reversed or shuffled in segments;
* multi-positive InfoNCE over [key, speed, interpolated, broken, queue] with positives
  [1, 1, 1, 0, 0...]; only the key view is enqueued.
"""
from __future__ import annotations

import torch

from datasets.augment import shear
from datasets.precision import float32_island
from datasets.preprocess import centre
from datasets.streams import to_stream

from .. import register
from ..moco import (MemoryBankMethod, MomentumPair, contrastive_logits, embedding_spread, method_generator,
                    multi_positive_nce)
from ..stgcn import ProjectedSTGCN, STGCNArch
from .config import MCCConfig, make_config
from .views import broken_grid, crop_grid, full_grid, jitter_grid, read_frames, speed_grid


def multi_positive_logits(q: torch.Tensor, keys: dict[str, torch.Tensor], queue: torch.Tensor,
                          temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits, positive mask)`` over ``[key, speed?, interpolated?, broken?, queue]`` / T.

    ``keys["key"]`` is required; the optional views are used when present; "broken" is the
    only extra column that is a negative. float32 also under autocast."""
    extra = [n for n in ("speed", "interpolated", "broken") if n in keys]
    logits, _, l_neg = contrastive_logits(q, keys["key"], queue, temperature)
    with float32_island(q):
        sims = [(q.float() * keys[n].float()).sum(1, keepdim=True) / temperature for n in extra]
    logits = torch.cat([logits[:, :1], *sims, logits[:, 1:]], dim=1)
    ones, zeros = torch.ones_like(logits[:, :1]), torch.zeros_like(logits[:, :1])   # built on the device
    head = [ones] + [zeros if n == "broken" else ones for n in extra]
    mask = torch.cat([*head, torch.zeros_like(l_neg)], dim=1)
    return logits, mask


@register("mcc", make_config)
class MCC(MemoryBankMethod):
    """MCC, reconstructed from the paper's description: ST-GCN + momentum memory bank with
    speed-changed and interpolated positives and a motion-broken hard negative."""

    PRETEXT = {"mcc/acc": "instance_top1", "mcc/spread": "embedding_spread"}

    def __init__(self, config: MCCConfig):
        super().__init__(config)
        arch = STGCNArch(hidden_channels=config.hidden_channels, hidden_dim=config.hidden_dim,
                         dropout=config.dropout)
        self.pair = MomentumPair(ProjectedSTGCN(arch, config.feature_dim, config.mlp), queue_size=config.queue_size,
                                 dim=config.feature_dim, momentum=config.momentum,
                                 temperature=config.temperature, bn_splits=config.bn_splits)
        self.generator = method_generator()

    # ---- views --------------------------------------------------------------------------
    def _render(self, x: torch.Tensor, lengths: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """Frames at ``times``, sheared, converted to the configured stream."""
        view = shear(read_frames(x, lengths, times), self.draws(x.device), self.config.shear)
        return to_stream(view, self.config.stream)

    def views(self, x: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """The anchor/key/positive/negative inputs of one batch (``(B, frames, M, V, C)`` each)."""
        cfg, g = self.config, self.draws(x.device)
        lengths = lengths.to(x.device)
        x = centre(x.float(), torch.zeros_like(lengths))
        anchor, span = crop_grid(lengths, cfg.frames, cfg.crop_min, g)
        grids = {"anchor": anchor, "key": crop_grid(lengths, cfg.frames, cfg.crop_min, g)[0]}
        if cfg.use_speed:
            grids["speed"] = speed_grid(anchor, span, lengths, cfg.speed_min, cfg.speed_max, g)[0]
        if cfg.use_interpolation:
            grids["interpolated"] = jitter_grid(anchor, g)
        if cfg.use_broken:
            grids["broken"] = broken_grid(anchor, cfg.broken_segments, cfg.reverse_prob, g)
        with float32_island(x):  # coordinates stay float32 (shear is a matmul)
            return {name: self._render(x, lengths, t) for name, t in grids.items()}

    # ---- pre-training -------------------------------------------------------------------
    def pretrain_loss(self, x: torch.Tensor, lengths: torch.Tensor):
        v = self.views(x, lengths)
        names = [n for n in ("key", "speed", "interpolated", "broken") if n in v]
        q = self.pair.query(v["anchor"])
        keys = self.pair.key(torch.cat([v[n] for n in names]), self.draws(x.device)).split(x.shape[0])  # one pass
        k = dict(zip(names, keys))
        logits, mask = multi_positive_logits(q, k, self.pair.queue.keys, self.config.temperature)
        loss = multi_positive_nce(logits, mask)
        self.pair.queue.enqueue(k["key"])
        with torch.no_grad():
            top_is_positive = mask.gather(1, logits.argmax(dim=1, keepdim=True)).float().mean()
            logs = {"mcc/loss": loss.detach(), "mcc/acc": top_is_positive * 100.0, "mcc/spread": embedding_spread(q)}
            logs.update({f"mcc/{n}_sim": logits[:, i].mean() * self.config.temperature
                         for i, n in enumerate(names)})
        return loss, logs

    def after_optimizer_step(self) -> None:
        self.pair.update_key_encoder()

    # ---- downstream ---------------------------------------------------------------------
    @property
    def encoder(self):
        """The query ST-GCN (what downstream tasks fine-tune)."""
        return self.pair.encoder_q.backbone

    def video_embedding(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """All valid frames resampled to ``frames``, centred, pooled ST-GCN features (bodies averaged)."""
        lengths = lengths.to(x.device)
        x = centre(x.float(), torch.zeros_like(lengths))
        view = read_frames(x, lengths, full_grid(lengths, self.config.frames))
        return self.encoder.features_btmvc(to_stream(view, self.config.stream))

    def clip_embedding(self, clips: torch.Tensor) -> torch.Tensor:
        """The 7 frames as they are (centred on the middle frame), no resampling."""
        n, t = clips.shape[:2]
        x = centre(clips.float(), torch.full((n,), t // 2, device=clips.device))
        return self.encoder.features_btmvc(to_stream(x, self.config.stream))

    def detection_frames(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Motion / bone over the whole video (both ignore the clip's centring); joints stay raw
        and are centred per window by ``clip_embedding``."""
        if self.config.stream == "joint":
            return x
        return to_stream(x.float(), self.config.stream, lengths.to(x.device))

    def detection_clip_embedding(self, clips: torch.Tensor) -> torch.Tensor:
        if self.config.stream == "joint":
            return self.clip_embedding(clips)
        return self.encoder.features_btmvc(clips.float())

    def encoder_parameters(self):
        return self.encoder.parameters()


__all__ = ["MCC", "MCCConfig"]
