"""Which NTU format ``--raw`` holds, decided by the files' CONTENT (magic bytes, array headers,
archive members), file names only where the content cannot tell (which benchmark a name-less
array holds). ``detect_ntu_source(raw)`` returns a ``Detected``; anything else is one
``SkeletonFormatError`` line naming the file, what was found and the formats accepted.

Formats (docs/data.md "Sources prepare accepts"):

- ``skeleton``: a folder with NTU ``.skeleton`` text files at any depth;
- ``pickle``: PYSKL's ``ntu60_3danno.pkl`` or MMAction2's ``ntu60_3d.pkl`` (readers/pyskl.py tells
  them apart);
- ``ctrgcn``: CTR-GCN's ``NTU60_CS.npz`` ... (a zip archive with x_train / y_train / x_test /
  y_test), or a folder holding several of them;
- ``stgcn``: st-gcn / CrosSCLR / AimCLR ``{train,val}_data.npy`` + ``{train,val}_label.pkl``;
- ``frame50``: CrosSCLR / AimCLR ``{train,val}_position.npy`` (50 frames) + labels (.pkl or .npy);
- ``hitrs``: Hi-TRS ``{train,val}_data.npy`` + ``{train,val}_label.npy`` + ``{train,val}_video_info.json``.

The array formats are one folder per benchmark (``xsub/``, ``xview/``, ``xset/``, as their tools
write them) or the files of one benchmark directly in ``--raw``.
"""
from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.lib import format as npformat

from ..errors import SkeletonFormatError

ACCEPTED = ("accepted: a folder of NTU .skeleton files; PYSKL's ntu60_3danno.pkl or MMAction2's ntu60_3d.pkl; "
            "CTR-GCN's NTU60_CS.npz / NTU60_CV.npz / NTU120_CSub.npz / NTU120_CSet.npz (or their folder); "
            "a folder (or its xsub/ xview/ xset/ subfolders) with st-gcn / CrosSCLR {train,val}_data.npy + "
            "{train,val}_label.pkl, CrosSCLR frame50 {train,val}_position.npy + labels, or Hi-TRS "
            "{train,val}_data.npy + _label.npy + _video_info.json (docs/data.md)")
PART_NAMES = {"train": "train", "val": "test", "test": "test"}
# folder names -> our split names (st-gcn / Hi-TRS / MMAction2 / CTR-GCN spellings)
BENCHMARK_DIRS = {"xsub": "xsub", "cs": "xsub", "csub": "xsub", "cross_subject": "xsub", "crosssubject": "xsub",
                  "xview": "xview", "cv": "xview", "cross_view": "xview", "crossview": "xview",
                  "xset": "xset", "xsetup": "xset", "cset": "xset", "csetup": "xset", "cross_setup": "xset",
                  "crosssetup": "xset"}
ZIP_MAGIC, NPY_MAGIC = b"PK\x03\x04", b"\x93NUMPY"


@dataclass
class ArrayFiles:
    """One part (train / test) of one benchmark of an array format."""

    benchmark: str | None    # xsub / xview / xset, or None where the folder name does not say
    part: str                # train / test
    data: Path
    labels: Path
    info: Path | None = None  # Hi-TRS video_info.json


@dataclass
class Detected:
    format: str                      # skeleton | pickle | ctrgcn | stgcn | frame50 | hitrs
    path: Path                       # the --raw given
    files: list = field(default_factory=list)   # ArrayFiles (array formats) / npz paths (ctrgcn)


def sniff(path: Path) -> str:
    """'zip' | 'npy' | 'pickle' | 'text' | 'empty' | 'binary' from a file's first bytes."""
    with open(path, "rb") as fh:
        head = fh.read(64)
    if not head:
        return "empty"
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if head.startswith(NPY_MAGIC):
        return "npy"
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return "pickle"
    if b"\x00" in head:
        return "binary"
    try:
        head.decode("ascii")
        return "text"
    except UnicodeDecodeError:
        return "binary"


def npy_shape(path: Path) -> tuple | None:
    """The shape in a .npy header (read without loading the array or any pickle), or None."""
    try:
        with open(path, "rb") as fh:
            version = npformat.read_magic(fh)
            read = npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
            shape, _, dtype = read(fh)
    except (OSError, ValueError):
        return None
    return None if dtype.hasobject else tuple(shape)


def npz_members(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as zf:
            return sorted(n[:-4] for n in zf.namelist() if n.endswith(".npy"))
    except (zipfile.BadZipFile, OSError):
        return []


def _refuse(path: Path, found: str) -> SkeletonFormatError:
    return SkeletonFormatError(path, None, f"not an NTU source this suite prepares: {found}", ACCEPTED)


def _benchmark_of_dir(folder: Path) -> str | None:
    key = re.sub(r"[^a-z0-9]+", "_", folder.name.lower()).strip("_")
    return BENCHMARK_DIRS.get(key)


def _array_parts(folder: Path) -> tuple[str | None, list[ArrayFiles], list[str]]:
    """(format, parts, problems) of the array files directly in ``folder``, judged by content."""
    parts, kinds, problems = [], set(), []
    bench = _benchmark_of_dir(folder)
    for prefix, part in PART_NAMES.items():
        data, pos = folder / f"{prefix}_data.npy", folder / f"{prefix}_position.npy"
        pkl, npy, info = folder / f"{prefix}_label.pkl", folder / f"{prefix}_label.npy", \
            folder / f"{prefix}_video_info.json"
        for arr, frame50 in ((data, False), (pos, True)):
            if not arr.is_file():
                continue
            shape = npy_shape(arr) if sniff(arr) == "npy" else None
            if shape is None or len(shape) != 5 or shape[1] != 3 or shape[3] != 25:
                problems.append(f"{arr.name} is {'an array of shape ' + str(shape) if shape else 'not a .npy array'}"
                                ", not (N, 3, T, 25, M)")
                continue
            lab, kind = None, None
            if frame50:
                if shape[2] != 50:
                    problems.append(f"{arr.name} has {shape[2]} frames, but CrosSCLR's frame50 arrays have 50")
                    continue
                lab = pkl if pkl.is_file() else npy if npy.is_file() else None
                kind = "frame50"
            elif info.is_file() and npy.is_file():
                lab, kind = npy, "hitrs"
            elif pkl.is_file() and sniff(pkl) == "pickle":
                lab, kind = pkl, "stgcn"
            if lab is None:
                problems.append(f"{arr.name} has no companion {prefix}_label.pkl (st-gcn / CrosSCLR), "
                                f"{prefix}_label.npy (frame50) or {prefix}_label.npy + {prefix}_video_info.json "
                                "(Hi-TRS)")
                continue
            kinds.add(kind)
            parts.append(ArrayFiles(bench, part, arr, lab, info if kind == "hitrs" else None))
    if len(kinds) > 1:
        problems.append(f"{folder} mixes {' and '.join(sorted(kinds))} arrays; keep one format per folder")
        return None, [], problems
    return (kinds.pop() if kinds else None), parts, problems


def detect_ntu_source(raw) -> Detected:
    """Decide the format of ``--raw`` before any work (see the module docstring)."""
    raw = Path(raw)
    if not raw.exists():
        raise SkeletonFormatError(raw, None, "no such folder or file", ACCEPTED)
    if raw.is_file():
        return _detect_file(raw)
    if not raw.is_dir():
        raise _refuse(raw, "neither a regular file nor a folder")
    found, problems = [], []
    fmt, parts, probs = _array_parts(raw)
    problems += probs
    if fmt is None:   # one folder per benchmark, as the tools write them
        subs = sorted(p for p in raw.iterdir() if p.is_dir() and _benchmark_of_dir(p))
        kinds = {}
        for sub in subs:
            f, ps, probs = _array_parts(sub)
            problems += probs
            if f:
                kinds.setdefault(f, []).extend(ps)
        if len(kinds) > 1:
            raise _refuse(raw, f"benchmark folders of different formats ({', '.join(sorted(kinds))})")
        if kinds:
            fmt, parts = next(iter(kinds.items()))
    if fmt:
        found.append(Detected(fmt, raw, parts))
    npz = sorted(p for p in raw.iterdir() if p.is_file() and sniff(p) == "zip"
                 and {"x_train", "y_train", "x_test", "y_test"} <= set(npz_members(p)))
    if npz:
        found.append(Detected("ctrgcn", raw, npz))
    first_skeleton = next(iter(raw.rglob("*.skeleton")), None)
    if first_skeleton is not None:
        found.append(Detected("skeleton", raw))
    if len(found) > 1:
        raise _refuse(raw, "more than one source format in one folder ("
                      + ", ".join(d.format for d in found) + "); pass the folder of one of them")
    if found:
        return found[0]
    listing = sorted(p.name for p in raw.iterdir())
    shown = ", ".join(listing[:6]) + (f", ... ({len(listing)} entries)" if len(listing) > 6 else "")
    what = "; ".join(problems) if problems else (f"a folder holding {shown}" if listing else "an empty folder")
    raise _refuse(raw, what)


def _detect_file(raw: Path) -> Detected:
    kind = sniff(raw)
    if kind == "zip":
        members = npz_members(raw)
        if {"x_train", "y_train", "x_test", "y_test"} <= set(members):
            return Detected("ctrgcn", raw, [raw])
        raise _refuse(raw, f"a zip / .npz archive holding {', '.join(members) or 'no .npy arrays'}, not CTR-GCN's "
                      "x_train / y_train / x_test / y_test")
    if kind == "pickle":
        if re.fullmatch(r"(train|val|test)_label\.pkl", raw.name):
            raise _refuse(raw, "an st-gcn / CrosSCLR label pickle alone; pass the folder holding it and its "
                          "*_data.npy")
        return Detected("pickle", raw, [raw])
    if kind == "npy":
        shape = npy_shape(raw)
        raise _refuse(raw, f"a single .npy array of shape {shape}; pass the folder holding it with its label file(s)")
    if raw.suffix == ".skeleton" or kind == "text":
        what = "a single .skeleton text file" if raw.suffix == ".skeleton" else "a text file"
        raise _refuse(raw, f"{what}; pass the folder of .skeleton files")
    raise _refuse(raw, f"a {kind} file")
