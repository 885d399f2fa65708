"""Read result records (``<results>/records/*.json``) into a tidy pandas frame.

The one reader of record files: ``benchmarks`` (summary.csv, the CI baseline) and ``reports``
both load through :func:`load`, so a record is good or bad the same way everywhere. It imports
nothing of the suite, so the runner can use it without reports depending on benchmarks.
The report never silently drops a run: unreadable or wrong-typed files are returned as
``skipped`` (and shown in the HTML / printed), and a seed run twice keeps its latest record
(by ``finished_at``, then run id).
Smoke records (``"smoke": true``, ``benchmarks.run --smoke``) are not results: ``load`` counts
them in ``smoke`` and leaves them out unless ``include_smoke``; included, their profile reads
``<profile>+smoke`` so they form their own section, captioned SMOKE, never mixed with results.
"""
from __future__ import annotations

import math
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from plumbing.files import read_json

KEYS = ["run_id", "method", "variant", "stream", "levels", "task", "dataset", "split",
        "label_fraction", "seed", "profile"]
LEVEL_ORDER = "FCV"
PROFILE_RANK = {"paper": 0, "small": 1, "ci": 2}
MAX_RECORD_BYTES = 16 * 2**20   # records are a few KB; a bigger file is not one of ours
_OPTIONAL_TEXT = ("method", "variant", "stream", "split", "profile", "run_id")
_OPTIONAL_DICT = ("config", "provenance", "artifacts", "subset", "pretrain")
_NESTED_TEXT = (("provenance", "finished_at"), ("provenance", "device"), ("provenance", "git_commit"),
                ("pretrain", "id"), ("pretrain", "log"), ("subset", "path"), ("subset", "sha256"))
SMOKE_SUFFIX = "+smoke"


def is_smoke(record: dict[str, Any]) -> bool:
    return record.get("smoke") is True


def is_smoke_profile(profile: Any) -> bool:
    return str(profile or "").endswith(SMOKE_SUFFIX)


RECORD_VERSION = 1


@dataclass(frozen=True)
class Record:
    """One run's result as written to ``records/<run_id>.json`` (every field: docs/records.md).

    The runner builds one per run and :func:`load` reads the files back, so the schema lives
    in one place; ``problem`` states what a file needs to be usable."""

    run_id: str
    method: str
    variant: str
    stream: str
    levels: str | None
    task: str
    dataset: str
    split: str
    label_fraction: float
    seed: int
    profile: str
    precision: str
    smoke: bool
    metrics: dict[str, float | None]
    config: dict[str, Any]
    config_sha256: str
    subset: dict[str, Any] | None
    pretrain: dict[str, Any] | None
    protocol: dict[str, Any]
    provenance: dict[str, Any]
    artifacts: dict[str, str]
    pretext: dict[str, float] | None = None
    streams: list[str] | None = None          # "-3s" records: the stream models combined
    plugins: list[dict[str, Any]] | None = None   # methods imported with --plugin
    record_version: int = RECORD_VERSION

    def to_json(self) -> dict[str, Any]:
        """The JSON object; optional fields that do not apply are left out, non-finite metrics
        become null."""
        out = {"record_version": self.record_version}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("streams", "plugins") and not value:
                continue
            out[f.name] = value
        out["metrics"] = {k: (float(v) if v is not None and math.isfinite(float(v)) else None)
                          for k, v in self.metrics.items()}
        return out


@dataclass
class Loaded:
    records: list[dict[str, Any]]
    skipped: list[str] = field(default_factory=list)  # "path: reason"
    smoke: int = 0                                     # smoke records seen (left out unless asked)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def problem(rec: Any) -> str | None:
    """Why ``rec`` is not a usable record (missing or wrong-typed field), or None."""
    if not isinstance(rec, dict):
        return "not a JSON object"
    missing = [k for k in ("task", "dataset", "label_fraction", "metrics") if k not in rec]
    if missing:
        return f"missing keys {missing}"
    for key in ("task", "dataset"):
        if not isinstance(rec[key], str):
            return f"{key} is {type(rec[key]).__name__}, not text"
    for key in _OPTIONAL_TEXT:
        if rec.get(key) is not None and not isinstance(rec[key], str):
            return f"{key} is {type(rec[key]).__name__}, not text"
    fraction = rec["label_fraction"]
    if not _number(fraction) or not 0 < fraction <= 1:
        return f"label_fraction {fraction!r} is not a number in (0, 1]"
    if rec.get("seed") is not None and (not isinstance(rec["seed"], int) or isinstance(rec["seed"], bool)):
        return f"seed {rec['seed']!r} is not an integer"
    levels = rec.get("levels")
    if levels is not None and not isinstance(levels, str) and not (
            isinstance(levels, list) and all(isinstance(p, str) for p in levels)):
        return f"levels {levels!r} is not text"
    metrics = rec["metrics"]
    if not isinstance(metrics, dict):
        return "metrics is not an object"
    for name, value in metrics.items():
        if value is not None and not _number(value):
            return f"metric {name!r} is {value!r}, not a number or null"
    for key in _OPTIONAL_DICT:
        if rec.get(key) is not None and not isinstance(rec[key], dict):
            return f"{key} is {type(rec[key]).__name__}, not an object"
    for key, sub in _NESTED_TEXT:   # read by the tables, the figures and the HTML page
        value = (rec.get(key) or {}).get(sub)
        if value is not None and not isinstance(value, str):
            return f"{key}.{sub} is {type(value).__name__}, not text"
    for name, value in (rec.get("artifacts") or {}).items():
        if value is not None and not isinstance(value, str):
            return f"artifacts.{name} is {type(value).__name__}, not a path"
    if rec.get("config_sha256") is not None and not isinstance(rec["config_sha256"], str):
        return f"config_sha256 is {type(rec['config_sha256']).__name__}, not text"
    return None


def without_smoke(records: Iterable[dict[str, Any]], include_smoke: bool = False) -> list[dict[str, Any]]:
    return [r for r in records if include_smoke or not is_smoke(r)]


def load(results_dir: str | Path, include_smoke: bool = False) -> Loaded:
    """Every record of ``results_dir/records`` (sorted by file name); bad files are listed;
    smoke records only with ``include_smoke``."""
    folder = Path(results_dir) / "records"
    out = Loaded([])
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.json")):
        try:   # a regular file (a FIFO or a device is never opened for reading), any JSON survives
            rec = read_json(path, MAX_RECORD_BYTES)
            why = problem(rec)
            if why:
                raise ValueError(why)
        except (OSError, ValueError) as err:  # UnreadableFileError is a ValueError
            out.skipped.append(f"{path}: {' '.join(str(err).split())}")
            continue
        rec.setdefault("_path", str(path))
        if is_smoke(rec):
            out.smoke += 1
            if not include_smoke:
                continue
        out.records.append(rec)
    return out


def norm_levels(levels: Any) -> str | None:
    """'C+F' -> 'F+C'; '', 'none', '-' -> '-'; None stays None (baselines / default)."""
    if levels is None:
        return None
    if isinstance(levels, (list, tuple)):
        parts = [str(p) for p in levels]
    else:
        text = str(levels).strip()
        if text in ("", "-", "none", "None"):
            return "-"
        parts = [p.strip() for p in text.replace(",", "+").split("+") if p.strip()]
    if not parts:
        return "-"
    return "+".join(sorted(set(parts), key=lambda p: (LEVEL_ORDER.find(p) if p in LEVEL_ORDER else 9, p)))


def is_synthetic(dataset: str | None) -> bool:
    return str(dataset or "").lower().startswith("synthetic")


def frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Long frame: one row per (record, metric) with the record's keys, provenance and value."""
    rows = []
    for rec in records:
        prov = rec.get("provenance") or {}
        base = {k: rec.get(k) for k in KEYS}
        if is_smoke(rec):
            base["profile"] = f"{base['profile']}{SMOKE_SUFFIX}"
        base["levels"] = norm_levels(base["levels"])
        base["label_fraction"] = float(base["label_fraction"])
        base["finished_at"] = prov.get("finished_at") or ""
        for name, value in (rec.get("metrics") or {}).items():
            v = float("nan") if value is None else float(value)
            rows.append({**base, "metric": name, "value": v})
    cols = KEYS + ["finished_at", "metric", "value"]
    df = pd.DataFrame(rows, columns=cols)
    if df.empty:
        return df
    for col in ("stream", "levels", "split", "profile", "variant", "method"):
        df[col] = df[col].astype(object).where(df[col].notna(), None)
    return df


def latest_per_seed(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Keep one value per (``by`` + seed + metric): the most recently finished record."""
    if df.empty:
        return df
    ordered = df.sort_values(["finished_at", "run_id"], kind="stable", na_position="first")
    keys = [k for k in by if k in df.columns] + ["seed", "metric"]
    return ordered.drop_duplicates(subset=keys, keep="last")


def mean_std(values: Iterable[float]) -> tuple[float, float, int]:
    """Mean, sample std (ddof 1; 0 for one seed) and count of the finite values."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not vals:
        return float("nan"), float("nan"), 0
    s = pd.Series(vals)
    return float(s.mean()), float(s.std(ddof=1)) if len(vals) > 1 else 0.0, len(vals)


def sections(df: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(dataset, split, profile) groups, real data first, then paper > small > ci profiles."""
    if df.empty:
        return []
    keys = df[["dataset", "split", "profile"]].astype(str).drop_duplicates().itertuples(index=False)
    return sorted((tuple(k) for k in keys),
                  key=lambda k: (is_smoke_profile(k[2]), is_synthetic(k[0]), PROFILE_RANK.get(k[2], 9), k[0], k[1], k[2]))
