"""CrosSCLR configuration (Li et al., CVPR 2021; reference LinguoLi/CrosSCLR 792b70c).

Epoch-based settings of the paper are expressed through optimizer steps: the cross-view phase
starts at ``cross_start * loop.steps`` (paper: epoch 150 of 300 -> 0.5) and the learning rate
drops x0.1 at ``lr_milestones`` (paper: after epoch 250 of 300 -> 250/300). ``paper`` uses
NTU-60 xsub's 40,091 training samples: 313 steps of 128 per epoch x 300 epochs = 93,900 steps.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..config import PretrainLoop, resolve_profile

STREAMS = ("joint", "motion", "bone")


@dataclass(frozen=True)
class CrosSCLRConfig:
    stream: str = "joint"           # downstream stream; pre-training trains all three
    # encoder: 1/4-channel ST-GCN (16 ... 64 -> 256) + projection MLP 256-256-128
    hidden_channels: int = 16
    hidden_dim: int = 256
    feature_dim: int = 128
    mlp: bool = True
    dropout: float = 0.5
    # memory bank
    queue_size: int = 32768
    momentum: float = 0.999
    temperature: float = 0.07
    bn_splits: int = 1              # split-BN groups for keys on one process (reference: 1)
    # cross-view consistency knowledge mining
    cross_start: float = 0.5        # fraction of loop.steps (paper: epoch 150 of 300)
    topk: int = 1
    context: bool = True
    # augmentation: temporal crop (mirror pad T // 6) then shear
    pad_ratio: float = 1 / 6
    shear: float = 0.5
    # optimiser: SGD, lr x0.1 after epoch 250 of 300
    lr: float = 0.1
    sgd_momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    lr_milestones: tuple[float, ...] = (250 / 300,)
    lr_gamma: float = 0.1
    # reproduce two of the reference's known bugs (shared projection layer across streams,
    # only the motion key encoder updated in the cross phase)
    faithful_bugs: bool = False
    loop: PretrainLoop = field(default_factory=lambda: PretrainLoop(
        steps=93_900, batch_size=128, accumulation=1, grad_clip=0.0, max_frames=300,
        log_every=100, checkpoint_every=3130))

    def __post_init__(self):
        if self.stream not in STREAMS:
            raise ValueError(f"crossclr: stream must be one of {', '.join(STREAMS)}, got {self.stream!r}")
        if not 0.0 <= self.cross_start <= 1.0:
            raise ValueError(f"crossclr: cross_start is a fraction of loop.steps in [0, 1], got {self.cross_start}")
        if self.topk < 1 or self.topk > self.queue_size:
            raise ValueError(f"crossclr: topk must lie in [1, queue_size], got {self.topk}")
        if self.faithful_bugs and not self.mlp:
            raise ValueError("crossclr: faithful_bugs reproduces the shared MLP projection; it needs mlp=True")


PROFILES = {
    "paper": CrosSCLRConfig(),
    # a few thousand steps on one GPU: same network, smaller queue
    "small": CrosSCLRConfig(queue_size=8192, loop=PretrainLoop(
        steps=3000, batch_size=64, accumulation=1, grad_clip=0.0, max_frames=300,
        log_every=50, checkpoint_every=1000)),
    # CPU, seconds: tiny widths and queue
    "ci": CrosSCLRConfig(hidden_channels=4, hidden_dim=32, feature_dim=16, queue_size=32, momentum=0.99, dropout=0.0,
                         loop=PretrainLoop(steps=24, batch_size=8, accumulation=1, grad_clip=0.0,
                                           max_frames=120, log_every=5, checkpoint_every=1000)),
}


def make_config(profile: str = "paper", **overrides) -> CrosSCLRConfig:
    return resolve_profile(PROFILES, profile, overrides)
