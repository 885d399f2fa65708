"""Hi-TRS networks: the pre-training model (encoder + pretext heads) and the recognition model.

``HiTRSNet`` has the reference ``Hi_TRS``'s parameters (7,051,143 at the paper setting);
``HiTRSClassifier`` adds ``Linear(4d, classes)`` like ``Hi_TRS_AR`` (7,081,923 for 60 classes).
"""
from __future__ import annotations

import torch
from torch import nn

from datasets.streams import to_stream

from .config import HiTRSConfig
from .encoder import HiTRSEncoder
from .pretext import PretextHeads


class HiTRSNet(nn.Module):
    """Encoder (F/C/V-TRS) + the four pretext heads."""

    def __init__(self, cfg: HiTRSConfig):
        super().__init__()
        self.encoder = HiTRSEncoder(cfg)
        self.heads = PretextHeads(cfg)


class HiTRSClassifier(nn.Module):
    """Recognition model: raw joints -> stream -> two-body video embedding -> Linear head."""

    def __init__(self, cfg: HiTRSConfig, num_classes: int):
        super().__init__()
        self.cfg = cfg
        self.net = HiTRSNet(cfg)
        self.head = nn.Linear(4 * cfg.d_model, num_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``x`` float (B, T, 2, 25, 3) zero-padded raw joints, ``lengths`` (B,) -> logits (B, classes)."""
        lengths = lengths.to(x.device).long()
        stream = to_stream(x, self.cfg.stream, lengths)
        return self.head(self.net.encoder.video_embedding(stream, lengths))
