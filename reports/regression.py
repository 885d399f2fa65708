"""CI regression check: compare result records with the committed baseline, as Markdown for a
pull-request comment.

Baseline (``results/ci_baseline.json``)::

    {"profile": "ci", "dataset": "synthetic-...", "entries": [
        {"variant": "hitrs", "task": "detection", "label_fraction": 1.0, "metric": "mAP_a",
         "mean": 12.3, "std": 0.4, "tolerance": 1.5}, ...]}

An entry may also name ``stream`` / ``levels`` to pin a row further. ``tolerance`` is absolute,
in the metric's unit: a metric fails when |mean over seeds now - baseline mean| > tolerance,
or when no record (or only NaN) is found for it. Records of another profile or dataset than
the baseline's are ignored.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

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


def _num(x: float, digits: int = 2) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def compare(records: Iterable[dict] | str | Path, baseline: dict | str | Path,
            include_smoke: bool = False) -> tuple[str, list[dict[str, Any]]]:
    """(markdown, failures): every baseline metric checked against the records' mean over seeds.

    ``records``: record dicts or a results folder; ``baseline``: dict or path to its JSON. Smoke
    records are ignored unless ``include_smoke`` (they then sit under profile ``<profile>+smoke``,
    so a baseline of a real profile still never matches them).
    Each failure: {variant, task, label_fraction, metric, baseline, std, tolerance, current,
    n_seeds, delta, reason}.
    """
    base = _load_baseline(baseline)
    recs = (load(records, include_smoke).records if isinstance(records, (str, Path))
            else without_smoke(records, include_smoke))
    df = records_frame(recs)
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
            m = ((df["variant"] == e["variant"]) & (df["task"] == e["task"]) & (df["metric"] == e["metric"])
                 & ((df["label_fraction"] - float(e["label_fraction"])).abs() < 1e-9))
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
        elif abs(delta) > tol + 1e-12:
            reason = f"|Δ| {abs(delta):.3g} > tolerance {tol:.3g}"
        else:
            reason = ""
        row = {"variant": e["variant"], "task": e["task"], "label_fraction": float(e["label_fraction"]),
               "metric": e["metric"], "baseline": float(e["mean"]), "std": float(e.get("std") or 0.0),
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
        out.append(f"| {r['variant']} | {r['task']} | {r['label_fraction']:g} | {r['metric']} | "
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
                    "(tolerance = absolute, from the seed-to-seed spread).")
        head += [""] + _rows(failures)
    else:
        head.append(f"✅ All {len(checked)} metrics within tolerance.")
    head += ["", f"<details><summary>All {len(checked)} checked metrics</summary>", ""] + _rows(checked)
    head += ["", "</details>"]
    return "\n".join(head) + "\n"
