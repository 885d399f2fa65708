"""Up-front checks of the output folder: fail before any training, not after it.

Every place a run writes under ``--out`` (records, artifacts, subsets, report, summary, the
pre-training folders and their locks) is checked here, before the first step is trained: a
folder where one is written must be absent or a writable directory that stays under ``--out``
once symlinks are resolved; a file must not be a folder, a FIFO or a link out
(``plumbing.files.check_output_paths``). The writers verify their paths again when they write
(``plumbing.files.path_under``).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterable

from plumbing.files import check_output_paths, check_writable_folder

FOLDERS = ("records", "artifacts", "subsets", "pretrain")
FILES = ("summary.csv",)
LOCKS = (".summary.lock",)
# what a pre-training writes in pretrain/<id>/ (benchmarks/engine/pretrain.py, benchmarks/run.py)
PRETRAIN_FILES = ("encoder.pt", "encoder.pt.sha256", "state.pt", "state.pt.sha256", "state.prev.pt",
                  "state.prev.pt.sha256", "pretrain.log", "meta.json", "config.json")


class OutputError(RuntimeError):
    """The results folder cannot take the run's output (permissions, space, a file or a link
    where a folder is written)."""


def check_output_dir(path: str | os.PathLike, min_free_bytes: int = 200 * 2**20,
                     pretrain_ids: Iterable[str] = (), report: bool = True) -> Path:
    """Fail before any training when ``path`` or any output location under it cannot take the
    run's files, or the disk is nearly full."""
    path = Path(path)
    pretrain_ids = list(pretrain_ids)
    folders = [*FOLDERS, *(["report"] if report else []), *(f"pretrain/{pid}" for pid in pretrain_ids)]
    files = [*FILES, *(f"pretrain/{pid}/{name}" for pid in pretrain_ids for name in PRETRAIN_FILES)]
    locks = [*LOCKS, *(f"pretrain/.{pid}.lock" for pid in pretrain_ids)]
    try:
        check_writable_folder(path, "--out")
        check_output_paths(path, folders, files, "--out", locks)
    except ValueError as err:
        raise OutputError(str(err)) from None
    free = shutil.disk_usage(path).free
    if free < min_free_bytes:
        raise OutputError(f"--out {path}: only {free / 2**20:.0f} MiB free, need at least "
                          f"{min_free_bytes / 2**20:.0f} MiB; free space or choose another --out")
    return path


def one_line(err: BaseException | str) -> str:
    """An error as one line (pandas and OS errors can span several)."""
    return " ".join(str(err).split())
