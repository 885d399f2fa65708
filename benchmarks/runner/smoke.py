"""``--smoke``: every planned job at the profile's real model sizes, but only a few steps.

Implemented as a transformation of the resolved configurations (``method_config``,
``run_config``) plus caps on the rows a task trains and evaluates on (``rows``) and on the
optimizer steps of each downstream training phase (``TaskContext.max_steps``). It does not
know how the planner enumerates jobs: whatever ``plan.jobs`` returns is transformed. Smoke
records carry ``"smoke": true``; tables, the summary and the regression check skip them.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SmokeConfig:
    """The caps of a smoke run (stored in every smoke record under ``config.smoke``)."""

    steps: int = 2            # optimizer steps per training phase (pre-training, fine-tuning, heads)
    batch: int = 4            # samples per (micro-)batch, training and evaluation
    accumulation: int = 2     # at most this many micro-batches per pre-training step
    sequences: int = 8        # recognition / prediction rows per split
    videos: int = 1           # detection videos per split


SMOKE = SmokeConfig()


def method_config(config, smoke: SmokeConfig = SMOKE):
    """The method config with its pre-training loop capped; architecture untouched.

    The batch stays a multiple of ``bn_splits`` (split-BN needs one sample per group)."""
    loop = config.loop
    splits = max(1, int(getattr(config, "bn_splits", 1)))
    batch = min(loop.batch_size, max(smoke.batch, splits))
    batch = max(splits, batch - batch % splits)
    loop = dataclasses.replace(loop, steps=min(loop.steps, smoke.steps), batch_size=batch,
                               accumulation=min(loop.accumulation, smoke.accumulation), log_every=1,
                               checkpoint_every=max(loop.checkpoint_every, smoke.steps + 1))
    return dataclasses.replace(config, loop=loop)


def run_config(run_cfg, smoke: SmokeConfig = SMOKE):
    """Task configs with one epoch, small batches and no LR milestones; the small synthetic
    world (the caps read only a few sequences, so generating the default world is wasted); one
    CPU thread (tiny batches: more threads only contend, badly so on a shared machine)."""
    rec, det, pred = run_cfg.recognition, run_cfg.detection, run_cfg.prediction
    return dataclasses.replace(
        run_cfg, synthetic_size="small", cpu_threads=1,
        recognition=dataclasses.replace(rec, batch_size=min(rec.batch_size, smoke.batch), epochs_pretrained=1,
                                        milestones_pretrained=(), epochs_scratch=1, milestones_scratch=(),
                                        linear_epochs=1),
        detection=dataclasses.replace(det, batch_size=min(det.batch_size, smoke.batch), epochs=1,
                                      timeline_videos=min(det.timeline_videos, smoke.videos)),
        prediction=dataclasses.replace(pred, batch_size=min(pred.batch_size, smoke.batch), epochs=1, milestones=(),
                                       saved_samples=min(pred.saved_samples, smoke.sequences)))


def rows(task: str, cache, rows: np.ndarray, task_cfg, smoke: SmokeConfig = SMOKE) -> np.ndarray:
    """The first few rows a task may use: videos for detection, sequences long enough for
    prediction's observe + predict window (when there are any), sequences otherwise."""
    rows = np.asarray(rows)
    if task == "detection":
        return rows[: smoke.videos]
    if task == "prediction":
        long_enough = cache.manifest["length"].to_numpy()[rows] >= task_cfg.observe + task_cfg.predict
        if long_enough.any():
            rows = rows[long_enough]
    return rows[: smoke.sequences]
