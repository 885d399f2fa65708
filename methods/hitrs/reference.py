"""Import checkpoints of the authors' reference code (``Hi_TRS`` / ``Hi_TRS_AR``, commit ba9ffcb).

    >>> ckpt = torch.load("iter-30000_....pth", map_location="cpu")      # reference state_dict
    >>> model = load_reference(ckpt, dict(w_size=7, d_model=128, nhead=8, d_att=64,
    ...                                   dp_rate=0.2, layer_num=3, label_num=60))
    >>> model.eval(); logits = model(x, lengths)                         # x (B, T, 2, 25, 3) raw

Name mapping (reference -> ours, ``{L}`` in s/c/v -> frame/clip/video):
``{L}_enc.layer_stack.i.self_attn_norm`` -> ``net.encoder.{level}.blocks.i.attn_norm``;
``...slf_attn.w_qs|w_ks|w_vs`` -> ``...qkv`` (rows concatenated q, k, v); ``...slf_attn.fc`` -> ``...out``;
``...pff_norm`` -> ``...ffn_norm``; ``...pos_ffn.w_1|w_2`` -> ``...fc1|fc2``;
``s_input_map.0|2`` -> ``frame.embed|embed_norm``; ``c_input_map``/``v_input_map`` -> ``clip|video.embed``;
``{L}_pe.pe`` -> ``{level}.pos``; ``clip_fuse_token``/``video_fuse_token`` (1,1,D) -> ``clip|video.fuse`` (D,);
``s_pose_reg`` -> ``heads.joint``; ``c_motion_cls`` -> ``heads.frame_order``; ``v_motion_cls`` ->
``heads.clip_order``; ``v_ft_reg`` -> ``heads.next_clip``; ``v_cls`` -> ``head``.
"""
from __future__ import annotations

import re
from typing import Mapping

import torch

from .config import HiTRSConfig, from_reference_args
from .network import HiTRSClassifier

_LEVEL = {"s": "frame", "c": "clip", "v": "video"}
_BLOCK_PARTS = {"self_attn_norm": "attn_norm", "slf_attn.fc": "out", "pff_norm": "ffn_norm",
                "pos_ffn.w_1": "fc1", "pos_ffn.w_2": "fc2"}
_PLAIN = {
    "s_input_map.0": "net.encoder.frame.embed", "s_input_map.2": "net.encoder.frame.embed_norm",
    "c_input_map": "net.encoder.clip.embed", "v_input_map": "net.encoder.video.embed",
    "s_pose_reg": "net.heads.joint", "c_motion_cls": "net.heads.frame_order",
    "v_motion_cls": "net.heads.clip_order", "v_ft_reg": "net.heads.next_clip", "v_cls": "head",
}
_BLOCK = re.compile(r"^([scv])_enc\.layer_stack\.(\d+)\.(.+)\.(weight|bias)$")
_QKV = ("w_qs", "w_ks", "w_vs")


def convert_reference_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Reference parameter names -> ``HiTRSClassifier`` names (``net.*`` and ``head.*``).

    A ``module.`` prefix (checkpoints saved from ``DataParallel``) is stripped. Unknown names
    raise ValueError listing them.
    """
    sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state_dict.items()}
    out: dict[str, torch.Tensor] = {}
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    unknown = []
    for name, value in sd.items():
        m = _BLOCK.match(name)
        if m:
            level, layer, part, kind = m.groups()
            prefix = f"net.encoder.{_LEVEL[level]}.blocks.{layer}"
            if part.startswith("slf_attn.w_") and part.split(".")[-1] in _QKV:
                qkv.setdefault(f"{prefix}.qkv.{kind}", {})[part.split(".")[-1]] = value
            elif part in _BLOCK_PARTS:
                out[f"{prefix}.{_BLOCK_PARTS[part]}.{kind}"] = value
            else:
                unknown.append(name)
            continue
        if name in ("s_pe.pe", "c_pe.pe", "v_pe.pe"):
            out[f"net.encoder.{_LEVEL[name[0]]}.pos"] = value
        elif name in ("clip_fuse_token", "video_fuse_token"):
            out[f"net.encoder.{name.split('_')[0]}.fuse"] = value.reshape(-1)
        else:
            module, _, kind = name.rpartition(".")
            if module in _PLAIN:
                out[f"{_PLAIN[module]}.{kind}"] = value
            else:
                unknown.append(name)
    for key, parts in qkv.items():
        if set(parts) != set(_QKV):
            raise ValueError(f"reference checkpoint: {key} needs w_qs, w_ks and w_vs; found only {sorted(parts)}")
        out[key] = torch.cat([parts[p] for p in _QKV], dim=0)
    if unknown:
        raise ValueError(f"reference checkpoint has parameters this converter does not know: {', '.join(unknown)}")
    return out


def load_reference(state_dict: Mapping[str, torch.Tensor], config: Mapping, *, stream: str = "joint",
                   stride: int = 7, dilation: int = 2) -> HiTRSClassifier:
    """A ``HiTRSClassifier`` holding a reference ``Hi_TRS_AR`` checkpoint.

    ``config``: the reference constructor arguments ``w_size, d_model, nhead, d_att, dp_rate,
    layer_num, label_num``. ``stream`` is the view the checkpoint was trained on (the model
    converts raw joints itself); ``stride``/``dilation`` are the reference dataset's settings.
    Strict: every parameter must be present and shaped as the config says.
    """
    if "label_num" not in config:
        raise ValueError("load_reference: config needs label_num (the classifier size); "
                         "for a pre-training checkpoint use load_reference_pretrained")
    cfg: HiTRSConfig = from_reference_args(dict(config), stream=stream, stride=stride, dilation=dilation)
    model = HiTRSClassifier(cfg, int(config["label_num"]))
    _load_strict(model, convert_reference_state_dict(state_dict), "Hi_TRS_AR")
    return model


def load_reference_pretrained(module: torch.nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Load a reference ``Hi_TRS`` pre-training checkpoint into anything that has ``.net``
    (the registered method or a classifier); the classifier head, if any, is left as is."""
    converted = {k: v for k, v in convert_reference_state_dict(state_dict).items() if k.startswith("net.")}
    _load_strict(module.net, {k[len("net."):]: v for k, v in converted.items()}, "Hi_TRS")


def to_reference_state_dict(model: HiTRSClassifier) -> dict[str, torch.Tensor]:
    """Inverse of ``convert_reference_state_dict`` (for exporting to the reference code)."""
    ours = model.state_dict()
    inverse: dict[str, torch.Tensor] = {}
    back_block = {v: k for k, v in _BLOCK_PARTS.items()}
    back_plain = {v: k for k, v in _PLAIN.items()}
    back_level = {v: k for k, v in _LEVEL.items()}
    for name, value in ours.items():
        m = re.match(r"^net\.encoder\.(frame|clip|video)\.blocks\.(\d+)\.(\w+)\.(weight|bias)$", name)
        if m:
            level, layer, part, kind = m.groups()
            ref = f"{back_level[level]}_enc.layer_stack.{layer}"
            if part == "qkv":
                for piece, chunk in zip(_QKV, value.chunk(3, dim=0)):
                    inverse[f"{ref}.slf_attn.{piece}.{kind}"] = chunk.clone()
            else:
                inverse[f"{ref}.{back_block[part]}.{kind}"] = value
            continue
        m = re.match(r"^net\.encoder\.(frame|clip|video)\.(pos|fuse)$", name)
        if m:
            level, part = m.groups()
            if part == "pos":
                inverse[f"{back_level[level]}_pe.pe"] = value
            else:
                inverse[f"{level}_fuse_token"] = value.view(1, 1, -1)
            continue
        module, _, kind = name.rpartition(".")
        if module not in back_plain:
            raise ValueError(f"to_reference_state_dict: no reference name for {name}")
        inverse[f"{back_plain[module]}.{kind}"] = value
    return inverse


def _load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise ValueError(f"reference {what} checkpoint does not match the model: missing {missing}, "
                         f"unexpected {extra}")
    bad = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
           for k, v in state.items() if v.shape != expected[k].shape]
    if bad:
        raise ValueError(f"reference {what} checkpoint shapes differ from the config (check d_model, nhead, "
                         f"d_att, layer_num, w_size): " + "; ".join(bad))
    module.load_state_dict(state, strict=True)
