"""The prepared cache: one concatenated float32 array + offsets + a CSV manifest + meta.json.

Why: training reads sequences at memory speed from a memory-mapped file instead of parsing
text. Layout of a cache folder (all written by ``datasets.prepare``):

- ``data.bin``     float32, C order, shape (total_frames, 2, 25, 3) (little-endian, no header)
- ``offsets.npy``  int64 (N + 1,): sample i is ``data[offsets[i]:offsets[i + 1]]``
- ``manifest.csv`` one row per sample (name, length, bodies, label, fields, ``split:<name>``)
- PKU-layout only: ``frame_labels.npy`` int16 (total_frames,) aligned with data.bin,
  ``intervals.npy`` int64 (K, 4) and ``interval_offsets.npy`` int64 (N + 1,)
- ``bad_files.txt`` the inputs that were skipped, with the reason
- ``meta.json``    written LAST: dataset, shapes, classes, splits, input fingerprint. A folder
  without it (e.g. an interrupted prepare) is not a cache.

Every file is written through ``plumbing.files`` (temporary name, fsync, rename).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from plumbing.files import SAFE_NAME_RE, AtomicFile, check_name

FORMAT_VERSION = 1
MAX_META_BYTES = 16 * 2**20   # a real meta.json is a few KB (checksums, class names)
FRAME_SHAPE = (2, 25, 3)
PARTS = ("train", "test")


def save_npy_atomic(path, array: np.ndarray) -> None:
    with AtomicFile(path) as fh:
        np.save(fh, array)


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def checksums(folder: Path) -> dict[str, str]:
    """sha256 of every data file of a cache (all but meta.json), recorded in meta.json."""
    return {p.name: file_sha256(p) for p in sorted(folder.iterdir())
            if p.is_file() and p.name != "meta.json" and not p.name.startswith(".")}


class CorruptCacheError(ValueError):
    """A cache file does not match the checksum recorded when it was prepared."""


# ----------------------------------------------------------------------------- reading
class SkeletonCache:
    """A prepared dataset. ``sequence(i)`` is a memory-mapped (length, 2, 25, 3) view.

    ``verify`` (default) checks every file against the sha256 recorded by prepare, so a
    truncated or corrupted cache is refused (and rebuilt by prepare / ensure_synthetic)."""

    def __init__(self, path, verify: bool = True):
        self.path = Path(path)
        meta_path = self.path / "meta.json"
        if not self.path.is_dir():
            raise FileNotFoundError(f"{self.path}: no such cache folder (run 'python -m datasets prepare ...')")
        if not meta_path.is_file():
            raise ValueError(f"{self.path}: not a complete cache (no meta.json; an interrupted "
                             "prepare leaves this state) - run 'python -m datasets prepare' again")
        try:
            if meta_path.stat().st_size > MAX_META_BYTES:
                raise ValueError(f"{meta_path.stat().st_size:,} bytes, not a meta.json of ours")
            self.meta = json.loads(meta_path.read_text())
            if not isinstance(self.meta, dict):
                raise ValueError("not a JSON object")
        except ValueError as err:
            raise ValueError(f"{meta_path}: unreadable ({err}); re-run prepare") from None
        if self.meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{self.path}: cache format {self.meta.get('format_version')} but this "
                             f"code reads format {FORMAT_VERSION}; re-run prepare")
        if verify:
            for name, expected in self.meta.get("checksums", {}).items():
                target = self.path / name
                if not target.is_file() or file_sha256(target) != expected:
                    raise CorruptCacheError(f"{target}: missing or checksum mismatch (truncated or corrupted "
                                            "cache); re-run 'python -m datasets prepare' to rebuild it")
        try:
            self.dataset: str = str(self.meta["dataset"])
            self.num_classes: int = int(self.meta["num_classes"])
            self.splits: list[str] = [str(s) for s in self.meta["splits"]]
            self.class_names: list[str] = list(self.meta.get("class_names", []))
            frames, n = int(self.meta["frames"]), int(self.meta["samples"])
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ValueError(f"{meta_path}: incomplete or malformed meta.json ({type(err).__name__}: {err}); "
                             "re-run 'python -m datasets prepare' to rebuild the cache") from None
        check_name(self.dataset, f"{meta_path}: dataset name")
        for s in self.splits:
            check_name(s, f"{meta_path}: split name")
        try:
            self.manifest = pd.read_csv(self.path / "manifest.csv", dtype={"name": str, "view": str},
                                        keep_default_na=False, na_values=[])
            for s in self.splits:
                self.manifest[f"split:{s}"] = self.manifest[f"split:{s}"].astype(str)
            names = self.manifest["name"]
        except (OSError, KeyError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise ValueError(f"{self.path / 'manifest.csv'}: unreadable or missing columns ({err}); "
                             "re-run 'python -m datasets prepare'") from None
        unsafe = ~names.astype(str).str.fullmatch(SAFE_NAME_RE.pattern)
        if unsafe.any():
            row = int(np.flatnonzero(unsafe.to_numpy())[0])
            raise ValueError(f"{self.path / 'manifest.csv'}:{row + 2}: sample name {names.iloc[row]!r} is not a plain "
                             "file name (ASCII letters, digits, '_', '-', '.' only; no '/', '..' or control "
                             "characters); re-run 'python -m datasets prepare'")
        self.offsets = np.load(self.path / "offsets.npy", allow_pickle=False)
        expect = frames * int(np.prod(FRAME_SHAPE)) * 4
        size = (self.path / "data.bin").stat().st_size
        if (len(self.manifest) != n or self.offsets.ndim != 1 or len(self.offsets) != n + 1
                or self.offsets.dtype.kind not in "iu" or int(self.offsets[0]) != 0 or int(self.offsets[-1]) != frames
                or (np.diff(self.offsets) < 0).any() or size != expect):
            raise ValueError(f"{self.path}: cache files disagree with meta.json (truncated or mixed "
                             "versions); re-run prepare")
        self.is_detection = bool(self.meta.get("detection", False))
        labels = pd.to_numeric(self.manifest["label"], errors="coerce") if "label" in self.manifest else None
        if not self.is_detection and (labels is None or labels.isna().any() or (labels < 0).any()):
            raise ValueError(f"{self.path / 'manifest.csv'}: class labels missing or negative (a detection cache "
                             "has none); re-run prepare, or pass a PKU-MMD cache as pkummd=DIR")
        self._data = (np.memmap(self.path / "data.bin", dtype="<f4", mode="r", shape=(frames, *FRAME_SHAPE))
                      if frames else np.zeros((0, *FRAME_SHAPE), dtype=np.float32))
        if self.is_detection:
            self._frame_labels = np.load(self.path / "frame_labels.npy", mmap_mode="r", allow_pickle=False)
            self._intervals = np.load(self.path / "intervals.npy", allow_pickle=False)
            self._interval_offsets = np.load(self.path / "interval_offsets.npy", allow_pickle=False)

    # -- samples -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.manifest)

    def __repr__(self) -> str:
        return f"SkeletonCache({self.dataset!r}, {len(self)} samples, {self.meta['frames']} frames, {self.path})"

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def labels(self) -> np.ndarray:
        return self.manifest["label"].to_numpy(dtype=np.int64)

    @property
    def names(self) -> list[str]:
        return self.manifest["name"].tolist()

    def sequence(self, i: int) -> np.ndarray:
        """float32 (length, 2, 25, 3) memory-mapped view of sample ``i`` (read-only)."""
        i = int(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"sample {i} out of range for {len(self)} samples in {self.path}")
        i %= len(self)
        return self._data[self.offsets[i]:self.offsets[i + 1]]

    def gather(self, frame_index: np.ndarray) -> np.ndarray:
        """float32 frames ``(*frame_index.shape, 2, 25, 3)`` at global frame positions (rows of
        data.bin; sample i starts at ``offsets[i]``): one vectorised read for a whole batch."""
        return np.asarray(self._data[np.asarray(frame_index, dtype=np.int64)], dtype=np.float32)

    def indices(self, split: str, part: str) -> np.ndarray:
        """int64 rows of ``split`` ("xsub", ...) part ("train" / "test")."""
        if split not in self.splits:
            raise ValueError(f"{self.dataset} has no split {split!r}; available: {', '.join(self.splits)}")
        if part not in PARTS:
            raise ValueError(f"part must be 'train' or 'test', got {part!r}")
        return np.flatnonzero(self.manifest[f"split:{split}"].to_numpy() == part).astype(np.int64)

    # -- detection (PKU layout) --------------------------------------------------------------
    def _need_detection(self, what: str):
        if not self.is_detection:
            raise ValueError(f"{what} exists only for PKU-MMD-layout caches; {self.dataset} is a "
                             "recognition dataset")

    def frame_labels(self, i: int) -> np.ndarray:
        """int64 (length,): 0 = background, c = action c (1..C), end frames exclusive."""
        self._need_detection("frame_labels")
        i = int(i) % len(self)
        return np.asarray(self._frame_labels[self.offsets[i]:self.offsets[i + 1]], dtype=np.int64)

    def intervals(self, i: int) -> np.ndarray:
        """int64 (K, 4) rows (label, start, end, confidence) as in the label file."""
        self._need_detection("intervals")
        i = int(i) % len(self)
        return self._intervals[self._interval_offsets[i]:self._interval_offsets[i + 1]].copy()


def open_cache(path, verify: bool = True) -> SkeletonCache:
    """Open a prepared cache folder (ValueError / FileNotFoundError when it is not one;
    CorruptCacheError when a file fails its checksum)."""
    return SkeletonCache(path, verify=verify)


def report_prepared(dataset: str, out: Path, meta: dict, bad: list, log) -> None:
    """One summary of a prepared cache: counts, what was left out and why."""
    log(f"{dataset}: {meta['samples']} samples, {meta['frames']} frames -> {out}")
    extra = []
    if meta["missing_listed"]:
        extra.append(f"{meta['missing_listed']} on the missing-skeleton list")
    if meta["outside_dataset"]:
        extra.append(f"{meta['outside_dataset']} outside {dataset}")
    if extra:
        log(f"{dataset}: not included: " + ", ".join(extra))
    if bad:
        log(f"{dataset}: skipped {len(bad)} bad file(s), listed in {out / 'bad_files.txt'}:")
        for name, why in bad[:10]:
            log(f"  {why}")
        if len(bad) > 10:
            log(f"  ... and {len(bad) - 10} more")


def is_up_to_date(out, fingerprint: str) -> bool:
    """``out`` is a readable cache prepared from inputs with this ``fingerprint`` (a re-run of
    prepare is then a no-op)."""
    try:
        return SkeletonCache(out).meta.get("fingerprint") == fingerprint
    except (OSError, ValueError, KeyError):
        return False
