"""The prepared cache: one concatenated float32 array + offsets + a CSV manifest + meta.json.

Why: training reads sequences at memory speed from a memory-mapped file instead of parsing
text. Layout of a cache folder (all written by ``datasets.prepare``):

- ``data.bin``     float32, C order, shape (total_frames, 2, 25, 3) (little-endian, no header)
- ``offsets.npy``  int64 (N + 1,): sample i is ``data[offsets[i]:offsets[i + 1]]``
- ``manifest.csv`` one row per sample (name, length, bodies, label, fields, ``split:<name>``)
- PKU-layout only: ``frame_labels.npy`` int16 (total_frames,) aligned with data.bin,
  ``intervals.npy`` int64 (K, 4) and ``interval_offsets.npy`` int64 (N + 1,)
- ``bad_files.txt`` the inputs that were skipped, with the reason
- ``meta.json``    written LAST: dataset, shapes, classes, splits, input fingerprint, the sha256
  of every other file and its own ``meta_sha256`` (over the rest of it). A folder without it
  (e.g. an interrupted prepare) is not a cache.

Opening verifies the cache whole before any work (``SkeletonCache._cross_check``): meta.json
against its own checksum, every file against its sha256, and manifest, offsets, labels, names,
lengths, detection arrays and the dataset's identity against each other; a cache that
disagrees is refused with one line naming the file and the first bad row.

Every file is written through ``plumbing.files`` (temporary name, fsync, rename).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from plumbing.files import SAFE_NAME_RE, AtomicFile, UnreadableFileError, atomic_write_text, check_name, read_json

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


META_SHA_KEY = "meta_sha256"
MAX_CLASSES = 10_000


def meta_digest(meta: dict) -> str:
    """sha256 of meta.json's content without its own checksum (canonical JSON)."""
    body = {k: v for k, v in meta.items() if k != META_SHA_KEY}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write_meta(out: Path, meta: dict) -> dict:
    """Write meta.json (LAST, atomically) with its own checksum; returns what was written."""
    meta = {**meta, META_SHA_KEY: meta_digest(meta)}
    atomic_write_text(Path(out) / "meta.json", json.dumps(meta, indent=1))
    return meta


def _rows(mask) -> int | None:
    """Index of the first True in ``mask``, or None."""
    hits = np.flatnonzero(np.asarray(mask))
    return int(hits[0]) if len(hits) else None


def _identity(dataset: str, detection: bool) -> tuple[bool | None, int | None, tuple | None]:
    """What a known dataset must look like: (detection, num_classes, class names); None = free."""
    from .classes import CLASS_NAMES

    if dataset in ("ntu60", "ntu120"):
        return False, int(dataset[3:]), tuple(CLASS_NAMES[dataset])
    if dataset == "pkummd":
        return True, 51, tuple(CLASS_NAMES["pkummd"])
    if dataset == "synthetic-ntu":
        return False, None, None
    if dataset == "synthetic-pkummd":
        return True, None, None
    return None, None, None


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
        if not meta_path.exists():   # a FIFO or a folder named meta.json: read_json says what it is
            raise ValueError(f"{self.path}: not a complete cache (no meta.json; an interrupted "
                             "prepare leaves this state) - run 'python -m datasets prepare' again")
        try:
            self.meta = read_json(meta_path, MAX_META_BYTES)   # a regular file, any JSON survives
            if not isinstance(self.meta, dict):
                raise UnreadableFileError("not a JSON object")
        except UnreadableFileError as err:
            raise ValueError(f"{meta_path}: unreadable ({err}); re-run prepare") from None
        if self.meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{self.path}: cache format {self.meta.get('format_version')} but this "
                             f"code reads format {FORMAT_VERSION}; re-run prepare")
        # a prepared cache carries checksums, meta.json's own among them; a hand-made one without any
        # (tests, tools) is unverified and rests on the cross-checks below
        if "checksums" in self.meta and META_SHA_KEY not in self.meta:
            raise CorruptCacheError(f"{meta_path}: no {META_SHA_KEY} (prepared by an older version, or edited); "
                                    "re-run 'python -m datasets prepare' to rebuild the cache")
        if "checksums" in self.meta and self.meta[META_SHA_KEY] != meta_digest(self.meta):
            raise CorruptCacheError(f"{meta_path}: checksum mismatch (meta.json was edited or torn); re-run "
                                    "'python -m datasets prepare' to rebuild the cache")
        checks = self.meta.get("checksums", {})
        if not isinstance(checks, dict) or not all(isinstance(v, str) for v in checks.values()):
            raise ValueError(f"{meta_path}: checksums is not an object of sha256 strings; re-run prepare")
        if verify:
            for name, expected in checks.items():
                check_name(name, f"{meta_path}: checksummed file")
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
            if not isinstance(self.meta["splits"], list) or not isinstance(self.meta.get("class_names", []), list):
                raise TypeError("splits and class_names must be lists")
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as err:
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
            where = "" if labels is None else f":{_rows(labels.isna() | (labels < 0)) + 2}"
            what = "" if labels is None else f" (label {str(self.manifest['label'].iloc[int(where[1:]) - 2])!r})"
            raise ValueError(f"{self.path / 'manifest.csv'}{where}: class labels missing or negative{what} (a "
                             "detection cache has none); re-run prepare, or pass a PKU-MMD cache as pkummd=DIR")
        self._cross_check(meta_path)
        self._data = (np.memmap(self.path / "data.bin", dtype="<f4", mode="r", shape=(frames, *FRAME_SHAPE))
                      if frames else np.zeros((0, *FRAME_SHAPE), dtype=np.float32))
        if self.is_detection:
            self._frame_labels = np.load(self.path / "frame_labels.npy", mmap_mode="r", allow_pickle=False)
            self._intervals = np.load(self.path / "intervals.npy", allow_pickle=False)
            self._interval_offsets = np.load(self.path / "interval_offsets.npy", allow_pickle=False)

    def _cross_check(self, meta_path: Path) -> None:
        """Manifest, offsets, labels, names, detection arrays and the dataset identity
        agree; else ValueError naming the file and the first bad row (CSV line = row + 2)."""
        man_path, man = self.path / "manifest.csv", self.manifest
        fix = "; re-run 'python -m datasets prepare' to rebuild the cache"

        def bad_row(mask, what) -> None:
            row = _rows(mask)
            if row is not None:
                raise ValueError(f"{man_path}:{row + 2}: {what(row)}{fix}")

        want_det, want_classes, want_names = _identity(self.dataset, self.is_detection)
        if want_det is not None and want_det != self.is_detection:
            raise ValueError(f"{meta_path}: dataset {self.dataset!r} is "
                             f"{'a detection' if want_det else 'an NTU-layout'} dataset, but the cache says "
                             f"detection={self.is_detection}{fix}")
        if not 0 < self.num_classes <= MAX_CLASSES:
            raise ValueError(f"{meta_path}: num_classes {self.num_classes} is not in 1..{MAX_CLASSES}{fix}")
        if want_classes is not None and self.num_classes != want_classes:
            raise ValueError(f"{meta_path}: dataset {self.dataset!r} has {want_classes} classes, but the cache says "
                             f"num_classes {self.num_classes}{fix}")
        if want_names is not None and self.class_names and tuple(self.class_names) != want_names:
            raise ValueError(f"{meta_path}: class_names are not {self.dataset}'s{fix}")
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(f"{meta_path}: {len(self.class_names)} class_names for num_classes "
                             f"{self.num_classes}{fix}")
        names = man["name"].astype(str)
        dup = names.duplicated(keep="first").to_numpy()
        bad_row(dup, lambda r: f"sample name {names.iloc[r]!r} appears twice (first on line "
                               f"{int(np.flatnonzero((names == names.iloc[r]).to_numpy())[0]) + 2})")
        lengths = np.diff(self.offsets)
        bad_row(lengths <= 0, lambda r: f"sample {names.iloc[r]!r} has {int(lengths[r])} frames in offsets.npy")
        for col in ("length", "bodies", "label"):
            if col not in man:
                raise ValueError(f"{man_path}: no column {col!r}{fix}")
            values = pd.to_numeric(man[col], errors="coerce").to_numpy(dtype=float)
            bad_row(~np.isfinite(values) | (values != np.round(values)),
                    lambda r, col=col: f"{col} {str(man[col].iloc[r])!r} is not an integer")
        given = man["length"].to_numpy(dtype=np.int64)
        bad_row(given != lengths, lambda r: f"length {int(given[r])} of {names.iloc[r]!r}, but offsets.npy gives "
                                            f"{int(lengths[r])} frames")
        bodies = man["bodies"].to_numpy(dtype=np.int64)
        bad_row((bodies < 0) | (bodies > FRAME_SHAPE[0]), lambda r: f"bodies {int(bodies[r])} is not 0..{FRAME_SHAPE[0]}")
        labels = man["label"].to_numpy(dtype=np.int64)
        if self.is_detection:
            bad_row(labels != -1, lambda r: f"label {int(labels[r])} in a detection cache (videos carry -1)")
        else:
            bad_row((labels < 0) | (labels >= self.num_classes),
                    lambda r: f"label {int(labels[r])} of {names.iloc[r]!r} is outside 0..{self.num_classes - 1}")
            if self.dataset.startswith(("ntu", "synthetic-ntu")):
                action = names.str.extract(r"A([0-9]{3})\Z")[0]
                act = pd.to_numeric(action, errors="coerce").to_numpy(dtype=float)
                bad_row(np.isfinite(act) & (act - 1 != labels),
                        lambda r: f"label {int(labels[r])} of {names.iloc[r]!r}, whose name says action "
                                  f"{int(act[r])} (label {int(act[r]) - 1})")
        if self.is_detection:
            self._cross_check_detection(man_path, names, lengths, bad_row, fix)

    def _cross_check_detection(self, man_path, names, lengths, bad_row, fix) -> None:
        path = self.path
        try:
            fl = np.load(path / "frame_labels.npy", mmap_mode="r", allow_pickle=False)
            iv = np.load(path / "intervals.npy", allow_pickle=False)
            io = np.load(path / "interval_offsets.npy", allow_pickle=False)
        except (OSError, ValueError) as err:
            raise ValueError(f"{path}: detection arrays unreadable ({err}){fix}") from None
        if fl.ndim != 1 or len(fl) != int(self.offsets[-1]) or fl.dtype.kind not in "iu":
            raise ValueError(f"{path / 'frame_labels.npy'}: {fl.shape} {fl.dtype}, not one integer per frame of "
                             f"data.bin ({int(self.offsets[-1])}){fix}")
        if iv.ndim != 2 or iv.shape[1] != 4 or iv.dtype.kind not in "iu":
            raise ValueError(f"{path / 'intervals.npy'}: shape {iv.shape} {iv.dtype}, not (K, 4) integers{fix}")
        if (io.ndim != 1 or len(io) != len(names) + 1 or io.dtype.kind not in "iu" or int(io[0]) != 0
                or int(io[-1]) != len(iv) or (np.diff(io) < 0).any()):
            raise ValueError(f"{path / 'interval_offsets.npy'}: does not index intervals.npy per video{fix}")
        if "actions" in self.manifest:
            actions = pd.to_numeric(self.manifest["actions"], errors="coerce").to_numpy(dtype=float)
            counts = np.diff(io)
            bad_row(actions != counts, lambda r: f"actions {self.manifest['actions'].iloc[r]!r} of {names.iloc[r]!r}, "
                                                 f"but interval_offsets.npy gives {int(counts[r])}")
        row = _rows((iv[:, 0] < 1) | (iv[:, 0] > self.num_classes) | (iv[:, 1] < 0) | (iv[:, 2] < iv[:, 1]))
        if row is not None:
            raise ValueError(f"{path / 'intervals.npy'}: row {row} {iv[row].tolist()} is not (label 1.."
                             f"{self.num_classes}, start >= 0, end >= start, confidence){fix}")
        top = int(fl.max()) if len(fl) else 0
        if len(fl) and (int(fl.min()) < 0 or top > self.num_classes):
            raise ValueError(f"{path / 'frame_labels.npy'}: frame labels outside 0..{self.num_classes}{fix}")

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
