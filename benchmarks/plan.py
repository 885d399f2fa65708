"""What a run will do: data, per-method configs, pre-training jobs and their cache ids."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import methods
from methods.config import to_dict

from .cli import Options, UsageError
from .config import RunConfig, make_run_config

TASK_SCOPES = ("run", "recognition", "detection", "prediction")


@dataclass
class Data:
    ntu: Any | None       # recognition, prediction, pre-training
    pkummd: Any | None    # detection

    def for_task(self, task: str):
        cache = self.pkummd if task == "detection" else self.ntu
        if cache is None:
            need = "pkummd=DIR" if task == "detection" else "ntu60=DIR or ntu120=DIR"
            raise UsageError(f"--task {task}: no data for it; add --data {need}")
        return cache


@dataclass
class Job:
    """One pre-training (or random init) and the downstream runs that share it."""

    method: str
    stream: str
    levels: str | None
    seed: int
    config: Any

    @property
    def needs_pretraining(self) -> bool:
        return getattr(self.config, "levels", None) != ()

    @property
    def variant(self) -> str:
        return self.method if self.stream == "joint" else f"{self.method}-{self.stream}"


def run_config(opts: Options, profile: str) -> RunConfig:
    flat: dict[str, str] = {}
    for scope, values in opts.overrides.items():
        if scope not in TASK_SCOPES and scope not in opts.methods:
            raise UsageError(f"--set {scope}.…: unknown scope {scope!r}; use run, recognition, detection, prediction "
                             f"or a selected method ({', '.join(opts.methods)})")
        if scope in TASK_SCOPES:
            flat.update({(k if scope == "run" else f"{scope}.{k}"): v for k, v in values.items()})
    try:
        return make_run_config(profile, flat)
    except ValueError as err:
        raise UsageError(f"--set: {err}") from None


def method_config(name: str, profile: str, stream: str, levels: str | None, overrides: dict[str, str]):
    probe = methods.make_config(name, profile)
    extra: dict[str, Any] = dict(overrides)
    if hasattr(probe, "stream"):
        extra["stream"] = stream
    if levels is not None and hasattr(probe, "levels"):
        extra["levels"] = () if levels == "-" else tuple(levels.split("+"))
    try:
        return methods.make_config(name, profile, **extra)
    except ValueError as err:
        raise UsageError(f"--set {name}.…: {err}") from None


def jobs(opts: Options, profile: str) -> list[Job]:
    out = []
    for name in opts.methods:
        has_levels = hasattr(methods.make_config(name, profile), "levels")
        for stream in opts.streams:
            for levels in (opts.levels if has_levels else [None]):
                for seed in opts.seeds:
                    cfg = method_config(name, profile, stream, levels, opts.overrides.get(name, {}))
                    out.append(Job(name, stream, levels, seed, cfg))
    return out


def data_fingerprint(cache) -> str:
    manifest = cache.manifest
    cols = [c for c in ("name", "length", "bodies", "label") if c in manifest.columns]
    blob = manifest[cols].to_csv(index=False).encode()
    return f"{cache.dataset}:{hashlib.sha256(blob).hexdigest()[:16]}"


def pretrain_id(job: Job, cache, run_cfg: RunConfig, precision: str = "fp32") -> str:
    cls = type(methods.create(job.method, config=job.config))
    config = to_dict(job.config)
    if cls.pretrains_all_streams:
        config.pop("stream", None)
    key = {"method": job.method, "config": config, "data": data_fingerprint(cache), "seed": job.seed,
           "split": run_cfg.pretrain_split}
    if precision != "fp32":  # fp32 keys stay as they were; tf32/bf16 pre-trainings are other weights
        key["precision"] = precision
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return f"{job.method}-{digest}"


def resolved_config(job: Job, task: str, run_cfg: RunConfig) -> dict:
    return {"method": to_dict(job.config), "task": to_dict(getattr(run_cfg, task)),
            "run": {k: v for k, v in to_dict(run_cfg).items() if k not in ("recognition", "detection", "prediction")}}


def describe(jobs_: list[Job], tasks: list[str], fractions: list[float]) -> str:
    lines = []
    for job in jobs_:
        lv = f" levels {job.levels}" if job.levels is not None else ""
        pre = "pre-train + " if job.needs_pretraining else "random init + "
        lines.append(f"  {job.variant}{lv} seed {job.seed}: {pre}{', '.join(tasks)} x fractions "
                     f"{', '.join(f'{f:g}' for f in fractions)}")
    return "\n".join(lines)
