"""``ensure_synthetic``: the embedded default data, generated and prepared on first use.

``root/raw`` holds the generated raw files (real NTU / PKU-MMD formats), ``root/cache/ntu`` and
``root/cache/pkummd`` the caches. ``root/raw.json`` records (size, seed) once generation has
finished, so an interrupted generation is redone, not trusted. A lock file serialises
concurrent callers (e.g. several ranks of one run).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from plumbing.files import atomic_write_text, replace_path
from plumbing.locks import file_lock

from .cache import SkeletonCache
from .prepare_cache import prepare

SIZES = ("small", "medium", "default")


def _generate(raw: Path, size: str, seed: int) -> None:
    from .synthetic import generate  # imported lazily: written by the synthetic-world module

    tmp = raw.with_name(f"{raw.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    generate(tmp, seed=seed, size=size)
    shutil.rmtree(raw, ignore_errors=True)
    replace_path(tmp, raw)


def ensure_synthetic(root, *, size: str = "small", seed: int = 0, progress: bool = True) -> dict[str, SkeletonCache]:
    """Generate (if needed) and prepare (if needed) the synthetic world; open its two caches."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    root = Path(root)
    raw, cache = root / "raw", root / "cache"
    stamp = root / "raw.json"
    want = {"size": size, "seed": int(seed)}
    with file_lock(root / ".lock"):
        try:
            have = json.loads(stamp.read_text())
        except (OSError, ValueError):
            have = None
        if have != want or not raw.is_dir():
            stamp.unlink(missing_ok=True)
            _generate(raw, size, int(seed))
            atomic_write_text(stamp, json.dumps(want))
        prepare("synthetic", raw, cache, progress=progress)
        return {"ntu": SkeletonCache(cache / "ntu"), "pkummd": SkeletonCache(cache / "pkummd")}
