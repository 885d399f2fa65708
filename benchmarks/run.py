"""``python -m benchmarks.run``: pre-train (cached), run the downstream tasks, write records.

Runs on CPU, one GPU, or many under ``torchrun --nproc_per_node=N -m benchmarks.run ...``.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

import datasets
import methods
from datasets.cache import file_lock
from datasets.subsets import make_subset
from methods.config import config_hash, to_dict

from . import cli, distributed, plan, pretext, records
from .cli import UsageError
from .io import OutputError, atomic_write_json, check_output_dir
from .pretrain import DivergedError, PretrainInterrupted, load_pretrained, pretrain
from .data import sequence_set
from .tasks import TaskContext, detection, prediction, recognition

TASK_MODULES = {"recognition": recognition, "detection": detection, "prediction": prediction}
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
        caches = datasets.ensure_synthetic(root, size=run_cfg.synthetic_size, seed=0, progress=progress)
        return plan.Data(ntu=caches["ntu"], pkummd=caches["pkummd"])
    opened = {}
    for kind, folder in opts.data.items():
        try:
            opened[kind] = datasets.open_cache(folder)
        except (OSError, ValueError) as err:
            raise UsageError(f"--data {kind}={folder}: not a prepared cache ({err}); run "
                             f"'python -m datasets prepare {kind} --raw RAW --out {folder}'") from None
    ntu = opened.get("ntu60") or opened.get("ntu120")
    return plan.Data(ntu=ntu, pkummd=opened.get("pkummd"))


class Runner:
    def __init__(self, opts: cli.Options, device: torch.device, dist: distributed.Dist, profile: str):
        self.opts, self.device, self.dist, self.profile = opts, device, dist, profile
        self.run_cfg = plan.run_config(opts, profile)
        self.log = (lambda msg: tqdm.write(msg)) if dist.main else (lambda msg: None)
        self.written: list[dict] = []

    # -- pre-training ------------------------------------------------------------------------
    def pretrained(self, job: plan.Job, data: plan.Data):
        if not job.needs_pretraining:
            return None
        pid = plan.pretrain_id(job, data.ntu, self.run_cfg)
        folder = self.opts.out / "pretrain" / pid
        # two single-process runs sharing --out: the second waits, then reuses the first's result
        lock = file_lock(folder.parent / f".{pid}.lock") if not self.dist.enabled else contextlib.nullcontext()
        with lock:
            return self._pretrained(job, data, pid, folder)

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
        torch.manual_seed(job.seed)
        method = methods.create(job.method, config=job.config)
        cache = data.ntu
        rows = cache.indices(self.run_cfg.pretrain_split, "train")
        train = sequence_set(cache, rows, job.config.loop.max_frames, split_bodies=type(method).split_bodies_for_pretraining)
        self.log(f"[run] pre-training {job.variant} ({pid}) on {len(train)} samples, {job.config.loop.steps} steps")
        result = pretrain(method, train, folder, pretrain_id=pid, seed=job.seed, device=self.device, dist=self.dist,
                          progress=self.opts.progress, log=self.log, compile=self.opts.compile)
        if self.dist.main:
            atomic_write_json(folder / "config.json", {"method": job.method, "config": to_dict(job.config)})
        return result.folder

    def pretext(self, job: plan.Job, data: plan.Data, folder: Path) -> dict[str, float]:
        """Pretext metrics of a pre-training, evaluated once and kept in its meta.json."""
        meta_path = folder / "meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        if "pretext" not in meta:
            method = methods.create(job.method, config=job.config)
            load_pretrained(method, folder / "encoder.pt")
            meta["pretext"] = pretext.evaluate(method, data.ntu, self.run_cfg.pretrain_split, self.device)
            if self.dist.main:
                atomic_write_json(meta_path, meta)
        return meta["pretext"]

    # -- downstream --------------------------------------------------------------------------
    def task(self, job: plan.Job, task: str, fraction: float, data: plan.Data, pre_folder: Path | None,
             pretext_metrics: dict[str, float] | None = None):
        cache = data.for_task(task)
        task_cfg = getattr(self.run_cfg, task)
        subset = make_subset(cache, task_cfg.split, fraction, SUBSET_SEED, self.opts.out / "subsets")

        def make_method():
            method = methods.create(job.method, config=job.config)
            if pre_folder is not None:
                load_pretrained(method, pre_folder / "encoder.pt")
            return method

        ctx = TaskContext(method_name=job.method, method_config=job.config, make_method=make_method,
                          pretrained=pre_folder is not None, train_cache=cache, test_cache=cache,
                          train_rows=np.asarray(subset.indices), test_rows=cache.indices(task_cfg.split, "test"),
                          task_config=task_cfg, device=self.device, seed=job.seed, dist=self.dist,
                          progress=self.opts.progress, log=self.log, compile=self.opts.compile)
        started, t0 = records.now_iso(), time.perf_counter()
        out = TASK_MODULES[task].run(ctx)
        meta = {"subset": {"path": str(subset.path), "sha256": subset.sha256, "count": len(subset.names)},
                "pretrain": None if pre_folder is None else {"id": pre_folder.name,
                                                            "checkpoint": str(pre_folder / "encoder.pt"),
                                                            "log": str(pre_folder / "pretrain.log")},
                "pretext": pretext_metrics}
        self.record(job, job.variant, job.stream, task, fraction, cache, out, ctx, started, t0, meta)
        return ctx, out

    def record(self, job, variant, stream, task, fraction, cache, out, ctx, started, t0, meta):
        if not self.dist.main:
            return
        run_id = records.new_run_id(variant, task)
        config = plan.resolved_config(job, task, self.run_cfg)
        artifacts = records.write_artifacts(self.opts.out, run_id, out.artifacts)
        record = {"run_id": run_id, "method": job.method, "variant": variant, "stream": stream,
                  "levels": job.levels, "task": task, "dataset": cache.dataset,
                  "split": getattr(self.run_cfg, task).split, "label_fraction": fraction, "seed": job.seed,
                  "profile": self.profile, "metrics": out.metrics, "config": config,
                  "config_sha256": config_hash(config),
                  **meta, "provenance": records.provenance(self.device, self.dist.world, started,
                                                           time.perf_counter() - t0, out.samples_per_s),
                  "artifacts": artifacts}
        records.write_record(self.opts.out, record)
        self.written.append(record)
        shown = ", ".join(f"{k} {v:.2f}" for k, v in out.metrics.items() if v is not None)
        self.log(f"[run] {variant} {task} {fraction:g} seed {job.seed}: {shown}")

    def run(self, data: plan.Data) -> list[dict]:
        job_list = plan.jobs(self.opts, self.profile)
        total = len(job_list) * len(self.opts.tasks) * len(self.opts.fractions)
        overall = tqdm(total=total, desc="runs", disable=not (self.opts.progress and self.dist.main),
                       dynamic_ncols=True, position=0)
        kept: dict[tuple, dict] = {}
        three = set(self.opts.streams) >= {"joint", "motion", "bone"}
        for job in job_list:
            pre_folder = self.pretrained(job, data)
            job_pretext = None if pre_folder is None else self.pretext(job, data, pre_folder)
            for task in self.opts.tasks:
                for fraction in self.opts.fractions:
                    ctx, out = self.task(job, task, fraction, data, pre_folder, job_pretext)
                    overall.update(1)
                    if three and task in ("recognition", "detection"):
                        kept.setdefault((job.method, job.levels, job.seed, task, fraction), {})[job.stream] = (ctx, out)
        overall.close()
        for (name, levels, seed, task, fraction), by_stream in kept.items():
            if len(by_stream) < 3:
                continue
            ctx, _ = by_stream["joint"]
            outputs = [by_stream[s][1].outputs for s in ("joint", "motion", "bone")]
            started, t0 = records.now_iso(), time.perf_counter()
            if task == "recognition":
                out = recognition.TaskOutput(metrics=recognition.combine_streams(outputs))
            else:
                out = detection.combine_streams(outputs, ctx)
            job = next(j for j in job_list if (j.method, j.levels, j.seed) == (name, levels, seed) and j.stream == "joint")
            meta = {"subset": None, "pretrain": None, "streams": ["joint", "motion", "bone"]}
            self.record(job, f"{name}-3s", "3s", task, fraction, data.for_task(task), out, ctx, started, t0, meta)
        return self.written


def summary_table(written: list[dict]) -> str:
    import pandas as pd

    if not written:
        return "(no records written)"
    rows = [{"variant": r["variant"], "levels": r.get("levels") or "", "task": r["task"],
             "fraction": r["label_fraction"], "seed": r["seed"],
             **{k: round(v, 2) for k, v in r["metrics"].items() if v is not None}} for r in written]
    return pd.DataFrame(rows).astype(object).fillna("").to_string(index=False)


def main(argv: list[str] | None = None) -> int:
    try:
        opts = cli.parse(argv, methods.available())
        device = resolve_device(opts.device)
        profile = opts.profile or ("paper" if device.type == "cuda" else "small")
        dist = distributed.init_from_env(device.type)
        runner = Runner(opts, device, dist, profile)
        if device.type == "cpu" and runner.run_cfg.cpu_threads > 0:
            torch.set_num_threads(runner.run_cfg.cpu_threads)
        job_list = plan.jobs(opts, profile)
        if dist.main:
            why = "given by --profile" if opts.profile else f"default on {device.type.upper()}"
            print(f"[run] profile '{profile}' ({why}); device {records.device_name(device)}; "
                  f"world size {dist.world}; data {', '.join(f'{k}={v}' if v else k for k, v in opts.data.items())}")
            print(plan.describe(job_list, opts.tasks, opts.fractions))
        if opts.dry_run:
            from .perf.estimate import print_estimate
            print_estimate(opts, profile)
            return 0
        data = load_data(opts, runner.run_cfg, opts.progress and dist.main)
        check_output_dir(opts.out)
    except (UsageError, OutputError) as err:
        cli.fail(str(err))
    if opts.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    try:
        written = runner.run(data)
    except UsageError as err:
        cli.fail(str(err))
    except PretrainInterrupted as err:
        print(f"[run] {err}", file=sys.stderr)
        return 130
    except DivergedError as err:
        print(f"[run] diverged: {err}", file=sys.stderr)
        return 1
    if dist.main:
        records.write_summary(opts.out)
        if opts.report:
            try:
                from reports.build import build
                build(opts.out, opts.out / "report")
            except Exception as err:  # a report problem must not hide finished runs
                print(f"[run] report not built: {err}", file=sys.stderr)
        print("\n" + summary_table(written))
        print(f"\n[run] {len(written)} records in {opts.out / 'records'}; summary {opts.out / 'summary.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
