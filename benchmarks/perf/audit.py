"""What one training step asks of the host: syncs, dispatched ops and host-built tensors.

    python -m benchmarks.perf.audit [--profile ci] [--methods hitrs,mcc] [--phases pretrain]

Runs one optimizer step of every (method, phase) workload (``benchmarks.perf.workloads``, the
engine's own step) on the CPU (or ``--device meta``: only ops on device tensors count, as a
GPU would see them) under a ``TorchDispatchMode`` that counts, per step:

* ``syncs``: ops whose result the host must read on a GPU: ``_local_scalar_dense`` (``item``,
  ``float``, ``int``, ``bool`` of a tensor), ``nonzero`` and everything built on it (boolean
  indexing, ``masked_select``), ``unique``-like ops with data-dependent output sizes;
* ``host_tensors``: tensors built from Python data inside the step (``torch.tensor(list)``,
  ``lift_fresh``) and, with ``--device meta``, copies from the host to the device
  (``host_to_device``: the micro-batch's own tensors, pinned and non-blocking on CUDA, and
  anything else, which from pageable memory waits for the stream);
* ``ops``: every ATen op dispatched in forward and backward (kernel launches, roughly, on a GPU).

The optimizer's own ``step`` is not counted: torch keeps the step counters of the non-fused
optimizers on the host, so their ``item()`` calls read host memory, and the fused CUDA
optimizers launch a handful of kernels; ``--device meta`` of ``benchmarks.perf`` is the proof
that nothing else in a step reads device data.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode

import methods

from .workloads import PHASES, build

#: ATen ops whose output size or value the host must read (a device sync on CUDA)
SYNC_OPS = ("_local_scalar_dense", "nonzero", "masked_select", "_unique", "unique_dim", "unique_consecutive",
            "repeat_interleave.Tensor", "is_nonzero", "equal")
HOST_OPS = ("lift_fresh", "host_to_device")


def _name(func) -> str:
    return str(func.overloadpacket.__name__) if hasattr(func, "overloadpacket") else str(func)


class OpCounter(TorchDispatchMode):
    """Counts dispatched ATen ops by name (``overloadpacket``) and by full overload."""

    def __init__(self, device_only: bool = False):
        super().__init__()
        self.ops: Counter = Counter()
        self.paused = False
        self.device_only = device_only

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if self.paused:
            return out
        tensors = [a for a in torch.utils._pytree.tree_leaves((args, kwargs, out)) if isinstance(a, torch.Tensor)]
        on_device = any(t.device.type != "cpu" for t in tensors)
        if self.device_only and not on_device:
            return out   # host work (the loader's, CPU-only value checks): not part of a device step
        name = _name(func)
        self.ops[name] += 1
        if str(func).startswith("aten.repeat_interleave.Tensor"):
            self.ops["repeat_interleave.Tensor"] += 1
        if name in ("_to_copy", "copy_") and on_device and any(t.device.type == "cpu" for t in tensors):
            self.ops["host_to_device"] += 1
        return out

    def summary(self) -> dict[str, int]:
        syncs = sum(self.ops.get(n, 0) for n in SYNC_OPS)
        host = sum(self.ops.get(n, 0) for n in HOST_OPS)
        return {"syncs": syncs, "host_tensors": host, "ops": sum(self.ops.values())}


def audit(name: str, phase: str, profile: str, seed: int = 0, device: str = "cpu") -> dict:
    """Counts of one steady-state optimizer step (one untimed step first: lazy state, caches)."""
    from .measure import make_pattern, run_steps
    device = torch.device(device)
    wl = build(name, phase, profile, steps=2, seed=seed, device=device)
    pattern = make_pattern("ours", device, precision="fp32")
    batches = wl.host_batches("bucketed", False, seed)
    run_steps(wl, wl.net, batches, device, pattern, 0, 1)
    counter = OpCounter(device_only=device.type != "cpu")
    optimizer_step = wl.optimizer.step

    def uncounted_step(*args, **kwargs):
        counter.paused = True
        try:
            return optimizer_step(*args, **kwargs)
        finally:
            counter.paused = False

    wl.optimizer.step = uncounted_step
    with counter:
        run_steps(wl, wl.net, batches, device, pattern, 1, 1)
    micro = wl.accumulation
    out = {"method": name, "phase": phase, "profile": profile, "micro_batches": micro, **counter.summary()}
    out["syncs_by_op"] = {n: counter.ops[n] for n in SYNC_OPS + HOST_OPS if counter.ops.get(n)}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.perf.audit", description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="ci", choices=["paper", "small", "ci"])
    p.add_argument("--methods", default=",".join(methods.available()))
    p.add_argument("--phases", default=",".join(PHASES))
    p.add_argument("--device", default="cpu", choices=["cpu", "meta"],
                   help="meta: the step as on an accelerator (a read of device data raises there, so syncs = 0 "
                        "once it completes; value checks that only run on CPU tensors are skipped)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for name in [m for m in args.methods.split(",") if m]:
        for phase in [ph for ph in args.phases.split(",") if ph]:
            row = audit(name, phase, args.profile, device=args.device)
            rows.append(row)
            print(f"[audit] {name}/{phase}: {row['syncs']} syncs, {row['host_tensors']} host tensors, "
                  f"{row['ops']} ops ({row['micro_batches']} micro-batch(es)) {row['syncs_by_op']}",
                  file=sys.stderr, flush=True)
    print(f"{'method':9s} {'phase':10s} {'micro':>5s} {'syncs':>6s} {'host':>5s} {'ops':>7s}")
    for r in rows:
        print(f"{r['method']:9s} {r['phase']:10s} {r['micro_batches']:5d} {r['syncs']:6d} {r['host_tensors']:5d} "
              f"{r['ops']:7d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
