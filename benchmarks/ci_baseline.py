"""Regenerate ``results/ci_baseline.json``: the ``ci`` profile's metrics on the synthetic data,
per (variant, stream, levels, task, fraction, metric), with the seed-to-seed spread.

    python -m benchmarks.ci_baseline --seeds 0,1,2 [--out results/ci_baseline.json]

The tolerance of each metric is ``max(k * std over seeds, floor)`` (any platform). Each entry
also keeps every seed's value: on the same torch build and CPU architecture a run of one seed
is bit-for-bit repeatable, so CI there also checks seed 0 exactly (a change of behaviour
anywhere in the pipeline shows up even when it is smaller than the seed noise).
"""
from __future__ import annotations

import argparse
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch

from plumbing.files import atomic_write_json

from . import run
from .runner.records import load_records

# floors in the metric's unit: percent for accuracies / mAP, millimetres for MPJPE
FLOORS = {"mpjpe": 2.0}
DEFAULT_FLOOR = 1.0
K_STD = 3.0


def baseline_from_records(recs: list[dict], seeds: list[int]) -> dict:
    groups: dict[tuple, dict[int, float]] = {}
    datasets_seen = set()
    for r in recs:
        datasets_seen.add(r["dataset"])
        for metric, value in r["metrics"].items():
            if value is None:
                continue
            key = (r["variant"], r["stream"], r.get("levels"), r["task"], r["label_fraction"], metric)
            groups.setdefault(key, {})[int(r["seed"])] = float(value)
    entries = []
    for (variant, stream, levels, task, fraction, metric), by_seed in sorted(groups.items(), key=str):
        values = list(by_seed.values())
        std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        floor = FLOORS.get(metric.split("@")[0], DEFAULT_FLOOR)
        entry = {"variant": variant, "stream": stream, "task": task, "label_fraction": fraction, "metric": metric,
                 "mean": float(np.mean(values)), "std": std, "n_seeds": len(values),
                 "tolerance": round(max(K_STD * std, floor), 4),
                 "per_seed": {str(k): v for k, v in sorted(by_seed.items())}}
        if levels is not None:
            entry["levels"] = levels
        entries.append(entry)
    return {"profile": "ci", "datasets": sorted(datasets_seen), "seeds": seeds,
            "torch": torch.__version__, "platform": platform.machine(),
            "rule": f"tolerance = max({K_STD:g} x std over seeds, floor {DEFAULT_FLOOR:g} (MPJPE {FLOORS['mpjpe']:g} mm))",
            "entries": entries}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ci_baseline", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--out", type=Path, default=Path("results/ci_baseline.json"))
    p.add_argument("--cache-dir", type=Path, default=Path(".cache"))
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        code = run.main(["--method", "all", "--task", "all", "--profile", "ci", "--seeds", args.seeds,
                         "--out", tmp, "--cache-dir", str(args.cache_dir), "--no-report", "--no-progress"])
        if code:
            return code
        base = baseline_from_records(load_records(Path(tmp)), seeds)
    atomic_write_json(args.out, base)
    print(f"wrote {args.out}: {len(base['entries'])} metrics from seeds {seeds}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
