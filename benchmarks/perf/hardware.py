"""What machine a measurement ran on, its peak FLOP/s, and peak-memory probes.

Results carry the device name so that runs on different machines are never compared as if
alike; the peak table turns measured FLOP/s into MFU on CUDA (dense bf16 tensor-core peaks from
NVIDIA's datasheets).
"""
from __future__ import annotations

import ctypes
import gc
import os
import platform
import re
import resource
from dataclasses import dataclass

import torch

# dense (no sparsity) bf16 tensor-core peak FLOP/s; the first matching substring wins
PEAK_BF16_FLOPS: tuple[tuple[str, float, str], ...] = (
    ("H100 PCIE", 756e12, "H100 PCIe dense bf16 756 TFLOP/s"),
    ("H100", 989e12, "H100 SXM dense bf16 989 TFLOP/s"),
    ("H200", 989e12, "H200 dense bf16 989 TFLOP/s"),
    ("A100", 312e12, "A100 dense bf16 312 TFLOP/s"),
)


@dataclass(frozen=True)
class DeviceInfo:
    device: torch.device
    name: str          # "NVIDIA H100 80GB HBM3" / "CPU: AMD EPYC"
    slug: str          # file-name form: "nvidia-h100-80gb-hbm3" / "cpu-amd-epyc"
    peak_flops: float | None
    peak_source: str


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def peak_for(name: str) -> tuple[float | None, str]:
    upper = name.upper()
    for key, flops, source in PEAK_BF16_FLOPS:
        if key in upper:
            return flops, source
    return None, f"no peak figure for {name!r}; pass --peak-tflops to get MFU"


def resolve(device: str, peak_tflops: float | None = None) -> DeviceInfo:
    """``device`` is "cpu", "meta", "cuda" or "cuda:N"; a CUDA request without CUDA is an error."""
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise SystemExit(f"--device {device}: expected cpu, meta or cuda[:N]") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit(f"--device {device}: CUDA is not available on this machine (torch {torch.__version__}); "
                             "use --device cpu")
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        dev = torch.device("cuda", index)
        name = torch.cuda.get_device_name(index)
        peak, source = peak_for(name)
    elif dev.type == "cpu":
        name = f"CPU: {_cpu_model()}"
        peak, source = None, "MFU is reported on CUDA only"
    elif dev.type == "meta":
        name = "meta"
        peak, source = None, ("meta device: tensors without data; a step that completes never read device data "
                              "on the host (samples/s is host dispatch time only)")
    else:
        raise SystemExit(f"--device {device}: expected cpu, meta or cuda[:N]")
    if peak_tflops is not None:
        peak, source = peak_tflops * 1e12, f"--peak-tflops {peak_tflops:g}"
    return DeviceInfo(dev, name, slugify(name), peak, source)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PeakMemory:
    """Peak memory of the code between ``reset()`` and ``read()``.

    CUDA: ``torch.cuda.max_memory_allocated`` (tensors only, not the caching allocator's
    reserve). CPU: the process's peak RSS (``resource.getrusage``), reset through
    ``/proc/self/clear_refs`` where Linux allows it; otherwise it is the process lifetime peak
    (``kind`` says which). CPU figures include the interpreter and torch (~0.3-0.5 GB);
    ``at_reset`` (resident / allocated bytes when the peak was reset) gives the floor."""

    def __init__(self, device: torch.device):
        self.device = device
        self.kind = "cuda_max_memory_allocated" if device.type == "cuda" else "cpu_peak_rss"
        self.at_reset: int | None = None   # allocated (CUDA) / resident (CPU) bytes when reset

    def reset(self) -> None:
        """Start a new peak; on CPU also hands freed heap back (``malloc_trim``) so that the
        previous measurement's allocations do not set this one's floor."""
        gc.collect()
        if self.device.type == "meta":
            return
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.at_reset = int(torch.cuda.memory_allocated(self.device))
            return
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            self.kind = "cpu_peak_rss"
        except OSError:
            self.kind = "cpu_peak_rss_process_lifetime"
        self.at_reset = _current_rss()

    def read(self) -> int | None:
        if self.device.type == "meta":
            return None
        if self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device))
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024   # Linux: KiB


def _current_rss() -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def host_info() -> dict:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {"cpu": _cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "load_average_1_5_15": [round(v, 2) for v in load], "python": platform.python_version(),
            "platform": platform.platform()}
