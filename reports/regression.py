"""CI regression check: compare result records with the committed baseline, as Markdown for a
pull-request comment.

Baseline (``results/ci_baseline.json``, written by ``python -m benchmarks.ci_baseline``)::

    {"profile": "ci", "dataset": "synthetic-...", "entries": [
        {"variant": "hitrs", "task": "detection", "label_fraction": 1.0, "metric": "mAP_a",
         "mean": 12.3, "std": 0.4, "tolerance": 1.5, "direction": "higher"}, ...]}

An entry may also name ``stream`` / ``levels`` to pin a row further. Entries of task
``"pretext"`` (``label_fraction`` null) check the pretext metrics every record carries from its
pre-training (``record["pretext"]``). ``tolerance`` is absolute, in the metric's unit;
``direction`` makes the check one-sided: ``"higher"`` (higher is better) fails only when the
mean over seeds now is more than ``tolerance`` below the baseline mean, ``"lower"`` only when it
is more than ``tolerance`` above; without ``direction`` both ways fail. A metric also fails when
no record (or only NaN) is found for it. Records of another profile or dataset than the
baseline's are ignored.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from .records import latest_per_seed, load, mean_std, norm_levels, without_smoke
from .records import frame as records_frame


def _load_baseline(baseline: dict | str | Path) -> dict:
    if isinstance(baseline, (str, Path)):
        path = Path(baseline)
        try:
            baseline = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ValueError(f"{path}: cannot read the regression baseline ({err})") from None
    if not isinstance(baseline, dict) or not isinstance(baseline.get("entries"), list):
        raise ValueError("baseline must be {'profile', 'dataset', 'entries': [...]} (see docs/reports.md)")
    for i, e in enumerate(baseline["entries"]):
        missing = [k for k in ("variant", "task", "label_fraction", "metric", "mean", "tolerance") if k not in e]
        if missing:
            raise ValueError(f"baseline entry {i} lacks {missing}: {e}")
    return baseline


def _with_pretext(df: pd.DataFrame, recs: list[dict]) -> pd.DataFrame:
    """Add one row per (record, pretext metric) as task ``pretext`` with a NaN label fraction."""
    pretext = [dict(r, task="pretext", label_fraction=float("nan"), metrics=r["pretext"])
               for r in recs if isinstance(r.get("pretext"), dict) and r["pretext"]]
    if not pretext:
        return df
    extra = records_frame(pretext)
    return extra if df.empty else pd.concat([df, extra], ignore_index=True)


def _verdict(delta: float, tol: float, direction: str | None) -> str:
    if direction == "higher" and delta < -tol - 1e-12:
        return f"dropped by {-delta:.3g} > tolerance {tol:.3g}"
    if direction == "lower" and delta > tol + 1e-12:
        return f"rose by {delta:.3g} > tolerance {tol:.3g} (lower is better)"
    if direction not in ("higher", "lower") and abs(delta) > tol + 1e-12:
        return f"|Δ| {abs(delta):.3g} > tolerance {tol:.3g}"
    return ""


def _num(x: float, digits: int = 2) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def compare(records: Iterable[dict] | str | Path, baseline: dict | str | Path,
            include_smoke: bool = False) -> tuple[str, list[dict[str, Any]]]:
    """(markdown, failures): every baseline metric checked against the records' mean over seeds.

    ``records``: record dicts or a results folder; ``baseline``: dict or path to its JSON. Smoke
    records are ignored unless ``include_smoke`` (they then sit under profile ``<profile>+smoke``,
    so a baseline of a real profile still never matches them).
    Each failure: {variant, stream, levels, task, label_fraction, metric, direction, baseline,
    std, tolerance, current, n_seeds, delta, reason}.
    """
    base = _load_baseline(baseline)
    recs = (load(records, include_smoke).records if isinstance(records, (str, Path))
            else without_smoke(records, include_smoke))
    df = _with_pretext(records_frame(recs), recs)
    if not df.empty:
        if base.get("profile"):
            df = df[df["profile"] == base["profile"]]
        if base.get("dataset"):
            df = df[df["dataset"] == base["dataset"]]
        df = latest_per_seed(df, ["task", "variant", "stream", "levels", "label_fraction"])
    checked, failures = [], []
    for e in base["entries"]:
        if df.empty:
            vals = []
        else:
            m = (df["variant"] == e["variant"]) & (df["task"] == e["task"]) & (df["metric"] == e["metric"])
            if e["label_fraction"] is None:
                m &= df["label_fraction"].isna()
            else:
                m &= (df["label_fraction"] - float(e["label_fraction"])).abs() < 1e-9
            if "stream" in e:
                m &= df["stream"] == e["stream"]
            if "levels" in e:
                m &= df["levels"] == norm_levels(e["levels"])
            vals = df.loc[m, "value"].tolist()
        mean, _, n = mean_std(vals)
        delta = mean - float(e["mean"]) if n else float("nan")
        tol = float(e["tolerance"])
        if not vals:
            reason = "missing: no record for this metric"
        elif not n:
            reason = "not a number"
        else:
            reason = _verdict(delta, tol, e.get("direction"))
        fraction = None if e["label_fraction"] is None else float(e["label_fraction"])
        row = {"variant": e["variant"], "stream": e.get("stream"), "levels": e.get("levels"), "task": e["task"],
               "label_fraction": fraction, "metric": e["metric"], "direction": e.get("direction"),
               "baseline": float(e["mean"]), "std": float(e.get("std") or 0.0),
               "tolerance": tol, "current": mean, "n_seeds": n, "delta": delta, "reason": reason}
        checked.append(row)
        if reason:
            failures.append(row)
    return _markdown(base, checked, failures), failures


def _rows(rows: list[dict]) -> list[str]:
    out = ["| variant | task | fraction | metric | baseline (± std) | now (seeds) | Δ | tolerance | status |",
           "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        status = "❌ " + r["reason"] if r["reason"] else "✅ ok"
        delta = "—" if not math.isfinite(r["delta"]) else f"{r['delta']:+.2f}"
        fraction = "—" if r["label_fraction"] is None else f"{r['label_fraction']:g}"
        out.append(f"| {r['variant']} | {r['task']} | {fraction} | {r['metric']} | "
                   f"{_num(r['baseline'])} ± {_num(r['std'])} | {_num(r['current'])} ({r['n_seeds']}) | {delta} | "
                   f"{_num(r['tolerance'])} | {status} |")
    return out


def _markdown(base: dict, checked: list[dict], failures: list[dict]) -> str:
    head = [f"### Benchmark regression check — profile `{base.get('profile', '?')}`, "
            f"dataset `{base.get('dataset', '?')}`", ""]
    if not checked:
        return "\n".join(head + ["⚠️ The baseline lists no metrics: nothing was checked."])
    if failures:
        head.append(f"❌ **{len(failures)} of {len(checked)} metrics outside tolerance** "
                    "(tolerance = absolute, from the seed-to-seed spread; one-sided where the baseline gives a direction).")
        head += [""] + _rows(failures)
    else:
        head.append(f"✅ All {len(checked)} metrics within tolerance.")
    head += ["", f"<details><summary>All {len(checked)} checked metrics</summary>", ""] + _rows(checked)
    head += ["", "</details>"]
    return "\n".join(head) + "\n"
