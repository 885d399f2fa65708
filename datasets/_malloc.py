"""glibc malloc tuning for the suite's own bulk-conversion processes.

Why: the vectorised readers create temporaries of a few hundred KiB per file. With glibc's
defaults the freed memory goes back to the kernel (trim / munmap) and every next file touches
fresh pages again; in page-fault-expensive VMs that made reading ~1.4x slower (measured in
docs/data.md). ``tune_malloc()`` keeps freed memory in the process. It changes process-wide
behaviour, so only processes the suite owns call it: ``python -m datasets prepare`` and its
reader workers, never a library call inside a user's process.
"""
from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune_malloc() -> bool:
    """Raise glibc's trim and mmap thresholds (1 GiB / 32 MiB). False where not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(_M_TRIM_THRESHOLD, 1 << 30))
