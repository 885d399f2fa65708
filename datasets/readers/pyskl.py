"""PYSKL's NTU RGB+D pickles (``ntu60_3danno.pkl``, ``ntu120_3danno.pkl``) as a raw source.

Why: many researchers hold NTU skeletons only in this form (MotionBERT reads the same files).
Layout (PYSKL ``tools/data/README.md``): ``dict(split={"<name>_train": [names], "<name>_val":
[names], ...}, annotations=[dict(frame_dir=name, label=int (0-based), total_frames=T,
keypoint=(M, T, V, C))])``.

What the 3D keypoints are (PYSKL ``tools/data/ntu_preproc.py``): the Kinect camera-space x, y, z
of the ``.skeleton`` files in metres - not centred, rotated or scaled - stored as float16. The
bodies are not the file's per-frame slots: PYSKL tracks each bodyID, orders bodies by motion
(most moving first), drops short / implausibly wide ones, skips frames that list no body and,
for two-person samples, trims empty frames at both ends. So for a single-person sample whose
frames all list one body the pickle holds exactly the raw-file array rounded to float16; for
others the body order and frame count can differ. docs/data.md ("PYSKL pickles") says what
"identical" means for a cache prepared from a pickle.

The file is read with the restricted unpickler (plain containers and numpy arrays only).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SkeletonFormatError
from .safe_pickle import load_restricted

NUM_JOINTS, NUM_COORDS, MAX_BODIES = 25, 3, 2
TRAIN_SUFFIX = "_train"
TEST_SUFFIXES = ("_val", "_test")


@dataclass
class PysklSamples:
    """The samples of one pickle, in the file's order."""

    names: list[str]
    labels: np.ndarray            # int64 (N,), 0-based as in the file
    keypoints: list[np.ndarray]   # per sample the file's (M, T, 25, 3) array, checked, not copied
    bodies: np.ndarray            # int64 (N,): body slots (of the first 2) with any non-zero coordinate
    splits: dict[str, dict[str, set[str]]]   # "xsub" -> {"train": {...}, "test": {...}}
    skipped: list = field(default_factory=list)   # (name, why) of annotations that are None
    flavour: str = "pyskl"                       # "pyskl" | "mmaction2" (``flavour_of``)
    flavour_why: str = ""

    def frames(self, i: int) -> np.ndarray:
        """float32 (T, 2, 25, 3) of sample ``i`` in the cache layout (bodies beyond 2 dropped, a
        missing second body zero). Converted one sample at a time: NTU-120 as float32 would
        need ~6 GB at once."""
        kp = self.keypoints[i]
        x = np.zeros((kp.shape[1], MAX_BODIES, NUM_JOINTS, NUM_COORDS), dtype=np.float32)
        x[:, :min(kp.shape[0], MAX_BODIES)] = kp[:MAX_BODIES].transpose(1, 0, 2, 3)
        return x


def _fail(path: Path, problem: str, hint: str = "") -> SkeletonFormatError:
    return SkeletonFormatError(path, None, problem, hint or "expected PYSKL's ntu60_3danno.pkl / ntu120_3danno.pkl "
                               "(dict with 'split' and 'annotations')")


def _splits(path: Path, raw) -> dict[str, dict[str, set[str]]]:
    if not isinstance(raw, dict) or not raw:
        raise _fail(path, "no 'split' dict (split name -> list of sample names)")
    out: dict[str, dict[str, set[str]]] = {}
    for key, names in raw.items():
        if not isinstance(key, str) or not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
            raise _fail(path, f"split {key!r} is not a list of sample names")
        for suffix, part in ((TRAIN_SUFFIX, "train"), *((s, "test") for s in TEST_SUFFIXES)):
            if key.endswith(suffix) and len(key) > len(suffix):
                out.setdefault(key[:-len(suffix)], {"train": set(), "test": set()})[part] |= set(names)
                break
    if not out:
        raise _fail(path, f"split keys {sorted(raw)} have no '<name>_train' / '<name>_val' pair")
    return out


def _keypoint(path: Path, i: int, ann: dict) -> np.ndarray:
    where = f"annotation {i} ({ann.get('frame_dir')!r})"
    kp = ann.get("keypoint")
    if not isinstance(kp, np.ndarray) or kp.ndim != 4:
        raise _fail(path, f"{where}: 'keypoint' is not a 4-D array (M, T, V, C)")
    m, t, v, c = kp.shape
    if c == 2:
        raise _fail(path, f"{where}: 2D keypoints (C=2)", "this is a 2D (HRNet) pickle; use PYSKL's 3D file "
                    "ntu60_3danno.pkl / ntu120_3danno.pkl")
    if v != NUM_JOINTS or c != NUM_COORDS or t < 1:
        raise _fail(path, f"{where}: keypoint shape {kp.shape}, expected (M, T>=1, {NUM_JOINTS}, {NUM_COORDS})")
    if kp.dtype.kind != "f":
        raise _fail(path, f"{where}: keypoint dtype {kp.dtype}, expected floating point")
    total = ann.get("total_frames", t)
    if isinstance(total, (bool, float)) or not isinstance(total, (int, np.integer)) or int(total) != t:
        raise _fail(path, f"{where}: total_frames={total!r} but the keypoint array has {t} frames")
    if not np.isfinite(kp[:MAX_BODIES]).all():
        raise _fail(path, f"{where}: non-finite coordinates (NaN/inf)", "the pickle is damaged; re-download it")
    return kp


def _guess_names(split: dict, n: int) -> list[str] | None:
    """PYSKL writes annotation i for the i-th of the sorted sample names, which its splits also list;
    so a None annotation can still be named (None when the lists do not cover the file)."""
    names = sorted({x for key, v in split.items() if key.endswith(TRAIN_SUFFIX) for x in v}
                   | {x for key, v in split.items() if key.endswith(TEST_SUFFIXES) for x in v})
    return names if len(names) == n else None


def flavour_of(path: Path, names: list[str], keypoints: list[np.ndarray], split: dict, nones: int) -> tuple[str, str]:
    """PYSKL (tools/data/ntu_preproc.py) or MMAction2 (tools/data/skeleton/gen_ntu_rgbd_raw.py), from content.

    Both write ``dict(split, annotations)`` with (M, T, 25, 3) float16 keypoints; they differ in what
    they leave in it: PYSKL's order is the sorted names and its bug writes ``None`` for a sample without
    a body; MMAction2 keeps such a sample with M = 0 and lists the first benchmark's training names
    (directory order) before its validation names. Where the content cannot tell (a file sorted both
    ways, e.g. all samples in one part), the tools' file names decide (``*_3danno.pkl`` PYSKL,
    ``*_3d.pkl`` MMAction2), else PYSKL."""
    if nones:
        return "pyskl", f"{nones} None annotation(s), which only PYSKL's ntu_preproc.py writes"
    empty = sum(1 for kp in keypoints if kp.shape[0] == 0)
    if empty:
        return "mmaction2", f"{empty} sample(s) with no body (M = 0), which only MMAction2 keeps"
    keys = [k for k in split if isinstance(k, str)]
    first = keys[0][:-len(TRAIN_SUFFIX)] if keys and keys[0].endswith(TRAIN_SUFFIX) else None
    mm_order = first is not None and names == list(split.get(f"{first}_train", [])) + list(split.get(f"{first}_val", []))
    sorted_order = names == sorted(names)
    if mm_order and not sorted_order:
        return "mmaction2", f"samples in {first}_train then {first}_val order (MMAction2's), not sorted by name"
    if sorted_order and not mm_order:
        return "pyskl", "samples sorted by name (PYSKL's order)"
    if path.name.endswith("_3d.pkl"):
        return "mmaction2", "content fits both tools; the file name is MMAction2's (*_3d.pkl)"
    return "pyskl", "content fits both tools; taken as PYSKL's" + (" (file name *_3danno.pkl)"
                                                                   if path.name.endswith("_3danno.pkl") else "")


def read_pyskl(path) -> PysklSamples:
    """Load and check a PYSKL / MMAction2 3D pickle; structural problems raise one ``SkeletonFormatError``
    (``UnsafePickleError`` / ``PickleFormatError`` for a pickle that is not plain data). ``None``
    annotations (PYSKL's bug) are skipped and reported in ``skipped``; samples without a body
    (MMAction2's M = 0) are kept with ``bodies`` 0 for the caller to list as bad."""
    path = Path(path)
    if not path.is_file():
        raise SkeletonFormatError(path, None, "no such file", "pass PYSKL's ntu60_3danno.pkl as --raw")
    data = load_restricted(path)
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], (list, tuple)):
        raise SkeletonFormatError(path, None, "a (sample_names, labels) label pickle (st-gcn / CrosSCLR), not an "
                                  "annotation pickle", "pass the folder holding it and its *_data.npy as --raw")
    if not isinstance(data, dict) or "annotations" not in data:
        found = f"a dict with keys {sorted(map(str, data))[:8]}" if isinstance(data, dict) else f"a {type(data).__name__}"
        raise _fail(path, f"not an annotation pickle: {found}, no 'annotations'",
                    "expected PYSKL's ntu60_3danno.pkl / MMAction2's ntu60_3d.pkl (dict with 'split' and "
                    "'annotations'); docs/data.md lists every format prepare accepts")
    anns = data["annotations"]
    if not isinstance(anns, (list, tuple)) or not anns:
        raise _fail(path, "'annotations' is not a non-empty list")
    splits = _splits(path, data.get("split"))
    guessed = _guess_names(data["split"], len(anns))
    names, labels, keypoints, skipped = [], [], [], []
    for i, ann in enumerate(anns):
        if ann is None:
            who = guessed[i] if guessed else f"annotation {i}"
            skipped.append((who, f"{path}: annotation {i}{f' ({guessed[i]})' if guessed else ''} is None: PYSKL's "
                                 "ntu_preproc.py writes None for a sample whose file lists no body; skipped"))
            continue
        if not isinstance(ann, dict) or not isinstance(ann.get("frame_dir"), str):
            raise _fail(path, f"annotation {i} is {'a dict without' if isinstance(ann, dict) else 'a ' + type(ann).__name__ + ', not a dict with'} a 'frame_dir' sample name",
                        "the pickle is damaged; re-download or regenerate it")
        label = ann.get("label")
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or label < 0:
            raise _fail(path, f"annotation {i} ({ann['frame_dir']!r}): label {label!r} is not a 0-based class id")
        names.append(ann["frame_dir"])
        labels.append(int(label))
        keypoints.append(_keypoint(path, i, ann))
    if not names:
        raise _fail(path, "every annotation is None", "regenerate the pickle")
    counts = Counter(names)
    if len(counts) != len(names):
        dup = next(n for n, k in counts.items() if k > 1)
        raise _fail(path, f"sample name {dup!r} is listed twice", "the pickle is damaged; re-download it")
    bodies = np.array([int((np.abs(kp[:MAX_BODIES]).reshape(min(kp.shape[0], MAX_BODIES), -1).max(axis=1) > 0).sum())
                       if kp.shape[0] else 0 for kp in keypoints], dtype=np.int64)
    flavour, why = flavour_of(path, names, keypoints, data["split"], len(skipped))
    return PysklSamples(names, np.asarray(labels, dtype=np.int64), keypoints, bodies, splits, skipped, flavour, why)
