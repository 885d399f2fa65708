"""Checks of the opened data against the run's plan, before any folder is created or any step
is trained: every problem found here is one line naming the flag and what to do (exit code 2).

Why a separate pass: the tasks would otherwise find an unknown split, an empty test part or
a cache of the wrong kind only after minutes of pre-training.
"""
from __future__ import annotations

import numpy as np

from datasets.subsets import stratified_counts

from .cli import UsageError

TINY_TEST = 10            # fewer test samples / labelled actions than this: metrics are mostly noise
NTU_TASKS = ("recognition", "prediction")


def check_kind(kind: str, folder: str, cache) -> None:
    """A PKU-MMD (detection) cache passed as ntu60= / ntu120=, or the reverse, is refused."""
    want_detection = kind == "pkummd"
    if cache.is_detection != want_detection:
        have = "a PKU-MMD (detection)" if cache.is_detection else f"an NTU-layout ({cache.dataset})"
        fix = "pkummd=DIR" if cache.is_detection else "ntu60=DIR or ntu120=DIR"
        raise UsageError(f"--data {kind}={folder}: this is {have} cache; pass it as --data {fix}")


def _flag(cache) -> str:
    return f"--data: cache {cache.dataset} ({cache.path})"


def _parts(cache, split: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    if split not in cache.splits:
        raise UsageError(f"--set {key}={split}: {cache.dataset} ({cache.path}) has no split {split!r}; "
                         f"choose one of {', '.join(cache.splits)}")
    return cache.indices(split, "train"), cache.indices(split, "test")


def check_plan(opts, run_cfg, data, jobs, world: int = 1, warn=print) -> None:
    """Raise UsageError for the first problem; ``warn`` one line per doubtful but runnable case."""
    needs_ntu = [t for t in opts.tasks if t in NTU_TASKS]
    pretraining = [j for j in jobs if j.needs_pretraining]
    if data.ntu is None and (needs_ntu or pretraining):
        why = (f"--task {needs_ntu[0]}" if needs_ntu else
               "pre-training (detection on PKU-MMD is evaluated as a transfer from NTU pre-training)")
        raise UsageError(f"--data: {why} needs an NTU-layout cache; add --data ntu60=DIR (or ntu120=DIR), "
                         "or use --data synthetic")
    if "detection" in opts.tasks and data.pkummd is None:
        raise UsageError("--data: --task detection needs a PKU-MMD cache; add --data pkummd=DIR, or use --data synthetic")
    if pretraining:
        train, _ = _parts(data.ntu, run_cfg.pretrain_split, "run.pretrain_split")
        need = max(j.config.loop.batch_size for j in pretraining) * world
        if len(train) < need:
            raise UsageError(f"{_flag(data.ntu)}: split {run_cfg.pretrain_split!r} has {len(train)} training "
                             f"samples, fewer than one pre-training batch of {need}; use more data or a smaller "
                             "--set METHOD.loop.batch_size")
    for task in opts.tasks:
        cache = data.for_task(task)
        cfg = getattr(run_cfg, task)
        train, test = _parts(cache, cfg.split, f"{task}.split")
        unit = "videos" if cache.is_detection else "samples"
        for part, rows in (("train", train), ("test", test)):
            if len(rows) == 0:
                raise UsageError(f"{_flag(cache)}: --task {task} split {cfg.split!r} has no {part} {unit}; "
                                 f"choose another split with --set {task}.split=... or prepare the full dataset")
        # detection: what the mAP averages over is action instances, not videos
        tested, what = ((int(cache.manifest["actions"].to_numpy()[test].sum()), "labelled actions")
                        if cache.is_detection and "actions" in cache.manifest else (len(test), unit))
        if tested < TINY_TEST:
            warn(f"[run] warning: --task {task} on {cache.dataset} split {cfg.split!r}: only {tested} test "
                 f"{what}; its metrics are mostly noise")
        for fraction in opts.fractions:
            if fraction < 1.0 and _subset_size(cache, train, fraction) == len(train):
                warn(f"[run] warning: --fractions {fraction:g}: the {task} subset of {cache.dataset} split "
                     f"{cfg.split!r} is all {len(train)} training {unit} (at least one per class), the same as 1.0")


def _subset_size(cache, train: np.ndarray, fraction: float) -> int:
    """How many rows ``datasets.subsets.make_subset`` will draw (same rules, nothing written)."""
    if cache.is_detection:
        return max(1, int(round(fraction * len(train))))
    _, inverse = np.unique(cache.labels[train], return_inverse=True)
    return int(stratified_counts(np.bincount(inverse), fraction).sum())
