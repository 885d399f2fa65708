"""``python -m benchmarks.run``: pre-train (cached), run the downstream tasks, write records.

Runs on CPU, one GPU, or many under ``torchrun --nproc_per_node=N -m benchmarks.run ...``.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

import datasets
import methods
from datasets.subsets import make_subset
from plumbing.config import config_hash, to_dict
from plumbing.files import UnsafePathError, atomic_write_json, path_under, read_json
from plumbing.locks import LockBusyError, LockPathError, file_lock

from .engine import distributed, precision, pretext
from .engine.data import sequence_set
from .engine.pretrain import DivergedError, PretrainInterrupted, load_pretrained, pretrain
from .runner import cli, plan, preflight, protocol, records, smoke
from .runner.cli import UsageError
from .runner.outputs import OutputError, check_output_dir, one_line
from .runner.parallel import claim, run_workers, worker_count
from .tasks import TaskContext, detection, prediction, recognition

TASK_MODULES = {"recognition": recognition, "detection": detection, "prediction": prediction}
REFERENCES = {plan.ZERO_VELOCITY: prediction.zero_velocity}   # reference predictors: no model, no training
SUBSET_SEED = 0  # label subsets are fixed across seeds and methods (protocols.md)


def resolve_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA GPU is visible to torch; use --device cpu or auto")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def load_data(opts: cli.Options, run_cfg, progress: bool) -> plan.Data:
    if "synthetic" in opts.data:
        root = opts.cache_dir / f"synthetic-{run_cfg.synthetic_size}"
        try:
            caches = datasets.ensure_synthetic(root, size=run_cfg.synthetic_size, seed=0, progress=progress)
        except OSError as err:
            raise UsageError(f"--cache-dir {opts.cache_dir}: cannot write the synthetic world there "
                             f"({err.strerror or err}); choose a writable folder with --cache-dir") from None
        return plan.Data(ntu=caches["ntu"], pkummd=caches["pkummd"])
    opened = {}
    for kind, folder in opts.data.items():
        try:
            opened[kind] = datasets.open_cache(folder)
        except (OSError, ValueError) as err:
            raise UsageError(f"--data {kind}={folder}: not a prepared cache ({err}); run "
                             f"'python -m datasets prepare {kind} --raw RAW --out {folder}'") from None
        preflight.check_kind(kind, folder, opened[kind])
    # `is None`, not `or`: a cache with 0 samples is falsy (len 0) but still the one given
    ntu = opened["ntu60"] if "ntu60" in opened else opened.get("ntu120")
    return plan.Data(ntu=ntu, pkummd=opened.get("pkummd"))


class Runner:
    def __init__(self, opts: cli.Options, device: torch.device, dist: distributed.Dist, profile: str):
        self.opts, self.device, self.dist, self.profile = opts, device, dist, profile
        self.run_cfg = plan.run_config(opts, profile)
        if opts.smoke:
            self.run_cfg = smoke.run_config(self.run_cfg)
        self.log = (lambda msg: tqdm.write(msg)) if dist.main else (lambda msg: None)
        self.written: list[dict] = []
        self.protocols: dict[tuple, dict] = {}   # joint-stream protocol blocks, reused by the -3s records

    def precision(self, method: str) -> str:
        """--precision, or the method's measured default on this device (benchmarks.engine.precision)."""
        return precision.resolve(self.opts.precision, self.device, method)

    def planned(self) -> plan.Plan:
        """What this command runs; under --smoke every training loop capped (same jobs, same sizes)."""
        planned = plan.build(self.opts, self.profile)
        if self.opts.smoke:
            for job in planned.jobs:
                if job.config is not None:
                    job.config = smoke.method_config(job.config)
        return planned

    # -- pre-training ------------------------------------------------------------------------
    def pretrained(self, job: plan.Job, data: plan.Data):
        if not job.needs_pretraining:
            return None
        pid = plan.pretrain_id(job, data.ntu, self.run_cfg, precision=self.precision(job.method))
        folder = path_under(self.opts.out, "pretrain", pid)   # checked before training (outputs.py); again here
        # two single-process runs sharing --out: the second waits, then reuses the first's result
        lock_path = folder.parent / f".{pid}.lock"
        lock = file_lock(lock_path) if not self.dist.enabled else self._job_lock(lock_path, pid)
        with lock:
            return self._pretrained(job, data, pid, folder)

    @contextlib.contextmanager
    def _job_lock(self, path: Path, pid: str):
        """Under torchrun rank 0 holds the lock for all ranks; a second job on the same
        pre-training is refused at once (its other ranks could not wait past the barrier timeout)."""
        with contextlib.ExitStack() as stack:
            busy = [False]
            if self.dist.main:
                try:
                    stack.enter_context(file_lock(path, blocking=False))
                except LockBusyError:
                    busy[0] = True
            torch.distributed.broadcast_object_list(busy, src=0)
            if busy[0]:
                raise UsageError(f"pre-training {pid} is being trained by another job (lock {path}); wait for "
                                 "it to finish and run again, or give this job another --out")
            yield

    def _pretrained(self, job: plan.Job, data: plan.Data, pid: str, folder: Path):
        final = folder / "encoder.pt"
        if final.exists() and not self.opts.fresh:
            try:
                probe = methods.create(job.method, config=job.config)
                load_pretrained(probe, final)
                self.log(f"[run] reusing pre-training {pid}")
                return folder
            except Exception as err:  # corrupt or stale: rebuild
                self.log(f"[run] cached pre-training {pid} unusable ({err}); training again")
        if self.opts.fresh and self.dist.main:
            for name in ("encoder.pt", "encoder.pt.sha256", "state.pt", "state.pt.sha256", "state.prev.pt",
                         "state.prev.pt.sha256", "pretrain.log", "meta.json"):
                (folder / name).unlink(missing_ok=True)
        distributed.barrier(self.dist)
        method = self._seeded_method(job)   # the global RNG stays seeded for the training that follows
        cache = data.ntu
        rows = cache.indices(self.run_cfg.pretrain_split, "train")
        train = sequence_set(cache, rows, job.config.loop.max_frames, split_bodies=type(method).split_bodies_for_pretraining)
        self.log(f"[run] pre-training {job.variant} ({pid}) on {len(train)} samples, {job.config.loop.steps} steps")
        result = pretrain(method, train, folder, pretrain_id=pid, seed=job.seed, device=self.device, dist=self.dist,
                          progress=self.opts.progress, log=self.log, compile=self.opts.compile,
                          precision=self.precision(job.method))
        if self.dist.main:
            atomic_write_json(folder / "config.json", {"method": job.method, "config": to_dict(job.config)})
        return result.folder

    @staticmethod
    def _seeded_method(job: plan.Job):
        """The method with the weights a pre-training of ``job`` starts from (seeds the global RNG)."""
        torch.manual_seed(job.seed)
        return methods.create(job.method, config=job.config)

    @classmethod
    def initial_method(cls, job: plan.Job):
        """The method as its pre-training started, without touching the global RNG of the run."""
        with torch.random.fork_rng(devices=[]):
            return cls._seeded_method(job)

    def pretext(self, job: plan.Job, data: plan.Data, folder: Path) -> dict[str, float]:
        """Pretext metrics of a pre-training, evaluated once and kept in its meta.json."""
        meta_path = folder / "meta.json"
        try:   # a planted or torn meta.json (FIFO, deep nesting, not an object) is evaluated again
            meta = read_json(meta_path) if meta_path.exists() else {}
        except ValueError:
            meta = {}
        meta = meta if isinstance(meta, dict) and isinstance(meta.get("pretext", {}), dict) else {}
        if "weight_change" not in meta.get("pretext", {}):
            method = methods.create(job.method, config=job.config)
            load_pretrained(method, folder / "encoder.pt")
            meta["pretext"] = pretext.evaluate(method, data.ntu, self.run_cfg.pretrain_split, self.device,
                                               initial=self.initial_method(job))
            if self.dist.main:
                atomic_write_json(meta_path, meta)
        return meta["pretext"]

    # -- downstream --------------------------------------------------------------------------
    def task(self, job: plan.Job, run: plan.Run, data: plan.Data, pre_folder: Path | None,
             pretext_metrics: dict[str, float] | None = None) -> tuple:
        cache = data.for_task(run.task)
        task_cfg = getattr(self.run_cfg, run.task)
        subset = make_subset(cache, task_cfg.split, run.fraction, SUBSET_SEED, self.opts.out / "subsets",
                             root=self.opts.out)
        train_rows, test_rows = np.asarray(subset.indices), cache.indices(task_cfg.split, "test")
        if self.opts.smoke:
            train_rows, test_rows = (smoke.rows(run.task, cache, r, task_cfg) for r in (train_rows, test_rows))

        def make_method():
            method = methods.create(job.method, config=job.config)
            if pre_folder is not None:
                load_pretrained(method, pre_folder / "encoder.pt")
            return method

        ctx = TaskContext(method_name=job.method,
                          make_method=make_method if job.config is not None else None,
                          pretrained=pre_folder is not None, train_cache=cache, test_cache=cache,
                          train_rows=train_rows, test_rows=test_rows,
                          task_config=task_cfg, device=self.device, seed=job.seed, dist=self.dist,
                          progress=self.opts.progress, log=self.log, compile=self.opts.compile,
                          precision=self.precision(job.method), max_steps=smoke.SMOKE.steps if self.opts.smoke else None)
        started, t0 = records.now_iso(), time.perf_counter()
        out = (TASK_MODULES[run.task].run if job.config is not None else REFERENCES[job.method])(ctx)
        meta = {"subset": {"path": str(subset.path), "sha256": subset.sha256, "count": len(subset.names)},
                "pretrain": None if pre_folder is None else {"id": pre_folder.name,
                                                            "checkpoint": str(pre_folder / "encoder.pt"),
                                                            "log": str(pre_folder / "pretrain.log")},
                "protocol": protocol.describe(run.task, task_cfg, methods.method_class(job.method)
                                              if job.config is not None else None, self.dist.world,
                                              out.metrics, pre_folder, data.ntu, self.run_cfg.pretrain_split,
                                              cache.dataset),
                "pretext": pretext_metrics}
        self.protocols[(job.method, job.levels, job.seed, run.task, run.fraction)] = meta["protocol"]
        self.record(job, job.variant, job.stream, run, cache, out, started, t0, meta)
        return ctx, out

    def ensemble(self, e: plan.Ensemble, unit: plan.Unit, kept: dict) -> None:
        """'-3s' record: the task's ``combine_streams`` over the three stream models' outputs."""
        (ctx, _), *_ = parts = [kept[(e.method, s, e.levels, e.seed, e.task, e.fraction)] for s in plan.THREE_STREAMS]
        started, t0 = records.now_iso(), time.perf_counter()
        out = TASK_MODULES[e.task].combine_streams([o for _, o in parts], ctx)
        job = next(j for j in unit.jobs if (j.method, j.stream, j.levels, j.seed) == (e.method, "joint", e.levels, e.seed))
        meta = {"subset": None, "pretrain": None, "streams": list(plan.THREE_STREAMS),
                "protocol": {**self.protocols[(e.method, e.levels, e.seed, e.task, e.fraction)],
                             "encoder": protocol.encoder_modes(out.metrics)}}
        self.record(job, e.variant, "3s", plan.Run(e.task, e.fraction), ctx.test_cache, out, started, t0, meta)

    def record(self, job: plan.Job, variant: str, stream: str, run: plan.Run, cache, out, started, t0, meta):
        if not self.dist.main:
            return
        run_id = records.new_run_id(variant, run.task)
        config = plan.resolved_config(job, run.task, self.run_cfg)
        if self.opts.smoke:
            config["smoke"] = to_dict(smoke.SMOKE)
        try:   # the metrics are worth more than their artifacts: a failed artifact write keeps the record
            artifacts = records.write_artifacts(self.opts.out, run_id, out.artifacts)
        except (OSError, UnsafePathError) as err:
            print(f"[run] artifacts of {run_id} not written ({one_line(err)}); the record is kept without them",
                  file=sys.stderr)
            artifacts = {}
        record = records.Record(
            run_id=run_id, method=job.method, variant=variant, stream=stream, levels=job.levels, task=run.task,
            dataset=cache.dataset, split=getattr(self.run_cfg, run.task).split, label_fraction=run.fraction,
            seed=job.seed, profile=self.profile, precision=self.precision(job.method), smoke=self.opts.smoke,
            metrics=out.metrics, config=config, config_sha256=config_hash(config), **meta,
            plugins=self.opts.plugins or None,
            provenance=records.provenance(self.device, self.dist.world, started, time.perf_counter() - t0,
                                          out.samples_per_s),
            artifacts=artifacts)
        records.write_record(self.opts.out, record)
        self.written.append(record.to_json())
        shown = ", ".join(f"{k} {v:.2f}" for k, v in out.metrics.items() if v is not None)
        self.log(f"[run] {'SMOKE ' if self.opts.smoke else ''}{variant} {run.task} {run.fraction:g} seed {job.seed}: "
                 f"{shown}")

    def run(self, plan_: plan.Plan, data: plan.Data) -> list[dict]:
        """Unit by unit: pre-train (or load), every downstream run, then the unit's ensembles."""
        overall = tqdm(total=sum(len(j.runs) for j in plan_.jobs), desc="runs", dynamic_ncols=True, position=0,
                       disable=not (self.opts.progress and self.dist.main))
        for index, unit in enumerate(plan_.units):
            if not claim(index):   # a worker process: another worker runs this unit
                continue
            feeds = {(e.method, s, e.levels, e.seed, e.task, e.fraction) for e in unit.ensembles
                     for s in plan.THREE_STREAMS}
            kept: dict[tuple, tuple] = {}
            for job in unit.jobs:
                pre_folder = self.pretrained(job, data)
                job_pretext = None if pre_folder is None else self.pretext(job, data, pre_folder)
                for run in job.runs:
                    ctx, out = self.task(job, run, data, pre_folder, job_pretext)
                    key = (job.method, job.stream, job.levels, job.seed, run.task, run.fraction)
                    if key in feeds:
                        kept[key] = (ctx, out)
                    overall.update(1)
            for e in unit.ensembles:
                self.ensemble(e, unit, kept)
        overall.close()
        return self.written


def summary_table(written: list[dict]) -> str:
    import pandas as pd

    if not written:
        return "(no records written)"
    rows = [{"variant": r["variant"], "levels": r.get("levels") or "", "task": r["task"],
             "fraction": r["label_fraction"], "seed": r["seed"],
             **{k: round(v, 2) for k, v in r["metrics"].items() if v is not None}} for r in written]
    return pd.DataFrame(rows).astype(object).fillna("").to_string(index=False)


def announce(opts: cli.Options, profile: str, device: torch.device, dist: distributed.Dist, workers: int,
             mine: plan.Plan, runner: Runner, note: str | None) -> None:
    why = "given by --profile" if opts.profile else f"default on {device.type.upper()}"
    shard = f"; shard {opts.shard[0]}/{opts.shard[1]}" if opts.shard != (1, 1) else ""
    print(f"[run] profile '{profile}' ({why}); device {records.device_name(device)}; "
          f"precision {', '.join(f'{m} {runner.precision(m)}' for m in opts.methods)}"
          f"{'' if opts.precision else ' (default)'}; world size {dist.world}; "
          f"{workers} worker process(es){shard}; data {', '.join(f'{k}={v}' if v else k for k, v in opts.data.items())}")
    if note:
        print(f"[run] {note}")
    if opts.smoke:
        print(f"[run] SMOKE run: model sizes of '{profile}', {smoke.SMOKE}; records are marked smoke "
              "and skipped by tables, summary and the regression check")
    print(plan.describe(mine))


def execute(runner: Runner, mine: plan.Plan, data: plan.Data, argv: list[str], workers: int) -> tuple[int, list]:
    """Run the plan here, or as ``workers`` processes; (exit code, records written)."""
    if workers > 1:
        code, written = run_workers(argv, workers, runner.opts.out)
        if code:
            print(f"[run] a worker process failed (exit code {code}); finished runs are kept, run the same "
                  "command again to complete the plan", file=sys.stderr)
        return code, written
    try:
        return 0, runner.run(mine, data)
    except UsageError as err:
        cli.fail(str(err))
    except PretrainInterrupted as err:
        print(f"[run] {err}", file=sys.stderr)
        return 130, runner.written
    except DivergedError as err:
        print(f"[run] diverged: {err}", file=sys.stderr)
        return 1, runner.written
    except (OSError, UnsafePathError, LockPathError) as err:   # an output went bad during the run
        print(f"[run] stopped: {one_line(err)}; finished runs are kept in {runner.opts.out / 'records'}; fix that "
              "and run the same command again", file=sys.stderr)
        return 1, runner.written


def finish(opts: cli.Options, written: list[dict]) -> int:
    """Summary CSV, tables and report from every record in --out, and the printed summary.
    The records are already written: a failure here is one line naming what to fix (exit 1)."""
    code = 0
    try:
        records.write_summary(opts.out)
    except Exception as err:  # noqa: BLE001 - a summary problem must not hide finished runs
        code = 1
        print(f"[run] summary not written ({one_line(err)}); the records are kept in {opts.out / 'records'}; "
              f"fix that and run 'python -m reports.summary --results {opts.out}'", file=sys.stderr)
    if opts.report:
        try:
            from reports.build import build
            build(opts.out, path_under(opts.out, "report"))
        except Exception as err:  # noqa: BLE001 - a report problem must not hide finished runs
            code = 1
            print(f"[run] report not built ({one_line(err)}); the records are kept in {opts.out / 'records'}; "
                  f"fix that and run 'python -m reports.build --results {opts.out} --out {opts.out / 'report'}'",
                  file=sys.stderr)
    print(("\nSMOKE (not results)\n" if opts.smoke else "\n") + summary_table(written))
    print(f"\n[run] {len(written)} records in {opts.out / 'records'}; summary {opts.out / 'summary.csv'}")
    return code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        plugins = cli.load_plugins(argv)   # before --method is resolved: plugins register methods
        opts = cli.parse(argv, methods.available())
        opts.plugins = plugins
        device = resolve_device(opts.device)
        profile = opts.profile or ("paper" if device.type == "cuda" else "small")
        dist = distributed.init_from_env(device.type)
        runner = Runner(opts, device, dist, profile)
        if device.type == "cpu" and runner.run_cfg.cpu_threads > 0:
            torch.set_num_threads(runner.run_cfg.cpu_threads)
        mine = runner.planned().part(*opts.shard)
        workers = worker_count(opts, runner.run_cfg, device, dist, len(mine.units))
        lead = dist.main and opts.worker == (1, 1)   # not a worker process, not a non-zero rank
        note = precision.configure(opts.precision or "fp32", device)
        if lead:
            announce(opts, profile, device, dist, workers, mine, runner, note)
        data = None if opts.dry_run and device.type != "cpu" else load_data(opts, runner.run_cfg,
                                                                              opts.progress and dist.main)
        if data is not None:
            preflight.check_plan(opts, runner.run_cfg, data, mine.jobs, dist.world,
                                 warn=(lambda msg: print(msg, file=sys.stderr)) if lead else (lambda msg: None))
        if opts.dry_run:
            from .perf.estimate import print_estimate
            print_estimate(mine, opts, profile, runner.run_cfg, data, workers)
            return 0
        pids = [plan.pretrain_id(j, data.ntu, runner.run_cfg, precision=runner.precision(j.method))
                for j in mine.jobs if j.needs_pretraining]
        check_output_dir(opts.out, pretrain_ids=pids, report=opts.report and lead)
    except (UsageError, OutputError) as err:
        cli.fail(str(err))
    if opts.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    code, written = execute(runner, mine, data, argv, workers)
    if code:
        return code
    return finish(opts, written) if lead else 0


if __name__ == "__main__":
    sys.exit(main())
