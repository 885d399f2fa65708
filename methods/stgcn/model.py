"""ST-GCN encoder (Yan et al., AAAI 2018) with configurable widths.

One class covers the standard network (64-64-64-64-128-128-128-256-256-256, 1x1-conv head)
and CrosSCLR's quarter-width variant (16 ... 64 -> 256, Linear head): block ``i`` has width
``hidden_channels * (1, 1, 1, 1, 2, 2, 2, 4, 4)[i]`` and the last block outputs ``hidden_dim``.
The head is always an ``nn.Linear`` (a 1x1 convolution on pooled features is the same map);
``methods.stgcn.reference`` converts the reference parameter names.

Layout: ``forward`` takes the reference layout ``(N, C, T, V, M)``; ``features_btmvc`` takes
the suite's ``(B, T, M, V, C)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from datasets.precision import float32_island

from .graph import adjacency

#: width multipliers of blocks 0..8 (block 9 outputs ``hidden_dim``) and their temporal strides
_MULT = (1, 1, 1, 1, 2, 2, 2, 4, 4)
_STRIDE = (1, 1, 1, 1, 2, 1, 1, 2, 1, 1)


@dataclass(frozen=True)
class STGCNArch:
    """Architecture of one ST-GCN (standard: hidden 64, out 256; CrosSCLR: hidden 16, out 256)."""

    in_channels: int = 3
    hidden_channels: int = 64
    hidden_dim: int = 256
    dropout: float = 0.5
    edge_importance: bool = True
    temporal_kernel: int = 9
    layout: str = "ntu-rgb+d"
    strategy: str = "spatial"
    max_hop: int = 1

    def widths(self) -> list[tuple[int, int, int]]:
        """``(in, out, stride)`` of the 10 blocks."""
        outs = [self.hidden_channels * m for m in _MULT] + [self.hidden_dim]
        ins = [self.in_channels] + outs[:-1]
        return list(zip(ins, outs, _STRIDE))


class STGCNBlock(nn.Module):
    """Spatial graph conv -> BN-ReLU-temporal conv-BN-Dropout, plus residual, then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int, num_parts: int, num_nodes: int,
                 kernel: int = 9, dropout: float = 0.0, residual: bool = True, edge_importance: bool = True):
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError(f"ST-GCN temporal kernel must be odd, got {kernel}")
        self.num_parts = num_parts
        self.reads_coordinates = False   # block 0: its 1x1 conv stays float32 under autocast
        self.gcn = nn.Conv2d(c_in, c_out * num_parts, kernel_size=1)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.tconv = nn.Conv2d(c_out, c_out, (kernel, 1), (stride, 1), ((kernel - 1) // 2, 0))
        self.bn2 = nn.BatchNorm2d(c_out)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.mode = "none" if not residual else ("identity" if c_in == c_out and stride == 1 else "conv")
        if self.mode == "conv":
            self.res_conv = nn.Conv2d(c_in, c_out, kernel_size=1, stride=(stride, 1))
            self.res_bn = nn.BatchNorm2d(c_out)
        if edge_importance:
            self.edge_importance = nn.Parameter(torch.ones(num_parts, num_nodes, num_nodes))
        else:
            self.register_parameter("edge_importance", None)

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        if self.edge_importance is not None:
            a = a * self.edge_importance
        if self.mode == "identity":
            res = x
        elif self.mode == "conv":
            res = self.res_bn(self.res_conv(x))
        else:
            res = 0.0
        if self.reads_coordinates:
            with float32_island(x):
                y = self.gcn(x.float())
        else:
            y = self.gcn(x)
        n, kc, t, v = y.shape
        y = torch.einsum("nkctv,kvw->nctw", y.view(n, self.num_parts, kc // self.num_parts, t, v), a)
        y = self.drop(self.bn2(self.tconv(F.relu(self.bn1(y)))))
        return F.relu(y + res)


class STGCN(nn.Module):
    """ST-GCN backbone; ``num_class > 0`` adds a Linear head on the pooled features."""

    def __init__(self, arch: STGCNArch = STGCNArch(), num_class: int = 0):
        super().__init__()
        self.arch = arch
        a = adjacency(arch.layout, arch.strategy, arch.max_hop)
        self.register_buffer("A", a, persistent=False)
        k, v, _ = a.shape
        self.data_bn = nn.BatchNorm1d(arch.in_channels * v)
        self.blocks = nn.ModuleList(
            STGCNBlock(ci, co, s, k, v, arch.temporal_kernel,
                       dropout=0.0 if i == 0 else arch.dropout, residual=i > 0,
                       edge_importance=arch.edge_importance)
            for i, (ci, co, s) in enumerate(arch.widths()))
        self.blocks[0].reads_coordinates = True
        self.head = nn.Linear(arch.hidden_dim, num_class) if num_class > 0 else None

    @property
    def out_dim(self) -> int:
        return self.arch.hidden_dim

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, T, V, M)`` -> ``(N, M, hidden_dim, T', V)`` with ``T' = ceil(T / 4)``."""
        if x.dim() != 5:
            raise ValueError(f"ST-GCN expects (N, C, T, V, M) input, got shape {tuple(x.shape)}")
        n, c, t, v, m = x.shape
        if c != self.arch.in_channels or v != self.A.shape[1]:
            raise ValueError(f"ST-GCN built for C={self.arch.in_channels}, V={self.A.shape[1]}; "
                             f"got input (N, C, T, V, M) = {tuple(x.shape)}")
        y = x.float().permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t)     # channel index v*C + c
        y = self.data_bn(y).view(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)
        for block in self.blocks:
            y = block(y, self.A)
        return y.view(n, m, *y.shape[1:])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, hidden_dim)``: mean over time, joints, then bodies (as the reference)."""
        return self.feature_map(x).mean(dim=(3, 4)).mean(dim=1)

    def features_btmvc(self, x: torch.Tensor) -> torch.Tensor:
        """``features`` for the suite's ``(B, T, M, V, C)`` layout."""
        return self.features(x.permute(0, 4, 1, 3, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reference behaviour: logits with a head, pooled features without."""
        f = self.features(x)
        return self.head(f) if self.head is not None else f
