"""ST-GCN backbone + projection head, the query/key encoder of both contrastive baselines."""
from __future__ import annotations

import torch
from torch import nn

from .model import STGCN, STGCNArch


class ProjectedSTGCN(nn.Module):
    """``(B, T, M, V, C)`` -> ``(B, out_dim)``: pooled ST-GCN features, then a projection.

    ``mlp=True``: Linear(h, h)-ReLU-Linear(h, out) (MoCo v2 / CrosSCLR); else Linear(h, out)."""

    def __init__(self, arch: STGCNArch, out_dim: int, mlp: bool = True):
        super().__init__()
        self.backbone = STGCN(arch)
        h = arch.hidden_dim
        self.projection = (nn.Sequential(nn.Linear(h, h), nn.ReLU(inplace=True), nn.Linear(h, out_dim))
                           if mlp else nn.Linear(h, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.backbone.features_btmvc(x))
