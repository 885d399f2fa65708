"""The evaluation settings peers leave unreported, stated in every record (``protocol``).

Reproduction gaps in neighbouring tools trace back to these: how many frames the encoder saw,
the evaluation batch size, the number of processes, whether a metric comes from a frozen or a
fine-tuned encoder, which pre-training step was evaluated, and what the encoder was pre-trained
on (a transfer when that differs from the evaluated data). docs/records.md lists the fields.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from plumbing.files import read_json

FROZEN_PREFIXES = ("linear_", "knn_")   # metrics scored on the frozen encoder's embeddings


def input_frames(task: str, task_cfg: Any, method_frames: int | None) -> dict[str, Any]:
    """What one evaluated sample looks like to the encoder."""
    if task == "detection":
        return {"window": task_cfg.window, "dilation": task_cfg.dilation,
                "span": (task_cfg.window - 1) * task_cfg.dilation + 1}
    if task == "prediction":
        return {"observed": task_cfg.observe, "predicted": task_cfg.predict, "resampled_to": method_frames}
    return {"max": task_cfg.max_frames, "resampled_to": method_frames}


def encoder_modes(metrics: dict[str, Any]) -> dict[str, str]:
    """Per metric: ``frozen`` (linear / kNN on fixed embeddings) or ``fine-tuned``."""
    return {m: "frozen" if m.startswith(FROZEN_PREFIXES) else "fine-tuned" for m in metrics}


def pretrain_step(folder: Path | None) -> int | None:
    """Optimizer steps of the evaluated checkpoint (from the pre-training's meta.json)."""
    if folder is None:
        return None
    try:
        return int(read_json(Path(folder) / "meta.json")["steps"])
    except (OSError, ValueError, KeyError, TypeError, OverflowError):   # any file: no step, never a crash
        return None


def describe(task: str, task_cfg: Any, method_cls: Any, world: int, metrics: dict[str, Any],
             pre_folder: Path | None, pretrain_cache: Any, pretrain_split: str, eval_dataset: str) -> dict:
    """The record's ``protocol`` block."""
    pre = None
    if pre_folder is not None and pretrain_cache is not None:
        pre = {"dataset": pretrain_cache.dataset, "split": pretrain_split, "step": pretrain_step(pre_folder),
               "transfer": pretrain_cache.dataset != eval_dataset}
    return {"input_frames": input_frames(task, task_cfg, getattr(method_cls, "input_frames", None)),
            "eval_batch_size": int(task_cfg.batch_size), "world_size": int(world),
            "encoder": encoder_modes(metrics), "pretrained": pre_folder is not None, "pretraining": pre}
