"""``python -m benchmarks.perf.precision_study``: does bf16 autocast change the results?

For every method: pre-training of ``--steps`` optimizer steps at the ``ci`` model sizes on CPU,
then recognition (fine-tuning and linear evaluation), three times: fp32 seed 0, bf16 seed 0
(same seed: same init, batches and random draws) and fp32 seed 1 (the seed-to-seed spread).
Each run is one ``python -m benchmarks.run`` subprocess (the runner's own code path, its own
process-wide torch state). Writes ``benchmarks/perf/results/precision_study_cpu.json`` and
prints the Markdown tables of docs/perf.md ("Precision").

A metric's bf16 deviation counts as within the spread when
``|bf16 - fp32 seed 0| <= max(|fp32 seed 1 - fp32 seed 0|, floor)`` (floor: 1 point for
accuracies, 0.01 for losses: a spread measured from two seeds can be ~0 by chance).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
RUNS = (("fp32", 0), ("bf16", 0), ("fp32", 1))
CURVE_STEPS = (1, 50, 100, 150, 200, 250, 300)


@dataclass(frozen=True)
class StudyConfig:
    steps: int = 300             # pre-training optimizer steps per run
    profile: str = "ci"          # model / task sizes
    task: str = "recognition"    # downstream task(s) after pre-training
    fraction: float = 1.0
    window: int = 25             # log entries averaged for the end-of-training values (x log_every steps)


def _overrides(method: str, steps: int) -> list[str]:
    sets = [f"{method}.loop.steps={steps}", f"{method}.loop.log_every=5", f"{method}.loop.checkpoint_every={steps}"]
    if method == "hitrs":  # ci decays the LR over 40 steps; stretch it over the run
        sets += [f"hitrs.schedule_horizon={steps}", f"hitrs.warmup_steps={max(1, steps // 20)}"]
    return sets


def run_one(method: str, precision: str, seed: int, cfg: StudyConfig, out: Path) -> dict:
    folder = out / f"{method}-{precision}-s{seed}"
    cmd = [sys.executable, "-m", "benchmarks.run", "--method", method, "--task", cfg.task, "--profile", cfg.profile,
           "--fractions", str(cfg.fraction), "--seeds", str(seed), "--precision", precision, "--device", "cpu",
           "--out", str(folder), "--no-report", "--no-progress", "--fresh"]
    for item in _overrides(method, cfg.steps):
        cmd += ["--set", item]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-2000:]}")
    records = [json.loads(p.read_text()) for p in sorted((folder / "records").glob("*.json"))]
    (pre,) = {r["pretrain"]["id"] for r in records}
    log = [json.loads(line) for line in (folder / "pretrain" / pre / "pretrain.log").read_text().splitlines() if line]
    meta = json.loads((folder / "pretrain" / pre / "meta.json").read_text())
    return {"method": method, "precision": precision, "seed": seed, "wall_s": round(wall, 1),
            "pretrain_samples_per_s": meta["samples_per_s"], "pretrain_wall_s": meta["wall_time_s"],
            "log": log, "metrics": {k: v for r in records for k, v in r["metrics"].items()},
            "record_precision": sorted({r["precision"] for r in records})}


def _end(log: list[dict], key: str, window: int) -> float | None:
    values = [e[key] for e in log[-window:] if key in e and e[key] is not None]
    return sum(values) / len(values) if values else None


def summarise(runs: list[dict], cfg: StudyConfig) -> list[dict]:
    """One row per (method, quantity): fp32 s0, bf16 s0, fp32 s1, |bf16 - fp32|, spread, within."""
    rows = []
    for method in dict.fromkeys(r["method"] for r in runs):
        by = {(r["precision"], r["seed"]): r for r in runs if r["method"] == method}
        a, b, c = by[("fp32", 0)], by[("bf16", 0)], by[("fp32", 1)]
        keys = [k for k in a["log"][-1] if k not in ("step", "lr", "cross_view")]
        quantities = [(f"pretrain {k} (end)", _end(a["log"], k, cfg.window), _end(b["log"], k, cfg.window),
                       _end(c["log"], k, cfg.window), "acc" in k) for k in keys]
        quantities += [(f"{cfg.task} {k}", a["metrics"][k], b["metrics"][k], c["metrics"][k], True)
                       for k in a["metrics"]]
        for name, f0, h0, f1, is_acc in quantities:
            if None in (f0, h0, f1):
                continue
            scale = 100.0 if is_acc and max(abs(f0), abs(f1)) <= 1.0 else 1.0   # fractions -> points
            floor = 1.0 / scale if is_acc else 0.01
            delta, spread = abs(h0 - f0), abs(f1 - f0)
            rows.append({"method": method, "quantity": name, "fp32_seed0": f0, "bf16_seed0": h0, "fp32_seed1": f1,
                         "bf16_delta": delta, "seed_spread": spread, "within": delta <= max(spread, floor) + 1e-12})
    return rows


def curves(runs: list[dict]) -> list[dict]:
    out = []
    for r in runs:
        at = {e["step"]: e["loss"] for e in r["log"]}
        out.append({"method": r["method"], "run": f"{r['precision']} s{r['seed']}",
                    **{str(s): at.get(s) for s in CURVE_STEPS}})
    return out


def markdown(result: dict) -> str:
    lines = ["| method | quantity | fp32 seed 0 | bf16 seed 0 | fp32 seed 1 | abs(bf16 - fp32) | seed spread | within |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in result["summary"]:
        lines.append(f"| {r['method']} | {r['quantity']} | {r['fp32_seed0']:.4g} | {r['bf16_seed0']:.4g} | "
                     f"{r['fp32_seed1']:.4g} | {r['bf16_delta']:.3g} | {r['seed_spread']:.3g} | "
                     f"{'yes' if r['within'] else 'NO'} |")
    lines += ["", "| method | run | " + " | ".join(f"loss @{s}" for s in CURVE_STEPS) + " |",
              "| --- | --- | " + " | ".join("---:" for _ in CURVE_STEPS) + " |"]
    for c in result["curves"]:
        lines.append(f"| {c['method']} | {c['run']} | "
                     + " | ".join("—" if c[str(s)] is None else f"{c[str(s)]:.3f}" for s in CURVE_STEPS) + " |")
    lines += ["", "| method | run | pre-training samples/s | wall (s) |", "| --- | --- | ---: | ---: |"]
    for r in result["runs"]:
        lines.append(f"| {r['method']} | {r['precision']} s{r['seed']} | {r['pretrain_samples_per_s']:.1f} | {r['wall_s']:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.perf.precision_study", description=__doc__.split("\n")[0])
    p.add_argument("--methods", default="hitrs,mcc,crossclr")
    p.add_argument("--steps", type=int, default=StudyConfig.steps)
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (each uses one CPU thread)")
    p.add_argument("--work", type=Path, default=Path(".cache/precision_study"), help="scratch results folder")
    p.add_argument("--out", type=Path, default=RESULTS / "precision_study_cpu.json")
    args = p.parse_args(argv)
    if args.steps < 1 or args.jobs < 1:
        print("error: --steps and --jobs must be >= 1", file=sys.stderr)
        return 2
    cfg = StudyConfig(steps=args.steps)
    names = [m.strip() for m in args.methods.split(",") if m.strip()]
    plan = [(m, prec, seed) for m in names for prec, seed in RUNS]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        runs = list(pool.map(lambda item: run_one(*item, cfg, args.work), plan))
    for r in runs:
        print(f"[precision] {r['method']} {r['precision']} seed {r['seed']}: {r['wall_s']} s", file=sys.stderr)
    result = {"config": asdict(cfg), "command": " ".join(["python -m benchmarks.perf.precision_study", *(argv or sys.argv[1:])]),
              "wall_s": round(time.perf_counter() - t0, 1), "runs": runs, "summary": summarise(runs, cfg),
              "curves": curves(runs)}
    result["markdown"] = markdown(result)
    from plumbing.files import atomic_write_json
    atomic_write_json(args.out, result)
    print(result["markdown"])
    print(f"\n[precision] {len(runs)} runs in {result['wall_s']} s -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
