"""PKU-MMD proposal files: one file per video, lines ``label,start,end,confidence``.

Written atomically (temporary file in the same folder + ``os.replace``) so an interrupted run
never leaves a half-written file that a later evaluation would silently read.
"""
from __future__ import annotations

import functools
import math
import os
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

__all__ = ["write_proposals", "read_proposals", "format_row"]


@functools.lru_cache(maxsize=1)
def _umask() -> int:
    """The process umask (read once: os.umask can only be read by setting it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
    path = Path(path)
    text = "".join(format_row(r) + "\n" for r in rows)  # validate everything before touching disk
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; use the usual mode
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


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
