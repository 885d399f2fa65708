"""Readers for preprocessed arrays other tools write (data.md "Preprocessed tensors").

- ST-GCN / CrosSCLR / AimCLR: ``{train,val}_data.npy`` float32 (N, 3, 300, 25, 2) + 
  ``{train,val}_label.pkl`` = pickle of (sample_names, labels), 0-based labels.
- CrosSCLR / AimCLR "frame50": ``{train,val}_position.npy`` (N, 3, 50, 25, 2) + the same label
  pickle (or CrosSCLR's ``{part}_label.npy`` of shape (N, 1)).
- Hi-TRS: ``{split}_data.npy`` + ``{split}_label.npy`` + ``{split}_video_info.json``
  (``frame_num`` and the body count, spelled ``boby_num`` by the reference).

Arrays are memory-mapped; ``sample(i)`` returns our layout (T, M, V, C). Label pickles are
read with a restricted unpickler (``safe_pickle``): plain containers and arrays only, never code.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SkeletonFormatError
from .safe_pickle import PickleFormatError, UnsafePickleError, load_restricted


@dataclass
class ArrayDataset:
    """An (N, C, T, V, M) array with names, 0-based labels and (when known) frame counts."""

    data: np.ndarray
    names: list[str]
    labels: np.ndarray
    lengths: np.ndarray | None = None
    source: str = ""

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def sample(self, i: int) -> np.ndarray:
        """float32 (T, M, V, C) copy of sample ``i`` (trimmed to its length when known)."""
        x = np.ascontiguousarray(np.asarray(self.data[i], dtype=np.float32).transpose(1, 3, 2, 0))
        if self.lengths is not None:
            x = x[: int(self.lengths[i])]
        return x

    def valid_length(self, i: int) -> int:
        """Frames up to the last one with any non-zero value."""
        nz = np.flatnonzero(np.abs(np.asarray(self.data[i])).sum(axis=(0, 2, 3)) > 0)
        return int(nz[-1]) + 1 if len(nz) else 0


def _load_array(path, frames: int | None) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise SkeletonFormatError(p, None, "array file not found", "check the path")
    try:
        arr = np.load(p, mmap_mode="r")
    except (ValueError, OSError) as err:
        raise SkeletonFormatError(p, None, f"not a readable .npy array ({err})") from None
    if arr.ndim != 5 or arr.shape[1] != 3 or arr.shape[3] != 25:
        raise SkeletonFormatError(p, None, f"expected shape (N, 3, T, 25, M), found {arr.shape}")
    if frames is not None and arr.shape[2] != frames:
        raise SkeletonFormatError(p, None, f"expected {frames} frames per sample, found {arr.shape[2]}")
    return arr


def _load_labels(path, n: int) -> tuple[list[str], np.ndarray]:
    p = Path(path)
    if not p.is_file():
        raise SkeletonFormatError(p, None, "label file not found", "check the path")
    if p.suffix == ".npy":
        labels = np.load(p).reshape(-1).astype(np.int64)
        names = [f"{i:06d}" for i in range(len(labels))]
    else:
        try:
            obj = load_restricted(p)
        except UnsafePickleError as err:
            raise SkeletonFormatError(p, None, err.problem, "labels must be a plain (names, labels) pickle") from None
        except PickleFormatError as err:
            raise SkeletonFormatError(p, None, f"label file: {err.problem}") from None
        if not (isinstance(obj, (tuple, list)) and len(obj) == 2):
            raise SkeletonFormatError(p, None, "expected a pickled (sample_names, labels) pair")
        names = [str(s) for s in obj[0]]
        labels = np.asarray(obj[1]).reshape(-1).astype(np.int64)
        if len(names) != len(labels):
            raise SkeletonFormatError(p, None, f"{len(names)} names but {len(labels)} labels")
    if len(labels) != n:
        raise SkeletonFormatError(p, None, f"{len(labels)} labels for {n} samples in the data array")
    return names, labels


def read_stgcn_arrays(data_path, label_path) -> ArrayDataset:
    """ST-GCN / CrosSCLR ``*_data.npy`` (N, 3, 300, 25, 2) + ``*_label.pkl``."""
    data = _load_array(data_path, None)
    names, labels = _load_labels(label_path, data.shape[0])
    return ArrayDataset(data, names, labels, None, str(data_path))


def read_frame50_arrays(position_path, label_path) -> ArrayDataset:
    """CrosSCLR / AimCLR frame50 ``*_position.npy`` (N, 3, 50, 25, 2) + labels (.pkl or .npy)."""
    data = _load_array(position_path, 50)
    names, labels = _load_labels(label_path, data.shape[0])
    return ArrayDataset(data, names, labels, np.full(data.shape[0], 50, dtype=np.int64), str(position_path))


def read_hitrs_arrays(data_path, label_path, info_path) -> ArrayDataset:
    """Hi-TRS ``{split}_data.npy`` + ``{split}_label.npy`` + ``{split}_video_info.json``."""
    data = _load_array(data_path, None)
    names, labels = _load_labels(label_path, data.shape[0])
    p = Path(info_path)
    try:
        info = json.loads(p.read_text())
    except (OSError, ValueError) as err:
        raise SkeletonFormatError(p, None, f"not a readable video-info JSON ({err})") from None
    if len(info) != data.shape[0]:
        raise SkeletonFormatError(p, None, f"{len(info)} entries for {data.shape[0]} samples")
    lengths = np.asarray([int(e["frame_num"]) for e in info], dtype=np.int64)
    return ArrayDataset(data, names, labels, lengths, str(data_path))
