"""Hi-TRS networks: the pre-training model (encoder + pretext heads) and the recognition model.

``HiTRSNet`` has the reference ``Hi_TRS``'s parameters (7,051,143 at the paper setting);
``HiTRSClassifier`` adds ``Linear(4d, classes)`` like ``Hi_TRS_AR`` (7,081,923 for 60 classes).
"""
from __future__ import annotations

import torch
from torch import nn

from datasets.preprocess import SPINE_BASE, centre
from datasets.streams import to_stream

from .config import HiTRSConfig
from .encoder import HiTRSEncoder
from .pretext import PretextHeads


def model_input(x: torch.Tensor, cfg: HiTRSConfig) -> torch.Tensor:
    """float32 joints ``(B, T, M, 25, 3)``; with ``center_input`` every present body is moved
    by body 1's spine base in frame 0, so where the actor stands in the room is not input."""
    x = x.float()
    if not cfg.center_input:
        return x
    return centre(x, torch.zeros(len(x), dtype=torch.long, device=x.device), joint=SPINE_BASE)


def stream_scale(cfg: HiTRSConfig) -> float:
    """``motion_scale`` on the motion stream (1 in the reference: metres per frame, some 30
    times smaller than the centred joints), 1 on the others."""
    return cfg.motion_scale if cfg.stream == "motion" else 1.0


def model_stream(x: torch.Tensor, cfg: HiTRSConfig, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """The configured stream of ``model_input``'s joints, times ``stream_scale``."""
    s = to_stream(x, cfg.stream, lengths)
    scale = stream_scale(cfg)
    return s * scale if scale != 1 else s


def input_stream(x: torch.Tensor, cfg: HiTRSConfig, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Raw joints -> the stream the encoder reads (``model_input``, then ``model_stream``)."""
    return model_stream(model_input(x, cfg), cfg, lengths)


class HiTRSNet(nn.Module):
    """Encoder (F/C/V-TRS) + the four pretext heads."""

    def __init__(self, cfg: HiTRSConfig):
        super().__init__()
        self.encoder = HiTRSEncoder(cfg)
        self.heads = PretextHeads(cfg)


class HiTRSClassifier(nn.Module):
    """Recognition model: raw joints -> stream -> two-body video embedding -> Linear head; the
    input options (``center_input``, ``motion_scale``) apply as in the ``HiTRS`` method."""

    def __init__(self, cfg: HiTRSConfig, num_classes: int):
        super().__init__()
        self.cfg = cfg
        self.net = HiTRSNet(cfg)
        self.head = nn.Linear(4 * cfg.d_model, num_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``x`` float (B, T, 2, 25, 3) zero-padded raw joints, ``lengths`` (B,) -> logits (B, classes)."""
        lengths = lengths.to(x.device).long()
        stream = input_stream(x, self.cfg, lengths)
        return self.head(self.net.encoder.video_embedding(stream, lengths))
