"""Up-front checks of the output folder: fail before any training, not after it."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from plumbing.files import check_writable_folder


class OutputError(RuntimeError):
    """The results folder cannot take the run's output (permissions, space)."""


def check_output_dir(path: str | os.PathLike, min_free_bytes: int = 200 * 2**20) -> Path:
    """Fail before any training when ``path`` is not writable or nearly full."""
    path = Path(path)
    try:
        check_writable_folder(path, "--out")
    except ValueError as err:
        raise OutputError(str(err)) from None
    free = shutil.disk_usage(path).free
    if free < min_free_bytes:
        raise OutputError(f"--out {path}: only {free / 2**20:.0f} MiB free, need at least "
                          f"{min_free_bytes / 2**20:.0f} MiB; free space or choose another --out")
    return path
