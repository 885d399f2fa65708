"""Hi-TRS configuration: one frozen dataclass, profiles ``paper`` / ``small`` / ``ci``.

``paper`` is the reference implementation's setting (../shared/spec/hitrs.md); ``small`` is the
CPU default (a narrow model, the whole ``--task all`` plan in under 30 minutes on 2 cores);
``ci`` is tiny so a CPU pre-training takes seconds.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from datasets.streams import STREAMS
from methods.config import PretrainLoop, resolve_profile

LEVELS = ("F", "C", "V")
JOINTS = 25
COORDS = 3


def parse_levels(value) -> tuple[str, ...]:
    """Normalise ``"F+C+V"``, ``"FC"``, ``("V",)``, ``"-"``, ``""`` to a canonical ordered tuple."""
    if isinstance(value, str):
        value = (value,)
    text = "".join(str(v) for v in value).replace("+", "").replace(",", "").replace(" ", "")
    if text.lower() in ("", "-", "none"):
        return ()
    bad = sorted(set(text) - set(LEVELS))
    if bad or len(set(text)) != len(text):
        raise ValueError(
            f"HiTRSConfig.levels: {value!r} is not a subset of F, C, V (write e.g. 'F+C+V', 'F+V' or '-')")
    return tuple(lv for lv in LEVELS if lv in text)


@dataclass(frozen=True)
class HiTRSConfig:
    """Everything that defines a Hi-TRS model and its pre-training (see docs/hitrs.md)."""

    stream: str = "joint"                      # joint / motion / bone (datasets.streams.to_stream)
    levels: tuple[str, ...] = ("F", "C", "V")  # pre-trained levels; () / "-" = no pre-training
    # ---- architecture (reference constructor: w_size, d_model, nhead, d_att, dp_rate, layer_num)
    d_model: int = 128        # F-TRS width; C-TRS 2*d_model, V-TRS 4*d_model
    nhead: int = 8
    d_att: int = 64           # head width; Q/K/V project to nhead*d_att
    layers: int = 3           # blocks per level
    dropout: float = 0.2
    window: int = 7           # frames per clip
    stride: int = 7           # clip stride (frames)
    dilation: int = 2         # frame step inside a clip
    max_clips: int = 200      # V-TRS position table
    init: str = "reference"   # "reference": a level's blocks start as copies of one block; "independent"
    center_input: bool = False  # suite option (the reference: raw camera coordinates): joints
                                # relative to body 1's spine base in the first frame
    motion_scale: float = 1.0   # suite option: the motion stream times this (reference 1: metres per frame)
    # ---- pretext tasks
    mask_prob: float = 0.15           # joints picked for masked-joint prediction
    mask_token_prob: float = 0.8      # of the picked: replaced by mask_value
    mask_random_prob: float = 0.1     # of the picked: replaced by another joint of another frame
    mask_value: float = 1.0           # the [MASK] vector [v, v, v] in stream coordinates
    mask_without_f: bool = True       # mask the input even when F is not a pre-trained level
    regression_scale: float = 10.0    # smooth-L1 on pred*scale vs target*scale
    nce_temperature: float = 0.07
    # ---- augmentation (datasets.augment.hitrs_augment), training mode only
    aug_p: float = 0.5
    aug_spatial: tuple[str, ...] = ("scale", "noise", "shear")
    aug_temporal: tuple[str, ...] = ("interp", "crop")
    # ---- optimisation
    lr: float = 4e-4
    weight_decay: float = 0.01
    betas: tuple[float, ...] = (0.9, 0.999)
    eps: float = 1e-8
    warmup_steps: int = 1000
    lr_end: float = 2e-6
    decay_power: float = 1.0
    schedule_horizon: int = 50_000    # reference 50,000; 30,000 decays to the end of training
    seed: int = 0                     # seeds the method's generator (masking, sampling, augmentation)
    loop: PretrainLoop = field(default_factory=PretrainLoop)

    def __post_init__(self):
        object.__setattr__(self, "levels", parse_levels(self.levels))
        for name in ("aug_spatial", "aug_temporal", "betas"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.stream not in STREAMS:
            raise ValueError(f"HiTRSConfig.stream: {self.stream!r} unknown; choose one of {', '.join(STREAMS)}")
        if self.d_model <= 0 or self.d_model % 2:
            raise ValueError(f"HiTRSConfig.d_model must be a positive even number (sin/cos tables), got {self.d_model}")
        for name in ("nhead", "d_att", "layers", "window", "stride", "dilation", "max_clips"):
            if getattr(self, name) < 1:
                raise ValueError(f"HiTRSConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not self.motion_scale > 0:
            raise ValueError(f"HiTRSConfig.motion_scale must be > 0, got {self.motion_scale}")
        if self.init not in ("reference", "independent"):
            raise ValueError(f"HiTRSConfig.init: {self.init!r} unknown; choose reference (a level's blocks start "
                             "identical, as the authors' code) or independent")
        if self.window % 2 == 0:
            raise ValueError(f"HiTRSConfig.window must be odd (clips are centred on a frame), got {self.window}")
        if not 0.0 <= self.mask_prob <= 1.0 or self.mask_token_prob + self.mask_random_prob > 1.0:
            raise ValueError("HiTRSConfig: mask_prob in [0,1] and mask_token_prob + mask_random_prob <= 1 required")

    @property
    def levels_name(self) -> str:
        """Display form used in records: 'F+C+V', 'F', ... or '-'."""
        return "+".join(self.levels) or "-"


def _ci_loop() -> PretrainLoop:
    return PretrainLoop(steps=100, batch_size=8, accumulation=1, grad_clip=1.0, max_frames=48,
                        log_every=10, checkpoint_every=50, batching="bucket")


PROFILES: dict[str, HiTRSConfig] = {
    "paper": HiTRSConfig(loop=PretrainLoop(steps=30_000, batch_size=64, accumulation=4, grad_clip=1.0,
                                           max_frames=300, log_every=50, checkpoint_every=1000)),
    # center_input: fine-tuned top-1 25.0 -> 51.0 % at the same cost; dropout 0: 60.4 -> 70.8 %;
    # motion_scale 30 (metres per second at 30 fps): the motion stream 3.1 -> 63.5 % (docs/small_profile.md)
    "small": HiTRSConfig(d_model=32, nhead=4, d_att=8, layers=1, dropout=0.0, stride=14, lr=2e-3, warmup_steps=20,
                         init="independent", schedule_horizon=200, lr_end=1e-5, center_input=True, motion_scale=30.0,
                         loop=PretrainLoop(steps=200, batch_size=16, accumulation=1, grad_clip=1.0, max_frames=64,
                                           log_every=20, checkpoint_every=100, batching="bucket")),
    # 100 steps (~8 s on one thread): the masked-joint error falls from ~3.5 m to ~0.5 m
    # small's input options and no dropout (with ci's recognition batch 16, clip 1.0, standardised linear
    # probe): downstream off the near-constant class it predicted before (docs/small_profile.md, "ci")
    "ci": HiTRSConfig(d_model=16, nhead=2, d_att=8, layers=1, dropout=0.0, lr=2e-3, warmup_steps=10, init="independent",
                      schedule_horizon=100, lr_end=1e-5, center_input=True, motion_scale=30.0, loop=_ci_loop()),
}


def make_config(profile: str = "ci", **overrides) -> HiTRSConfig:
    """Resolve a profile and apply ``key=value`` overrides (dotted keys reach ``loop.*``)."""
    return resolve_profile(PROFILES, profile, overrides)


def from_reference_args(args: dict, **overrides) -> HiTRSConfig:
    """Config from the reference constructor arguments
    ``(w_size, d_model, nhead, d_att, dp_rate, layer_num[, label_num])``."""
    need = ("w_size", "d_model", "nhead", "d_att", "dp_rate", "layer_num")
    missing = [k for k in need if k not in args]
    if missing:
        raise ValueError(f"reference config lacks {', '.join(missing)}; expected keys {', '.join(need)} (+ label_num)")
    base = dataclasses.replace(PROFILES["paper"], window=int(args["w_size"]), d_model=int(args["d_model"]),
                               nhead=int(args["nhead"]), d_att=int(args["d_att"]),
                               dropout=float(args["dp_rate"]), layers=int(args["layer_num"]))
    return dataclasses.replace(base, **overrides) if overrides else base
