"""The pre-LayerNorm transformer block used at every Hi-TRS level.

    x = x + Dropout(Out(MHA(LN(x))))
    x = x + Dropout(W2(GELU(W1(LN(x)))))

Q/K/V/Out have no bias (Q, K, V are one fused ``qkv`` Linear here; the reference converter
concatenates its three matrices), scores are scaled by 1/sqrt(head width), no attention
dropout. Attention runs through ``F.scaled_dot_product_attention`` so fused kernels serve on
GPU; a boolean mask (True = may attend) replaces the reference's ``-1e9`` fill, which gives the
same softmax because no row is ever fully masked.
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    """One pre-LN block: width ``width``, FFN hidden ``ffn``, ``heads`` x ``head_dim`` attention."""

    def __init__(self, width: int, ffn: int, heads: int, head_dim: int, dropout: float):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.attn_norm = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * heads * head_dim, bias=False)
        self.out = nn.Linear(heads * head_dim, width, bias=False)
        self.ffn_norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, ffn)
        self.fc2 = nn.Linear(ffn, width)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` (N, L, width); ``mask`` bool broadcastable to (N, heads, L, L), True = attend."""
        n, length, _ = x.shape
        qkv = self.qkv(self.attn_norm(x)).view(n, length, 3, self.heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)          # each (N, H, L, Dh)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.0,
                                             scale=1.0 / math.sqrt(self.head_dim))
        att = att.transpose(1, 2).reshape(n, length, self.heads * self.head_dim)
        x = x + self.drop(self.out(att))
        return x + self.drop(self.fc2(F.gelu(self.fc1(self.ffn_norm(x)))))


def make_blocks(layers: int, width: int, ffn: int, heads: int, head_dim: int, dropout: float,
                copies: bool = False) -> nn.ModuleList:
    """``layers`` identical-shape blocks (no final LayerNorm after the stack, as the reference).

    ``copies``: every block starts as a deep copy of one drawn block (the reference builds a
    level's stack that way); else each block is drawn independently."""
    if copies:
        first = Block(width, ffn, heads, head_dim, dropout)
        return nn.ModuleList([first] + [copy.deepcopy(first) for _ in range(layers - 1)])
    return nn.ModuleList(Block(width, ffn, heads, head_dim, dropout) for _ in range(layers))


def run_blocks(blocks: nn.ModuleList, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    for block in blocks:
        x = block(x, mask)
    return x
