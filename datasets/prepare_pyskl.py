"""``prepare ntu60 --raw ntu60_3danno.pkl``: a cache from a PYSKL (or MMAction2) pickle, laid out exactly like
one prepared from the ``.skeleton`` files (same files, columns, order by name), except that the
splits are the pickle's own and the manifest's ``source`` says ``<pickle>:<name>``.

The arrays are the pickle's keypoints as given (float16 -> float32, (M, T, V, C) -> (T, 2, V, C));
nothing is re-derived, so PYSKL's body order and frame trimming carry over (readers/pyskl.py).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from plumbing.files import AtomicFile, atomic_write_text, check_writable_folder

from . import meta as M
from .cache import FORMAT_VERSION, FRAME_SHAPE, checksums, is_up_to_date, report_prepared, save_npy_atomic, write_meta
from .classes import CLASS_NAMES
from .prepare_txn import build_in_place_of, nothing_prepared
from .readers.pyskl import read_pyskl

NUM_CLASSES = {"ntu60": M.NTU60_MAX_ACTION, "ntu120": M.NTU120_MAX_ACTION}


def _fingerprint(dataset: str, pkl: Path, missing: Path | None) -> str:
    st = pkl.stat()
    sig = {"format": FORMAT_VERSION, "dataset": dataset, "source": "pyskl", "pickle": [pkl.name, st.st_size,
                                                                                      st.st_mtime_ns],
           "missing": hashlib.sha256(missing.read_bytes()).hexdigest() if missing else None}
    return hashlib.sha256(json.dumps(sig, sort_keys=True).encode()).hexdigest()


def _select(dataset: str, pkl: Path, samples, skip: set[str]) -> tuple[np.ndarray, pd.DataFrame, list, int, int]:
    """Rows kept (sorted by name), their parsed name fields, bad rows (name, why), counts skipped."""
    names = pd.Series(samples.names, dtype=object)
    good_name = names.str.fullmatch(M.NTU_NAME_RE.pattern).to_numpy(dtype=bool)
    bad = [(n, f"{pkl}: {n!r}: unknown sample-name pattern (expected SsssCcccPpppRrrrAaaa)")
           for n in names[~good_name]]
    listed = names.isin(list(skip)).to_numpy() & good_name
    rows = np.flatnonzero(good_name & ~listed)
    rows = rows[np.argsort(names.to_numpy()[rows], kind="stable")]
    fields = M.parse_ntu_names(names.to_numpy()[rows]) if len(rows) else pd.DataFrame(columns=list(M.NTU_FIELDS))
    wrong = samples.labels[rows] != fields["action"].to_numpy(dtype=np.int64) - 1
    empty = samples.bodies[rows] == 0
    bad += [(names[r], f"{pkl}: {names[r]}: label {samples.labels[r]} disagrees with action A{names[r][-3:]} "
                       "(PYSKL labels are action - 1)") for r in rows[wrong]]
    bad += [(names[r], f"{pkl}: {names[r]}: no body in any frame") for r in rows[empty & ~wrong]]
    keep = ~wrong & ~empty
    rows, fields = rows[keep], fields[keep].reset_index(drop=True)
    outside = 0
    if dataset == "ntu60":
        inside = M.in_ntu60(fields)
        outside = int((~inside).sum())
        rows, fields = rows[inside], fields[inside].reset_index(drop=True)
    return rows, fields, bad, int(listed.sum()), outside


def _split_columns(names: list[str], splits: dict, log, dataset: str, fields: pd.DataFrame) -> dict[str, np.ndarray]:
    """``split:<name>`` from the pickle; a note where it departs from the official rule."""
    cols = {}
    arr = np.asarray(names, dtype=object)
    for split, parts in splits.items():
        col = np.full(len(arr), "", dtype=object)
        col[np.isin(arr, list(parts["train"]))] = "train"
        col[np.isin(arr, list(parts["test"]))] = "test"
        cols[f"split:{split}"] = col
    official = M.ntu_split_columns(fields, dataset) if len(arr) else {}
    for key, col in cols.items():
        if key in official:
            differ = int((official[key] != col).sum())
            if differ:
                log(f"{dataset}: note: the pickle's {key[6:]} split differs from the official rule on {differ} "
                    "sample(s); the pickle's split is used")
    return cols


def prepare_pyskl(dataset: str, pkl: Path, out: Path, *, missing: Path | None, force: bool, log) -> Path:
    """Build (or verify) the cache of ``dataset`` from a PYSKL / MMAction2 pickle ``pkl``; returns ``out``.
    Built in a temporary sibling and swapped in whole (``prepare_txn.build_in_place_of``)."""
    skip = M.read_missing_list(missing) if missing else set()
    fingerprint = _fingerprint(dataset, pkl, missing)
    if not force and is_up_to_date(out, fingerprint):
        log(f"{dataset}: cache {out} is up to date (same pickle); nothing to do")
        return out
    samples = read_pyskl(pkl)  # every structural check before anything is written
    check_writable_folder(out, "--out")
    rows, fields, bad, listed, outside = _select(dataset, pkl, samples, skip)
    bad = list(samples.skipped) + bad
    log(f"{dataset}: {pkl.name}: read as {FORMATS[samples.flavour]} ({samples.flavour_why})")

    def build(tmp: Path):
        if not len(rows):
            raise nothing_prepared(out, pkl, bad, len(samples.names) + len(samples.skipped), "sample(s)")
        return _build(dataset, pkl, tmp, samples, rows, fields, bad, listed, outside, fingerprint, missing, log)

    meta, bad_out = build_in_place_of(out, fingerprint, force, log, dataset, build)
    if meta is not None:
        report_prepared(dataset, out, meta, bad_out, log)
    return out


FORMATS = {"pyskl": "PYSKL's tools/data/ntu_preproc.py pickle", "mmaction2": "MMAction2's gen_ntu_rgbd_raw.py pickle"}
NOTES = {
    "pyskl": {"coordinates": "raw Kinect camera space, metres, stored as float16 (< 2 mm rounding at 4 m)",
              "bodies": "PYSKL's: bodies tracked by bodyID, ordered by motion, short / wide ones dropped, at most "
                        "two slots by time overlap",
              "lengths": "total_frames: frames listing no body are removed, two-person samples trimmed at both ends",
              "names": "frame_dir (the sample name)", "splits": "the pickle's own"},
    "mmaction2": {"coordinates": "raw Kinect camera space, metres, stored as float16 (< 2 mm rounding at 4 m)",
                  "bodies": "MMAction2's: slot m = the m-th body listed in each frame (of up to 4), then the two "
                            "slots of highest motion energy, most energetic first; empty slots dropped",
                  "lengths": "total_frames = the raw file's frame count; empty frames kept (zero)",
                  "names": "frame_dir (the sample name)", "splits": "the pickle's own"},
}


def _build(dataset, pkl, out, samples, rows, fields, bad, listed, outside, fingerprint, missing, log):
    lengths = np.array([samples.keypoints[r].shape[1] for r in rows], dtype=np.int64)
    with AtomicFile(out / "data.bin") as fh:
        for r in rows:
            fh.write(samples.frames(r).astype("<f4", copy=False).tobytes())
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    names = [samples.names[r] for r in rows]
    man = pd.DataFrame({"name": names, "length": lengths, "bodies": samples.bodies[rows]})
    man["label"] = samples.labels[rows]
    for col in M.NTU_FIELDS[:-1]:
        man[col] = fields[col].to_numpy()
    splits_cols = _split_columns(names, samples.splits, log, dataset, fields)
    for col, values in splits_cols.items():
        man[col] = values
    man["source"] = [f"{pkl.name}:{n}" for n in names]
    save_npy_atomic(out / "offsets.npy", offsets)
    with AtomicFile(out / "manifest.csv", "w") as fh:
        man.to_csv(fh, index=False)
    atomic_write_text(out / "bad_files.txt", "".join(f"{name}\t{why}\n" for name, why in bad))
    meta = {"format_version": FORMAT_VERSION, "dataset": dataset, "detection": False,
            "num_classes": NUM_CLASSES[dataset], "class_names": list(CLASS_NAMES.get(dataset, ())),
            "splits": [c.split(":", 1)[1] for c in splits_cols], "samples": len(rows),
            "frames": int(offsets[-1]), "frame_shape": list(FRAME_SHAPE), "fingerprint": fingerprint,
            "raw": str(pkl.resolve()), "source_format": samples.flavour,
            "source_notes": {**NOTES[samples.flavour], "recognised_by": samples.flavour_why},
            "raw_coordinates": True, "fixed_length": None, "bad_files": len(bad),
            "missing_listed": listed, "outside_dataset": outside, "inputs": [str(missing)] if missing else [],
            "checksums": checksums(out)}
    meta = write_meta(out, meta)   # last, with its own checksum
    return meta, bad
