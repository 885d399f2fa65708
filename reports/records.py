"""Read result records (``<results>/records/*.json``) into a tidy pandas frame.

The report never silently drops a run: unreadable files are returned as ``skipped`` (and shown
in the HTML), and a seed run twice keeps its latest record (by ``finished_at``, then run id).
Smoke records (``"smoke": true``, ``benchmarks.run --smoke``) are not results: ``load`` counts
them in ``smoke`` and leaves them out unless ``include_smoke``; included, their profile reads
``<profile>+smoke`` so they form their own section, captioned SMOKE, never mixed with results.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

KEYS = ["run_id", "method", "variant", "stream", "levels", "task", "dataset", "split",
        "label_fraction", "seed", "profile"]
LEVEL_ORDER = "FCV"
PROFILE_RANK = {"paper": 0, "small": 1, "ci": 2}
SMOKE_SUFFIX = "+smoke"


def is_smoke(record: dict[str, Any]) -> bool:
    return record.get("smoke") is True


def is_smoke_profile(profile: Any) -> bool:
    return str(profile or "").endswith(SMOKE_SUFFIX)


@dataclass
class Loaded:
    records: list[dict[str, Any]]
    skipped: list[str] = field(default_factory=list)  # "path: reason"
    smoke: int = 0                                     # smoke records seen (left out unless asked)


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
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(rec, dict):
                raise ValueError("not a JSON object")
            missing = [k for k in ("task", "dataset", "label_fraction", "metrics") if k not in rec]
            if missing:
                raise ValueError(f"missing keys {missing}")
        except (OSError, ValueError) as err:
            out.skipped.append(f"{path}: {err}")
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
