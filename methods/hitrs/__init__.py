"""Hi-TRS (ECCV 2022) as the reference implementation computes it; see docs/hitrs.md.

Importing this package registers the method ``"hitrs"`` with ``methods``.
"""
from .config import LEVELS, PROFILES, HiTRSConfig, from_reference_args, make_config, parse_levels
from .encoder import ClipTRS, FrameTRS, HiTRSEncoder, VideoTRS, clip_attention_mask
from .model import HiTRS, PolynomialWarmup, no_weight_decay
from .network import HiTRSClassifier, HiTRSNet
from .reference import (convert_reference_state_dict, load_reference, load_reference_pretrained,
                        to_reference_state_dict)
from .windows import frame_windows, window_counts, window_index

__all__ = [
    "LEVELS", "PROFILES", "HiTRSConfig", "from_reference_args", "make_config", "parse_levels",
    "ClipTRS", "FrameTRS", "HiTRSEncoder", "VideoTRS", "clip_attention_mask",
    "HiTRS", "PolynomialWarmup", "no_weight_decay", "HiTRSClassifier", "HiTRSNet",
    "convert_reference_state_dict", "load_reference", "load_reference_pretrained", "to_reference_state_dict",
    "frame_windows", "window_counts", "window_index",
]
