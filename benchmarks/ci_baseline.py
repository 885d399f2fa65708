"""Regenerate ``results/ci_baseline.json``: the ``ci`` profile's metrics on the synthetic data,
per (variant, stream, levels, task, fraction, metric), with the seed-to-seed spread.

    python -m benchmarks.ci_baseline --seeds 0,1,2 [--out results/ci_baseline.json]

The tolerance of each metric is ``max(k * std over seeds, floor)``: CI runs seed 0 only, and a
CPU run of one seed is bit-for-bit repeatable, so any move beyond the seed noise is a change of
behaviour, not chance.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from . import run
from .io import atomic_write_json
from .records import load_records

# floors in the metric's unit: percent for accuracies / mAP, millimetres for MPJPE
FLOORS = {"mpjpe": 2.0}
DEFAULT_FLOOR = 1.0
K_STD = 3.0


def baseline_from_records(recs: list[dict], seeds: list[int]) -> dict:
    groups: dict[tuple, list[float]] = {}
    datasets_seen = set()
    for r in recs:
        datasets_seen.add(r["dataset"])
        for metric, value in r["metrics"].items():
            if value is None:
                continue
            key = (r["variant"], r["stream"], r.get("levels"), r["task"], r["label_fraction"], metric)
            groups.setdefault(key, []).append(float(value))
    entries = []
    for (variant, stream, levels, task, fraction, metric), values in sorted(groups.items(), key=str):
        std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        floor = FLOORS.get(metric.split("@")[0], DEFAULT_FLOOR)
        entry = {"variant": variant, "stream": stream, "task": task, "label_fraction": fraction, "metric": metric,
                 "mean": float(np.mean(values)), "std": std, "n_seeds": len(values),
                 "tolerance": round(max(K_STD * std, floor), 4)}
        if levels is not None:
            entry["levels"] = levels
        entries.append(entry)
    return {"profile": "ci", "datasets": sorted(datasets_seen), "seeds": seeds,
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
