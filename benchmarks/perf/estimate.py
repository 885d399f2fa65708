"""Time estimates of ``benchmarks.run --dry-run``, derived from the plan and the registry.

The work list comes from the runner's own plan (``plan_work``: every pre-training and downstream
run of any registered method, its samples from its resolved config and the data sizes), so a new
method needs no edit here. On CPU the time per sample comes from a short calibration on this
machine (``calibrate``: three timed optimizer steps, after two warm-up steps, of each (method, phase) perf workload).

GPU-hour estimate of the full Tables 1-3 reproduction, from MEASURED throughput: the work is counted in samples processed (pre-training steps x effective batch, downstream
epochs x training-set size); the time per sample comes from the perf JSON files under
``benchmarks/perf/results/`` (written by ``python -m benchmarks.perf``) measured on the named
device. Only CUDA files at the ``paper`` profile count, and only their ``ours`` rows in each
method's default CUDA precision. Each work
item uses the measurement of its own phase (pretrain / detection / prediction); where a file
has no such row the recognition ``finetune`` row stands in and the line says so. Nothing is
guessed: a method without a measurement on a CUDA device is reported as missing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

from ..engine.precision import resolve as default_precision
from .lengths import (NTU60_PRED_TEST, NTU60_PRED_TRAIN, NTU60_XSUB_TEST, NTU60_XSUB_TRAIN,  # noqa: F401
                      NTU60_XSUB_TRAIN_BODIES, PKU_XSUB_TEST_FRAMES, PKU_XSUB_TRAIN_FRAMES)


@dataclass(frozen=True)
class Work:
    name: str
    method: str
    phase: str        # "pretrain" | "finetune" | "detection" | "prediction"
    samples: float    # forward+backward sample passes (a forward-only pass counts 1/3)
    unit: int = 0     # the plan unit it belongs to (parts of the plan run in parallel)


@dataclass(frozen=True)
class Sizes:
    """Training / test set sizes the work is counted on (full labelled sets; a fraction scales the training part)."""

    recognition_train: float
    recognition_test: float
    detection_train_frames: float
    detection_test_frames: float
    prediction_train: float
    prediction_test: float


PAPER_SIZES = Sizes(NTU60_XSUB_TRAIN, NTU60_XSUB_TEST, PKU_XSUB_TRAIN_FRAMES, PKU_XSUB_TEST_FRAMES,
                    NTU60_PRED_TRAIN, NTU60_PRED_TEST)
PHASE_OF_TASK = {"recognition": "finetune", "detection": "detection", "prediction": "prediction"}
FORWARD = 1.0 / 3.0   # a forward pass costs about a third of forward + backward


def data_sizes(data, run_cfg) -> Sizes:
    """Sizes of the prepared caches the run will use."""
    def count(cache, task, part):
        return float(len(cache.indices(getattr(run_cfg, task).split, part))) if cache is not None else 0.0

    def frames(cache, part):
        if cache is None:
            return 0.0
        rows = cache.indices(run_cfg.detection.split, part)
        return float(cache.manifest["length"].to_numpy()[rows].sum())

    p = run_cfg.prediction
    eligible = lambda part: (float((data.ntu.manifest["length"].to_numpy()[data.ntu.indices(p.split, part)]  # noqa: E731
                                    >= p.observe + p.predict).sum()) if data.ntu is not None else 0.0)
    return Sizes(count(data.ntu, "recognition", "train"), count(data.ntu, "recognition", "test"),
                 frames(data.pkummd, "train"), frames(data.pkummd, "test"), eligible("train"), eligible("test"))


def plan_work(plan, run_cfg, sizes: Sizes) -> list[Work]:
    """Every training pass of ``plan`` (a ``benchmarks.runner.plan.Plan``), from its configs and ``sizes``."""
    from ..runner.plan import pretrain_key

    work, seen = [], set()
    for u, unit in enumerate(plan.units):
        for job in unit.jobs:
            if job.needs_pretraining and pretrain_key(job) not in seen:
                seen.add(pretrain_key(job))
                loop = job.config.loop
                work.append(Work(f"{_label(job)} pre-train seed {job.seed}", job.method,
                                 "pretrain", float(loop.steps * loop.batch_size * loop.accumulation), u))
            if job.config is None:
                continue
            for run in job.runs:
                work.append(Work(f"{_label(job)} {run.task} {run.fraction:g} seed {job.seed}",
                                 job.method, PHASE_OF_TASK[run.task],
                                 _run_samples(run, not job.needs_pretraining, run_cfg, sizes), u))
    return work


def _label(job) -> str:
    return job.variant + (f" [{job.levels}]" if job.levels not in (None, "-") else "")


def _run_samples(run, scratch: bool, run_cfg, s: Sizes) -> float:
    f = run.fraction
    if run.task == "recognition":
        c = run_cfg.recognition
        epochs = c.epochs_scratch if scratch else c.epochs_pretrained
        linear = (f * s.recognition_train + s.recognition_test) * FORWARD if c.linear_eval else 0.0
        return epochs * f * s.recognition_train + s.recognition_test * FORWARD + linear
    if run.task == "detection":
        c = run_cfg.detection
        return c.epochs * f * s.detection_train_frames / c.train_frame_stride + s.detection_test_frames * FORWARD
    c = run_cfg.prediction
    return c.epochs * f * s.prediction_train * c.crops_per_sequence + s.prediction_test * FORWARD


def paper_work() -> list[Work]:
    """Every training pass of ``--method all --task all --profile paper`` (one seed), on the paper's data sizes."""
    import methods

    from ..runner import cli, plan
    from ..config import make_run_config

    opts = cli.parse(["--method", "all", "--task", "all", "--profile", "paper"], methods.available())
    return plan_work(plan.build(opts, "paper"), make_run_config("paper"), PAPER_SIZES)


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a readable perf result ({err}); delete it or re-run "
                         "'python -m benchmarks.perf'") from None
    if not isinstance(data, dict) or not isinstance(data.get("rows", []), list):
        raise ValueError(f"{path}: not a perf result (expected an object with 'device' and 'rows')")
    return data


def load_measurements(results: Path = RESULTS) -> dict[tuple[str, str], dict]:
    """(method, phase) -> the fastest ``ours`` measurement on a CUDA device at the paper profile,
    in the precision a run uses by default (a faster tf32 / bf16 row of a method that runs fp32
    does not make its estimate)."""
    best: dict[tuple[str, str], dict] = {}
    for path in sorted(Path(results).glob("*.json")):
        data = _read(path)
        if not str(data.get("device", "")).lower().startswith(("nvidia", "cuda")):
            continue
        if data.get("config", {}).get("profile", "paper") != "paper":
            continue
        for row in data.get("rows", []):
            if row.get("pattern") != "ours" or not row.get("samples_per_s"):
                continue
            used = (row.get("pattern_settings") or {}).get("precision")
            if used != default_precision(None, "cuda", row["method"]):
                continue
            key = (row["method"], row["phase"])
            if key not in best or row["samples_per_s"] > best[key]["samples_per_s"]:
                best[key] = {**row, "device": data["device"], "file": path.name}
    return best


def estimate(results: Path = RESULTS, work: list[Work] | None = None
             ) -> tuple[list[tuple[Work, float | None, str]], float, list[str]]:
    measured = load_measurements(results)
    rows, missing, total = [], [], 0.0
    for w in paper_work() if work is None else work:
        m, proxy = measured.get((w.method, w.phase)), ""
        if m is None and w.phase != "pretrain":
            m, proxy = measured.get((w.method, "finetune")), " finetune proxy"
        if m is None:
            rows.append((w, None, "no CUDA measurement"))
            missing.append(f"{w.method}/{w.phase}")
            continue
        hours = w.samples / m["samples_per_s"] / 3600.0
        total += hours
        rows.append((w, hours, f"{m['device']} ({m['file']}){proxy}"))
    return rows, total, sorted(set(missing))


def calibrate(work: list[Work], profile: str, overrides: dict[str, dict[str, str]], steps: int = 3
              ) -> dict[tuple[str, str], float]:
    """(method, phase) -> samples/s on this CPU: ``steps`` timed optimizer steps (after one
    warm-up) of the perf workload of each pair the work needs, at ``profile``."""
    from .hardware import resolve
    from .measure import make_pattern, measure
    from .workloads import build

    info = resolve("cpu")
    rates = {}
    for method, phase in sorted({(w.method, w.phase) for w in work}):
        wl = build(method, phase, profile, overrides.get(method, {}), steps=steps)
        rates[(method, phase)] = measure(wl, make_pattern("ours", info.device), info, steps=steps, warmup=2)["samples_per_s"]
    return rates


def cpu_seconds(work: list[Work], rates: dict[tuple[str, str], float], workers: int = 1) -> tuple[float, float]:
    """(sum of all work, wall time): units in plan order, each to the first free worker process,
    as the workers claim them."""
    per_unit: dict[int, float] = {}
    for w in work:
        per_unit[w.unit] = per_unit.get(w.unit, 0.0) + w.samples / max(rates[(w.method, w.phase)], 1e-9)
    free = [0.0] * max(1, workers)
    for unit in sorted(per_unit):
        free[free.index(min(free))] += per_unit[unit]
    return sum(per_unit.values()), max(free)


def print_estimate(plan=None, opts=None, profile: str | None = None, run_cfg=None, data=None, workers: int = 1) -> None:
    """CPU (``data`` loaded): wall time of ``plan`` from a short calibration; always: the GPU-hour
    estimate of the plan at the paper profile from the committed CUDA measurements."""
    if plan is not None and data is not None:
        work = plan_work(plan, run_cfg, data_sizes(data, run_cfg))
        rates = calibrate(work, profile, opts.overrides)
        total, wall = cpu_seconds(work, rates, workers)
        print(f"\nCPU estimate (profile {profile}, calibrated now on this machine, "
              f"{', '.join(f'{m}/{p} {r:,.0f} samples/s' for (m, p), r in sorted(rates.items()))}):")
        print(f"  {len(work)} training items, {total:,.0f} s of work; with {workers} worker process(es) about "
              f"{wall:,.0f} s wall time (+ data preparation and the report; more when other jobs share the cores)")
    rows, total, missing = estimate()
    print("\nGPU-hour estimate for the full Tables 1-3 reproduction (paper profile, one seed), from measured throughput:")
    groups: dict[tuple[str, str], list] = {}
    for w, hours, source in rows:
        groups.setdefault((w.method, w.phase), []).append((w, hours, source))
    for (method, phase), items in groups.items():
        hours = [h for _, h, _ in items if h is not None]
        shown = f"{sum(hours):7.2f} h" if len(hours) == len(items) else "      ? h"
        samples = sum(w.samples for w, _, _ in items)
        print(f"  {shown}  {method:10s} {phase:10s} {len(items):3d} runs {samples:16,.0f} samples  [{items[0][2]}]")
    print(f"  total measured: {total:.2f} GPU-hours")
    if missing:
        print(f"  missing CUDA measurements for: {', '.join(missing)} -- run "
              "'python -m benchmarks.perf --device cuda' on a GPU and commit its JSON")
