"""PKU-MMD Part I readers: skeleton files, label files, the cross-subject split file, names.

Formats (data.md, PKU-MMD README):
- skeleton ``XXXX-V.txt``: one line per frame, 150 numbers = 2 persons x 25 joints x (x, y, z),
  zeros for an absent second person; lines may start with a blank.
- labels ``XXXX-V.txt``: lines ``label,start,end,confidence``; label 1..51, confidence 1/2.
  Frames ``start..end-1`` carry the label (the suite's convention: end exclusive).
- split file: ``Training videos:`` / list / ``Validataion videos:`` (sic) / list.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import SkeletonFormatError
from ._text import checked_float32, parse_numbers, read_bytes as _read_bytes, scan

PKU_VALUES_PER_FRAME = 150
PKU_NAME_RE = re.compile(r"([0-9]{4})-([LMR])")   # ASCII digits, whole string (fullmatch)
PKU_VIEWS = ("L", "M", "R")


def read_pku_skeleton(path, *, raw: bytes | None = None) -> np.ndarray:
    """float32 ``(T, 2, 25, 3)`` from a PKU-MMD skeleton file (``raw=`` to pass the bytes)."""
    name = str(path) if path is not None else "<bytes>"
    tok = scan(_read_bytes(path) if raw is None else raw, name)
    rec = np.flatnonzero(tok.line_count > 0)
    if len(rec) == 0:
        raise SkeletonFormatError(name, 1, "no frames (empty file)",
                                  "a skeleton file needs one line of 150 numbers per frame")
    counts = tok.line_count[rec]
    wrong = np.flatnonzero(counts != PKU_VALUES_PER_FRAME)
    if len(wrong):
        r = int(wrong[0])
        raise SkeletonFormatError(name, int(rec[r]) + 1,
                                  f"expected {PKU_VALUES_PER_FRAME} values (2 persons x 25 joints x xyz), "
                                  f"found {int(counts[r])}", "truncated or not a PKU-MMD skeleton file")
    idx = np.arange(len(tok.start))
    return checked_float32(tok, idx, parse_numbers(tok, idx)).reshape(len(rec), 2, 25, 3)


LABEL_END_SLACK = 30   # frames (1 s) an interval may run past the skeleton's end; clipped there


def read_pku_labels(path, num_classes: int | None = None, *, raw: bytes | None = None,
                    num_frames: int | None = None) -> np.ndarray:
    """int64 ``(K, 4)`` rows ``(label, start, end, confidence)`` of a PKU-MMD label file.

    Checks: 4 integers per line, 1 <= label (<= num_classes when given), 0 <= start <= end and,
    given the video's ``num_frames``, start inside the video and end at most LABEL_END_SLACK past it.
    """
    name = str(path) if path is not None else "<bytes>"
    tok = scan(_read_bytes(path) if raw is None else raw, name, separators=b",")
    rec = np.flatnonzero(tok.line_count > 0)
    counts = tok.line_count[rec]
    wrong = np.flatnonzero(counts != 4)
    if len(wrong):
        r = int(wrong[0])
        raise SkeletonFormatError(name, int(rec[r]) + 1, f"expected 4 values 'label,start,end,confidence', "
                                  f"found {int(counts[r])}", "not a PKU-MMD label file")
    if len(rec) == 0:
        return np.zeros((0, 4), dtype=np.int64)
    rows = parse_numbers(tok, np.arange(len(tok.start)), integer=True).reshape(-1, 4)
    label, start, end = rows[:, 0], rows[:, 1], rows[:, 2]
    top = num_classes if num_classes is not None else np.iinfo(np.int64).max
    problems = [((label < 1) | (label > top), f"label outside 1..{num_classes or 'C'}"),
                (start < 0, "negative start frame"), (end < start, "end frame before start frame")]
    if num_frames is not None:
        problems.append(((start >= num_frames) | (end > num_frames + LABEL_END_SLACK),
                         f"interval beyond the end of the {num_frames}-frame video"))
    for mask, what in problems:
        bad = np.flatnonzero(mask)
        if len(bad):
            k = int(bad[0])
            raise SkeletonFormatError(name, int(rec[k]) + 1, f"{what}: {rows[k].tolist()}",
                                      "rows are label,start,end,confidence")
    return rows


def parse_pku_name(name) -> dict:
    """``"0291-M"`` (or a path / ``.txt`` name) -> ``{"video": 291, "view": "M"}``."""
    stem = Path(str(name)).name
    if stem.endswith(".txt"):
        stem = stem[:-4]
    m = PKU_NAME_RE.fullmatch(stem)
    if not m:
        raise SkeletonFormatError(name, None, "unknown file-name pattern: not a PKU-MMD Part I name",
                                  "expected XXXX-V.txt like 0291-M.txt, V in L/M/R")
    return {"video": int(m.group(1)), "view": m.group(2)}


def read_pku_split(path) -> dict[str, list[str]]:
    """The official split file -> ``{"train": [...], "test": [...]}`` (its 'validation' = test)."""
    p = Path(path)
    if not p.is_file():
        raise SkeletonFormatError(p, None, "split file not found", "pass the official cross-subject.txt")
    lines = _read_bytes(p).decode(errors="replace").splitlines()
    heads = [i for i, ln in enumerate(lines) if ln.strip().rstrip(":").strip().lower().endswith("videos")]
    if len(heads) != 2:
        raise SkeletonFormatError(p, None, "expected two headed lists ('Training videos:' and "
                                  "'Validataion videos:')", "not a PKU-MMD split file")
    out = {}
    for key, a, b in (("train", heads[0], heads[1]), ("test", heads[1], len(lines))):
        names = re.findall(r"(?<![0-9A-Za-z])[0-9]{4}-[LMR](?![0-9A-Za-z])", " ".join(lines[a + 1:b]))
        if not names:
            raise SkeletonFormatError(p, a + 2, f"the {key} list is empty")
        out[key] = names
    return out
