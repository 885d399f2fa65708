"""What a run will do: the jobs (one pre-training or random init and its downstream runs), the
'-3s' ensembles and the reference rows, grouped into units that can be sharded.

``--task all`` plans every run behind Tables 1-3 plus recognition from the variant axes each
method DECLARES (``SkeletonMethod.table_streams`` / ``level_sets`` / ``default_levels``):
its main level set on every declared stream (recognition, detection; prediction on joints),
every other level set on detection at 100% (the level ablation; none without 1.0 in
``--fractions``), a random-initialisation reference of every method on every task, and the
zero-velocity MPJPE reference. Explicit
``--streams`` / ``--levels`` narrow that plan; explicit tasks run the cross product of the
given (or default: joint, the method's default levels) streams and level sets.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import methods
from plumbing.config import to_dict

from .cli import Options, UsageError
from ..config import RunConfig, make_run_config
from ..tasks import ENSEMBLE_TASKS

TASK_SCOPES = ("run", "recognition", "detection", "prediction")
THREE_STREAMS = ("joint", "motion", "bone")
RANDOM = "-"                     # the level set of random initialisation (no pre-training)
ZERO_VELOCITY = "zero-velocity"  # reference predictor: repeat the last observed pose


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


@dataclass(frozen=True)
class Run:
    task: str
    fraction: float


@dataclass
class Job:
    """One pre-training (or random init, or a reference predictor) and the runs that share it."""

    method: str
    stream: str
    levels: str | None            # '-' = random init; None = a method without a level axis
    seed: int
    config: Any                   # the method's resolved config; None for a reference predictor
    runs: list[Run] = field(default_factory=list)

    @property
    def random_init(self) -> bool:
        return self.levels == RANDOM

    @property
    def needs_pretraining(self) -> bool:
        return self.config is not None and not self.random_init

    @property
    def variant(self) -> str:
        base = self.method if self.stream == "joint" else f"{self.method}-{self.stream}"
        return f"{base}-random" if self.random_init and self.method != ZERO_VELOCITY else base


@dataclass(frozen=True)
class Ensemble:
    """'-3s': the three stream models' outputs averaged (jobs of the same unit)."""

    method: str
    levels: str | None
    seed: int
    task: str
    fraction: float

    @property
    def variant(self) -> str:
        return f"{self.method}-3s"


@dataclass
class Unit:
    """Jobs that share a pre-training or an ensemble: never split across shards or workers."""

    jobs: list[Job]
    ensembles: list[Ensemble]

    @property
    def weight(self) -> float:
        """Relative cost for balancing parts (fixed, so every shard computes the same split)."""
        runs = sum(0.15 + 0.85 * r.fraction for j in self.jobs if j.config is not None for r in j.runs)
        return runs + 0.5 * sum(j.needs_pretraining for j in self.jobs) + 0.01


@dataclass
class Plan:
    units: list[Unit]

    @property
    def jobs(self) -> list[Job]:
        return [j for u in self.units for j in u.jobs]

    @property
    def ensembles(self) -> list[Ensemble]:
        return [e for u in self.units for e in u.ensembles]

    def counts(self) -> dict[str, int]:
        jobs = self.jobs
        return {"pre-trainings": len({pretrain_key(j) for j in jobs if j.needs_pretraining}),
                "fine-tunings": sum(len(j.runs) for j in jobs if j.config is not None),
                "evaluations": sum(len(j.runs) for j in jobs if j.config is None) + len(self.ensembles)}

    def part(self, k: int, n: int) -> "Plan":
        """The k-th (1-based) of n disjoint parts, balanced by unit weight; units heaviest first
        (worker processes claim them in this order)."""
        order = sorted(range(len(self.units)), key=lambda i: (-self.units[i].weight, i))
        if n == 1:
            return Plan([self.units[i] for i in order])
        loads, owner = [0.0] * n, []
        for i in order:
            target = min(range(n), key=lambda s: (loads[s], s))
            loads[target] += self.units[i].weight
            owner.append((i, target))
        return Plan([self.units[i] for i, s in owner if s == k - 1])


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
    extra: dict[str, Any] = {**methods.method_class(name).variant_overrides(stream, levels), **overrides}
    try:
        return methods.make_config(name, profile, **extra)
    except ValueError as err:
        raise UsageError(f"--set {name}.…: {err}") from None


def _wanted(opts: Options, cls) -> list[tuple[str, str | None, str, tuple[float, ...]]]:
    """(stream, levels, task, fractions) of one method, from its declared axes."""
    main, every = cls.default_levels, tuple(opts.fractions)
    out: list[tuple[str, str | None, str, tuple[float, ...]]] = []
    if opts.task_all:
        for task in opts.tasks:
            for stream in (("joint",) if task == "prediction" else cls.table_streams):
                out.append((stream, main, task, every))
            if task == "detection" and 1.0 in every:   # Table 3: the level ablation at 100%
                out += [("joint", lv, task, (1.0,)) for lv in cls.level_sets if lv != main]
            out.append(("joint", RANDOM, task, every))
        keep_s = opts.streams or THREE_STREAMS
        return [w for w in out if w[0] in keep_s and (opts.levels is None or _level_in(w[1], opts.levels))]
    for stream in opts.streams or ["joint"]:
        for lv in opts.levels or [main or "F+C+V"]:
            if lv != RANDOM and cls.level_sets and lv not in cls.level_sets:
                continue
            levels = lv if (lv == RANDOM or cls.level_sets) else None
            out += [(stream, levels, task, every) for task in opts.tasks]
    return out


def _level_in(levels: str | None, wanted: list[str]) -> bool:
    """Whether a job's level set passes ``--levels``; a method without levels passes any pre-trained set."""
    if levels is None:
        return any(lv != RANDOM for lv in wanted)
    return levels in wanted


def build(opts: Options, profile: str) -> Plan:
    """The whole plan; ``opts.shard`` is applied by the caller (``Plan.part``)."""
    jobs: dict[tuple, Job] = {}
    for name in opts.methods:
        for stream, levels, task, fractions in _wanted(opts, methods.method_class(name)):
            for seed in opts.seeds:
                key = (name, stream, levels, seed)
                if key not in jobs:
                    cfg = method_config(name, profile, stream, levels, opts.overrides.get(name, {}))
                    jobs[key] = Job(name, stream, levels, seed, cfg)
                jobs[key].runs += [Run(task, f) for f in fractions if Run(task, f) not in jobs[key].runs]

    def planned(name, stream, levels, seed, run) -> bool:
        job = jobs.get((name, stream, levels, seed))
        return job is not None and run in job.runs

    ensembles = [Ensemble(name, levels, seed, run.task, run.fraction)
                 for (name, stream, levels, seed), job in jobs.items() if stream == "joint" and levels != RANDOM
                 for run in job.runs
                 if run.task in ENSEMBLE_TASKS and all(planned(name, s, levels, seed, run) for s in THREE_STREAMS)]
    if opts.task_all and "prediction" in opts.tasks and (opts.streams is None or "joint" in opts.streams):
        for seed in opts.seeds:
            jobs[(ZERO_VELOCITY, "joint", None, seed)] = Job(ZERO_VELOCITY, "joint", None, seed, None,
                                                              [Run("prediction", f) for f in opts.fractions])
    return Plan(_units(list(jobs.values()), ensembles))


def _units(jobs: list[Job], ensembles: list[Ensemble]) -> list[Unit]:
    """Connected groups of jobs: same pre-training, or streams of one ensemble."""
    parent = list(range(len(jobs)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[Any, int] = {}
    for i, job in enumerate(jobs):
        keys = [pretrain_key(job)] if job.needs_pretraining else []
        keys += [("3s", e.method, e.levels, e.seed) for e in ensembles
                 if (e.method, e.levels, e.seed) == (job.method, job.levels, job.seed)]
        for k in keys:
            parent[root(i)] = root(first.setdefault(k, i))
    groups: dict[int, Unit] = {}
    for i, job in enumerate(jobs):
        groups.setdefault(root(i), Unit([], [])).jobs.append(job)
    for e in ensembles:
        owner = next(u for u in groups.values() if any((j.method, j.levels, j.seed) == (e.method, e.levels, e.seed)
                                                       for j in u.jobs))
        owner.ensembles.append(e)
    return list(groups.values())


def pretrain_key(job: Job) -> str:
    """What makes a pre-training distinct (data aside): method, config, seed. A method that
    pre-trains every stream at once shares one pre-training across its stream jobs."""
    config = to_dict(job.config)
    if methods.method_class(job.method).pretrains_all_streams:
        config.pop("stream", None)
    return json.dumps({"method": job.method, "config": config, "seed": job.seed}, sort_keys=True)


def data_fingerprint(cache) -> str:
    manifest = cache.manifest
    cols = [c for c in ("name", "length", "bodies", "label") if c in manifest.columns]
    blob = manifest[cols].to_csv(index=False).encode()
    return f"{cache.dataset}:{hashlib.sha256(blob).hexdigest()[:16]}"


def pretrain_id(job: Job, cache, run_cfg: RunConfig, precision: str = "fp32") -> str:
    key = {**json.loads(pretrain_key(job)), "data": data_fingerprint(cache), "split": run_cfg.pretrain_split}
    if precision != "fp32":  # fp32 keys stay as they were; tf32/bf16 pre-trainings are other weights
        key["precision"] = precision
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return f"{job.method}-{digest}"


def resolved_config(job: Job, task: str, run_cfg: RunConfig) -> dict:
    return {"method": None if job.config is None else to_dict(job.config), "task": to_dict(getattr(run_cfg, task)),
            "run": {k: v for k, v in to_dict(run_cfg).items() if k not in ("recognition", "detection", "prediction")}}


def describe(plan: Plan) -> str:
    """The plan, one line per job, grouped by unit, and its counts."""
    lines = []
    for n, unit in enumerate(plan.units, 1):
        for job in unit.jobs:
            lv = f" levels {job.levels}" if job.levels not in (None, RANDOM) else ""
            how = ("pre-train + " if job.needs_pretraining else "random init + " if job.config is not None
                   else "reference, no training: ")
            runs = ", ".join(f"{r.task} {r.fraction:g}" for r in job.runs)
            lines.append(f"  [{n}] {job.variant}{lv} seed {job.seed}: {how}{runs}")
        for e in unit.ensembles:
            lines.append(f"  [{n}] {e.variant} seed {e.seed}: {e.task} {e.fraction:g} from the three stream models")
    c = plan.counts()
    lines.append(f"  plan: {len(plan.units)} parts, {c['pre-trainings']} pre-trainings, {c['fine-tunings']} "
                 f"fine-tunings, {c['evaluations']} evaluations (ensembles and references)")
    return "\n".join(lines)
