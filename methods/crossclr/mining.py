"""Cross-view consistency knowledge mining (CrosSCLR, Li et al. CVPR 2021).

For each ordered pair of views (u learns from v): the top-k queue entries under view v's
similarities ``l_neg_v`` become extra positives for view u, and the "context" logits
``l_neg_u * l_neg_v`` (agreement of both views' similarity to each queue entry) are appended:

    logits_uv = [l_pos_u, l_neg_u, l_neg_u * l_neg_v] / T,  mask = [1, onehot_v, onehot_v]
    loss_uv   = -sum(mask * log_softmax(logits_uv)) / sum(mask)
    L_u       = mean over v != u of loss_uv (batch mean);  total = sum over u of L_u

The queues of all views are filled with the same samples in the same order, so index i
refers to the same sequence in every view's queue.
"""
from __future__ import annotations

import torch

from ..moco import multi_positive_nce


def mined_positives(l_neg: torch.Tensor, topk: int = 1) -> torch.Tensor:
    """``(B, K)`` 0/1 mask of each row's ``topk`` most similar queue entries."""
    idx = l_neg.detach().topk(topk, dim=1).indices
    return torch.zeros_like(l_neg).scatter_(1, idx, 1.0)


def cross_view_losses(l_pos: dict[str, torch.Tensor], l_neg: dict[str, torch.Tensor], temperature: float,
                      topk: int = 1, context: bool = True) -> dict[str, torch.Tensor]:
    """``{view: L_view}`` from the unscaled similarities of every view (see module doc)."""
    views = list(l_pos)
    if len(views) < 2:
        raise ValueError("cross-view mining needs at least two views")
    mined = {v: mined_positives(l_neg[v], topk) for v in views}
    losses = {}
    for u in views:  # a loop over the 3 views, not over samples
        terms = []
        for v in views:
            if v == u:
                continue
            ones = torch.ones_like(l_pos[u])
            logits = [l_pos[u], l_neg[u]] + ([l_neg[u] * l_neg[v]] if context else [])
            mask = [ones, mined[v]] + ([mined[v]] if context else [])
            terms.append(multi_positive_nce(torch.cat(logits, dim=1) / temperature, torch.cat(mask, dim=1)))
        losses[u] = torch.stack(terms).mean()
    return losses
