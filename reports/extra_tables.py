"""Tables beyond the paper's: rows for methods added with ``--plugin`` and the recognition table.

Why: a method registered outside the suite (docs/plugins.md) must reach the report without an
edit here, so Tables 1-2 grow one row per such variant found in the records (no paper value).
And peers report recognition at 1/5/10/20/100% labels by fine-tuning, linear evaluation and
kNN retrieval; the supplementary has no recognition table, so this one has no paper values.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from .tables import ROW_MATCH, SPECS, Cell, TableSpec, build_table

# the paper's methods and the reference rows (e.g. "zero-velocity"); anything else came from a plugin
BUILTIN_METHODS = frozenset(m["variant"].removesuffix("-3s").removesuffix("-random") for m in ROW_MATCH.values())
RECOGNITION_PROTOCOLS = (("top1", "fine-tune"), ("linear_top1", "linear"), ("knn_top1", "kNN"))
STANDARD_FRACTIONS = (1.0, 0.2, 0.1, 0.05, 0.01)


def build_tables(df: pd.DataFrame) -> dict:
    """Tables 1-3 (with rows for plugin methods) and the recognition table, from records ``df``."""
    specs = {key: with_extra_rows(make(), df) for key, make in SPECS.items()}
    specs["recognition"] = recognition_spec(df)
    return {key: build_table(spec, df) for key, spec in specs.items()}


def extra_variants(df: pd.DataFrame, task: str) -> list[str]:
    """Variants of ``task`` records whose method is not one of the paper's (plugins), sorted."""
    if df.empty:
        return []
    sub = df[(df["task"] == task) & ~df["method"].isin(list(BUILTIN_METHODS)) & df["variant"].notna()]
    return sorted(set(sub["variant"].astype(str)))


def row_matches(spec: TableSpec) -> dict[str, dict]:
    """Row label -> the record match of its cells (the same for every column of a row)."""
    out: dict[str, dict] = {}
    for (row, _), cell in spec.cells.items():
        out.setdefault(row, cell.match)
    return out


def with_extra_rows(spec: TableSpec, df: pd.DataFrame) -> TableSpec:
    """``spec`` plus one row per plugin variant (Tables 1-2; Table 3 is Hi-TRS's level ablation)."""
    extra = [v for v in extra_variants(df, spec.task) if v not in spec.rows]
    if not extra or spec.key == "table3":
        return spec
    cells = dict(spec.cells)
    for variant in extra:
        for col in spec.cols:
            base = spec.cells[(spec.rows[0], col)]
            cells[(variant, col)] = Cell({"variant": variant}, base.fraction, base.metric, None)
    return dataclasses.replace(spec, rows=spec.rows + tuple(extra), cells=cells)


def _pct(fraction: float) -> str:
    return f"{fraction * 100:g}%"


def recognition_spec(df: pd.DataFrame) -> TableSpec:
    """Top-1 by label fraction (the standard five plus any other run) x protocol, every method."""
    seen = set()
    if not df.empty:
        seen = {float(f) for f in df.loc[df["task"] == "recognition", "label_fraction"].unique()}
    fractions = sorted({*STANDARD_FRACTIONS, *(f for f in seen if not np.isclose(STANDARD_FRACTIONS, f).any())},
                       reverse=True)
    # not the zero-velocity forecaster (no classifier) nor "CrosSCLR (joint only)", the CrosSCLR row again
    rows = tuple(r for r in ROW_MATCH if not r.startswith(("Zero-velocity", "CrosSCLR (joint only)")))
    rows += tuple(v for v in extra_variants(df, "recognition") if v not in ROW_MATCH)
    matches = {**ROW_MATCH, **{v: {"variant": v} for v in rows if v not in ROW_MATCH}}
    cols, cells = [], {}
    for f in fractions:
        for metric, label in RECOGNITION_PROTOCOLS:
            col = f"{_pct(f)} {label}"
            cols.append(col)
            cells.update({(row, col): Cell(matches[row], f, metric, None) for row in rows})
    return TableSpec("recognition", "Action recognition top-1 (%) by label fraction: fine-tuned, linear "
                     "(frozen encoder), kNN (k=1, cosine, frozen encoder)", "recognition", "Method", rows,
                     tuple(cols), cells, tuple((f"{_pct(f)} labels", len(RECOGNITION_PROTOCOLS)) for f in fractions),
                     "%", True, "none", "the supplementary reports no recognition table", "NTU-60")
