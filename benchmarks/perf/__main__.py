"""``python -m benchmarks.perf``: training throughput per method, phase and computation pattern.

    python -m benchmarks.perf --device cuda                      # paper sizes, ours + reference
    python -m benchmarks.perf --device cpu                       # ci sizes, 1 thread
    python -m benchmarks.perf --methods hitrs --phases pretrain --reference-pattern

Writes ``benchmarks/perf/results/<device-slug>_<profile>[...].json`` (read by
``benchmarks.run --dry-run`` for the GPU-hour estimate) and prints a table last.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import sys
import time
from pathlib import Path

import torch

import methods

from ..engine import precision as numerics
from . import hardware, lengths, report
from .measure import count_flops, make_pattern, measure
from .workloads import PHASES, build

RESULTS = Path(__file__).resolve().parent / "results"


def _csv(value: str, allowed, flag: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise SystemExit(f"{flag} {value!r}: unknown {', '.join(bad) or '(empty)'}; choose from {', '.join(allowed)}")
    return list(dict.fromkeys(items))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.perf", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", default=None, help="comma list (default: every registered method)")
    p.add_argument("--phases", default=",".join(PHASES), help=f"comma list of {', '.join(PHASES)} (default: all)")
    p.add_argument("--device", default=None,
                   help="cpu | cuda | cuda:N | meta (default: cuda when available). meta runs every step on "
                        "tensors without data: completing proves the step never reads device data on the host")
    p.add_argument("--profile", default=None, choices=["paper", "small", "ci"],
                   help="method/task sizes (default: paper on CUDA, ci on CPU)")
    p.add_argument("--patterns", default="ours,reference", help="comma list of ours, reference (default: both)")
    p.add_argument("--reference-pattern", action="store_true",
                   help="run only the reference pattern (fp32, random batches padded to their longest, eager, "
                        "DataParallel); the default runs both and prints the speed-up")
    p.add_argument("--steps", type=int, default=None, help="timed optimizer steps (default: 20 CUDA, 2 CPU)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: 3 CUDA (8 with --compile), 1 CPU)")
    p.add_argument("--flop-steps", type=int, default=1, help="optimizer steps counted by FlopCounterMode (0: skip)")
    p.add_argument("--batch", type=int, default=None, help="micro-batch size (default: the profile's)")
    p.add_argument("--precision", default=None, choices=numerics.PRECISIONS,
                   help=f"precision of the ours pattern ({numerics.DEFAULT_HELP}); "
                        "the reference pattern is always fp32. tf32 on CPU = fp32")
    p.add_argument("--compile", action="store_true", help="torch.compile the model in the ours pattern")
    p.add_argument("--compile-mode", default="default", choices=["default", "reduce-overhead", "max-autotune"],
                   help="torch.compile mode with --compile (reduce-overhead uses CUDA graphs where shapes repeat)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads (default: 1 on CPU, so runs on shared machines compare; torch's own on CUDA)")
    p.add_argument("--peak-tflops", type=float, default=None, help="peak FLOP/s for MFU when the device is not in the table")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="method config override, e.g. --set levels=F+C (applies to every method given)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS, help="result folder or .json path (default: %(default)s)")
    args = p.parse_args(argv)
    for flag in ("steps", "warmup", "batch", "threads"):
        value = getattr(args, flag)
        if value is not None and value < (0 if flag == "warmup" else 1):
            raise SystemExit(f"--{flag} {value}: must be {'>= 0' if flag == 'warmup' else '>= 1'}")
    return args


def _overrides(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def run(args: argparse.Namespace) -> tuple[dict, Path]:
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    info = hardware.resolve(device, args.peak_tflops)
    cuda = info.device.type == "cuda"
    profile = args.profile or ("paper" if cuda else "ci")
    available = methods.available()
    names = _csv(args.methods, available, "--methods") if args.methods else available
    phases = _csv(args.phases, PHASES, "--phases")
    patterns = ["reference"] if args.reference_pattern else _csv(args.patterns, ("ours", "reference"), "--patterns")
    if info.device.type == "meta":   # the reference pattern sizes its tensors from the data: not on meta
        if patterns == ["reference"]:
            raise SystemExit("--device meta measures the ours pattern only (the reference pattern reads the data "
                             "to size its tensors, by design); drop --reference-pattern / --patterns reference")
        patterns = ["ours"]
    overrides = _overrides(args.overrides)
    chosen = args.precision or "default"             # per method (numerics.resolve) when not given
    note = numerics.configure(args.precision or "fp32", info.device)   # TF32 flags (CUDA), shared by both patterns
    if note:
        print(f"[perf] {note}", file=sys.stderr)
    if args.threads or not cuda:   # after every check: a bad flag leaves the caller's threads alone
        torch.set_num_threads(args.threads or 1)
    steps = args.steps or (20 if cuda else 2)
    warmup = args.warmup if args.warmup is not None else ((8 if args.compile else 3) if cuda else 1)
    host_start = hardware.host_info()
    rows, skipped, configs = [], [], {}
    started = time.perf_counter()
    sample_lengths = lengths.sample_lengths(4096, args.seed)

    def snapshot(complete: bool) -> dict:
        """The result so far; written after every row, so a run stopped by a time limit keeps
        what it measured (``complete`` says whether every planned row was tried)."""
        result = {
            "schema": report.SCHEMA,
            "device": info.name, "device_slug": info.slug, "device_type": info.device.type,
            "torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if cuda else None,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(["python -m benchmarks.perf", *getattr(args, "argv", [])]),
            "precision": chosen, "complete": complete,
            "config": {"profile": profile, "precision": chosen, "methods": names, "phases": phases, "patterns": patterns,
                       "steps": steps, "warmup": warmup, "flop_steps": args.flop_steps, "batch": args.batch,
                       "compile": args.compile, "compile_mode": args.compile_mode if args.compile else None,
                       "threads": torch.get_num_threads(), "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
                       "tf32_cudnn": torch.backends.cudnn.allow_tf32, "seed": args.seed, "overrides": overrides,
                       "peak_flops": info.peak_flops, "peak_flops_source": info.peak_source, "workloads": configs},
            "host": {**host_start, "load_average_end": hardware.host_info()["load_average_1_5_15"]},
            "length_distribution": lengths.describe(sample_lengths),
            "rows": rows, "speedups": report.speedups(rows), "skipped": skipped,
            "wall_s": round(time.perf_counter() - started, 1),
            "file_name": report.file_name(info.slug, profile, names, available, patterns, args.compile, args.batch,
                                          args.precision),
        }
        if not cuda:
            result["note"] = ("CPU measurement: no MFU; GPU figures (and the GPU-hour estimate) need "
                              "'python -m benchmarks.perf --device cuda' on a GPU")
        return result

    for name in names:
        for phase in phases:
            try:
                wl = build(name, phase, profile, overrides, args.batch, steps, args.seed, info.device)
            except Exception as err:  # a method still being written must not stop the others
                skipped.append({"method": name, "phase": phase, "error": f"{type(err).__name__}: {err}"})
                print(f"[perf] {name}/{phase}: could not build ({type(err).__name__}: {err}); skipped", file=sys.stderr)
                continue
            configs[f"{name}/{phase}"] = wl.config
            per_sample, flop_note = None, None
            if args.flop_steps > 0:
                try:
                    flops, samples = count_flops(wl, info.device, make_pattern("ours", info.device, precision=args.precision,
                                                                               method=name),
                                                 args.seed, args.flop_steps)
                    per_sample = flops / samples if samples else None
                except Exception as err:
                    flop_note = f"FLOP count failed: {type(err).__name__}: {err}"
            for pattern_name in patterns:
                pattern = make_pattern(pattern_name, info.device, compile=args.compile, compile_mode=args.compile_mode,
                                       precision=args.precision, method=name)
                try:
                    row = measure(wl, pattern, info, steps, warmup, args.seed, per_sample)
                except Exception as err:
                    skipped.append({"method": name, "phase": phase, "pattern": pattern_name,
                                    "error": f"{type(err).__name__}: {err}"})
                    print(f"[perf] {name}/{phase}/{pattern_name}: failed ({type(err).__name__}: {err})", file=sys.stderr)
                    continue
                if flop_note:
                    row["flops_note"] = flop_note
                rows.append(row)
                report.write(snapshot(complete=False), args.out)
                compiled = (f", {row['shape_buckets']} shape bucket(s), first step per bucket (compile) "
                            f"{row['first_step_s_per_bucket']} s" if pattern.compile else "")
                print(f"[perf] {name:9s} {phase:10s} {pattern_name:9s} {row['samples_per_s']:10.1f} samples/s{compiled}",
                      file=sys.stderr, flush=True)
            del wl
            if cuda:
                torch.cuda.empty_cache()
    result = snapshot(complete=True)
    return result, report.write(result, args.out)


def main(argv=None) -> int:
    args = parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    result, path = run(args)
    print(f"[perf] wrote {path}", file=sys.stderr)
    print(report.table(result))
    return 0 if result["rows"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
