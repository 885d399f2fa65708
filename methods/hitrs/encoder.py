"""F-TRS, C-TRS and V-TRS, and the two-body downstream encoders built from them.

Widths: F-TRS ``d`` (FFN ``d``), C-TRS ``2d`` (FFN ``d``), V-TRS ``4d`` (FFN ``2d``); every level
uses ``nhead`` heads of width ``d_att``. Position tables are learnable and start from sin/cos;
fuse tokens start uniform [0, 1) and sit at the END of the token sequence.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from datasets.precision import float32_island

from ..packing import pack
from .blocks import make_blocks, run_blocks
from .config import COORDS, JOINTS, HiTRSConfig
from .windows import frame_windows


def sincos_1d(length: int, dim: int) -> torch.Tensor:
    """(length, dim): sin on even channels, cos on odd ones, base 10000."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)
    return table


def sincos_2d(dim: int, height: int, width: int) -> torch.Tensor:
    """(height, width, dim): first half of the channels encodes the width (joint) index,
    second half the height (frame) index, each as interleaved sin/cos."""
    if dim % 4:
        raise ValueError(f"2-D sin/cos table needs a channel count divisible by 4, got {dim}")
    half = dim // 2
    w_tab = sincos_1d(width, half)                      # (width, half)
    h_tab = sincos_1d(height, half)                     # (height, half)
    return torch.cat([w_tab[None].expand(height, -1, -1), h_tab[:, None].expand(-1, width, -1)], dim=-1).clone()


def clip_attention_mask(window: int, joints: int = JOINTS) -> torch.Tensor:
    """(L+1, L+1) bool, True = may attend: joints of one frame see only themselves inside that
    frame, every other frame freely; the trailing fuse token sees and is seen by all."""
    frame = torch.arange(window * joints) // joints
    blocked = (frame[:, None] == frame[None, :]) & ~torch.eye(window * joints, dtype=torch.bool)
    return ~F.pad(blocked, (0, 1, 0, 1), value=False)


class FrameTRS(nn.Module):
    """Per-frame joint transformer: xyz -> Linear -> GELU -> LayerNorm (+ joint positions)."""

    def __init__(self, cfg: HiTRSConfig):
        super().__init__()
        d = cfg.d_model
        self.width = d
        self.embed = nn.Linear(COORDS, d)
        self.embed_norm = nn.LayerNorm(d)
        self.pos = nn.Parameter(sincos_1d(JOINTS, d))
        self.blocks = make_blocks(cfg.layers, d, d, cfg.nhead, cfg.d_att, cfg.dropout,
                                  copies=cfg.init == "reference")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (..., 25, 3) -> (..., 25, d); every frame independently, no mask. The embedding
        reads coordinates, so it stays float32 under autocast (bf16 would round them by mm)."""
        lead = x.shape[:-2]
        with float32_island(x):
            h = self.embed_norm(F.gelu(self.embed(x.reshape(-1, JOINTS, COORDS).float()))) + self.pos
        return run_blocks(self.blocks, h).view(*lead, JOINTS, self.width)


class ClipTRS(nn.Module):
    """Clip transformer over window x 25 joint tokens + a fuse token (its output = clip embedding)."""

    def __init__(self, cfg: HiTRSConfig):
        super().__init__()
        d = cfg.d_model
        self.width, self.window = 2 * d, cfg.window
        self.embed = nn.Linear(d, 2 * d)
        self.pos = nn.Parameter(sincos_2d(2 * d, cfg.window, JOINTS))
        self.fuse = nn.Parameter(torch.rand(2 * d))
        self.blocks = make_blocks(cfg.layers, 2 * d, d, cfg.nhead, cfg.d_att, cfg.dropout,
                                  copies=cfg.init == "reference")
        self.register_buffer("mask", clip_attention_mask(cfg.window), persistent=False)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """``feats`` (N, window, 25, d) F-TRS features -> (N, 2d)."""
        n = feats.shape[0]
        if feats.shape[1] != self.window:
            raise ValueError(f"C-TRS expects clips of {self.window} frames, got {tuple(feats.shape)}")
        h = (self.embed(feats) + self.pos).reshape(n, self.window * JOINTS, self.width)
        h = torch.cat([h, self.fuse.to(h.dtype).expand(n, 1, -1)], dim=1)
        return run_blocks(self.blocks, h, self.mask)[:, -1]


class VideoTRS(nn.Module):
    """Video transformer over clip embeddings + a fuse token; padding clips masked as keys."""

    def __init__(self, cfg: HiTRSConfig):
        super().__init__()
        d = cfg.d_model
        self.width, self.max_clips = 4 * d, cfg.max_clips
        self.embed = nn.Linear(2 * d, 4 * d)
        self.pos = nn.Parameter(sincos_1d(cfg.max_clips, 4 * d))
        self.fuse = nn.Parameter(torch.rand(4 * d))
        self.blocks = make_blocks(cfg.layers, 4 * d, 2 * d, cfg.nhead, cfg.d_att, cfg.dropout,
                                  copies=cfg.init == "reference")

    def forward(self, clips: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """``clips`` (B, W, 2d), ``valid`` (B, W) bool -> video embedding (B, 4d)."""
        b, w, _ = clips.shape
        if w > self.max_clips:
            raise ValueError(f"V-TRS holds at most {self.max_clips} clips (max_clips); got {w}: cut the sequence "
                             f"(loop.max_frames) or raise max_clips")
        h = self.embed(clips) + self.pos[:w]
        h = torch.cat([h, self.fuse.to(h.dtype).expand(b, 1, -1)], dim=1)
        keys = torch.cat([valid, valid.new_ones(b, 1)], dim=1)      # fuse token never masked
        return run_blocks(self.blocks, h, keys[:, None, None, :])[:, -1]


class HiTRSEncoder(nn.Module):
    """The three levels and the downstream embeddings (input already converted to the stream)."""

    def __init__(self, cfg: HiTRSConfig):
        super().__init__()
        self.cfg = cfg
        self.frame = FrameTRS(cfg)
        self.clip = ClipTRS(cfg)
        self.video = VideoTRS(cfg)

    def encode_windows(self, windows: torch.Tensor, valid: torch.Tensor, capacity: int | None = None) -> torch.Tensor:
        """``windows`` (B, K, window, 25, 3), ``valid`` (B, K) -> video embeddings (B, 4d).

        F-TRS and C-TRS run only on valid clips, packed into ``capacity`` slots (None: exactly
        the valid ones; ``methods.packing``); padding clips are masked keys in V-TRS, so their
        values never matter. Results are put back into the padded layout.
        """
        clips = pack(valid, capacity)
        emb = self.clip(self.frame(clips.gather(windows)))
        return self.video(clips.unpack(emb), valid)

    @staticmethod
    def _two_bodies(x: torch.Tensor) -> torch.Tensor:
        """Always two body slots, as the reference (a missing one is zeros, and still encoded)."""
        if x.dim() != 5 or x.shape[-2:] != (JOINTS, COORDS):
            raise ValueError(f"expected (B, T, M, 25, 3) skeletons, got {tuple(x.shape)}")
        if x.shape[2] > 2:
            raise ValueError(f"Hi-TRS encodes at most 2 bodies, got M={x.shape[2]}")
        if x.shape[2] < 2:
            x = torch.cat([x, torch.zeros_like(x)], dim=2)
        return x

    def video_embedding(self, x: torch.Tensor, lengths: torch.Tensor, capacity: int | None = None) -> torch.Tensor:
        """(B, T, M<=2, 25, 3) stream input -> (B, 4d): each body F->C->V, then sum / 2;
        ``capacity``: clip slots for all bodies (``encode_windows``)."""
        x = self._two_bodies(x)
        b, t, m = x.shape[:3]
        bodies = x.transpose(1, 2).reshape(b * m, t, JOINTS, COORDS)
        lens = lengths.to(x.device).long().repeat_interleave(m)
        cfg = self.cfg
        windows, valid = frame_windows(bodies, lens, cfg.window, cfg.stride, cfg.dilation)
        return self.encode_windows(windows, valid, capacity).view(b, m, -1).sum(1) / 2

    def clip_embedding(self, clips: torch.Tensor) -> torch.Tensor:
        """(N, window, M<=2, 25, 3) stream clips -> (N, 2d): each body F->C, then sum / 2."""
        clips = self._two_bodies(clips)
        n, w, m = clips.shape[:3]
        per_body = clips.transpose(1, 2).reshape(n * m, w, JOINTS, COORDS)
        return self.clip(self.frame(per_body)).view(n, m, -1).sum(1) / 2
