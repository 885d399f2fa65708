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
from datasets.precision import float32_island
from datasets.preprocess import CENTER_JOINT, frame50, y_rotate_shoulders
from datasets.streams import to_stream

from .. import register
from ..moco import (MemoryBankMethod, MomentumPair, embedding_spread, frozen_copy, info_nce, method_generator,
                    top1_accuracy)
from ..stgcn import ProjectedSTGCN, STGCNArch
from .config import STREAMS, CrosSCLRConfig, make_config
from .mining import cross_view_losses


def crossclr_stream(x: torch.Tensor, stream: str) -> torch.Tensor:
    """Joint / motion / bone of a fixed-length ``(B, T, M, V, C)``; CrosSCLR's motion is the
    forward difference x_{t+1} - x_t (last frame 0)."""
    return to_stream(x, stream, forward_motion=True)


def reference_weights_init(module: nn.Module) -> None:
    """The reference processors' ``weights_init``: conv / linear weights N(0, 0.02) with zero
    bias, batch-norm weights N(1, 0.02) with zero bias; other parameters (edge importance)
    keep their values. Applied to the whole model, key encoders included."""
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.modules.batchnorm._BatchNorm):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def share_joint_mlp(pairs: nn.ModuleDict, hidden_dim: int) -> None:
    """The official 3-view model's MLP: the motion and bone heads wrap the joint encoder's head
    after it was already replaced by its MLP, so they compute Linear -> ReLU -> (the joint's
    whole MLP): 3 Linear layers, the last two (4 tensors) shared with the joint stream; the
    key encoders likewise share the joint key head."""
    joint = pairs["joint"]
    for s in ("motion", "bone"):
        first = nn.Linear(hidden_dim, hidden_dim)
        pairs[s].encoder_q.projection = nn.Sequential(first, nn.ReLU(), joint.encoder_q.projection)
        pairs[s].encoder_k.projection = nn.Sequential(frozen_copy(first), nn.ReLU(), joint.encoder_k.projection)


@register("crossclr", make_config)
class CrosSCLR(MemoryBankMethod):
    """CrosSCLR (Li et al., CVPR 2021), paper behaviour; ``faithful_bugs`` for the reference's."""

    input_frames = 50             # frame50: every sequence resampled to 50 frames
    PRETEXT = {**{f"{s}/acc": f"instance_top1_{s}" for s in STREAMS},
               **{f"{s}/spread": f"embedding_spread_{s}" for s in STREAMS}}
    pretrains_all_streams = True
    table_streams = STREAMS       # CrosSCLR-3S (and CrosSCLR on joints alone)

    def __init__(self, config: CrosSCLRConfig):
        super().__init__(config)
        arch = STGCNArch(hidden_channels=config.hidden_channels, hidden_dim=config.hidden_dim,
                         dropout=config.dropout)
        self.pairs = nn.ModuleDict({
            s: MomentumPair(ProjectedSTGCN(arch, config.feature_dim, config.mlp), queue_size=config.queue_size,
                            dim=config.feature_dim, momentum=config.momentum, temperature=config.temperature,
                            bn_splits=config.bn_splits)
            for s in STREAMS})
        if config.faithful_bugs:
            share_joint_mlp(self.pairs, config.hidden_dim)
        if config.init == "reference":
            self.apply(reference_weights_init)  # after the q -> k copy: keys start independent
        self.generator = method_generator()
        self.cross_view = False

    # ---- pre-training -------------------------------------------------------------------
    def on_step_start(self, step: int, total_steps: int) -> None:
        self.cross_view = step >= round(self.config.cross_start * total_steps)
        if step == 0 and self.config.init == "reference":
            # the reference moves the key encoders before each step's keys (we: after each optimizer
            # step); with independent initial keys the very first move matters: do it here
            for s in STREAMS:
                self.pairs[s].update_key_encoder()

    def _view(self, x50: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        g = self.draws(x50.device)
        return shear(crossclr_temporal_crop(x50, g, cfg.pad_ratio), g, cfg.shear)

    def pretrain_loss(self, x: torch.Tensor, lengths: torch.Tensor):
        cfg = self.config
        with float32_island(x):  # coordinates stay float32 (shear is a matmul)
            x50 = frame50(x.float(), lengths)
            view_q, view_k = self._view(x50), self._view(x50)
        q, k, l_pos, l_neg, logits = {}, {}, {}, {}, {}
        for s in STREAMS:  # three streams, each its own encoders and queue
            pair = self.pairs[s]
            q[s] = pair.query(crossclr_stream(view_q, s))
            k[s] = pair.key(crossclr_stream(view_k, s), self.draws(x.device))
            logits[s], l_pos[s], l_neg[s] = pair.logits(q[s], k[s])
        if self.cross_view:
            losses = cross_view_losses(l_pos, l_neg, cfg.temperature, cfg.topk, cfg.context)
        else:
            losses = {s: info_nce(logits[s]) for s in STREAMS}
        for s in STREAMS:
            self.pairs[s].queue.enqueue(k[s])
        total = sum(losses.values())
        logs = {f"{s}/loss": losses[s].detach() for s in STREAMS}
        logs.update({f"{s}/acc": top1_accuracy(logits[s].detach()) for s in STREAMS})
        logs.update({f"{s}/spread": embedding_spread(q[s]) for s in STREAMS})
        logs["cross_view"] = total.detach().new_full((), float(self.cross_view))
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
        with float32_island(x):
            x50 = frame50(x.float(), lengths)
        return self.encoder.features_btmvc(crossclr_stream(x50, self.config.stream))

    def clip_embedding(self, clips: torch.Tensor) -> torch.Tensor:
        """frame50's spatial normalisation (centre joint 21, shoulders -> +x) per frame, no
        temporal resize: the 7 sampled frames go through the encoder as they are."""
        centred = clips.float() - clips[:, :, :, CENTER_JOINT:CENTER_JOINT + 1, :].float()
        return self.encoder.features_btmvc(crossclr_stream(y_rotate_shoulders(centred), self.config.stream))

    def detection_frames(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """frame50's spatial normalisation of every frame (rotation sign per video, as frame50
        per sequence), then the stream over the whole video (motion x_(t+1) - x_t)."""
        centred = x.float() - x[:, :, :, CENTER_JOINT:CENTER_JOINT + 1, :].float()
        return crossclr_stream(y_rotate_shoulders(centred), self.config.stream)

    def detection_clip_embedding(self, clips: torch.Tensor) -> torch.Tensor:
        return self.encoder.features_btmvc(clips.float())

    def encoder_parameters(self):
        return self.encoder.parameters()


__all__ = ["CrosSCLR", "CrosSCLRConfig", "crossclr_stream"]
