"""MCC configuration — MCC, reconstructed from the paper's description (no public code).

Given (spec): standard ST-GCN (64 ... 256) + MoCo memory bank, K 32768, m 0.999, T 0.07, SGD
lr 0.1, batch 128, wd 1e-4. Suite choices (MCC's own values are not available): 64 frames per
view, MLP projection 256-256-128, SGD momentum 0.9, the CrosSCLR schedule (300 NTU-60 xsub
epochs = 93,900 steps of 128, lr x0.1 after 250/300 of the run).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import resolve_profile
from ..moco import CI_LOOP, SMALL_LOOP, MemoryBankConfig

STREAMS = ("joint", "motion", "bone")


@dataclass(frozen=True)
class MCCConfig(MemoryBankConfig):
    """Shared fields (encoder, queue, SGD, loop): ``methods.moco.MemoryBankConfig``; MCC uses
    the standard 64-256 ST-GCN."""

    hidden_channels: int = 64
    # views: every view is a window of the valid frames resampled to `frames`
    frames: int = 64
    crop_min: float = 0.5           # window = U(crop_min, 1) x the valid length
    speed_min: float = 0.5          # speed-changed positive: window x s, log-uniform s
    speed_max: float = 2.0
    broken_segments: int = 4        # motion-broken negative: segments shuffled ...
    reverse_prob: float = 0.5       # ... or the clip reversed, with this probability
    use_speed: bool = True
    use_interpolation: bool = True
    use_broken: bool = True

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
    "small": MCCConfig(hidden_channels=8, hidden_dim=64, feature_dim=32, queue_size=256, momentum=0.99, dropout=0.0,
                       frames=32, loop=SMALL_LOOP),
    "ci": MCCConfig(hidden_channels=4, hidden_dim=32, feature_dim=16, queue_size=32, momentum=0.99, dropout=0.0, frames=24, loop=CI_LOOP),
}


def make_config(profile: str = "paper", **overrides) -> MCCConfig:
    return resolve_profile(PROFILES, profile, overrides)
