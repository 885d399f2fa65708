"""Worker processes: the plan's independent parts at the same time on one machine.

On CPU the ``ci`` profile runs one torch thread per process, so two cores do twice the work
when two processes run at once. Workers are the same command with ``--worker k/w``; each takes
the next unclaimed unit of the plan (heaviest first; a claim is a file created exclusively in a
folder the parent names in ``CLAIMS_ENV``), so the parts balance themselves whatever each
method costs. They share ``--out`` exactly as ``--shard`` processes do (file locks around
pre-trainings and the summary), and the parent writes the summary and the report.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from ..engine import distributed
from . import cli
from .records import load

CLAIMS_ENV = "BENCHMARKS_RUN_CLAIMS"


def claim(index: int) -> bool:
    """Whether this process runs unit ``index``: always, unless it is a worker and another
    worker has claimed the unit first."""
    folder = os.environ.get(CLAIMS_ENV)
    if not folder:
        return True
    try:
        os.close(os.open(Path(folder) / str(index), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


def worker_count(opts: cli.Options, run_cfg, device: torch.device, dist: distributed.Dist, units: int) -> int:
    """--workers, or auto: on CPU with a fixed thread count, one process per ``cpu_threads`` cores."""
    if opts.workers:
        return max(1, min(opts.workers, units))
    if device.type != "cpu" or dist.enabled or opts.worker != (1, 1) or run_cfg.cpu_threads <= 0:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(units, cores // run_cfg.cpu_threads))


def run_workers(argv: list[str], n: int, out: Path) -> tuple[int, list[dict]]:
    """The same command as ``n`` worker processes sharing this process's plan and ``out``.
    Returns the worst exit code and the records they wrote."""
    before = set((out / "records").glob("*.json"))
    claims = tempfile.mkdtemp(prefix="benchmarks-run-claims-")
    env = {**os.environ, CLAIMS_ENV: claims,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                       os.environ.get("PYTHONPATH")]))}
    try:
        procs = [subprocess.Popen([sys.executable, "-m", "benchmarks.run", *argv, "--workers", "1",
                                   "--worker", f"{k}/{n}", "--no-report"], env=env) for k in range(1, n + 1)]
        codes = []
        for proc in procs:
            while True:
                try:
                    codes.append(proc.wait())
                    break
                except KeyboardInterrupt:  # the workers got the signal too: let them checkpoint and exit
                    continue
    finally:
        shutil.rmtree(claims, ignore_errors=True)
    new = {str(path) for path in set((out / "records").glob("*.json")) - before}
    # the one record reader (any file survives); smoke records too, the printed summary shows them
    written = [r for r in load(out, include_smoke=True).records if r.get("_path") in new]
    return (130 if 130 in codes else max(codes)), written
