"""CrosSCLR behind the SkeletonMethod interface: three streams, each its own MoCo pair.

Pre-training input is CrosSCLR's frame50 (computed here from the raw batch); two views per
sample (temporal crop with mirror padding, then shear); motion (forward difference, last frame
0) and bone streams are derived from each augmented joint view, as the reference does.
Single-view phase: sum of the three streams' InfoNCE losses. Cross-view phase (from
``cross_start`` of the run, switched by ``on_step_start``): see ``mining.py``.

Downstream, the model of ``config.stream`` is that stream's query ST-GCN (projection dropped);
"CrosSCLR-3S" is the runner's average over the three stream models.
"""
from __future__ import annotations

import torch
from torch import nn

from datasets.augment import crossclr_temporal_crop, shear
from datasets.preprocess import CENTER_JOINT, frame50, y_rotate_shoulders
from datasets.streams import bone, motion

from .. import register
from ..moco import MemoryBankMethod, MomentumPair, info_nce, method_generator, top1_accuracy
from ..stgcn import ProjectedSTGCN, STGCNArch
from .config import STREAMS, CrosSCLRConfig, make_config
from .mining import cross_view_losses


def crossclr_stream(x: torch.Tensor, stream: str) -> torch.Tensor:
    """Joint / motion (x_{t+1} - x_t, last frame 0) / bone of a fixed-length ``(B, T, M, V, C)``."""
    if stream == "joint":
        return x
    if stream == "motion":
        return motion(x, forward=True)
    if stream == "bone":
        return bone(x)
    raise ValueError(f"unknown stream {stream!r}; choose one of {', '.join(STREAMS)}")


@register("crossclr", make_config)
class CrosSCLR(MemoryBankMethod):
    """CrosSCLR (Li et al., CVPR 2021), paper behaviour; ``faithful_bugs`` for the reference's."""

    name = "crossclr"
    PRETEXT = {f"{s}/acc": f"instance_top1_{s}" for s in STREAMS}
    input_frames = 50
    pretrains_all_streams = True

    def __init__(self, config: CrosSCLRConfig):
        super().__init__(config)
        arch = STGCNArch(hidden_channels=config.hidden_channels, hidden_dim=config.hidden_dim,
                         dropout=config.dropout)
        self.pairs = nn.ModuleDict({
            s: MomentumPair(ProjectedSTGCN(arch, config.feature_dim, config.mlp), queue_size=config.queue_size,
                            dim=config.feature_dim, momentum=config.momentum, temperature=config.temperature,
                            bn_splits=config.bn_splits)
            for s in STREAMS})
        if config.faithful_bugs:  # reference: motion/bone MLPs end in the joint MLP's last layer
            for s in ("motion", "bone"):
                self.pairs[s].encoder_q.projection[2] = self.pairs["joint"].encoder_q.projection[2]
                self.pairs[s].encoder_k.projection[2] = self.pairs["joint"].encoder_k.projection[2]
        self.generator = method_generator()
        self.cross_view = False

    # ---- pre-training -------------------------------------------------------------------
    def on_step_start(self, step: int, total_steps: int) -> None:
        self.cross_view = step >= round(self.config.cross_start * total_steps)

    def _view(self, x50: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        return shear(crossclr_temporal_crop(x50, self.generator, cfg.pad_ratio), self.generator, cfg.shear)

    def pretrain_loss(self, x: torch.Tensor, lengths: torch.Tensor):
        cfg = self.config
        with torch.autocast(x.device.type, enabled=False):  # coordinates stay float32 (shear is a matmul)
            x50 = frame50(x.float(), lengths)
            view_q, view_k = self._view(x50), self._view(x50)
        q, k, l_pos, l_neg, logits = {}, {}, {}, {}, {}
        for s in STREAMS:  # three streams, each its own encoders and queue
            pair = self.pairs[s]
            q[s] = pair.query(crossclr_stream(view_q, s))
            k[s] = pair.key(crossclr_stream(view_k, s), self.generator)
            logits[s], l_pos[s], l_neg[s] = pair.logits(q[s], k[s])
        if self.cross_view:
            losses = cross_view_losses(l_pos, l_neg, cfg.temperature, cfg.topk, cfg.context)
        else:
            losses = {s: info_nce(logits[s]) for s in STREAMS}
        for s in STREAMS:
            self.pairs[s].queue.enqueue(k[s])
        total = sum(losses.values())
        logs = {f"{s}/loss": float(losses[s].detach()) for s in STREAMS}
        logs.update({f"{s}/acc": top1_accuracy(logits[s].detach()) for s in STREAMS})
        logs["cross_view"] = float(self.cross_view)
        return total, logs

    def after_optimizer_step(self) -> None:
        if self.config.faithful_bugs and self.cross_view:  # reference: only motion's key encoder moves
            self.pairs["motion"].update_key_encoder()
            return
        for s in STREAMS:
            self.pairs[s].update_key_encoder()

    # ---- downstream ---------------------------------------------------------------------
    @property
    def encoder(self):
        """The query ST-GCN of ``config.stream`` (what downstream tasks fine-tune)."""
        return self.pairs[self.config.stream].encoder_q.backbone

    def video_embedding(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            x50 = frame50(x.float(), lengths)
        return self.encoder.features_btmvc(crossclr_stream(x50, self.config.stream))

    def clip_embedding(self, clips: torch.Tensor) -> torch.Tensor:
        """frame50's spatial normalisation (centre joint 21, shoulders -> +x) per frame, no
        temporal resize: the 7 sampled frames go through the encoder as they are."""
        centred = clips.float() - clips[:, :, :, CENTER_JOINT:CENTER_JOINT + 1, :].float()
        return self.encoder.features_btmvc(crossclr_stream(y_rotate_shoulders(centred), self.config.stream))

    def sequence_embedding(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.video_embedding(x, lengths)

    def encoder_parameters(self):
        return self.encoder.parameters()


__all__ = ["CrosSCLR", "CrosSCLRConfig", "crossclr_stream"]
