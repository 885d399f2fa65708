"""The one place that decides a run's numeric precision (``--precision {fp32,tf32,bf16}``).

``autocast`` is the only context the engine, the tasks and ``benchmarks.perf`` wrap their
forward passes in; float32 islands inside the methods (``datasets.precision``) keep
coordinates, streams, targets and losses in float32 whatever is chosen here.

- ``fp32``: no autocast, TF32 off.
- ``tf32``: no autocast; on CUDA the matmul / cuDNN TF32 flags are on (10-bit mantissa in the
  tensor cores, float32 storage). CPU has no TF32: it runs as fp32 (``configure`` says so).
- ``bf16``: ``torch.autocast(device, bfloat16)`` on CUDA and CPU (the same casting rules), so
  CPU runs exercise the GPU numerics.

The CUDA default is per method (``CUDA_DEFAULTS``), chosen from the measurement in docs/perf.md
(``benchmarks/perf/precision_study.py``): the fastest precision whose numbers stayed within
fp32's seed-to-seed spread. Hi-TRS: bf16. MCC and CrosSCLR: several of their numbers left the
spread in bf16, and tf32 cannot be measured on CPU, so fp32. CPU defaults to fp32 (CPU bf16 is
an emulation check, not a speed-up on most hosts).
"""
from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("fp32", "tf32", "bf16")
#: measured in docs/perf.md: per method, the fastest precision within fp32's seed-to-seed spread
CUDA_DEFAULTS = {"hitrs": "bf16"}
CUDA_FALLBACK = "fp32"     # methods without a measurement showing that a faster precision is safe
CPU_DEFAULT = "fp32"
DEFAULT_HELP = ("default: per method on CUDA (" + ", ".join(f"{m} {p}" for m, p in CUDA_DEFAULTS.items())
                + f", others {CUDA_FALLBACK}; measured in docs/perf.md), fp32 on CPU")


def default_precision(device: torch.device | str, method: str | None = None) -> str:
    if torch.device(device).type != "cuda":
        return CPU_DEFAULT
    return CUDA_DEFAULTS.get(method, CUDA_FALLBACK)


def resolve(choice: str | None, device: torch.device | str, method: str | None = None) -> str:
    """``choice`` or the default of ``method`` on ``device``; a value outside PRECISIONS is a ValueError."""
    if choice is None:
        return default_precision(device, method)
    if choice not in PRECISIONS:
        raise ValueError(f"--precision {choice}: unknown precision; choose from {', '.join(PRECISIONS)}")
    return choice


def configure(precision: str, device: torch.device | str) -> str | None:
    """Set the process-wide TF32 flags for ``precision``; returns a note to print, if any."""
    device = torch.device(device)
    precision = resolve(precision, device)
    if device.type == "cuda":
        tf32 = precision == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        disable_cudnn_attention()
        return None
    if precision == "tf32":
        return "--precision tf32 on CPU: CPUs have no TF32, running in fp32"
    return None


def disable_cudnn_attention() -> None:
    """Keep ``F.scaled_dot_product_attention`` off the cuDNN backend (flash / memory-efficient
    kernels serve instead). Measured on an H200 (torch 2.11, docs/perf.md): in bf16, SDPA picked
    cuDNN, which builds a plan for every new shape; Hi-TRS attention batches change shape every
    step (valid frames and clips), so each call cost 16-19 ms of host time and paper pre-training
    ran at 242 samples/s in bf16 against 487 in fp32. fp32 never reaches cuDNN attention."""
    enable = getattr(torch.backends.cuda, "enable_cudnn_sdp", None)   # torch >= 2.4
    if enable is not None:
        enable(False)


def autocast(device: torch.device | str, precision: str | None = None):
    """The autocast context of ``precision`` on ``device`` (a no-op for fp32 / tf32)."""
    device = torch.device(device)
    if resolve(precision, device) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
