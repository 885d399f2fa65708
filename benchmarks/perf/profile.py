"""``python -m benchmarks.perf.profile``: where one workload's optimizer steps spend their time.

    python -m benchmarks.perf.profile --method hitrs --phase pretrain --device cuda --precision bf16

Runs the same steps as ``python -m benchmarks.perf`` (same workload, pattern and batches),
then ``torch.profiler`` over a few more, and prints the operators with the most device time and
the most host time: the first thing to read when a pattern is slower than expected (the perf
table says how fast, this says why).
"""
from __future__ import annotations

import argparse
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

import methods

from ..engine import precision as numerics
from .hardware import resolve, synchronize
from .measure import _Stats, _step, make_pattern
from .workloads import PHASES, build


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.perf.profile", description=__doc__.split("\n")[0])
    p.add_argument("--method", required=True, choices=methods.available())
    p.add_argument("--phase", default="pretrain", choices=PHASES)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--profile", default=None, choices=["paper", "small", "ci"],
                   help="sizes (default: paper on CUDA, ci on CPU)")
    p.add_argument("--pattern", default="ours", choices=["ours", "reference"])
    p.add_argument("--precision", default=None, choices=["fp32", "tf32", "bf16"])
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=3, help="profiled optimizer steps")
    p.add_argument("--rows", type=int, default=20, help="operators listed per table")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   type=_key_value, help="method config override, e.g. --set levels=F+C")
    return p.parse_args(argv)


def _key_value(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{item!r}: expected KEY=VALUE")
    return key.strip(), value.strip()


def main(argv=None) -> int:
    args = parse_args(argv)
    info = resolve(args.device)
    cuda = info.device.type == "cuda"
    profile_name = args.profile or ("paper" if cuda else "ci")
    overrides = dict(args.overrides)
    try:
        wl = build(args.method, args.phase, profile_name, overrides, None, args.warmup + args.steps, 0)
    except ValueError as err:      # a --set the method's config refuses: one line, before any work
        print(f"python -m benchmarks.perf.profile: error: {err}", file=sys.stderr)
        return 2
    pattern = make_pattern(args.pattern, info.device, precision=args.precision, method=args.method)
    numerics.configure(pattern.precision, info.device)     # TF32 flags and SDPA backends, as a run
    wl.net.to(info.device).train()
    batches = wl.host_batches("bucketed" if pattern.bucketed else "random", pattern.pinned, 0)
    stats = _Stats()
    for i in range(args.warmup):
        _step(wl, wl.net, batches, info.device, pattern, i, stats)
    synchronize(info.device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    stats = _Stats()
    start = time.perf_counter()
    with profile(activities=activities) as prof:
        for i in range(args.steps):
            _step(wl, wl.net, batches, info.device, pattern, args.warmup + i, stats)
        synchronize(info.device)
    wall = time.perf_counter() - start
    print(f"profile: {args.method}/{args.phase} {pattern.name} {pattern.precision} on {info.name}: "
          f"{args.steps} steps, {stats.samples} samples, {wall / args.steps:.3f} s/step under the profiler, "
          f"padding {1 - stats.valid / max(stats.padded, 1):.0%}")
    averages = prof.key_averages()
    if cuda:
        print(averages.table(sort_by="self_cuda_time_total", row_limit=args.rows, max_name_column_width=60))
    print(averages.table(sort_by="self_cpu_time_total", row_limit=args.rows, max_name_column_width=60))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
