"""Sample names, the official splits and the missing-skeleton lists (facts from data.md).

NTU names ``SsssCcccPpppRrrrAaaa``: setup, camera (1-3), performer, replication, action (1-based).
NTU-60 = setups 1-17 / actions 1-60; NTU-120 adds setups 18-32 / actions 61-120.
Splits (column ``split:<name>`` in a cache manifest; "train" / "test"):
- ntu60  xsub: the 20 training performers below; xview: cameras 2, 3 train, camera 1 test.
- ntu120 xsub: those 20 plus 33 more (53); xset: even setups train, odd setups test.
- pkummd xsub: the official cross-subject file; xview: views M and R train, L test.
Missing-skeleton lists hold sample NAMES (one per line, ``.skeleton`` optional); the official
ones are 302 (NTU-60) and 535 (NTU-120) names. The suite does not ship them: pass the file,
or keep it inside the raw folder (any ``*missing*.txt`` is picked up).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import SkeletonFormatError
from .readers._text import read_bytes

# ASCII digits only ([0-9], not \d, which takes Arabic-Indic digits) and used with fullmatch
# (``$`` would let a trailing newline through)
NTU_NAME_RE = re.compile(r"S([0-9]{3})C([0-9]{3})P([0-9]{3})R([0-9]{3})A([0-9]{3})")
NTU_FIELDS = ("setup", "camera", "subject", "replication", "action")

NTU60_XSUB_TRAIN = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
NTU120_XSUB_TRAIN = NTU60_XSUB_TRAIN + (
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86,
    89, 91, 92, 93, 94, 95, 97, 98, 100, 103)
NTU60_XVIEW_TRAIN_CAMERAS = (2, 3)
NTU60_MAX_SETUP, NTU60_MAX_ACTION = 17, 60
NTU120_MAX_SETUP, NTU120_MAX_ACTION = 32, 120
PKU_XVIEW_TRAIN_VIEWS = ("M", "R")

SPLITS = {
    "ntu60": ("xsub", "xview"),
    "ntu120": ("xsub", "xset"),
    "pkummd": ("xsub", "xview"),
}


def ntu_stem(name) -> str:
    """Sample name from a path or file name (drops folders and ``.skeleton``)."""
    stem = Path(str(name)).name
    return stem[:-9] if stem.endswith(".skeleton") else stem


def parse_ntu_name(name) -> dict:
    """``"S001C002P003R001A004"`` (or a path to it) -> 1-based ints per field."""
    m = NTU_NAME_RE.fullmatch(ntu_stem(name))
    if not m:
        raise SkeletonFormatError(name, None, "unknown file-name pattern: not an NTU RGB+D sample name",
                                  "expected SsssCcccPpppRrrrAaaa, e.g. S001C002P003R001A004.skeleton")
    return dict(zip(NTU_FIELDS, (int(g) for g in m.groups())))


def parse_ntu_names(names) -> pd.DataFrame:
    """Vectorised ``parse_ntu_name`` over many names (pandas string extraction)."""
    stems = pd.Series([ntu_stem(n) for n in names], dtype=object)
    parts = stems.str.extract(r"\A(?:" + NTU_NAME_RE.pattern + r")\Z")
    bad = parts.isna().any(axis=1).to_numpy()
    if bad.any():
        parse_ntu_name(stems[int(np.flatnonzero(bad)[0])])  # raises with the name
    out = parts.astype(np.int64)
    out.columns = list(NTU_FIELDS)
    return out


def in_ntu60(fields: pd.DataFrame) -> np.ndarray:
    return ((fields["setup"] <= NTU60_MAX_SETUP) & (fields["action"] <= NTU60_MAX_ACTION)).to_numpy()


def _part(train: np.ndarray) -> np.ndarray:
    return np.where(train, "train", "test").astype(object)


def ntu_split_columns(fields: pd.DataFrame, dataset: str) -> dict[str, np.ndarray]:
    """``{"split:xsub": [...], ...}`` for ``dataset`` in ntu60 / ntu120."""
    subj, cam, setup = fields["subject"].to_numpy(), fields["camera"].to_numpy(), fields["setup"].to_numpy()
    if dataset == "ntu60":
        return {"split:xsub": _part(np.isin(subj, NTU60_XSUB_TRAIN)),
                "split:xview": _part(np.isin(cam, NTU60_XVIEW_TRAIN_CAMERAS))}
    if dataset == "ntu120":
        return {"split:xsub": _part(np.isin(subj, NTU120_XSUB_TRAIN)),
                "split:xset": _part(setup % 2 == 0)}
    raise ValueError(f"unknown NTU dataset {dataset!r}; choose ntu60 or ntu120")


def pku_split_columns(names, views, xsub: dict[str, list[str]] | None) -> dict[str, np.ndarray]:
    """PKU-MMD ``split:xview`` (M+R / L) and, given the official file's lists, ``split:xsub``.

    Videos in neither xsub list get "" (not part of that split).
    """
    names = np.asarray(list(names), dtype=object)
    cols = {}
    if xsub is not None:
        train, test = set(xsub["train"]), set(xsub["test"])
        col = np.full(len(names), "", dtype=object)
        col[np.isin(names, list(train))] = "train"
        col[np.isin(names, list(test))] = "test"
        cols["split:xsub"] = col
    cols["split:xview"] = _part(np.isin(np.asarray(views, dtype=object), PKU_XVIEW_TRAIN_VIEWS))
    return cols


def read_missing_list(path) -> set[str]:
    """Sample names of a missing-skeleton list (blank lines and ``#`` comments ignored)."""
    p = Path(path)
    if not p.is_file():
        raise SkeletonFormatError(p, None, "missing-sample list not found",
                                  "pass the official NTU_RGBD*_samples_with_missing_skeletons.txt or omit --missing")
    names = set()
    for number, line in enumerate(read_bytes(p).decode(errors="replace").splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        stem = ntu_stem(text)
        if not NTU_NAME_RE.fullmatch(stem):
            raise SkeletonFormatError(p, number, f"{text!r} is not an NTU sample name",
                                      "a missing-sample list holds one name like S001C002P005R002A008 per line")
        names.add(stem)
    return names


def find_missing_list(raw_dir) -> Path | None:
    """A ``*missing*.txt`` file directly inside ``raw_dir`` (the 120 list wins over the 60 one)."""
    found = sorted(Path(raw_dir).glob("*missing*.txt"))
    if not found:
        return None
    found.sort(key=lambda p: ("120" not in p.name, p.name))
    return found[0]
