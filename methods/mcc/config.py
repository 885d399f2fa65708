"""MCC configuration — MCC, reconstructed from the paper's description (no public code).

Given (spec): standard ST-GCN (64 ... 256) + MoCo memory bank, K 32768, m 0.999, T 0.07, SGD
lr 0.1, batch 128, wd 1e-4. Suite choices (MCC's own values are not available): 64 frames per
view, MLP projection 256-256-128, SGD momentum 0.9, the CrosSCLR schedule (300 NTU-60 xsub
epochs = 93,900 steps of 128, lr x0.1 after 250/300 of the run).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..config import PretrainLoop, resolve_profile

STREAMS = ("joint", "motion", "bone")


@dataclass(frozen=True)
class MCCConfig:
    stream: str = "joint"
    # encoder: standard ST-GCN + projection
    hidden_channels: int = 64
    hidden_dim: int = 256
    feature_dim: int = 128
    mlp: bool = True
    dropout: float = 0.5
    # memory bank
    queue_size: int = 32768
    momentum: float = 0.999
    temperature: float = 0.07
    bn_splits: int = 1
    # views: every view is a window of the valid frames resampled to `frames`
    frames: int = 64
    crop_min: float = 0.5           # window = U(crop_min, 1) x the valid length
    speed_min: float = 0.5          # speed-changed positive: window x s, log-uniform s
    speed_max: float = 2.0
    broken_segments: int = 4        # motion-broken negative: segments shuffled ...
    reverse_prob: float = 0.5       # ... or the clip reversed, with this probability
    shear: float = 0.5
    use_speed: bool = True
    use_interpolation: bool = True
    use_broken: bool = True
    # optimiser
    lr: float = 0.1
    sgd_momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    lr_milestones: tuple[float, ...] = (250 / 300,)
    lr_gamma: float = 0.1
    loop: PretrainLoop = field(default_factory=lambda: PretrainLoop(
        steps=93_900, batch_size=128, accumulation=1, grad_clip=0.0, max_frames=300,
        log_every=100, checkpoint_every=3130))

    def __post_init__(self):
        if self.stream not in STREAMS:
            raise ValueError(f"mcc: stream must be one of {', '.join(STREAMS)}, got {self.stream!r}")
        if not 0.0 < self.crop_min <= 1.0:
            raise ValueError(f"mcc: crop_min must lie in (0, 1], got {self.crop_min}")
        if not 0.0 < self.speed_min <= 1.0 <= self.speed_max:
            raise ValueError(f"mcc: need 0 < speed_min <= 1 <= speed_max, got {self.speed_min}, {self.speed_max}")
        if self.frames < 2 or self.broken_segments < 2 or self.broken_segments > self.frames:
            raise ValueError(f"mcc: need frames >= 2 and 2 <= broken_segments <= frames, got "
                             f"{self.frames}, {self.broken_segments}")


PROFILES = {
    "paper": MCCConfig(),
    "small": MCCConfig(queue_size=8192, loop=PretrainLoop(
        steps=3000, batch_size=64, accumulation=1, grad_clip=0.0, max_frames=300,
        log_every=50, checkpoint_every=1000)),
    "ci": MCCConfig(hidden_channels=4, hidden_dim=32, feature_dim=16, queue_size=32, momentum=0.99, dropout=0.0, frames=24,
                    loop=PretrainLoop(steps=24, batch_size=8, accumulation=1, grad_clip=0.0,
                                      max_frames=120, log_every=5, checkpoint_every=1000)),
}


def make_config(profile: str = "paper", **overrides) -> MCCConfig:
    return resolve_profile(PROFILES, profile, overrides)
