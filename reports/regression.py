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

Gating (``gating``): every entry's trivial floor is what a run that learns nothing scores
(chance ``100 k / num_classes`` for recognition top-k, 50 for the binary order tasks, 0 for the
other accuracies / mAP / F1 / spread / weight change, the zero-velocity predictor for MPJPE). An
entry whose threshold (``mean - tolerance``; ``mean + tolerance`` for lower-is-better; the band
``mean +- tolerance`` for two-sided) does not clear its floor can never fail, so it is not gated:
``compare`` lists it as "not gated: no signal at ci" with a count instead of letting it pass
silently (an entry the baseline marks ``"gated": false`` likewise). Where the baseline holds the
random-init reference of a pre-trained row (``<method>-random``), the report also counts the
gated entries whose threshold does not clear that reference: they catch a head that learns
nothing, not a pre-training that learns nothing. A missing or NaN metric fails either way.

``python -m reports.regression RESULTS [--baseline FILE]``: the Markdown on stdout; exit 1 when a
gated metric fails, 2 (one line on stderr) when the baseline is malformed.
"""
from __future__ import annotations

import json
import math
import re
import reprlib
import sys
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from .records import latest_per_seed, load, mean_std, norm_levels, without_smoke
from .records import frame as records_frame


_TEXT_KEYS = ("variant", "task", "metric")
_DIRECTIONS = ("higher", "lower", "both", None)


def _short(value) -> str:
    """A bounded repr (deeply nested or huge values stay one short line)."""
    r = reprlib.Repr()
    r.maxlevel, r.maxstring, r.maxother = 2, 40, 40
    return r.repr(value)


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check_entry(i: int, e) -> None:
    if not isinstance(e, dict):
        raise ValueError(f"baseline entry {i} is {type(e).__name__} {_short(e)}, not an object (see docs/reports.md)")
    missing = [k for k in ("variant", "task", "label_fraction", "metric", "mean", "tolerance") if k not in e]
    if missing:
        raise ValueError(f"baseline entry {i} lacks {missing}: {_short(e)}")
    where = f"baseline entry {i} ({_short(e.get('variant'))} {_short(e.get('task'))} {_short(e.get('metric'))})"
    for k in _TEXT_KEYS:
        if not isinstance(e[k], str):
            raise ValueError(f"{where}: {k} must be text, got {_short(e[k])}")
    for k in ("stream", "levels"):
        if e.get(k) is not None and not isinstance(e[k], str):
            raise ValueError(f"{where}: {k} must be text or null, got {_short(e[k])}")
    for k in ("mean", "tolerance"):
        if not _is_number(e[k]) or not math.isfinite(e[k]):
            raise ValueError(f"{where}: {k} must be a finite number, got {_short(e[k])}")
    if e["tolerance"] < 0:
        raise ValueError(f"{where}: tolerance must be >= 0, got {e['tolerance']}")
    if e.get("std") is not None and (not _is_number(e["std"]) or not math.isfinite(e["std"])):
        raise ValueError(f"{where}: std must be a finite number or null, got {_short(e['std'])}")
    lf = e["label_fraction"]
    if lf is not None and (not _is_number(lf) or not math.isfinite(lf)):
        raise ValueError(f"{where}: label_fraction must be a number or null, got {_short(lf)}")
    if e.get("direction") not in _DIRECTIONS:
        raise ValueError(f"{where}: direction must be higher, lower or both, got {_short(e.get('direction'))}")
    if "gated" in e and not isinstance(e["gated"], bool):
        raise ValueError(f"{where}: gated must be true or false, got {_short(e['gated'])}")


def _load_baseline(baseline: dict | str | Path) -> dict:
    """The baseline as a dict, every entry checked; a malformed one raises ValueError with one line."""
    if isinstance(baseline, (str, Path)):
        path = Path(baseline)
        try:
            baseline = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as err:
            reason = "nested too deeply" if isinstance(err, RecursionError) else str(err).splitlines()[0][:200]
            raise ValueError(f"{path}: cannot read the regression baseline ({reason})") from None
    if not isinstance(baseline, dict) or not isinstance(baseline.get("entries"), list):
        raise ValueError("baseline must be {'profile', 'dataset', 'entries': [...]} (see docs/reports.md)")
    nc = baseline.get("num_classes")
    if nc is not None and (not isinstance(nc, int) or isinstance(nc, bool) or nc < 1):
        raise ValueError(f"baseline num_classes must be a positive integer, got {_short(nc)}")
    for i, e in enumerate(baseline["entries"]):
        _check_entry(i, e)
    return baseline


# ---- gating: can an entry fail at all? ---------------------------------------------------------
#: pre-trained variants and their random-init reference rows
_REFERENCE = {"hitrs": "hitrs-random", "mcc": "mcc-random", "crossclr": "crossclr-random"}
ZERO_VELOCITY = "zero-velocity"
_BINARY = ("frame_order_acc", "clip_order_acc")
_ZERO_FLOOR = ("ap_all", "f1", "frame_acc", "mAP", "next_clip_acc", "instance_top1", "embedding_spread",
               "weight_change", "acc")


def trivial_floor(entry: dict, entries: list[dict], num_classes: int | None) -> tuple[float | None, str]:
    """(value a run that learns nothing scores, where it comes from); ``None`` when there is none."""
    metric, task = entry["metric"], entry["task"]
    if task == "prediction" and metric.startswith("mpjpe"):
        if entry["variant"] == ZERO_VELOCITY:
            return None, "is the zero-velocity floor"
        zv = [e for e in entries if e["variant"] == ZERO_VELOCITY and e["task"] == task
              and e["metric"] == metric and e["label_fraction"] == entry["label_fraction"]]
        return (float(zv[0]["mean"]), "zero velocity") if zv else (None, "no zero-velocity entry")
    top = re.search(r"top(\d+)$", metric)
    if task == "recognition" and top:
        if not num_classes:
            return 0.0, "0 (number of classes unknown)"
        k = int(top.group(1))
        return 100.0 * min(k, num_classes) / num_classes, f"chance {min(k, num_classes)}/{num_classes}"
    if metric.startswith(_BINARY):
        return 50.0, "chance 1/2"
    if entry.get("direction") == "higher" or metric.startswith(_ZERO_FLOOR):
        return 0.0, "0"
    return None, "no trivial floor known"


def reference_value(entry: dict, entries: list[dict]) -> float | None:
    """The random-init reference row's mean for a pre-trained joint-stream row, if the baseline has it."""
    ref = _REFERENCE.get(entry["variant"])
    if ref is None or entry["task"] == "pretext" or entry.get("stream") not in (None, "joint"):
        return None
    hits = [e for e in entries if e["variant"] == ref and e["task"] == entry["task"] and e["metric"] == entry["metric"]
            and e["label_fraction"] == entry["label_fraction"]]
    return float(hits[0]["mean"]) if hits else None


def clears(entry: dict, value: float | None) -> bool:
    """Whether the entry's threshold excludes ``value`` (a run scoring ``value`` would fail)."""
    if value is None:
        return True
    mean, tol, d = float(entry["mean"]), float(entry["tolerance"]), entry.get("direction")
    if d == "higher":
        return mean - tol > value + 1e-12
    if d == "lower":
        return mean + tol < value - 1e-12
    return abs(mean - value) > tol + 1e-12


def gating(baseline: dict | str | Path) -> list[dict]:
    """Per entry (baseline order): {floor, floor_source, gated, reference, separates_reference}.

    ``gated`` is False when the threshold does not clear the trivial floor, or when the baseline
    itself marks the entry ``"gated": false``."""
    base = _load_baseline(baseline)
    entries, nc = base["entries"], base.get("num_classes")
    out = []
    for e in entries:
        floor, source = trivial_floor(e, entries, nc)
        ref = reference_value(e, entries)
        out.append({"floor": floor, "floor_source": source, "gated": clears(e, floor) and e.get("gated", True),
                    "reference": ref, "separates_reference": None if ref is None else clears(e, ref)})
    return out


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
    gates = gating(base)
    for e, gate in zip(base["entries"], gates):
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
               "tolerance": tol, "current": mean, "n_seeds": n, "delta": delta, "reason": reason,
               "gated": gate["gated"], "floor": gate["floor"], "floor_source": gate["floor_source"],
               "separates_reference": gate["separates_reference"]}
        checked.append(row)
        # an ungated entry cannot fail on its value; a missing or NaN metric fails all the same
        if reason and (gate["gated"] or not n):
            failures.append(row)
    return _markdown(base, checked, failures), failures


def _status(r: dict) -> str:
    if r["reason"] and (r["gated"] or not r["n_seeds"]):
        return "❌ " + r["reason"]
    if not r["gated"]:
        note = f"; outside tolerance: {r['reason']}" if r["reason"] else ""
        return f"⚪ not gated: no signal at ci (floor {_num(r['floor'])}, {r['floor_source']}){note}"
    return "✅ ok"


def _rows(rows: list[dict]) -> list[str]:
    out = ["| variant | task | fraction | metric | baseline (± std) | now (seeds) | Δ | tolerance | status |",
           "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        delta = "—" if not math.isfinite(r["delta"]) else f"{r['delta']:+.2f}"
        fraction = "—" if r["label_fraction"] is None else f"{r['label_fraction']:g}"
        out.append(f"| {r['variant']} | {r['task']} | {fraction} | {r['metric']} | "
                   f"{_num(r['baseline'])} ± {_num(r['std'])} | {_num(r['current'])} ({r['n_seeds']}) | {delta} | "
                   f"{_num(r['tolerance'])} | {_status(r)} |")
    return out


def _markdown(base: dict, checked: list[dict], failures: list[dict]) -> str:
    head = [f"### Benchmark regression check — profile `{base.get('profile', '?')}`, "
            f"dataset `{base.get('dataset', '?')}`", ""]
    if not checked:
        return "\n".join(head + ["⚠️ The baseline lists no metrics: nothing was checked."])
    ungated = [r for r in checked if not r["gated"]]
    gated = len(checked) - len(ungated)
    if failures:
        head.append(f"❌ **{len(failures)} of {len(checked)} metrics outside tolerance** "
                    "(tolerance = absolute, from the seed-to-seed spread; one-sided where the baseline gives a direction).")
        head += [""] + _rows(failures)
    elif ungated:
        head.append(f"✅ All {gated} gated metrics within tolerance.")
    else:
        head.append(f"✅ All {len(checked)} metrics within tolerance.")
    if ungated:
        head += ["", f"⚪ **{len(ungated)} of {len(checked)} metrics not gated: no signal at ci** — their threshold "
                 "does not clear the trivial floor (chance, 0, zero velocity), so they could not fail; "
                 "they are checked only for being present and finite.",
                 "", f"<details><summary>{len(ungated)} not gated: no signal at ci</summary>", ""] + _rows(ungated)
        head += ["", "</details>"]
    weak = [r for r in checked if r["gated"] and r["separates_reference"] is False]
    if weak:
        head += ["", f"ℹ️ {len(weak)} gated metrics of pre-trained rows do not separate from their random-init "
                 "reference at ci: they catch a head that learns nothing, not a pre-training that learns nothing."]
    head += ["", f"<details><summary>All {len(checked)} checked metrics</summary>", ""] + _rows(checked)
    head += ["", "</details>"]
    return "\n".join(head) + "\n"


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m reports.regression",
                                description="Compare a results folder with the CI baseline (Markdown on stdout).")
    p.add_argument("results", type=Path, help="results folder (records/*.json)")
    p.add_argument("--baseline", type=Path, default=Path("results/ci_baseline.json"))
    p.add_argument("--include-smoke", action="store_true")
    args = p.parse_args(argv)
    try:
        markdown, failures = compare(args.results, args.baseline, include_smoke=args.include_smoke)
    except ValueError as err:
        print(f"reports.regression: {err}", file=sys.stderr)
        return 2
    print(markdown)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
