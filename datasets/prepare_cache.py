"""``prepare``: convert a raw dataset folder once into a cache (see ``cache.py`` for the layout).

Raw layouts (docs/data.md):
- ntu60 / ntu120: ``*.skeleton`` files anywhere under RAW (e.g. ``RAW/nturgb+d_skeletons/``);
  the missing-skeleton list via ``missing=`` or any ``*missing*.txt`` directly in RAW.
- pkummd: ``RAW/PKU_Skeleton_Renew/XXXX-V.txt``, ``RAW/Train_Label_PKU_final/XXXX-V.txt`` and
  the official ``cross-subject.txt`` (anywhere under RAW, or ``pku_split=``).
- ntu60 / ntu120 from PYSKL: RAW is the pickle ``ntu60_3danno.pkl`` / ``ntu120_3danno.pkl``
  (``prepare_pyskl.py``).
- synthetic: ``RAW/ntu`` and ``RAW/pkummd`` in those layouts (``datasets.synthetic.generate``);
  caches go to ``OUT/ntu`` and ``OUT/pkummd``.

Behaviour (the write path is ``prepare_txn.py``): a re-run with the same inputs (file names, sizes, mtimes, list contents) is a no-op;
bad files are listed, skipped and counted. Transactional: the cache is built in a temporary
sibling folder and swapped in whole (``plumbing.files.swap_folder``), so a good old cache stays
usable until the new one is complete and a killed or failed prepare leaves it as it was; a lock
beside ``--out`` refuses a second prepare into the same folder, and the next prepare removes the
temporary folder a SIGKILL left behind.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from plumbing.files import AtomicFile, atomic_write_text, check_writable_folder

from . import meta as M
from ._malloc import tune_malloc
from .cache import FORMAT_VERSION, FRAME_SHAPE, checksums, is_up_to_date, report_prepared, save_npy_atomic, write_meta
from .classes import CLASS_NAMES
from .errors import SkeletonFormatError
from .prepare_txn import NothingPreparedError, build_in_place_of, nothing_prepared  # noqa: F401
from .readers.detect import detect_ntu_source, sniff
from .readers.ntu import parse_ntu_skeleton
from .readers.pku import parse_pku_name, read_pku_labels, read_pku_skeleton, read_pku_split

KINDS = ("ntu60", "ntu120", "pkummd", "synthetic")
PKU_SKELETON_DIRS = ("PKU_Skeleton_Renew", "Skeleton", "skeleton", "skeletons")
PKU_LABEL_DIRS = ("Train_Label_PKU_final", "Label", "label", "labels")
PKUMMD_NUM_CLASSES = 51


# ----------------------------------------------------------------------------- per-file work
def _read_one(job: tuple) -> tuple:
    """(kind, path, label_path, num_classes) -> (array | None, info | None, error | None)."""
    kind, path, label_path, num_classes = job
    try:
        if kind == "ntu":
            sk = parse_ntu_skeleton(path, max_bodies=2)
            bodies = min(int(sk.bodies_per_frame.max()), 2)
            if bodies == 0:
                raise SkeletonFormatError(path, None, "no body in any frame (a missing-skeleton sample)",
                                          "add it to the missing list")
            return sk.xyz, {"bodies": bodies}, None
        x = read_pku_skeleton(path)
        if label_path is None:
            raise SkeletonFormatError(path, None, "no label file for this video",
                                      "expected one with the same name in Train_Label_PKU_final/")
        rows = read_pku_labels(label_path, num_classes, num_frames=len(x))
        present = np.abs(x).reshape(len(x), 2, -1).sum(-1).max(0) > 0
        bodies = 2 if present[1] else int(present[0])
        if bodies == 0:
            raise SkeletonFormatError(path, None, "no person in any frame")
        return x, {"bodies": bodies, "intervals": rows}, None
    except (SkeletonFormatError, OSError) as err:
        return None, None, str(err)


def _frame_labels(length: int, rows: np.ndarray) -> np.ndarray:
    """0 = background, c on frames start..end-1 (clipped to the video; later rows win)."""
    out = np.zeros(length, dtype=np.int16)
    for label, start, end, _ in rows:  # a handful of intervals per video
        out[max(int(start), 0):min(int(end), length)] = label
    return out


# ----------------------------------------------------------------------------- inputs
def _file_sig(path: Path, root: Path) -> list:
    st = path.stat()
    return [str(path.relative_to(root)), st.st_size, st.st_mtime_ns]


def _content_hash(path: Path | None) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path is not None else None


def _ntu_inputs(raw: Path, dataset: str, missing: Path | None, log) -> dict:
    files = sorted(raw.rglob("*.skeleton"), key=lambda p: p.name)
    if not files:
        raise SkeletonFormatError(raw, None, "no *.skeleton files found (expected the NTU RGB+D skeleton "
                                "folder, e.g. nturgb+d_skeletons/)")
    missing = missing or M.find_missing_list(raw)
    skip = M.read_missing_list(missing) if missing else set()
    if missing is None and not dataset.startswith("synthetic"):
        log(f"note: no missing-skeleton list (pass --missing FILE or put *missing*.txt in {raw}); "
            "files without any body are still skipped as bad")
    bad, good, names, listed, outside = [], [], [], 0, 0
    for p in files:
        stem = M.ntu_stem(p)
        if not M.NTU_NAME_RE.fullmatch(stem):
            bad.append((str(p.relative_to(raw)), f"{p}: unknown file-name pattern (expected SsssCcccPpppRrrrAaaa.skeleton)"))
        elif stem in skip:
            listed += 1
        else:
            good.append(p)
            names.append(stem)
    fields = M.parse_ntu_names(names) if names else pd.DataFrame(columns=list(M.NTU_FIELDS), dtype=np.int64)
    dup = fields.duplicated(keep="first").to_numpy()  # the same sample, by its parsed fields
    if dup.any():
        for p in (p for p, d in zip(good, dup) if d):
            bad.append((str(p.relative_to(raw)), f"{p}: duplicate sample {M.ntu_stem(p)} (same setup, camera, "
                                                  "performer, replication and action as another file)"))
        good = [p for p, d in zip(good, dup) if not d]
        fields = fields[~dup].reset_index(drop=True)
    if dataset in ("ntu60",):
        keep = M.in_ntu60(fields)
        outside = int((~keep).sum())
        good = [p for p, k in zip(good, keep) if k]
        fields = fields[keep].reset_index(drop=True)
    return {"files": good, "fields": fields, "bad": bad, "listed": listed, "outside": outside,
            "extra": [missing] if missing else []}


def _find_dir(raw: Path, candidates) -> Path | None:
    for c in candidates:
        if (raw / c).is_dir():
            return raw / c
    for c in candidates:
        hits = sorted(p for p in raw.rglob(c) if p.is_dir())
        if hits:
            return hits[0]
    return None


def _pku_inputs(raw: Path, split_file: Path | None) -> dict:
    skel_dir = _find_dir(raw, PKU_SKELETON_DIRS)
    if skel_dir is None:
        raise SkeletonFormatError(raw, None, f"no PKU-MMD skeleton folder ({' / '.join(PKU_SKELETON_DIRS)})")
    label_dir = _find_dir(raw, PKU_LABEL_DIRS)
    if label_dir is None:
        raise SkeletonFormatError(raw, None, f"no PKU-MMD label folder ({' / '.join(PKU_LABEL_DIRS)})")
    if split_file is None:
        hits = sorted(raw.rglob("cross-subject.txt"))
        if not hits:
            raise SkeletonFormatError(raw, None, "the official cross-subject.txt was not found; put it in "
                                    "the raw folder or pass --pku-split FILE")
        split_file = hits[0]
    bad, good, views, videos, labels, seen = [], [], [], [], [], set()
    for p in sorted(skel_dir.glob("*.txt"), key=lambda p: p.name):
        try:
            info = parse_pku_name(p.name)
        except ValueError as err:
            bad.append((str(p.relative_to(raw)), str(err)))
            continue
        if (info["video"], info["view"]) in seen:
            bad.append((str(p.relative_to(raw)), f"{p}: duplicate video {info['video']:04d}-{info['view']}"))
            continue
        seen.add((info["video"], info["view"]))
        good.append(p)
        videos.append(info["video"])
        views.append(info["view"])
        lab = label_dir / p.name
        labels.append(lab if lab.is_file() else None)
    if not good and not bad:
        raise SkeletonFormatError(skel_dir, None, "no skeleton .txt files")
    return {"files": good, "labels": labels, "videos": videos, "views": views, "bad": bad,
            "split_file": split_file, "extra": [split_file]}


def _fingerprint(dataset: str, raw: Path, inputs: dict, num_classes: int) -> str:
    sig = {"format": FORMAT_VERSION, "dataset": dataset, "num_classes": num_classes,
           "files": [_file_sig(p, raw) for p in inputs["files"]],
           "labels": [_file_sig(p, raw) if p else None for p in inputs.get("labels", [])],
           "bad": [b[0] for b in inputs["bad"]],
           "extra": [_content_hash(Path(p)) for p in inputs["extra"]]}
    return hashlib.sha256(json.dumps(sig, sort_keys=True).encode()).hexdigest()


# ----------------------------------------------------------------------------- main entry
def _synthetic_num_classes(default: int) -> int:
    try:
        from .synthetic import ACTIONS  # written by the synthetic-world module
        return len(ACTIONS)
    except ImportError:
        return default


def _print(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def prepare(kind: str, raw, out, *, progress: bool = True, missing=None, pku_split=None,
            workers: int | None = None, force: bool = False, log=_print) -> Path:
    """Build (or verify) the cache of ``kind`` from ``raw`` into ``out``; returns ``out``."""
    if kind not in KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}; choose one of {', '.join(KINDS)}")
    raw, out = Path(raw), Path(out)
    if kind in ("ntu60", "ntu120"):   # every NTU format, recognised by its content (readers/detect.py)
        found = detect_ntu_source(raw)
        if found.format != "skeleton":
            if out.exists() and not out.is_dir():   # the full check (it creates --out) follows the reader's
                check_writable_folder(out, "--out")
            missing = Path(missing) if missing else None
            if found.format == "pickle":   # PYSKL's ntu60_3danno.pkl / MMAction2's ntu60_3d.pkl
                from .prepare_pyskl import prepare_pyskl

                return prepare_pyskl(kind, raw, out, missing=missing, force=force, log=log)
            from .prepare_arrays import prepare_arrays

            return prepare_arrays(kind, found, out, missing=missing, force=force, log=log)
    elif raw.is_file() and sniff(raw) in ("pickle", "zip", "npy"):
        raise SkeletonFormatError(raw, None, f"a {sniff(raw)} file: the NTU formats other tools write hold NTU RGB+D, "
                                  f"not {kind}", "use 'prepare ntu60' or 'prepare ntu120' with it")
    if not raw.is_dir():
        raise SkeletonFormatError(raw, None, "no such folder" if not raw.exists() else "not a folder",
                                  "pass the dataset's raw folder as --raw")
    check_writable_folder(out, "--out")
    if kind == "synthetic":
        for sub, dataset in (("ntu", "synthetic-ntu"), ("pkummd", "synthetic-pkummd")):
            if not (raw / sub).is_dir():
                raise SkeletonFormatError(raw / sub, None, "missing; generate it with "
                                          f"'python -m datasets synth --out {raw}'")
            _prepare_one(dataset, raw / sub, out / sub, progress=progress, missing=None,
                         pku_split=None, workers=workers, force=force, log=log)
        return out
    return _prepare_one(kind, raw, out, progress=progress, missing=missing, pku_split=pku_split,
                        workers=workers, force=force, log=log)


def _prepare_one(dataset, raw: Path, out: Path, *, progress, missing, pku_split, workers, force, log) -> Path:
    detection = dataset.endswith("pkummd")
    if detection:
        inputs = _pku_inputs(raw, Path(pku_split) if pku_split else None)
        num_classes = (PKUMMD_NUM_CLASSES if dataset == "pkummd" else _synthetic_num_classes(0))
    else:
        inputs = _ntu_inputs(raw, dataset, Path(missing) if missing else None, log)
        top = {"ntu60": M.NTU60_MAX_ACTION, "ntu120": M.NTU120_MAX_ACTION}.get(dataset)
        seen = int(inputs["fields"]["action"].max()) if len(inputs["files"]) else 0
        # a synthetic raw folder with actions beyond the world's class list keeps every label in range
        num_classes = top or max(_synthetic_num_classes(seen), seen)
    fingerprint = _fingerprint(dataset, raw, inputs, num_classes)
    if not force and is_up_to_date(out, fingerprint):
        log(f"{dataset}: cache {out} is up to date (same inputs); nothing to do")
        return out
    meta, bad = build_in_place_of(out, fingerprint, force, log, dataset,
                                  lambda tmp: _build(dataset, raw, tmp, out, inputs, detection, num_classes,
                                                     fingerprint, workers, progress))
    if meta is not None:
        report_prepared(dataset, out, meta, bad, log)
    return out


def _build(dataset, raw: Path, out: Path, final: Path, inputs: dict, detection: bool, num_classes: int,
           fingerprint: str, workers, progress) -> tuple[dict, list]:
    """Write the whole cache into the empty folder ``out`` (a temporary sibling of ``final``)."""
    files = inputs["files"]
    labels = inputs.get("labels", [None] * len(files))
    jobs = [("pku" if detection else "ntu", str(p), str(lab) if lab else None,
             num_classes if dataset == "pkummd" else None) for p, lab in zip(files, labels)]
    n_workers = workers if workers is not None else (min(os.cpu_count() or 1, 8) if len(jobs) >= 400 else 1)
    ok_rows, lengths, bodies, intervals, frame_labels, bad = [], [], [], [], [], list(inputs["bad"])
    # forkserver/spawn, not fork: the parent may hold torch / BLAS threads
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    pool = (ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=tune_malloc)
            if n_workers > 1 else None)
    try:
        with AtomicFile(out / "data.bin") as fh, tqdm(total=len(jobs), desc=f"prepare {dataset}", unit="file",
                                                       disable=not progress, file=sys.stderr) as bar:
            results = pool.map(_read_one, jobs, chunksize=32) if pool else map(_read_one, jobs)
            for i, (x, info, err) in enumerate(results):
                bar.update(1)
                if err is not None:
                    bad.append((str(files[i].relative_to(raw)), err))
                    continue
                fh.write(np.ascontiguousarray(x, dtype="<f4").tobytes())
                ok_rows.append(i)
                lengths.append(len(x))
                bodies.append(info["bodies"])
                if detection:
                    intervals.append(info["intervals"])
                    frame_labels.append(_frame_labels(len(x), info["intervals"]))
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    if not ok_rows:
        raise nothing_prepared(final, raw, bad, len(files) + len(inputs["bad"]))
    rows = np.asarray(ok_rows, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    if detection and num_classes == 0:  # synthetic world without its class list: the labels seen
        num_classes = int(max((int(r[:, 0].max()) for r in intervals if len(r)), default=0))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    names = [M.ntu_stem(files[i]) if not detection else files[i].stem for i in rows]
    man = pd.DataFrame({"name": names, "length": lengths, "bodies": np.asarray(bodies, dtype=np.int64)})
    if detection:
        man["label"] = -1
        man["video"] = np.asarray(inputs["videos"], dtype=np.int64)[rows] if len(rows) else []
        man["view"] = np.asarray(inputs["views"], dtype=object)[rows] if len(rows) else []
        man["actions"] = [len(r) for r in intervals]
        xsub = read_pku_split(inputs["split_file"])
        splits_cols = M.pku_split_columns(man["name"], man["view"], xsub)
    else:
        fields = inputs["fields"].iloc[rows].reset_index(drop=True)
        man["label"] = fields["action"].to_numpy() - 1
        for col in M.NTU_FIELDS[:-1]:
            man[col] = fields[col].to_numpy()
        rule = dataset if dataset in ("ntu60", "ntu120") else "ntu60"
        splits_cols = M.ntu_split_columns(fields, rule)
    for col, values in splits_cols.items():
        man[col] = values
    man["source"] = [str(files[i].relative_to(raw)) for i in rows]

    save_npy_atomic(out / "offsets.npy", offsets)
    with AtomicFile(out / "manifest.csv", "w") as fh:
        man.to_csv(fh, index=False)
    if detection:
        counts = [len(r) for r in intervals]
        save_npy_atomic(out / "intervals.npy", np.concatenate(intervals).astype(np.int64)
                        if intervals else np.zeros((0, 4), dtype=np.int64))
        save_npy_atomic(out / "interval_offsets.npy", np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
        save_npy_atomic(out / "frame_labels.npy", np.concatenate(frame_labels) if frame_labels
                        else np.zeros(0, dtype=np.int16))
    atomic_write_text(out / "bad_files.txt", "".join(f"{name}\t{why}\n" for name, why in bad))
    class_names = list(CLASS_NAMES.get(dataset, ()))
    if dataset.startswith("synthetic"):
        try:
            from .synthetic import ACTIONS
            class_names = list(ACTIONS)
        except ImportError:
            class_names = []
        if len(class_names) != num_classes:   # a raw folder that is not the generator's: no names
            class_names = []
    meta = {"format_version": FORMAT_VERSION, "dataset": dataset, "detection": detection,
            "num_classes": num_classes, "class_names": class_names,
            "splits": [c.split(":", 1)[1] for c in splits_cols], "samples": len(rows),
            "frames": int(offsets[-1]), "frame_shape": list(FRAME_SHAPE), "fingerprint": fingerprint,
            "raw": str(raw.resolve()), "source_format": "pkummd-text" if detection else "skeleton",
            "raw_coordinates": True, "fixed_length": None,
            "bad_files": len(bad), "missing_listed": inputs.get("listed", 0),
            "outside_dataset": inputs.get("outside", 0),
            "inputs": [str(p) for p in inputs["extra"]], "checksums": checksums(out)}
    meta = write_meta(out, meta)   # last, with its own checksum
    return meta, bad
