"""MAMP configuration: one frozen dataclass, profiles ``paper`` / ``small`` / ``ci``.

``paper`` is the authors' ``config/ntu60_xsub_joint/pretrain_mamp_t120_layer8+3_mask90.yaml``
(maoyunyao/MAMP 09e6252; ``decoder_depth=5`` gives the ``layer8+5`` config) with its command
line (``script_pretrain_mamp.sh``: 4 GPUs x batch 32) turned into optimizer steps; see
docs/baselines.md, "MAMP". ``small`` and ``ci`` are narrow, short CPU profiles.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from datasets.streams import STREAMS
from methods.config import PretrainLoop, resolve_profile

JOINTS = 25
COORDS = 3
#: NTU-60 xsub training samples of the authors' npz (CTR-GCN preparation) and batches of one
#: epoch at the global batch 128 (``drop_last=True``): 40,091 // 128
NTU60_XSUB_TRAIN = 40_091
PAPER_STEPS_PER_EPOCH = NTU60_XSUB_TRAIN // 128


@dataclass(frozen=True)
class MAMPConfig:
    """Everything that defines a MAMP model, its input pipeline and its pre-training."""

    stream: str = "joint"            # joint / motion / bone, computed as the feeder's vel / bone options
    # ---- architecture (the reference ``model_args``)
    dim_feat: int = 256
    decoder_dim_feat: int = 256
    depth: int = 8
    decoder_depth: int = 3
    num_heads: int = 8               # encoder and decoder alike (the reference shares the argument)
    mlp_ratio: float = 4.0
    num_frames: int = 120            # the feeder's window_size: every sequence resized to this
    patch_size: int = 1              # joints per token
    t_patch_size: int = 4            # frames per token
    qkv_bias: bool = True
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.0
    norm_skes_loss: bool = True      # per-patch standardised motion targets
    # ---- masked motion prediction
    mask_ratio: float = 0.9
    motion_aware_tau: float = 0.80   # 0: uniform random masking (the MAE baseline of the paper)
    motion_stride: int = 1
    # ---- input pipeline (feeder/feeder_ntu.py + feeder/tools.py, data/ntu/seq_transformation.py)
    bodies: int = 2                  # body slots the feeder always delivers (an absent body is zeros)
    center_joint: int = 1            # seq_translation: origin = joint 2 of body 1 in its first frame
    p_interval: tuple[float, ...] = (0.5, 1.0)   # training crop ratio range
    min_crop: int = 64               # training crop length lower bound (frames)
    test_p: float = 0.95             # evaluation: centre crop of this ratio
    random_rot: bool = True          # training: rotation by U(-rot_theta, rot_theta) about x, y, z
    rot_theta: float = 0.3
    clip_mode: str = "resize"        # detection windows: "resize" to num_frames (the feeder's rule) |
                                     # "native" (frames padded to t_patch_size, first temporal embeddings)
    # ---- optimisation (main_pretrain.py, util/lr_sched.py)
    lr: float = 1e-3                 # absolute lr (the yaml's ``lr``; ``blr`` is then unused)
    min_lr: float = 5e-4
    weight_decay: float = 0.05       # timm add_weight_decay: none on 1-D parameters and biases
    betas: tuple[float, ...] = (0.9, 0.95)
    eps: float = 1e-8
    warmup_steps: int = 20 * PAPER_STEPS_PER_EPOCH     # 20 epochs
    total_steps: int = 400 * PAPER_STEPS_PER_EPOCH     # the cosine's end (400 epochs)
    seed: int = 0                    # seeds the method's generators (crop, rotation, masking)
    loop: PretrainLoop = field(default_factory=lambda: PretrainLoop(
        steps=400 * PAPER_STEPS_PER_EPOCH, batch_size=128, accumulation=1, grad_clip=0.0, max_frames=300,
        log_every=100, checkpoint_every=20 * PAPER_STEPS_PER_EPOCH, batching="uniform"))

    def __post_init__(self):
        for name in ("p_interval", "betas"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        if self.stream not in STREAMS:
            raise ValueError(f"MAMPConfig.stream: {self.stream!r} unknown; choose one of {', '.join(STREAMS)}")
        for name in ("dim_feat", "decoder_dim_feat", "depth", "num_heads", "num_frames", "patch_size",
                     "t_patch_size", "motion_stride", "bodies"):
            if getattr(self, name) < 1:
                raise ValueError(f"MAMPConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.decoder_depth < 0:
            raise ValueError(f"MAMPConfig.decoder_depth must be >= 0, got {self.decoder_depth}")
        for name in ("dim_feat", "decoder_dim_feat"):
            if getattr(self, name) % self.num_heads:
                raise ValueError(f"MAMPConfig.{name}={getattr(self, name)} is not divisible by "
                                 f"num_heads={self.num_heads}")
        if self.num_frames % self.t_patch_size:
            raise ValueError(f"MAMPConfig.num_frames={self.num_frames} is not a multiple of "
                             f"t_patch_size={self.t_patch_size}")
        if JOINTS % self.patch_size:
            raise ValueError(f"MAMPConfig.patch_size={self.patch_size} does not divide the {JOINTS} joints")
        if self.decoder_depth > self.depth and self.drop_path_rate > 0:
            raise ValueError("MAMPConfig: the decoder's drop-path rates are the encoder's first ones "
                             "(reference), so decoder_depth > depth needs drop_path_rate = 0")
        if self.motion_stride >= self.num_frames:
            raise ValueError("MAMPConfig.motion_stride must be below num_frames")
        if not 0.0 <= self.mask_ratio < 1.0 or self.tokens - self.kept_tokens < 1:
            raise ValueError(f"MAMPConfig.mask_ratio must be in [0, 1) and mask at least one of the "
                             f"{self.tokens} tokens, got {self.mask_ratio}")
        if self.motion_aware_tau > 0 and self.grid[0] < 2:
            raise ValueError("MAMPConfig: motion-aware masking needs at least 2 temporal tokens "
                             "(num_frames >= 2 * t_patch_size); set motion_aware_tau=0 for uniform masking")
        if self.motion_aware_tau < 0:
            raise ValueError(f"MAMPConfig.motion_aware_tau must be >= 0, got {self.motion_aware_tau}")
        if len(self.p_interval) not in (1, 2) or not all(0 < p <= 1 for p in self.p_interval):
            raise ValueError(f"MAMPConfig.p_interval: one ratio (centre crop) or a range (low, high) in (0, 1], "
                             f"got {self.p_interval}")
        if not 0 < self.test_p <= 1:
            raise ValueError(f"MAMPConfig.test_p must be in (0, 1], got {self.test_p}")
        if self.clip_mode not in ("resize", "native"):
            raise ValueError(f"MAMPConfig.clip_mode: {self.clip_mode!r} unknown; choose resize or native")
        if not 0 <= self.center_joint < JOINTS:
            raise ValueError(f"MAMPConfig.center_joint must be a joint index in [0, {JOINTS}), got {self.center_joint}")

    @property
    def grid(self) -> tuple[int, int]:
        """(temporal, spatial) tokens of one body."""
        return self.num_frames // self.t_patch_size, JOINTS // self.patch_size

    @property
    def tokens(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def kept_tokens(self) -> int:
        """Visible tokens per body: ``int(L * (1 - mask_ratio))`` as the reference."""
        return int(self.tokens * (1 - self.mask_ratio))

    @property
    def patch_dim(self) -> int:
        return self.t_patch_size * self.patch_size * COORDS


def _cpu_loop(steps: int, batch: int, log_every: int) -> PretrainLoop:
    return PretrainLoop(steps=steps, batch_size=batch, accumulation=1, grad_clip=0.0, max_frames=120,
                        log_every=log_every, checkpoint_every=1000, batching="bucket")


PROFILES: dict[str, MAMPConfig] = {
    "paper": MAMPConfig(),
    # 64-wide, 2 + 1 layers over 32 frames (8 x 25 = 200 tokens per body): a few seconds per 10 steps
    "small": MAMPConfig(dim_feat=64, decoder_dim_feat=64, depth=2, decoder_depth=1, num_heads=4, num_frames=32,
                        min_crop=16, lr=1e-3, min_lr=5e-4, warmup_steps=10, total_steps=200, clip_mode="native",
                        loop=_cpu_loop(200, 16, 20)),
    "ci": MAMPConfig(dim_feat=16, decoder_dim_feat=16, depth=1, decoder_depth=1, num_heads=2, num_frames=24,
                     min_crop=12, lr=2e-3, min_lr=1e-3, warmup_steps=5, total_steps=60, clip_mode="native",
                     loop=_cpu_loop(60, 8, 10)),
}


def make_config(profile: str = "ci", **overrides) -> MAMPConfig:
    """Resolve a profile and apply ``key=value`` overrides (dotted keys reach ``loop.*``)."""
    return resolve_profile(PROFILES, profile, overrides)


def from_reference_args(model_args: dict, **overrides) -> MAMPConfig:
    """Config from the reference ``model_args`` (``model_mamp.transformer.Transformer`` or the
    downstream ``model.transformer.Transformer``); the rest from ``paper`` and ``overrides``
    (e.g. ``mask_ratio``, ``motion_aware_tau`` of the yaml's top level)."""
    args = dict(model_args)
    if int(args.get("dim_in", COORDS)) != COORDS or int(args.get("num_joints", JOINTS)) != JOINTS:
        raise ValueError(f"MAMP reference config: dim_in {args.get('dim_in')} / num_joints {args.get('num_joints')}; "
                         f"the suite's input has {COORDS} coordinates and {JOINTS} joints")
    qk_scale = args.get("qk_scale")
    if qk_scale not in (None, "None"):
        raise ValueError("MAMP reference config: qk_scale is ignored by the reference Attention (scale is "
                         "head_dim ** -0.5 always); pass None")
    keys = {"dim_feat": int, "decoder_dim_feat": int, "depth": int, "decoder_depth": int, "num_heads": int,
            "mlp_ratio": float, "num_frames": int, "patch_size": int, "t_patch_size": int, "qkv_bias": bool,
            "drop_rate": float, "attn_drop_rate": float, "drop_path_rate": float, "norm_skes_loss": bool}
    values = {k: cast(args[k]) for k, cast in keys.items() if k in args}
    if "decoder_dim_feat" not in args and "dim_feat" in values:     # a downstream config: no decoder
        values.setdefault("decoder_dim_feat", values["dim_feat"])
    return make_config("paper", **{**values, **overrides})
