"""Atomic file writes and up-front checks of the output folder.

Everything the runner writes (records, checkpoints, caches, summaries) goes through
``atomic_write_*``: a temp file in the same folder, fsync, then ``os.replace``. A crash leaves
either the old file or the new one, never half of one.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch

from datasets.cache import check_writable_folder, write_bytes_atomic


class OutputError(RuntimeError):
    """The results folder cannot take the run's output (permissions, space)."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    write_bytes_atomic(path, data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_checked(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` atomically, with a sha256 side file so truncation is detected on load."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    data = buffer.getvalue()
    path = atomic_write_bytes(path, data)
    atomic_write_text(str(path) + ".sha256", sha256_bytes(data) + "\n")
    return path


class CorruptFileError(RuntimeError):
    """A checkpoint or cache file does not match its recorded checksum, or holds more than
    tensors and plain containers (a planted pickle); it is refused, never executed."""


def load_checked(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """Load what ``save_checked`` wrote; raise CorruptFileError when the checksum disagrees.

    ``weights_only=True``: a checksum only proves the file is whole, not who wrote it (a shared
    results folder, a downloaded artifact). torch's restricted unpickler admits tensors and plain
    containers, so a pickle naming any callable is refused before anything runs."""
    path = Path(path)
    side = Path(str(path) + ".sha256")
    data = path.read_bytes()
    if not side.exists():
        raise CorruptFileError(f"{path}: no checksum file {side.name}; the write did not finish")
    expected = side.read_text().strip()
    if sha256_bytes(data) != expected:
        raise CorruptFileError(f"{path}: checksum mismatch (truncated or corrupted file)")
    try:
        with warnings.catch_warnings():  # a foreign pickle protocol warns before it is refused
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError, ...
        named = re.search(r"GLOBAL (\S+)", str(err))
        unsupported = re.search(r"Unsupported [^.\n]*", str(err))
        why = (f"it names {named.group(1)}, which is not plain data" if named else
               unsupported.group(0) if unsupported else f"{type(err).__name__}: not a torch checkpoint")
        raise CorruptFileError(f"{path}: refused, not a plain tensor checkpoint ({why}); "
                               "delete it or run with --fresh") from None


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
