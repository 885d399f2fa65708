"""A method that exists only in the tests: proves a new method needs no edit outside its own
module (the planner, runner, tasks, records, reports and the dry-run estimate all ask the
registry). Deliberately tiny: a per-joint linear map pooled over frames and joints."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from methods.base import SkeletonMethod
from methods.config import PretrainLoop, resolve_profile


@dataclass(frozen=True)
class ToyConfig:
    stream: str = "joint"
    width: int = 8
    lr: float = 1e-2
    loop: PretrainLoop = field(default_factory=lambda: PretrainLoop(steps=3, batch_size=8, accumulation=1,
                                                                    max_frames=48, log_every=1, checkpoint_every=3))


PROFILES = {"paper": ToyConfig(), "small": ToyConfig(), "ci": ToyConfig()}


def make_config(profile: str = "ci", **overrides) -> ToyConfig:
    return resolve_profile(PROFILES, profile, overrides)


class ToyMethod(SkeletonMethod):
    """Pre-text task: predict each frame's mean joint position from its pooled embedding."""

    name = "toy"
    table_streams = ("joint", "motion")   # declares two streams: no '-3s' ensemble for it

    def __init__(self, config: ToyConfig):
        super().__init__(config)
        self.embed = nn.Linear(3, config.width)
        self.decode = nn.Linear(config.width, 3)

    def _frames(self, x: torch.Tensor) -> torch.Tensor:          # (B, T, M, V, C) -> (B, T, width)
        return torch.relu(self.embed(x)).mean(dim=(2, 3))

    def pretrain_loss(self, x, lengths):
        loss = nn.functional.mse_loss(self.decode(self._frames(x)), x.mean(dim=(2, 3)))
        return loss, {"loss": float(loss.detach())}

    def configure_pretraining(self):
        opt = torch.optim.SGD(self.parameters(), lr=self.config.lr)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)

    @property
    def video_dim(self):
        return self.config.width

    clip_dim = video_dim

    def video_embedding(self, x, lengths):
        return self._frames(x).mean(dim=1)

    def clip_embedding(self, clips):
        return self._frames(clips).mean(dim=1)

