"""``python -m reports.compare --results R A B``: is variant A better than variant B, and by how much?

For every setting (task, dataset, split, profile, label fraction) that both variants ran with at
least one common seed, and every metric both records carry that has a per-sample form, the
difference A - B (mean over the common seeds) with a 95 % confidence interval from a paired
bootstrap over the test samples (videos for detection), pooled over seeds, the per-seed
differences and their spread shown separately, and a paired permutation p-value. The
statistics are :mod:`benchmarks.metrics.paired`; the per-sample outputs are each record's
``outputs.npz`` artifact, verified against the sha256 in the record and against the record's
own metric value before it is used.

A variant is named as in the records and ``summary.csv`` (``hitrs``, ``mcc``, ``crossclr-3s``,
...); ``variant@LEVELS`` picks a level set (``hitrs@F+C``); without it a variant with several
level sets means its default F+C+V (as in the tables). Bad input (unknown variant, nothing in
common, different test sets, missing or tampered artifacts, an artifact that does not
reproduce its record's metric) prints one line and exits with code 2.
"""
from __future__ import annotations

import argparse
import hashlib
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.metrics import paired as P

from . import records as recs

RESAMPLES = 10000       # per-sample ratio metrics (vectorised)
MAP_RESAMPLES = 1000    # detection mAP_a: the official metric once per resample
RNG_SEED = 0
LOWER_IS_BETTER = ("mpjpe",)
SETTING = ("task", "dataset", "split", "profile", "label_fraction")
MAX_NPZ_BYTES = 256 * 2**20


class CompareError(ValueError):
    """Input that cannot be compared; the message is the one line the CLI prints."""


@dataclass
class Row:
    setting: dict[str, Any]
    metric: str
    result: P.Paired
    seeds: list[int]
    lower_is_better: bool


# -- records and artifacts ---------------------------------------------------------------------

def _spec(name: str) -> tuple[str, str | None]:
    variant, _, levels = name.partition("@")
    return variant, (recs.norm_levels(levels) if levels else None)


def _select(records: list[dict], name: str) -> list[dict]:
    variant, levels = _spec(name)
    mine = [r for r in records if r.get("variant") == variant]
    if not mine:
        known = sorted({str(r.get("variant")) for r in records})
        raise CompareError(f"unknown variant {variant!r}: the records have {', '.join(known) or 'none'}")
    have = sorted({recs.norm_levels(r.get("levels")) or "F+C+V" for r in mine}, key=str)
    if levels is None:
        if len(have) == 1:
            return mine
        levels = "F+C+V"
        if levels not in have:
            raise CompareError(f"variant {variant!r} has level sets {', '.join(have)}; name one as "
                               f"{variant}@LEVELS")
    chosen = [r for r in mine if (recs.norm_levels(r.get("levels")) or "F+C+V") == levels]
    if not chosen:
        raise CompareError(f"variant {variant!r} has no records of levels {levels} (it has {', '.join(have)})")
    return chosen


def _latest(records: list[dict]) -> dict[tuple, dict[int, dict]]:
    """setting -> seed -> the latest record (by finished_at, then run id)."""
    out: dict[tuple, dict[int, dict]] = {}
    order = sorted(records, key=lambda r: (str((r.get("provenance") or {}).get("finished_at") or ""),
                                           str(r.get("run_id"))))
    for r in order:
        key = tuple(str(r.get(k)) if k != "label_fraction" else float(r[k]) for k in SETTING)
        out.setdefault(key, {})[int(r.get("seed") or 0)] = r
    return out


def load_outputs(results: Path, record: dict) -> dict[str, np.ndarray]:
    """The record's per-sample outputs, after checking the file against the record's sha256."""
    arts = record.get("artifacts") or {}
    rel, sha = arts.get("outputs"), arts.get("outputs_sha256")
    who = f"record {record.get('run_id')} ({record.get('variant')} {record.get('task')} seed {record.get('seed')})"
    if not rel or not sha:
        raise CompareError(f"{who} has no per-sample outputs artifact (records written before the suite kept "
                           "them, or the artifact write failed); run it again")
    path = (results / rel).resolve()
    if not path.is_relative_to(results.resolve()) or not path.is_file():
        raise CompareError(f"{who}: its outputs artifact {rel} is missing under {results}")
    data = path.read_bytes() if path.stat().st_size <= MAX_NPZ_BYTES else b""
    if hashlib.sha256(data).hexdigest() != sha:
        raise CompareError(f"{who}: {rel} does not match the sha256 in the record (changed after the run)")
    try:
        import io
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as err:
        raise CompareError(f"{who}: {rel} is not a readable npz ({' '.join(str(err).split())})") from None


# -- per-sample forms of each metric -------------------------------------------------------------

def _ratio_form(task: str, metric: str, out: dict) -> tuple[np.ndarray, np.ndarray | None, float] | None:
    """(num, den or None, scale) with metric = scale * sum(num) / sum(den), or None."""
    if task == "recognition":
        for prefix in ("", "linear_"):
            for k in (1, 5):
                if metric == f"{prefix}top{k}" and f"{prefix}rank" in out:
                    return (out[f"{prefix}rank"] < k).astype(np.float64), None, 100.0
        if metric == "knn_top1" and "knn_pred" in out:
            return (out["knn_pred"] == out["label"]).astype(np.float64), None, 100.0
    elif task == "prediction" and "frame_error" in out:
        err = out["frame_error"]
        if metric == "mpjpe":
            return err.mean(axis=1), None, 1.0
        if metric.startswith("mpjpe@"):
            h = int(metric[len("mpjpe@"):])
            if 1 <= h <= err.shape[1]:
                return err[:, h - 1], None, 1.0
    elif task == "detection" and "frame_offsets" in out:
        starts = out["frame_offsets"][:-1]
        if metric == "frame_acc":
            correct = np.add.reduceat((out["frame_pred"] == out["frame_gt"]).astype(np.float64), starts)
            return correct, np.diff(out["frame_offsets"]).astype(np.float64), 100.0
        if metric == "mAP_v":
            return P.video_ap(P.video_entries(out), int(out["num_classes"]), float(out["theta"])), None, 100.0
    return None


def _comparable(task: str, metric: str, out: dict) -> bool:
    return _ratio_form(task, metric, out) is not None or (task == "detection" and metric == "mAP_a"
                                                          and "proposals" in out)


def _map_a(outs: list[dict]):
    """paired_generic's metric for detection mAP_a over [A seeds..., B seeds...] outputs."""
    seeds = len(outs) // 2
    entries = [P.video_entries(o) for o in outs]
    classes, theta = int(outs[0]["num_classes"]), float(outs[0]["theta"])

    def metric(s, take_b, counts):
        a, b = entries[s], entries[seeds + s]
        mixed = [b[i] if take_b[i] else a[i] for i in range(len(a))]
        return 100.0 * P.detection_map_a(mixed, counts, classes, theta)
    return metric


def _same_samples(outs: list[dict], who: list[str], setting: str) -> None:
    names = [o.get("names") for o in outs]
    for n, w in zip(names, who):
        if n is None:
            raise CompareError(f"{w}: its outputs artifact has no sample names; cannot check the test sets match")
    for n, w in zip(names[1:], who[1:]):
        if n.shape != names[0].shape or not np.array_equal(n, names[0]):
            raise CompareError(f"different test sets in {setting}: {who[0]} and {w} scored different samples "
                               f"({len(names[0])} vs {len(n)})")
    if "label" in outs[0]:
        for o, w in zip(outs[1:], who[1:]):
            if not np.array_equal(o.get("label"), outs[0]["label"]):
                raise CompareError(f"different test labels in {setting}: {who[0]} and {w}")


def _check_reproduces(record: dict, metric: str, out: dict, value: float) -> None:
    want = (record.get("metrics") or {}).get(metric)
    if want is None or not math.isfinite(float(want)):
        return
    if abs(value - float(want)) > 1e-6 * max(1.0, abs(float(want))):
        raise CompareError(f"record {record.get('run_id')}: its outputs artifact gives {metric} {value:.6g}, the "
                           f"record says {float(want):.6g}; the artifact does not belong to the record")


def compare(results: str | Path, a: str, b: str, *, resamples: int = RESAMPLES, map_resamples: int = MAP_RESAMPLES,
            seed: int = RNG_SEED, records: list[dict] | None = None, metrics: list[str] | None = None) -> list[Row]:
    """Every comparable (setting, metric) of A against B; raises CompareError on bad input."""
    results = Path(results)
    if records is None:
        if not (results / "records").is_dir():
            raise CompareError(f"no records folder in {results}; run `python -m benchmarks.run ...` first")
        records = recs.load(results).records
    sel_a, sel_b = _select(records, a), _select(records, b)
    by_a, by_b = _latest(sel_a), _latest(sel_b)
    common = [k for k in by_a if k in by_b and set(by_a[k]) & set(by_b[k])]
    if not common:
        raise CompareError(f"{a} and {b} share no (task, dataset, split, profile, label fraction) with a common seed")
    rows: list[Row] = []
    for key in sorted(common, key=lambda k: (k[0], k[1], k[2], k[3], -k[4])):
        setting = dict(zip(SETTING, key))
        where = f"{key[0]} {key[1]}/{key[2]} {key[3]} {key[4]:g}"
        seeds = sorted(set(by_a[key]) & set(by_b[key]))
        chosen = [by_a[key][s] for s in seeds] + [by_b[key][s] for s in seeds]
        outs = [load_outputs(results, r) for r in chosen]
        who = [f"{r.get('variant')} seed {r.get('seed')}" for r in chosen]
        _same_samples(outs, who, where)
        names = [m for m in chosen[0].get("metrics") or {}
                 if (metrics is None or m in metrics)
                 and all(m in (r.get("metrics") or {}) and _comparable(key[0], m, o) for r, o in zip(chosen, outs))]
        for m in names:
            form = [_ratio_form(key[0], m, o) for o in outs]
            if all(f is not None for f in form):
                for r, (num, den, scale), o in zip(chosen, form, outs):
                    _check_reproduces(r, m, o, scale * num.sum() / (len(num) if den is None else den.sum()))
                k = len(seeds)
                dens = [f[1] for f in form]
                res = P.paired_ratio(np.stack([f[0] for f in form[:k]]), np.stack([f[0] for f in form[k:]]),
                                     None if dens[0] is None else np.stack(dens[:k]),
                                     None if dens[0] is None else np.stack(dens[k:]),
                                     scale=form[0][2], resamples=resamples, seed=seed)
            else:   # detection mAP_a
                metric = _map_a(outs)
                n = len(outs[0]["names"])
                for i, r in enumerate(chosen):
                    s, side = i % len(seeds), i >= len(seeds)
                    _check_reproduces(r, m, outs[i], metric(s, np.full(n, side), np.ones(n, dtype=np.int64)))
                res = P.paired_generic(metric, len(seeds), n, resamples=map_resamples, seed=seed)
            rows.append(Row(setting, m, res, seeds, m.split("@")[0] in LOWER_IS_BETTER))
    return rows


# -- output ------------------------------------------------------------------------------------------

def method_lines(rows: list[Row], seed: int = RNG_SEED) -> list[str]:
    ratio = sorted({r.result.resamples for r in rows if r.metric != "mAP_a"})
    map_a = sorted({r.result.resamples for r in rows if r.metric == "mAP_a"})
    text = ", ".join(str(c) for c in ratio) or "-"
    if map_a:
        text += f" ({', '.join(str(c) for c in map_a)} for detection mAP_a, which reruns the official metric per resample)"
    return [f"Method: {P.METHOD.format(level=P.CI_LEVEL)}.",
            f"Resamples: {text}, each for the bootstrap and for the permutation test; RNG: numpy "
            f"default_rng([seed, 0]) bootstrap, default_rng([seed, 1]) permutation, seed {seed}.",
            "Seed spread: the per-seed differences A - B and their sample std (the CI is over test samples, "
            "the same resample for every seed)."]


def table(rows: list[Row], a: str, b: str) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        p = r.result
        better = (p.diff < 0) if r.lower_is_better else (p.diff > 0)
        out.append({"task": r.setting["task"], "dataset": r.setting["dataset"], "split": r.setting["split"],
                    "profile": r.setting["profile"], "fraction": r.setting["label_fraction"], "metric": r.metric,
                    a: round(p.a, 3), b: round(p.b, 3), "diff": round(p.diff, 3),
                    "ci95": f"[{p.ci_low:.2f}, {p.ci_high:.2f}]", "p": round(p.p, 4),
                    "per_seed_diff": " ".join(f"{d:+.2f}" for d in p.per_seed),
                    "seed_std": round(p.seed_std, 3) if math.isfinite(p.seed_std) else None,
                    "seeds": " ".join(str(s) for s in r.seeds), "n": p.n, "resamples": p.resamples,
                    "better": ("lower" if r.lower_is_better else "higher") + (" (A)" if better else " (B)"
                                                                             if p.diff != 0 else " (tie)")})
    return out


def format_text(rows: list[Row], a: str, b: str, seed: int = RNG_SEED) -> str:
    import pandas as pd

    lines = [f"A = {a}, B = {b}: difference A - B per metric (units of the metric: % or mm).", *method_lines(rows, seed)]
    frame = pd.DataFrame(table(rows, a, b))
    lines += ["", frame.astype(object).fillna("").to_string(index=False) if not frame.empty else "(nothing to compare)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reports.compare",
                                 description="Paired comparison of two variants on the same test set: difference "
                                             "of each metric with a paired-bootstrap 95%% CI over test samples "
                                             "(videos for detection), pooled over seeds, and a paired permutation "
                                             "p-value.")
    ap.add_argument("--results", default="results", help="results folder of benchmarks.run")
    ap.add_argument("a", help="variant A as in the records / summary.csv (variant@LEVELS picks a level set)")
    ap.add_argument("b", help="variant B")
    ap.add_argument("--resamples", type=int, default=RESAMPLES, help=f"bootstrap and permutation resamples "
                                                                     f"(default {RESAMPLES})")
    ap.add_argument("--map-resamples", type=int, default=MAP_RESAMPLES,
                    help=f"resamples for detection mAP_a (default {MAP_RESAMPLES}; the official metric per resample)")
    ap.add_argument("--seed", type=int, default=RNG_SEED, help=f"RNG seed (default {RNG_SEED})")
    ap.add_argument("--metrics", default=None, help="comma-separated metric names (default: every comparable one)")
    args = ap.parse_args(argv)
    try:
        if args.resamples < 1 or args.map_resamples < 1:
            raise CompareError("--resamples and --map-resamples must be >= 1")
        rows = compare(args.results, args.a, args.b, resamples=args.resamples, map_resamples=args.map_resamples,
                       seed=args.seed, metrics=args.metrics.split(",") if args.metrics else None)
    except CompareError as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    print(format_text(rows, args.a, args.b, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
