"""TensorBoard events beside pretrain.log: written when tensorboard is installed (and equal to the
JSON-lines log, across a resume), absent and harmless when it is not."""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from torch import nn

import datasets
from benchmarks.engine.data import sequence_set
from benchmarks.engine.pretrain import pretrain
from methods.base import SkeletonMethod
from methods.config import PretrainLoop
from tests.support import CACHE as TEST_CACHE

CACHE = TEST_CACHE / "synthetic-small"


@dataclass(frozen=True)
class TinyConfig:
    loop: PretrainLoop = field(default_factory=lambda: PretrainLoop(steps=12, batch_size=8, accumulation=1,
                                                                    max_frames=32, log_every=3, checkpoint_every=100))


class Tiny(SkeletonMethod):
    """A mean-pose auto-encoder: just enough of a method to drive the engine."""

    name = "tiny"

    def __init__(self, config=TinyConfig()):
        super().__init__(config)
        self.enc, self.dec = nn.Linear(150, 8), nn.Linear(8, 150)

    def pretrain_loss(self, x, lengths):
        pose = x.sum(1).flatten(1) / lengths[:, None]
        loss = ((self.dec(self.enc(pose)) - pose) ** 2).mean()
        return loss, {"mse": float(loss.detach())}

    def configure_pretraining(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.1)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 / (1 + step))

    video_dim = clip_dim = 8

    def video_embedding(self, x, lengths):
        return self.enc(x.sum(1).flatten(1) / lengths[:, None])

    clip_embedding = video_embedding


@pytest.fixture(scope="module")
def train_set():
    cache = datasets.ensure_synthetic(CACHE, size="small", seed=0, progress=False)["ntu"]
    return sequence_set(cache, cache.indices("xsub", "train"), 32)


def _log(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "pretrain.log").read_text().splitlines()]


def test_no_tensorboard_no_event_files(train_set, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)   # import now fails as if not installed
    torch.manual_seed(0)
    pretrain(Tiny(), train_set, tmp_path, pretrain_id="tiny", seed=0, device=torch.device("cpu"), progress=False,
             log=lambda m: None)
    assert [e["step"] for e in _log(tmp_path)] == [1, 3, 6, 9, 12]
    assert not list(tmp_path.glob("events.out.tfevents.*"))


def test_events_match_the_json_log_across_a_resume(train_set, tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is optional and not installed here")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    torch.manual_seed(0)
    pretrain(Tiny(), train_set, tmp_path, pretrain_id="tiny", seed=0, device=torch.device("cpu"), progress=False,
             log=lambda m: None, stop_after=7)                             # interrupted after step 7
    from torch.utils.tensorboard import SummaryWriter
    with SummaryWriter(str(tmp_path)) as stale:      # what a crash after step 9's log line leaves behind
        stale.add_scalar("pretrain/loss", 999.0, 9)
    torch.manual_seed(0)
    pretrain(Tiny(), train_set, tmp_path, pretrain_id="tiny", seed=0, device=torch.device("cpu"), progress=False,
             log=lambda m: None)
    assert list(tmp_path.glob("events.out.tfevents.*"))
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    log = _log(tmp_path)
    assert set(acc.Tags()["scalars"]) == {"pretrain/lr", "pretrain/loss", "pretrain/mse"}
    for key in ("loss", "lr", "mse"):
        events = acc.Scalars(f"pretrain/{key}")
        assert [e.step for e in events] == [e["step"] for e in log] == [1, 3, 6, 9, 12]
        assert [e.value for e in events] == pytest.approx([e[key] for e in log], rel=1e-6)
