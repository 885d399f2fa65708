"""Load checkpoints written by the reference ST-GCN code into ``STGCN``.

Accepts the constructor arguments and parameter names of yysijie/st-gcn (``net.st_gcn.Model``:
``in_channels, num_class, graph_args, edge_importance_weighting``; head ``fcn`` a 1x1 conv) and
of CrosSCLR's quarter-width variant (adds ``hidden_channels, hidden_dim, dropout``; head ``fc``
a Linear). Name map (reference -> suite):

    st_gcn_networks.{i}.gcn.conv.*  -> blocks.{i}.gcn.*
    st_gcn_networks.{i}.tcn.0.*     -> blocks.{i}.bn1.*
    st_gcn_networks.{i}.tcn.2.*     -> blocks.{i}.tconv.*
    st_gcn_networks.{i}.tcn.3.*     -> blocks.{i}.bn2.*
    st_gcn_networks.{i}.residual.0.* -> blocks.{i}.res_conv.*
    st_gcn_networks.{i}.residual.1.* -> blocks.{i}.res_bn.*
    edge_importance.{i}             -> blocks.{i}.edge_importance
    fcn.weight (K, C, 1, 1) / fc.weight (K, C) -> head.weight (K, C); bias likewise
    A                               -> checked against our graph, then dropped
"""
from __future__ import annotations

import re
from typing import Any, Mapping

import torch

from .model import STGCN, STGCNArch

_TCN = {"0": "bn1", "2": "tconv", "3": "bn2"}
_RES = {"0": "res_conv", "1": "res_bn"}


def arch_from_reference(config: Mapping[str, Any]) -> tuple[STGCNArch, int]:
    """``(STGCNArch, num_class)`` from the reference constructor arguments."""
    known = {"in_channels", "num_class", "graph_args", "edge_importance_weighting",
             "hidden_channels", "hidden_dim", "dropout"}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f"reference ST-GCN config has unsupported arguments {unknown}; known: {sorted(known)}")
    graph = dict(config.get("graph_args", {}))
    extra = sorted(set(graph) - {"layout", "strategy", "max_hop", "dilation"})
    if extra or graph.get("dilation", 1) != 1:
        raise ValueError(f"reference graph_args {graph} not supported (layout/strategy/max_hop only)")
    arch = STGCNArch(
        in_channels=int(config.get("in_channels", 3)),
        hidden_channels=int(config.get("hidden_channels", 64)),
        hidden_dim=int(config.get("hidden_dim", 256)),
        dropout=float(config.get("dropout", 0.0)),
        edge_importance=bool(config.get("edge_importance_weighting", True)),
        layout=graph.get("layout", "ntu-rgb+d"),
        strategy=graph.get("strategy", "spatial"),
        max_hop=int(graph.get("max_hop", 1)),
    )
    return arch, int(config["num_class"])


def convert_reference_state_dict(state_dict: Mapping[str, torch.Tensor], prefix: str = "",
                                 head: bool = True) -> dict[str, torch.Tensor]:
    """Rename reference keys to ``STGCN`` keys. ``prefix`` (e.g. ``"module."`` or
    ``"encoder_q."``) selects and strips one sub-model of a larger checkpoint; ``head=False``
    drops the classifier / projection (``fcn.*``, ``fc.*``, also CrosSCLR's MLP ``fc.0/fc.2``)."""
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state_dict.items():
        if not key.startswith(prefix):
            continue
        k = key[len(prefix):]
        if k == "A" or (not head and re.match(r"(fcn|fc)\.", k)):
            continue
        m = re.fullmatch(r"st_gcn_networks\.(\d+)\.(gcn\.conv|tcn\.(\d)|residual\.(\d))\.(\w+)", k)
        if m:
            i, part, tcn, res, leaf = m.groups()
            if part == "gcn.conv":
                name = "gcn"
            elif tcn is not None and tcn in _TCN:
                name = _TCN[tcn]
            elif res is not None and res in _RES:
                name = _RES[res]
            else:
                unknown.append(key)
                continue
            out[f"blocks.{i}.{name}.{leaf}"] = value
            continue
        m = re.fullmatch(r"edge_importance\.(\d+)", k)
        if m:
            out[f"blocks.{m.group(1)}.edge_importance"] = value
            continue
        m = re.fullmatch(r"(fcn|fc)\.(weight|bias)", k)
        if m:
            out[f"head.{m.group(2)}"] = value.reshape(value.shape[0], -1) if m.group(2) == "weight" else value
            continue
        if k.startswith("data_bn."):
            out[k] = value
            continue
        unknown.append(key)
    if unknown:
        raise KeyError(f"unrecognised reference ST-GCN parameters (prefix {prefix!r}): {unknown[:8]}"
                       f"{' ...' if len(unknown) > 8 else ''}")
    return out


def load_reference(state_dict: Mapping[str, torch.Tensor], config: Mapping[str, Any], *, prefix: str = "",
                   head: bool = True) -> STGCN:
    """Build an ``STGCN`` from reference constructor args and load reference weights.

    ``head=False`` loads the backbone only (e.g. ``prefix="encoder_q_motion."`` of a CrosSCLR
    pre-training checkpoint, whose head is the projection MLP). Raises if the stored graph
    ``A`` differs from ours or any parameter is missing/unexpected.
    """
    arch, num_class = arch_from_reference(config)
    model = STGCN(arch, num_class=num_class if head else 0)
    stored_a = state_dict.get(prefix + "A")
    if stored_a is not None and (stored_a.shape != model.A.shape or not torch.allclose(stored_a.float(), model.A, atol=1e-6)):
        raise ValueError("the checkpoint's graph A differs from the ntu-rgb+d spatial partition built here; "
                         "check graph_args (layout, strategy, max_hop)")
    converted = convert_reference_state_dict(state_dict, prefix, head)
    own = model.state_dict()
    missing = sorted(set(own) - set(converted))
    unexpected = sorted(set(converted) - set(own))
    shapes = [f"{k}: {tuple(converted[k].shape)} vs {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(converted)) if converted[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        raise ValueError(f"reference checkpoint does not match the architecture {arch} (num_class {num_class}): "
                         f"missing {missing[:6]}, unexpected {unexpected[:6]}, shape mismatches {shapes[:4]}")
    model.load_state_dict(converted)
    return model
