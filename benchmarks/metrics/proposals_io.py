"""PKU-MMD proposal files: one file per video, lines ``label,start,end,confidence``.

Written atomically (``plumbing.files``) so an interrupted run never leaves a half-written file
that a later evaluation would silently read.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable, Sequence

from plumbing.files import atomic_write_text

__all__ = ["write_proposals", "read_proposals", "format_row"]


def _num(x: float) -> str:
    """Integral values as integers (frame indices), others with full float precision."""
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"non-finite value {x!r} in a proposal row")
    return str(int(x)) if x.is_integer() and abs(x) < 2**53 else repr(x)


def format_row(row: Sequence[float]) -> str:
    """``label,start,end,confidence``; the confidence keeps full precision (repr) so that
    evaluating the files gives exactly the in-memory result, ties included."""
    if len(row) < 4:
        raise ValueError(f"a proposal row needs [label, start, end, confidence], got {list(row)!r}")
    label, start, end, conf = row[:4]
    if float(label) != int(float(label)):
        raise ValueError(f"proposal label must be an integer, got {label!r}")
    return f"{int(float(label))},{_num(start)},{_num(end)},{repr(float(conf))}"


def write_proposals(path: str | os.PathLike, rows: Iterable[Sequence[float]]) -> Path:
    """Write ``rows`` to ``path`` atomically (parents created); returns the path."""
    text = "".join(format_row(r) + "\n" for r in rows)  # validate everything before touching disk
    return atomic_write_text(path, text, encoding="ascii")


def read_proposals(path: str | os.PathLike) -> list[list[float]]:
    """Rows ``[label, start, end, confidence]`` of a PKU-format file (ground-truth label files
    have the same layout). Blank lines are skipped; a bad line raises naming file and line."""
    path = Path(path)
    rows = []
    with open(path, encoding="ascii", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.split(",")
            try:
                if len(parts) < 4:
                    raise ValueError("fewer than 4 fields")
                vals = [float(v) for v in parts[:4]]
            except ValueError as err:
                raise ValueError(f"{path}:{lineno}: expected 'label,start,end,confidence', got {line!r} ({err})") from None
            if not vals[0].is_integer():
                raise ValueError(f"{path}:{lineno}: label {parts[0]!r} is not an integer")
            vals[0] = int(vals[0])
            rows.append(vals)
    return rows
