"""Time a workload under a computation pattern: samples/s, peak memory, FLOPs, MFU.

Two patterns run the same model on the same batches' samples:

* ``ours``: length-bucketed batches (``BucketBatches``, buckets of 8 batches), the run's precision
  (``--precision``; default bf16 autocast on CUDA, fp32 on CPU), fused SDPA (in the models), pinned host memory + ``non_blocking`` copies and a
  background thread assembling the next batches (CUDA), optional ``torch.compile``;
* ``reference``: what the reference code does: float32, random batches padded to their
  longest sample, eager, wrapped in ``nn.DataParallel`` (one process; on one device it calls
  the module directly, as the reference on one GPU), synchronous pageable copies.

Timing synchronises the device before starting and stopping the clock; warm-up steps
(allocator, cuDNN/SDPA kernel choice, compilation) are not timed.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.utils import flop_counter

from ..engine import precision as numerics
from ..engine.loader import Prefetch
from ..engine.step import LogWindow, MicroBatch, train_step
from .hardware import DeviceInfo, PeakMemory, synchronize
from .workloads import Workload


@dataclass(frozen=True)
class Pattern:
    name: str
    bucketed: bool
    bf16: bool           # bf16 autocast (CUDA, or CPU when asked: the GPU numerics)
    pinned: bool         # pinned host batches + non_blocking copies (CUDA only)
    prefetch: bool       # a thread assembles host batches ahead (CUDA only)
    compile: bool
    data_parallel: bool
    compile_mode: str = "default"   # "reduce-overhead" adds CUDA graphs where shapes repeat
    precision: str = "fp32"         # benchmarks.engine.precision: fp32 / tf32 / bf16


def make_pattern(name: str, device: torch.device, compile: bool = False, compile_mode: str = "default",
                 precision: str | None = None, method: str | None = None) -> Pattern:
    """``ours`` runs ``precision`` (None = ``method``'s default on the device); the reference runs fp32."""
    cuda = device.type == "cuda"
    if name == "ours":
        chosen = numerics.resolve(precision, device, method)
        return Pattern("ours", bucketed=True, bf16=chosen == "bf16", pinned=cuda, prefetch=cuda, compile=compile,
                       data_parallel=False, compile_mode=compile_mode, precision=chosen)
    if name == "reference":
        return Pattern("reference", bucketed=False, bf16=False, pinned=False, prefetch=False, compile=False,
                       data_parallel=True, precision="fp32")
    raise ValueError(f"unknown pattern {name!r}; choose ours or reference")


def _register_cpu_sdpa_flops() -> None:
    """FlopCounterMode knows the CUDA SDPA kernels; count CPU's flash kernel the same way."""
    aten = torch.ops.aten
    fwd = getattr(aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    bwd = getattr(aten, "_scaled_dot_product_flash_attention_for_cpu_backward", None)
    if fwd is not None and fwd not in flop_counter.flop_registry:
        @flop_counter.register_flop_formula(fwd)
        def _fwd(query, key, value, *args, out_shape=None, **kwargs):
            return flop_counter.sdpa_flop_count(query, key, value)
    if bwd is not None and bwd not in flop_counter.flop_registry:
        @flop_counter.register_flop_formula(bwd)
        def _bwd(grad_out, query, key, value, *args, out_shape=None, **kwargs):
            return flop_counter.sdpa_backward_flop_count(grad_out, query, key, value)


_register_cpu_sdpa_flops()


class _Stats:
    def __init__(self, shapes: set | None = None):
        self.samples = self.valid = self.padded = 0
        self.shapes = shapes if shapes is not None else set()   # step shape keys seen (compiled graphs)
        self.new_shape = False                                  # the last step met a shape not seen before

    def add(self, b: MicroBatch):
        self.samples += b.samples
        self.valid += b.valid_frames
        self.padded += b.padded_frames
        key = b.shape_key()
        if key not in self.shapes:
            self.shapes.add(key)
            self.new_shape = True


def _step(wl: Workload, forward: nn.Module, batches, device: torch.device, pattern: Pattern, index: int,
          stats: _Stats, window: LogWindow | None = None) -> None:
    """One optimizer step of ``accumulation`` micro-batches: the engine's ``train_step`` (static
    capacities in the ours pattern, sizes from the data in the reference pattern), then the
    scheduler and the method's hooks, as the engine calls them."""
    wl.before_step(index)

    def take():
        for _ in range(wl.accumulation):
            batch = next(batches)
            stats.add(batch)
            yield batch

    sums = train_step(lambda tensors: (forward(*tensors), {}), take(), wl.optimizer, accumulation=wl.accumulation,
                      device=device, precision=pattern.precision, grad_clip=wl.grad_clip, params=wl.net.parameters,
                      shapes=wl.shapes)
    if wl.scheduler is not None:
        wl.scheduler.step()
    wl.after_step()
    if window is not None:
        window.add(index, sums)


def _check_finite(wl: Workload, pattern: Pattern, window: LogWindow) -> None:
    """The engine reads its losses every ``log_every`` steps; here once per measurement."""
    finite, _, first = window.read()
    if not finite:
        raise FloatingPointError(f"perf {wl.method}/{wl.phase}/{pattern.name}: non-finite loss from step {first}")


def count_flops(wl: Workload, device: torch.device, pattern: Pattern, seed: int, steps: int = 1) -> tuple[float, int]:
    """Model FLOPs (matmul / conv / attention, forward + backward) of ``steps`` optimizer steps
    of the eager model, and the samples they processed. The batches are spread evenly over the
    sorted lengths, so FLOPs / sample is the average sample's, not one bucket's."""
    wl.net.to(device)
    wl.net.train()
    stats = _Stats()
    batches = wl.host_batches("probe", False, seed + 7919)
    with flop_counter.FlopCounterMode(display=False) as counter:
        for i in range(steps):
            _step(wl, wl.net, batches, device, pattern, i, stats)
    return float(counter.get_total_flops()), stats.samples


def measure(wl: Workload, pattern: Pattern, info: DeviceInfo, steps: int, warmup: int, seed: int = 0,
            flops_per_sample: float | None = None) -> dict:
    """One result row: samples/s over ``steps`` timed optimizer steps after ``warmup`` steps.

    ``flops_per_sample`` is the model's useful work per sample (``count_flops`` on bucketed
    batches); MFU uses it for both patterns, so padding computed by the reference pattern counts
    as waste, not as useful FLOPs."""
    device = info.device
    wl.net.to(device)
    wl.net.train()
    forward: nn.Module = wl.net
    if pattern.data_parallel:
        forward = nn.DataParallel(forward, device_ids=[device.index] if device.type == "cuda" else None)
    if pattern.compile:   # static shapes: one graph per capacity bucket; compiled code draws from the default RNG
        for module in wl.net.modules():
            if hasattr(module, "use_default_rng"):
                module.use_default_rng = True
        forward = torch.compile(forward, mode=pattern.compile_mode, dynamic=False)
    order = "bucketed" if pattern.bucketed else "random"
    memory = PeakMemory(device)
    warm = _Stats()
    warm_batches = wl.host_batches(order, pattern.pinned, seed + 1)   # another order of the same bank
    first_steps = []      # seconds of each step that met a new shape (with --compile: its compilation)
    for i in range(warmup):
        t0, warm.new_shape = time.perf_counter(), False
        _step(wl, forward, warm_batches, device, pattern, i, warm)
        synchronize(device)
        if warm.new_shape:
            first_steps.append(time.perf_counter() - t0)
    del warm_batches
    # every pattern times the same samples: epoch 0 of the bank in its own order
    source = wl.host_batches(order, pattern.pinned, seed)
    batches = Prefetch(source) if pattern.prefetch else source
    window = LogWindow()
    try:
        synchronize(device)
        memory.reset()
        stats, times = _Stats(warm.shapes), []
        start = time.perf_counter()
        for i in range(steps):
            t0, stats.new_shape = time.perf_counter(), False
            _step(wl, forward, batches, device, pattern, warmup + i, stats, window)
            synchronize(device)
            times.append(time.perf_counter() - t0)
            if stats.new_shape:
                first_steps.append(times[-1])
        elapsed = time.perf_counter() - start
        peak = memory.read()
        if device.type != "meta":
            _check_finite(wl, pattern, window)
    finally:
        if isinstance(batches, Prefetch):
            batches.close()
    rate = stats.samples / elapsed if elapsed > 0 else 0.0
    per_sample = flops_per_sample
    achieved = per_sample * rate if per_sample else None
    mfu = achieved / info.peak_flops if (achieved and info.peak_flops and device.type == "cuda") else None
    return {
        "method": wl.method, "phase": wl.phase, "pattern": pattern.name,
        "samples_per_s": round(rate, 3),
        "step_s_median": round(float(np.median(times)), 6) if times else None,
        "epoch_samples": wl.epoch_samples, "epoch_note": wl.epoch_note,
        "epoch_time_s": round(wl.epoch_samples / rate, 1) if rate > 0 else None,
        "peak_memory_bytes": peak, "memory_at_start_bytes": memory.at_reset, "memory_kind": memory.kind,
        "flops_per_sample": round(per_sample) if per_sample else None,
        "achieved_flops_per_s": round(achieved) if achieved else None,
        "mfu": round(mfu, 5) if mfu is not None else None,
        "batch_size": wl.batch_size, "accumulation": wl.accumulation,
        "timed_steps": steps, "warmup_steps": warmup, "timed_samples": stats.samples, "elapsed_s": round(elapsed, 4),
        "mean_length": round(stats.valid / stats.samples, 2) if stats.samples else None,
        "padding_fraction": round(1.0 - stats.valid / stats.padded, 4) if stats.padded else None,
        "variable_length": wl.variable_length,
        "pattern_settings": asdict(pattern),
        # one compiled graph per shape key; a new key inside the timed steps is counted in samples/s
        "shape_buckets": len(stats.shapes),
        "first_step_s_per_bucket": [round(t, 3) for t in first_steps],
    }


def run_steps(wl: Workload, forward: nn.Module, batches, device: torch.device, pattern: Pattern, start: int,
              count: int) -> None:
    """``count`` optimizer steps of ``wl`` from step index ``start`` (the audit's unit)."""
    stats = _Stats()
    for i in range(count):
        _step(wl, forward, batches, device, pattern, start + i, stats)
