"""``prepare ntu60|ntu120 --raw ARRAYS``: a cache from the preprocessed arrays other tools write
(st-gcn / CrosSCLR ``data.npy + label.pkl``, CrosSCLR frame50, Hi-TRS arrays, CTR-GCN ``.npz``).

The cache has the files and manifest columns of one prepared from ``.skeleton`` files. What
differs is what each format stored (``NOTES``, also in meta.json ``source_notes`` and
docs/data.md "Sources prepare accepts"): names where the format has them (else invented from
the position, ``xsub-train-000012``), the format's own train / test splits (one ``split:<name>``
column per benchmark given; samples of several benchmarks are joined by name, or where the
format stores no names by their exact content), lengths by the format's rule, coordinates as
stored. Nothing is re-derived from raw files. Built through the same transactional path as every
prepare (``prepare_txn.build_in_place_of``).
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from plumbing.files import AtomicFile, atomic_write_text, check_writable_folder

from . import meta as M
from .cache import FORMAT_VERSION, FRAME_SHAPE, checksums, is_up_to_date, report_prepared, save_npy_atomic, write_meta
from .classes import CLASS_NAMES
from .prepare_txn import build_in_place_of, nothing_prepared
from .errors import SkeletonFormatError
from .readers.arrays import read_frame50_arrays, read_hitrs_arrays, read_stgcn_arrays
from .readers.ctrgcn import benchmark_of, read_ctrgcn_npz, undo_copied_body, valid_length
from .readers.detect import Detected

NUM_CLASSES = {"ntu60": M.NTU60_MAX_ACTION, "ntu120": M.NTU120_MAX_ACTION}
SPLIT_ORDER = ("xsub", "xview", "xset")

NOTES = {
    "stgcn": {
        "tool": "st-gcn tools/ntu_gendata.py, CrosSCLR / AimCLR gendata: {train,val}_data.npy + {train,val}_label.pkl",
        "coordinates": "raw Kinect camera space, metres, float32: exactly the raw files' x, y, z",
        "bodies": "the first two bodies listed in each frame (the raw-file cache's rule)",
        "lengths": "not stored: a sample ends at its last frame holding any non-zero value, so trailing "
                   "frames without a body in the raw file are lost",
        "names": "from label.pkl, the '.skeleton' suffix dropped",
        "splits": "the folders' own (one per benchmark folder)"},
    "frame50": {
        "tool": "CrosSCLR / AimCLR frame50 preprocessing: {train,val}_position.npy + labels",
        "coordinates": "NOT raw: centred on joint 21, rotated about y, resized to 50 frames (data.md frame50)",
        "bodies": "as the preprocessing left them (two slots)",
        "lengths": "50 for every sample; the original length is lost",
        "names": "from label.pkl; a label.npy stores none (invented from the position)",
        "splits": "the folders' own (one per benchmark folder)"},
    "hitrs": {
        "tool": "Hi-TRS data_process/NTU_RGBD/prepare_NTU_60.py: {train,val}_data.npy + _label.npy + _video_info.json",
        "coordinates": "raw Kinect camera space, metres, float32: exactly the raw files' x, y, z",
        "bodies": "the first two bodies listed in each frame (the raw-file cache's rule)",
        "lengths": "exact: frame_num of video_info.json",
        "names": "not stored: invented from the position (<split>-<part>-<index>); the tool's order is its "
                 "os.listdir order",
        "splits": "the folders' own (one per benchmark folder); benchmarks joined by exact content"},
    "ctrgcn": {
        "tool": "CTR-GCN data/ntu*/seq_transformation.py (MAMP, STARS ...): NTU60_CS.npz, x_* (N, T, 150), one-hot y_*",
        "coordinates": "NOT raw: the denoised actors, translated so that joint 2 of actor 1's first frame is the "
                       "origin (metres, float32, not rotated or scaled)",
        "bodies": "the denoised pipeline's actor 1 / actor 2; NTU-120's copy of a lone actor into slot 2 is removed",
        "lengths": "not stored: a sample ends at its last frame holding any non-zero value (the denoised "
                   "pipeline already dropped frames without an actor)",
        "names": "not stored: invented from the position (<split>-<part>-<index>)",
        "splits": "the archive's own train / test, one archive per benchmark (NTU60_CS -> xsub, NTU60_CV -> xview, "
                  "NTU120_CSub -> xsub, NTU120_CSet -> xset); archives joined by exact content"},
}


@dataclass
class Part:
    """One train / test part of one benchmark, as a reader presents it."""

    benchmark: str | None
    part: str
    file: Path
    labels: np.ndarray
    names: list[str] | None           # NTU sample names (stems) where the format stores them
    load: Callable[[int], np.ndarray]  # -> float32 (length, 2, 25, 3), the format's length rule applied
    inputs: list[Path]                 # every file read (the fingerprint)


def _two_bodies(x: np.ndarray) -> np.ndarray:
    out = np.zeros((len(x), *FRAME_SHAPE), dtype=np.float32)
    out[:, :min(x.shape[1], 2)] = x[:, :2]
    return out


def _trailing(x: np.ndarray) -> np.ndarray:
    return x[:valid_length(x)]


def _parts(det: Detected, dataset: str, copies: set) -> list[Part]:
    """The readers' view of every part; all structural checks happen here, before any writing."""
    parts = []
    if det.format == "ctrgcn":
        for npz in det.files:
            which = benchmark_of(npz)
            if which is None:
                raise SkeletonFormatError(npz, None, "a CTR-GCN archive whose name does not say its benchmark (it "
                                          "stores no sample names, so the split cannot be recognised from content)",
                                          "keep seq_transformation.py's name: NTU60_CS.npz, NTU60_CV.npz, "
                                          "NTU120_CSub.npz or NTU120_CSet.npz")
            arr = read_ctrgcn_npz(npz)
            held = {60: "ntu60", 120: "ntu120"}[arr.num_classes]
            if held != dataset or which[0] != dataset:
                raise SkeletonFormatError(npz, None, f"holds {held} ({arr.num_classes} one-hot classes, file name "
                                          f"{npz.name}), not {dataset}", f"use 'prepare {held}' with it")

            for part in ("train", "test"):
                def load(i, arr=arr, part=part):
                    x, copied = undo_copied_body(arr.sample(part, i))
                    if copied:
                        copies.add((str(npz), part, i))
                    return _trailing(x)
                parts.append(Part(which[1], part, npz, arr.labels[part], None, load, [npz]))
        return parts
    for f in det.files:
        if det.format == "stgcn":
            ds = read_stgcn_arrays(f.data, f.labels)
            names = [M.ntu_stem(n) for n in ds.names]
            load = (lambda i, ds=ds: _trailing(_two_bodies(ds.sample(i))))
        elif det.format == "frame50":
            ds = read_frame50_arrays(f.data, f.labels)
            names = [M.ntu_stem(n) for n in ds.names] if f.labels.suffix == ".pkl" else None
            load = (lambda i, ds=ds: _two_bodies(ds.sample(i)))
        else:
            ds = read_hitrs_arrays(f.data, f.labels, f.info)
            t = ds.data.shape[2]
            bad = np.flatnonzero((ds.lengths < 1) | (ds.lengths > t))
            if len(bad):
                raise SkeletonFormatError(f.info, None, f"entry {int(bad[0])}: frame_num {int(ds.lengths[bad[0]])} is "
                                          f"not 1..{t} (the arrays hold {t} frames)")
            names = None
            load = (lambda i, ds=ds: _two_bodies(ds.sample(i)))
        parts.append(Part(f.benchmark, f.part, f.data, ds.labels, names, load,
                          [q for q in (f.data, f.labels, f.info) if q is not None]))
    return parts


def _infer_benchmark(parts: list[Part], dataset: str, raw: Path) -> None:
    """Files directly in --raw: name the benchmark by the official rule their names follow."""
    unknown = [p for p in parts if p.benchmark is None]
    if not unknown:
        return
    if any(p.names is None for p in unknown):
        raise SkeletonFormatError(raw, None, "array files whose folder name does not say their benchmark and that "
                                  "store no sample names, so the split cannot be recognised",
                                  "put them in a folder named xsub, xview or xset, as the tool writes them")
    rules = {}
    for p in unknown:
        good = [n for n in p.names if M.NTU_NAME_RE.fullmatch(n)]
        fields = M.parse_ntu_names(good) if good else None
        cols = M.ntu_split_columns(fields, dataset) if fields is not None else {}
        for key, col in cols.items():
            rules.setdefault(key[6:], True)
            rules[key[6:]] &= bool((col == p.part).all())
    match = [k for k, ok in rules.items() if ok]
    if len(match) != 1:
        raise SkeletonFormatError(raw, None, "the arrays' train / test names follow "
                                  + ("none" if not match else "more than one") + f" of the official {dataset} "
                                  "splits, so their benchmark cannot be named", "put them in a folder named xsub, "
                                  "xview or xset, as the tool writes them")
    for p in unknown:
        p.benchmark = match[0]


def _fingerprint(dataset: str, fmt: str, parts: list[Part], missing: Path | None) -> str:
    files = sorted({q for p in parts for q in p.inputs})
    sig = {"format": FORMAT_VERSION, "dataset": dataset, "source": fmt,
           "files": [[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in files],
           "missing": hashlib.sha256(missing.read_bytes()).hexdigest() if missing else None}
    return hashlib.sha256(json.dumps(sig, sort_keys=True).encode()).hexdigest()


@dataclass
class _Sample:
    name: str
    label: int
    where: tuple[int, int]          # (part index, row) the data is read from
    splits: dict[str, str]


def _join(parts: list[Part], dataset: str, skip: set[str], log) -> tuple[dict[str, _Sample], list, int]:
    """Samples by name (or by content where the format stores no names); bad rows; missing-listed."""
    samples: dict[str, _Sample] = {}
    bad, listed = [], 0
    named = all(p.names is not None for p in parts)
    benchmarks = sorted({p.benchmark for p in parts}, key=lambda b: (SPLIT_ORDER.index(b) if b in SPLIT_ORDER else 9, b))
    if not named and skip:
        log(f"{dataset}: note: the arrays store no sample names, so the missing-skeleton list cannot be applied")
    content_keys = len(benchmarks) > 1 and not named
    order = sorted(range(len(parts)), key=lambda k: (benchmarks.index(parts[k].benchmark), parts[k].part != "train"))
    for k in order:
        p = parts[k]
        seen_here: Counter = Counter()
        for i in range(len(p.labels)):
            where = f"{p.file.name}:{i}"
            label = int(p.labels[i])
            if named:
                name = p.names[i]
                if not M.NTU_NAME_RE.fullmatch(name):
                    bad.append((where, f"{p.file}: sample {i}: {name!r}: unknown sample-name pattern "
                                       "(expected SsssCcccPpppRrrrAaaa)"))
                    continue
                if name in skip:
                    listed += 1
                    continue
                key = name
            elif content_keys:
                digest = hashlib.sha256(np.ascontiguousarray(p.load(i), dtype="<f4").tobytes()).hexdigest()
                seen_here[digest] += 1
                key = f"{digest}:{seen_here[digest]}"   # the k-th identical copy matches the k-th elsewhere
            else:
                key = f"{p.benchmark}-{p.part}-{i:06d}"
            s = samples.get(key)
            if s is None:
                name = key if named or not content_keys else f"{p.benchmark}-{p.part}-{i:06d}"
                samples[key] = _Sample(name, label, (k, i), {p.benchmark: p.part})
            elif p.benchmark in s.splits:
                bad.append((where, f"{p.file}: sample {i}: {s.name} is listed twice in benchmark {p.benchmark}"))
            elif s.label != label:
                bad.append((where, f"{p.file}: sample {i}: {s.name} has label {label} here but {s.label} in "
                                   f"{parts[s.where[0]].file.name}"))
            else:
                s.splits[p.benchmark] = p.part
    return samples, bad, listed


def prepare_arrays(dataset: str, det: Detected, out: Path, *, missing: Path | None, force: bool, log) -> Path:
    """Build (or verify) the cache of ``dataset`` from the array source ``det``; returns ``out``."""
    copies: set = set()
    parts = _parts(det, dataset, copies)
    _infer_benchmark(parts, dataset, det.path)
    check_writable_folder(out, "--out")
    fingerprint = _fingerprint(dataset, det.format, parts, missing)
    if not force and is_up_to_date(out, fingerprint):
        log(f"{dataset}: cache {out} is up to date (same inputs); nothing to do")
        return out
    skip = M.read_missing_list(missing) if missing else set()
    samples, bad, listed = _join(parts, dataset, skip, log)

    def build(tmp: Path):
        return _build(dataset, det, tmp, out, parts, samples, list(bad), listed, fingerprint, missing, copies, log)

    meta, bad_out = build_in_place_of(out, fingerprint, force, log, dataset, build)
    if meta is not None:
        report_prepared(dataset, out, meta, bad_out, log)
    return out


def _build(dataset, det, tmp, final, parts, samples, bad, listed, fingerprint, missing, copies, log):
    num_classes = NUM_CLASSES[dataset]
    rows = sorted(samples.values(), key=lambda s: s.name)
    names = [s.name for s in rows]
    good = pd.Series(names, dtype=object).str.fullmatch(M.NTU_NAME_RE.pattern).to_numpy(dtype=bool)
    fields = pd.DataFrame({c: np.full(len(rows), -1, dtype=np.int64) for c in M.NTU_FIELDS})
    if good.any():
        fields.loc[good, list(M.NTU_FIELDS)] = M.parse_ntu_names([n for n, g in zip(names, good) if g]).to_numpy()
    outside = 0
    keep, lengths, bodies = [], [], []
    with AtomicFile(tmp / "data.bin") as fh:
        for j, s in enumerate(rows):
            p = parts[s.where[0]]
            where = f"{p.file.name}:{s.where[1]}"
            if good[j] and dataset == "ntu60" and not M.in_ntu60(fields.iloc[[j]])[0]:
                outside += 1
                continue
            if not 0 <= s.label < num_classes:
                bad.append((where, f"{p.file}: sample {s.where[1]} ({s.name}): label {s.label} is outside "
                                   f"0..{num_classes - 1}"))
                continue
            if good[j] and fields["action"].iat[j] - 1 != s.label:
                bad.append((where, f"{p.file}: sample {s.where[1]}: label {s.label} disagrees with action "
                                   f"A{s.name[-3:]} of {s.name}"))
                continue
            x = p.load(s.where[1])
            if not np.isfinite(x).all():
                bad.append((where, f"{p.file}: sample {s.where[1]} ({s.name}): non-finite coordinates (NaN/inf)"))
                continue
            present = np.any(x.reshape(len(x), 2, -1) != 0, axis=(0, 2)) if len(x) else np.zeros(2, bool)
            if not present.any():
                bad.append((where, f"{p.file}: sample {s.where[1]} ({s.name}): no body in any frame"))
                continue
            fh.write(np.ascontiguousarray(x, dtype="<f4").tobytes())
            keep.append(j)
            lengths.append(len(x))
            bodies.append(2 if present[1] else 1)
    if not keep:
        raise nothing_prepared(final, det.path, bad, len(rows) + len(bad), "sample(s)")
    kept = [rows[j] for j in keep]
    lengths = np.asarray(lengths, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    f = fields.iloc[keep].reset_index(drop=True)
    man = pd.DataFrame({"name": [s.name for s in kept], "length": lengths, "bodies": np.asarray(bodies, np.int64),
                        "label": np.asarray([s.label for s in kept], dtype=np.int64)})
    for col in M.NTU_FIELDS[:-1]:
        man[col] = f[col].to_numpy()
    benchmarks = sorted({p.benchmark for p in parts}, key=lambda b: (SPLIT_ORDER.index(b) if b in SPLIT_ORDER else 9, b))
    for b in benchmarks:
        man[f"split:{b}"] = [s.splits.get(b, "") for s in kept]
    official = M.ntu_split_columns(f, dataset) if (f["setup"] >= 0).all() else {}
    for b in benchmarks:
        key = f"split:{b}"
        if key in official:
            differ = int((official[key] != man[key].to_numpy()).sum())
            if differ:
                log(f"{dataset}: note: the arrays' {b} split differs from the official rule on {differ} sample(s); "
                    "the arrays' split is used")
    man["source"] = [f"{parts[s.where[0]].file.relative_to(det.path) if det.path.is_dir() else parts[s.where[0]].file.name}"
                     f":{s.where[1]}" for s in kept]
    save_npy_atomic(tmp / "offsets.npy", offsets)
    with AtomicFile(tmp / "manifest.csv", "w") as fh:
        man.to_csv(fh, index=False)
    atomic_write_text(tmp / "bad_files.txt", "".join(f"{name}\t{why}\n" for name, why in bad))
    notes = dict(NOTES[det.format])
    if copies:
        notes["copied_second_body_removed"] = len(copies)
    meta = {"format_version": FORMAT_VERSION, "dataset": dataset, "detection": False,
            "num_classes": num_classes, "class_names": list(CLASS_NAMES.get(dataset, ())),
            "splits": benchmarks, "samples": len(kept), "frames": int(offsets[-1]),
            "frame_shape": list(FRAME_SHAPE), "fingerprint": fingerprint, "raw": str(det.path.resolve()),
            "source_format": det.format, "source_notes": notes,
            "raw_coordinates": det.format in ("stgcn", "hitrs"),
            "fixed_length": 50 if det.format == "frame50" else None,
            "bad_files": len(bad), "missing_listed": listed, "outside_dataset": outside,
            "inputs": [str(missing)] if missing else [], "checksums": checksums(tmp)}
    meta = write_meta(tmp, meta)
    return meta, bad
