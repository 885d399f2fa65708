"""Writers for the real on-disk formats: NTU RGB+D ``.skeleton`` text and PKU-MMD skeleton /
label / split files. A file's numbers go through one ``%`` over a template built by array
indexing, so no Python loop runs per frame, body or joint."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from plumbing.files import atomic_write_text

_JOINT_LINE = " ".join(["%.7g"] * 11) + " %d\n"
_BODY_REST = " %d %d %d %d %d %d %.7g %.7g %d\n25\n" + _JOINT_LINE * 25  # after the body id


def ntu_text(bodies: list[dict]) -> str:
    """Text of an NTU ``.skeleton`` file.

    ``bodies``: per body slot a dict with ``present`` (T,) bool, ``ids`` (T,) int (64-bit body
    id), ``body`` (T, 9) fields after the id and ``joints`` (T, 25, 12). A frame lists the
    present bodies in slot order; a frame with none reads ``0``. Frames sharing the same bodies
    share one template (ids are written into it as exact integers), and all numbers of the file
    go through one ``%``.
    """
    n = len(bodies[0]["present"])
    present = np.stack([b["present"] for b in bodies], 1)                      # (T, B)
    ids = np.stack([np.where(b["present"], b["ids"], -1) for b in bodies], 1)  # (T, B)
    keys, inverse = np.unique(ids, axis=0, return_inverse=True)
    templates = np.array([
        f"{int((k >= 0).sum())}\n" + "".join(f"{int(i)}{_BODY_REST}" for i in k if i >= 0) for k in keys
    ], dtype=object)
    values = np.stack([np.concatenate([b["body"], b["joints"].reshape(n, -1)], 1) for b in bodies], 1)
    if not np.isfinite(values[present]).all():
        raise ValueError("refusing to write NaN/inf into an NTU skeleton file")
    text = "".join(templates[inverse.reshape(-1)].tolist())
    return f"{n}\n" + text % tuple(values[present].ravel().tolist())


def write_ntu(path: Path, bodies: list[dict]) -> None:
    atomic_write_text(path, ntu_text(bodies))


def pku_text(xyz: np.ndarray) -> str:
    """PKU-MMD skeleton text: (T, 2, 25, 3) -> one line per frame of 150 ``%f`` values (person 1
    then person 2, zeros where absent); like the real files, lines after the first start with a space."""
    n = len(xyz)
    line = " ".join(["%f"] * 150) + "\n"
    text = (line + (" " + line) * (n - 1)) if n else ""
    return text % tuple(np.asarray(xyz, dtype=np.float64).reshape(-1).tolist())


def write_pku_skeleton(path: Path, xyz: np.ndarray) -> None:
    atomic_write_text(path, pku_text(xyz))


def write_pku_labels(path: Path, rows: np.ndarray) -> None:
    """Rows (K, 4) of label (1..C), start, end (exclusive), confidence -> ``label,start,end,confidence`` lines."""
    atomic_write_text(path, "".join(f"{int(a)},{int(b)},{int(c)},{int(d)}\n" for a, b, c, d in rows))


def write_cross_subject(path: Path, train: list[str], test: list[str]) -> None:
    """The official 4-line split layout (including its 'Validataion' spelling and trailing commas)."""
    atomic_write_text(path, "Training videos: \n" + ", ".join(train) + ", \n"
                  + "Validataion videos: \n" + ", ".join(test) + ",\n")
