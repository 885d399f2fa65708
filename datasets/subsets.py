"""Label-fraction subsets of a training split, stored as files of sample NAMES.

Why names: the reference's subsets are index lists that depend on directory order; a file of
names means the same samples on every machine, and its sha256 goes into every result.

Rules (protocols.md):
- recognition / prediction caches: class-stratified. Class c with n_c training samples gets
  max(1, floor(f * n_c)) samples, then the remaining quota up to round(f * N) goes to the
  classes with the largest remainders (ties: lower class id). fraction 1.0 = every sample.
- detection (PKU-layout) caches: by VIDEO: max(1, round(f * videos)) training videos.
- which samples: the ones with the smallest keyed hash ``blake2b(seed, name)``, so a subset
  depends only on (seed, names), not on the order of the cache.
- file names end with the first 16 hex digits of the file's sha256 (content-addressed): a
  record's subset sha256 always matches the file it names.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plumbing.files import atomic_write_bytes, check_name, path_under

from .cache import SkeletonCache


@dataclass(frozen=True)
class Subset:
    names: list[str]
    indices: np.ndarray   # int64 rows of the cache, ascending
    path: Path
    sha256: str
    split: str = ""
    fraction: float = 1.0
    seed: int = 0


def name_keys(names, seed: int) -> np.ndarray:
    """uint64 pseudo-random key per name, fixed by (seed, name)."""
    salt = f"subset-seed-{int(seed)}".encode()[:16]
    return np.array([int.from_bytes(hashlib.blake2b(n.encode(), digest_size=8, salt=salt).digest(), "little")
                     for n in names], dtype=np.uint64)


def stratified_counts(class_sizes: np.ndarray, fraction: float) -> np.ndarray:
    """Per-class sample counts: >= 1 for every present class, total ~ round(fraction * N)."""
    sizes = np.asarray(class_sizes, dtype=np.int64)
    present = sizes > 0
    quota = fraction * sizes
    base = np.where(present, np.maximum(np.floor(quota).astype(np.int64), 1), 0)
    base = np.minimum(base, sizes)
    target = max(int(round(fraction * sizes.sum())), int(base.sum()))
    left = target - int(base.sum())
    if left > 0:
        remainder = np.where(present & (base < sizes), quota - np.floor(quota), -1.0)
        order = np.lexsort((np.arange(len(sizes)), -remainder))   # largest remainder, then class id
        extra = np.zeros_like(base)
        extra[order[:left]] = 1
        base = np.minimum(base + extra * (remainder >= 0)[np.arange(len(sizes))], sizes)
    return base


DIGEST_CHARS = 16   # hex digits of the content's sha256 in the file name


def _file_name(cache: SkeletonCache, split: str, fraction: float, seed: int, sha256: str) -> str:
    """``<dataset>_<split>_<pct>pct_seed<seed>_<sha256[:16]>.txt``: content-addressed, so two
    subsets that differ (0.4999999 and 0.5, or two caches of one name) never share a file."""
    check_name(cache.dataset, f"{cache.path}: dataset name")  # it comes from the cache's meta.json
    check_name(split, "split name")
    return f"{cache.dataset}_{split}_{fraction * 100:.12g}pct_seed{int(seed)}_{sha256[:DIGEST_CHARS]}.txt"


def _write_once(path: Path, blob: bytes) -> None:
    """Write ``blob`` to its content-addressed ``path``; a file already there must hold the same
    bytes (a different one is a hash-prefix collision or an edited file: refused, kept)."""
    if path.is_file() and not path.is_symlink():
        try:
            same = path.read_bytes() == blob
        except OSError:
            same = False
        if same:
            return
        raise FileExistsError(f"{path}: a different subset file already has this name (edited, or a "
                         "sha256-prefix collision); move it away and run again")
    atomic_write_bytes(path, blob)


def make_subset(cache: SkeletonCache, split: str, fraction: float, seed: int, out_dir, root=None) -> Subset:
    """Draw the subset, write it (atomically) to ``out_dir`` and return it with its sha256.

    ``root`` (default ``out_dir``): the folder the file must stay under once every symlink is
    resolved (the runner passes ``--out``, so a ``subsets`` link out of it is refused)."""
    fraction = float(fraction)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    rows = cache.indices(split, "train")
    if len(rows) == 0:
        raise ValueError(f"{cache.dataset} split {split!r} has no training samples")
    names = cache.manifest["name"].to_numpy(dtype=object)[rows]
    keys = name_keys(names, seed)
    if fraction >= 1.0:
        chosen = rows
    elif cache.is_detection:
        k = max(1, int(round(fraction * len(rows))))
        chosen = rows[np.argsort(keys, kind="stable")[:k]]
    else:
        labels = cache.labels[rows]
        classes, inverse = np.unique(labels, return_inverse=True)
        want = stratified_counts(np.bincount(inverse, minlength=len(classes)), fraction)
        order = np.lexsort((keys, inverse))                      # by class, then key
        sorted_cls = inverse[order]
        first_of_class = np.searchsorted(sorted_cls, np.arange(len(classes)))
        rank = np.arange(len(order)) - first_of_class[sorted_cls]
        chosen = rows[order[rank < want[sorted_cls]]]
    chosen = np.sort(chosen).astype(np.int64)
    chosen_names = sorted(cache.manifest["name"].to_numpy(dtype=object)[chosen].tolist())
    blob = "".join(n + "\n" for n in chosen_names).encode()
    digest = hashlib.sha256(blob).hexdigest()
    name = _file_name(cache, split, fraction, seed, digest)
    if root is None:
        path = path_under(out_dir, name)
    else:   # out_dir below root: every level from root down is resolved and verified
        path = path_under(root, *Path(out_dir).relative_to(root).parts, name)
    _write_once(path, blob)
    return Subset(chosen_names, chosen, path, digest, split, fraction, int(seed))


def load_subset(cache: SkeletonCache, path) -> Subset:
    """Read a names file (ours or a user's) back into cache rows; unknown names are an error."""
    p = Path(path)
    blob = p.read_bytes()
    names = [ln.strip() for ln in blob.decode().splitlines() if ln.strip()]
    index = {n: i for i, n in enumerate(cache.manifest["name"].tolist())}
    unknown = [n for n in names if n not in index]
    if unknown:
        raise ValueError(f"{p}: {len(unknown)} name(s) not in {cache.path}, e.g. {unknown[:3]}")
    rows = np.sort(np.array([index[n] for n in names], dtype=np.int64))
    return Subset(sorted(names), rows, p, hashlib.sha256(blob).hexdigest())
