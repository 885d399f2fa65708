"""Up-front checks of the output folder: fail before any training, not after it."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


class OutputError(RuntimeError):
    """The results folder cannot take the run's output (permissions, space)."""


def check_output_dir(path: str | os.PathLike, min_free_bytes: int = 200 * 2**20) -> Path:
    """Fail before any training when ``path`` is not writable or nearly full."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".write-probe-", delete=True)
        probe.write(b"x")
        probe.flush()
        probe.close()
    except OSError as err:
        raise OutputError(f"--out {path}: cannot write there ({err.strerror}); "
                          "choose a writable folder with --out") from None
    free = shutil.disk_usage(path).free
    if free < min_free_bytes:
        raise OutputError(f"--out {path}: only {free / 2**20:.0f} MiB free, need at least "
                          f"{min_free_bytes / 2**20:.0f} MiB; free space or choose another --out")
    return path
