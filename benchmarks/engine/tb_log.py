"""TensorBoard event files beside the JSON-lines ``pretrain.log``, when tensorboard is installed.

Why: every neighbouring tool logs there, so ``tensorboard --logdir results/pretrain`` should
show our pre-trainings too. tensorboard stays optional: without it nothing is written and
nothing fails (``pretrain.log`` remains the record of the run).
"""
from __future__ import annotations

from pathlib import Path


class EventLog:
    """``add(entry)`` writes one ``pretrain.log`` entry (``step`` + scalars) as scalars ``pretrain/<key>``.

    On a resume at step ``s`` the writer purges events of steps > ``s`` left by the interrupted
    run, as the JSON-lines log drops its lines of the steps the resume will redo."""

    def __init__(self, folder: Path, resumed_step: int):
        self.writer = None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard not installed: the JSON-lines log is enough
            return
        self.writer = SummaryWriter(log_dir=str(folder), purge_step=resumed_step + 1)

    @property
    def active(self) -> bool:
        return self.writer is not None

    def add(self, entry: dict) -> None:
        if self.writer is None:
            return
        step = int(entry["step"])
        for key, value in entry.items():
            if key != "step" and isinstance(value, (int, float)):
                self.writer.add_scalar(f"pretrain/{key}", float(value), step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
