"""Import checkpoints of the authors' MAMP code (maoyunyao/MAMP, commit 09e6252).

    >>> ckpt = torch.load("checkpoint-399.pth", map_location="cpu")["model"]   # reference state_dict
    >>> net = load_reference(ckpt, model_args)        # the yaml's model_args
    >>> out = net.pretrain(xs, mask=mask)             # xs (S, 120, 25, 3): feeder output, one row per body

Name mapping (reference -> ours): ``joints_embed.proj`` (Conv2d, weight ``(D, C, u, p)``) ->
``embed`` (Linear on the patch vector ordered frame, joint, coordinate: weight permuted to
``(D, u, p, C)`` and flattened); every other name is the same (``blocks.i.norm1 / attn.qkv /
attn.proj / norm2 / mlp.fc1 / mlp.fc2``, ``norm``, ``temp_embed``, ``pos_embed``,
``decoder_embed``, ``mask_token``, ``decoder_blocks.i.*``, ``decoder_norm``,
``decoder_temp_embed``, ``decoder_pos_embed``, ``decoder_pred``). A downstream checkpoint
(``model.transformer.Transformer``: no decoder, a ``head``) loads with ``encoder_only=True``;
its head is ignored.
"""
from __future__ import annotations

from typing import Mapping

import torch

from .config import COORDS, MAMPConfig, from_reference_args
from .network import MAMPNet

_EMBED = "joints_embed.proj."


def _strip(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if "model" in state_dict and isinstance(state_dict["model"], Mapping):    # main_pretrain's checkpoint
        state_dict = state_dict["model"]
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state_dict.items()}


def convert_reference_state_dict(state_dict: Mapping[str, torch.Tensor], *,
                                 encoder_only: bool = False) -> dict[str, torch.Tensor]:
    """Reference names -> ``MAMPNet`` names (a ``module.`` prefix and a ``{"model": ...}``
    wrapper are accepted). ``encoder_only``: drop decoder and head tensors."""
    out = {}
    for name, value in _strip(state_dict).items():
        if name.startswith(_EMBED):
            kind = name[len(_EMBED):]
            if kind == "weight":
                if value.dim() != 4 or value.shape[1] != COORDS:
                    raise ValueError(f"reference {name}: expected a Conv2d weight (D, {COORDS}, u, p), "
                                     f"got {tuple(value.shape)}")
                value = value.permute(0, 2, 3, 1).reshape(value.shape[0], -1)
            out[f"embed.{kind}"] = value
        elif encoder_only and (name.startswith("decoder") or name == "mask_token" or name.startswith("head.")):
            continue
        else:
            out[name] = value
    return out


def to_reference_state_dict(net: MAMPNet) -> dict[str, torch.Tensor]:
    """Inverse of ``convert_reference_state_dict`` (exporting to the reference code)."""
    cfg = net.cfg
    out = {}
    for name, value in net.state_dict().items():
        if name == "embed.weight":
            value = value.reshape(value.shape[0], cfg.t_patch_size, cfg.patch_size, COORDS).permute(0, 3, 1, 2)
            out[_EMBED + "weight"] = value.contiguous()
        elif name == "embed.bias":
            out[_EMBED + "bias"] = value
        else:
            out[name] = value
    return out


def load_into(net: MAMPNet, state_dict: Mapping[str, torch.Tensor], *, encoder_only: bool = False) -> None:
    """Strictly load a reference checkpoint into an existing ``MAMPNet`` (e.g. the method's ``net``)."""
    state = convert_reference_state_dict(state_dict, encoder_only=encoder_only or not net.has_decoder)
    expected = net.state_dict()
    if encoder_only and net.has_decoder:
        expected = {k: v for k, v in expected.items() if not (k.startswith("decoder") or k == "mask_token")}
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra:
        raise ValueError(f"reference MAMP checkpoint does not match the model: missing {missing}, unexpected {extra}")
    bad = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
           for k, v in state.items() if v.shape != expected[k].shape]
    if bad:
        raise ValueError("reference MAMP checkpoint shapes differ from the config (check dim_feat, depth, "
                         "num_frames, t_patch_size, patch_size): " + "; ".join(bad))
    net.load_state_dict(state, strict=not encoder_only)


def load_reference(state_dict: Mapping[str, torch.Tensor], config: Mapping | MAMPConfig, *,
                   encoder_only: bool = False, fused_attention: bool = False, **overrides) -> MAMPNet:
    """A ``MAMPNet`` holding a reference checkpoint. ``config``: the reference ``model_args``
    (or a resolved ``MAMPConfig``); ``overrides`` set suite fields (``mask_ratio``,
    ``motion_aware_tau``, ``stream``...). ``encoder_only``: a downstream checkpoint, no decoder.
    ``fused_attention`` False (default): attention in the reference's operation order (the
    exact port); True: SDPA kernels, as the method trains (agree to ~1e-5 relative)."""
    cfg = config if isinstance(config, MAMPConfig) else from_reference_args(dict(config), **overrides)
    net = MAMPNet(cfg, decoder=not encoder_only).set_fused_attention(fused_attention)
    load_into(net, state_dict, encoder_only=encoder_only)
    return net
