"""Skeleton graph of ST-GCN (Yan et al., AAAI 2018) for the NTU RGB+D layout.

Reproduces the reference partition exactly, including its ``max_hop`` quirk: with
``max_hop = 1`` the hop distance to the centre joint is finite only for the centre and its four
neighbours, so for every other edge both ends compare ``inf == inf`` and the edge lands in the
"root" group. Non-zero entries per partition are then 25 / 40 / 8 (``spatial`` strategy).
"""
from __future__ import annotations

import numpy as np
import torch

#: undirected edges (1-based joint ids) of the "ntu-rgb+d" layout, as in the reference graph
NTU_EDGES = (
    (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
    (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
    (20, 19), (22, 23), (23, 8), (24, 25), (25, 12),
)
NTU_NUM_NODES = 25
NTU_CENTER = 21 - 1  # spine shoulder, 0-based

LAYOUTS = ("ntu-rgb+d",)
STRATEGIES = ("uniform", "distance", "spatial")


def hop_distance(num_nodes: int, edges, max_hop: int = 1) -> np.ndarray:
    """``(V, V)`` shortest-path length in hops, ``inf`` beyond ``max_hop``."""
    adj = np.zeros((num_nodes, num_nodes))
    idx = np.asarray(edges, dtype=np.int64)
    adj[idx[:, 0], idx[:, 1]] = 1
    adj[idx[:, 1], idx[:, 0]] = 1
    dist = np.full((num_nodes, num_nodes), np.inf)
    reach = np.stack([np.linalg.matrix_power(adj + np.eye(num_nodes), d) > 0 for d in range(max_hop + 1)])
    for d in range(max_hop, -1, -1):  # smallest hop count wins
        dist[reach[d]] = d
    return dist


def normalize_columns(a: np.ndarray) -> np.ndarray:
    """``A · D^-1`` with D the column sums (the reference's "digraph" normalisation)."""
    deg = a.sum(axis=0)
    inv = np.where(deg > 0, 1.0 / np.where(deg > 0, deg, 1.0), 0.0)
    return a * inv[None, :]


def adjacency(layout: str = "ntu-rgb+d", strategy: str = "spatial", max_hop: int = 1,
              dilation: int = 1) -> torch.Tensor:
    """The ``(K, V, V)`` float32 partitioned adjacency the reference ST-GCN uses.

    ``A[k, j, i]`` weights the message from node ``j`` to node ``i`` (the model contracts the
    first node axis of A with the input's node axis).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"graph layout {layout!r} is not supported; available: {', '.join(LAYOUTS)}")
    if strategy not in STRATEGIES:
        raise ValueError(f"graph strategy {strategy!r} is not supported; available: {', '.join(STRATEGIES)}")
    v, center = NTU_NUM_NODES, NTU_CENTER
    edges = [(i - 1, j - 1) for i, j in NTU_EDGES]
    hop = hop_distance(v, edges, max_hop)
    valid_hops = list(range(0, max_hop + 1, dilation))
    base = normalize_columns(np.isin(hop, valid_hops).astype(np.float64))
    if strategy == "uniform":
        parts = [base]
    elif strategy == "distance":
        parts = [np.where(hop == h, base, 0.0) for h in valid_hops]
    else:
        # hop of row node j and column node i to the centre; inf == inf counts as "same"
        dj = hop[:, center][:, None]
        di = hop[:, center][None, :]
        same = dj == di
        closer = ~same & (dj > di)      # the reference's "close" group (j farther than i)
        further = ~same & ~(dj > di)
        parts = []
        for h in valid_hops:
            on = hop == h
            if h == 0:
                parts.append(np.where(on & same, base, 0.0))
            else:
                parts.append(np.where(on & (same | closer), base, 0.0))
                parts.append(np.where(on & further, base, 0.0))
    return torch.tensor(np.stack(parts), dtype=torch.float32)
