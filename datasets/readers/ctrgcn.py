"""CTR-GCN-style NTU archives: ``NTU60_CS.npz`` / ``NTU60_CV.npz`` / ``NTU120_CSub.npz`` / ``NTU120_CSet.npz``.

Who writes them: ``data/ntu/seq_transformation.py`` and ``data/ntu120/seq_transformation.py`` of
CTR-GCN (Uason-Chen/CTR-GCN, read at e13d758), copied by MAMP, STARS and many others, after the
"denoised" pipeline ``get_raw_skes_data.py`` / ``get_raw_denoised_data.py``. Layout (``np.savez``,
uncompressed): ``x_train`` / ``x_test`` float32 (N, T, 150) with T = the longest sample (300 on
the full datasets), ``y_train`` / ``y_test`` float64 one-hot (N, 60 | 120). The 150 values of a
frame are body 0's 25 joints x (x, y, z), then body 1's: ``x.reshape(N, T, 2, 25, 3)`` is our
(T, M, V, C) layout directly (CTR-GCN's feeder does the same reshape before its transpose).

What the values are (facts from that script, documented in docs/data.md):

- the denoised bodies (at most two "actors", chosen by length / spread / motion), frames in which
  no actor was found removed; each sequence translated so that joint 2 (middle of the spine) of
  actor 1 in its first non-empty frame is the origin; metres, not rotated or scaled;
- padding: zero frames after the sample's own length (``align_frames``); so the valid length is
  up to the last frame holding any non-zero value;
- a one-person sample has body 1 all zero in NTU-60's script, but a COPY of body 0 in NTU-120's
  (``np.hstack((ske_joints, ske_joints))``); the reader treats a body 1 equal to body 0 in every
  frame as that copy and reports one body;
- no sample names and no lengths are stored; the order is CTR-GCN's ``get_indices`` (grouped by
  performer / camera / setup, in its id-list order), the split is the file's (train / test).

Loading is data-only: the members are memory-mapped where they are stored uncompressed (as
``np.savez`` writes them) and read with ``np.load(..., allow_pickle=False)`` otherwise.
"""
from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib import format as npformat

from ..errors import SkeletonFormatError

NUM_BODIES, NUM_JOINTS, NUM_COORDS = 2, 25, 3
FRAME_VALUES = NUM_BODIES * NUM_JOINTS * NUM_COORDS   # 150
MEMBERS = ("x_train", "y_train", "x_test", "y_test")
# file stem -> (dataset, our split name); CTR-GCN's names and the lower-case spellings others use
BENCHMARKS = {"ntu60_cs": ("ntu60", "xsub"), "ntu60_cv": ("ntu60", "xview"),
              "ntu120_csub": ("ntu120", "xsub"), "ntu120_cset": ("ntu120", "xset")}
ZIP_MAGIC = b"PK\x03\x04"


def benchmark_of(path) -> tuple[str, str] | None:
    """(dataset, split) from a CTR-GCN file name (``NTU60_CS.npz`` -> ("ntu60", "xsub")), or None."""
    stem = re.sub(r"[^a-z0-9]+", "_", Path(path).stem.lower()).strip("_")
    return BENCHMARKS.get(stem)


def _fail(path: Path, problem: str, hint: str = "") -> SkeletonFormatError:
    return SkeletonFormatError(path, None, problem, hint or "expected a CTR-GCN-style archive (NTU60_CS.npz ...: "
                               "x_train (N, T, 150), one-hot y_train, x_test, y_test) from seq_transformation.py")


def _member(path: Path, zf: zipfile.ZipFile, name: str) -> np.ndarray:
    """The ``name.npy`` member: memory-mapped where stored uncompressed, else loaded (no pickles)."""
    info = zf.getinfo(f"{name}.npy")
    if info.compress_type == zipfile.ZIP_STORED:
        with open(path, "rb") as fh:
            fh.seek(info.header_offset)
            local = fh.read(30)
            if local[:4] != ZIP_MAGIC:
                raise _fail(path, f"member {name}.npy: damaged zip header")
            start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + \
                int.from_bytes(local[28:30], "little")
            fh.seek(start)
            try:
                version = npformat.read_magic(fh)
                read_header = npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
                shape, fortran, dtype = read_header(fh)   # the header only: a literal dict, never a pickle
            except ValueError as err:
                raise _fail(path, f"member {name}.npy: not a .npy array ({err})") from None
            if dtype.hasobject:
                raise _fail(path, f"member {name}.npy holds Python objects", "only plain numeric arrays are read")
            offset = fh.tell()
        count = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if offset + count > start + info.file_size or info.file_size != info.compress_size:
            raise _fail(path, f"member {name}.npy is truncated", "the archive is damaged; write it again")
        if count == 0:
            return np.zeros(shape, dtype=dtype)
        return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")
    with zf.open(info) as fh:
        try:
            return np.load(fh, allow_pickle=False)
        except ValueError as err:
            raise _fail(path, f"member {name}.npy: not a plain .npy array ({err})") from None


@dataclass
class CtrgcnArrays:
    """The two parts of one CTR-GCN archive, in the file's order."""

    path: Path
    x: dict[str, np.ndarray]        # "train" / "test" -> (N, T, 150), memory-mapped where possible
    labels: dict[str, np.ndarray]   # "train" / "test" -> int64 (N,) 0-based
    num_classes: int

    def __len__(self) -> int:
        return sum(len(v) for v in self.labels.values())

    def sample(self, part: str, i: int) -> np.ndarray:
        """float32 (T, 2, 25, 3) of sample ``i`` of ``part``, padding included."""
        frames = np.array(self.x[part][i], dtype=np.float32)   # a writable copy
        return frames.reshape(len(frames), NUM_BODIES, NUM_JOINTS, NUM_COORDS)


def valid_length(x: np.ndarray) -> int:
    """Frames up to the last one with any non-zero value (trailing all-zero frames are padding)."""
    nz = np.flatnonzero(np.any(x.reshape(len(x), -1) != 0, axis=1))
    return int(nz[-1]) + 1 if len(nz) else 0


def undo_copied_body(x: np.ndarray) -> tuple[np.ndarray, bool]:
    """NTU-120's script writes a one-person sample's body into both slots: zero the copy.
    Returns (x, whether a copy was removed); ``x`` (T, 2, 25, 3) is changed in place."""
    if np.any(x[:, 1] != 0) and np.array_equal(x[:, 0], x[:, 1]):
        x[:, 1] = 0
        return x, True
    return x, False


def _labels(path: Path, y: np.ndarray, name: str, n: int) -> np.ndarray:
    if y.ndim != 2 or y.shape[0] != n or y.shape[1] not in (60, 120):
        raise _fail(path, f"{name} has shape {y.shape}, expected one-hot ({n}, 60 | 120)")
    y = np.asarray(y)
    ones = (y == 1).sum(axis=1)
    if not (np.isin(y, (0, 1)).all() and (ones == 1).all()):
        row = int(np.flatnonzero(~np.isin(y, (0, 1)).all(axis=1) | (ones != 1))[0])
        raise _fail(path, f"{name} row {row} is not one-hot (a single 1, zeros elsewhere)")
    return np.argmax(y, axis=1).astype(np.int64)


def read_ctrgcn_npz(path) -> CtrgcnArrays:
    """Open and check a CTR-GCN archive; every structural problem is one ``SkeletonFormatError``."""
    path = Path(path)
    if not path.is_file():
        raise SkeletonFormatError(path, None, "no such file", "pass NTU60_CS.npz (or a folder holding it) as --raw")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise _fail(path, f"not a readable .npz archive ({err})") from None
    with zf:
        found = {n[:-4] for n in zf.namelist() if n.endswith(".npy")}
        lacking = [m for m in MEMBERS if m not in found]
        if lacking:
            raise _fail(path, f"no {', '.join(lacking)} in the archive (it holds {', '.join(sorted(found)) or 'nothing'})")
        arrays = {m: _member(path, zf, m) for m in MEMBERS}
    x, labels, classes = {}, {}, set()
    for part in ("train", "test"):
        xs = arrays[f"x_{part}"]
        if xs.ndim != 3 or xs.shape[2] != FRAME_VALUES or xs.shape[1] < 1:
            raise _fail(path, f"x_{part} has shape {xs.shape}, expected (N, T, {FRAME_VALUES}) = 2 bodies x 25 joints "
                        "x 3 coordinates per frame")
        if xs.dtype.kind != "f":
            raise _fail(path, f"x_{part} has dtype {xs.dtype}, expected floating point")
        labels[part] = _labels(path, arrays[f"y_{part}"], f"y_{part}", xs.shape[0])
        classes.add(arrays[f"y_{part}"].shape[1])
        x[part] = xs
    if len(classes) != 1:
        raise _fail(path, f"y_train and y_test have different class counts ({sorted(classes)})")
    if not len(labels["train"]) + len(labels["test"]):
        raise _fail(path, "the archive holds no samples")
    return CtrgcnArrays(path, x, labels, classes.pop())
