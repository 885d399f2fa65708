"""MAMP (Mao et al., ICCV 2023, "Masked Motion Predictors are Strong 3D Action Representation
Learners"), ported from the authors' code (maoyunyao/MAMP 09e6252); see docs/baselines.md, "MAMP".

Not registered with ``methods`` yet (registering changes every ``--method all`` run); build it
with ``methods.mamp.create(profile, **overrides)`` or ``MAMP(make_config(...))``.
"""
from .config import PROFILES, MAMPConfig, from_reference_args, make_config
from .feeder import crop_resize, crop_window, feeder_input, rotation_matrices, seq_translation, sequences
from .method import MAMP, WarmupCosine, create, no_weight_decay
from .network import MAMPNet, masking_order, motion_log_prob, order_from_mask, patchify
from .reference import convert_reference_state_dict, load_into, load_reference, to_reference_state_dict

__all__ = [
    "PROFILES", "MAMPConfig", "from_reference_args", "make_config",
    "crop_resize", "crop_window", "feeder_input", "rotation_matrices", "seq_translation", "sequences",
    "MAMP", "WarmupCosine", "create", "no_weight_decay",
    "MAMPNet", "masking_order", "motion_log_prob", "order_from_mask", "patchify",
    "convert_reference_state_dict", "load_into", "load_reference", "to_reference_state_dict",
]
