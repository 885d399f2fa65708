"""``python -m reports.summary [--results results/]``: rebuild ``summary.csv`` from the records.

The runner calls :func:`write_summary` after every run; this command does the same on its own
(after records were deleted, moved in, or the summary was lost). Bad record files are skipped
and listed, one line each, never a traceback.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from plumbing.files import atomic_write_text, path_under
from plumbing.locks import file_lock

from .escape import csv_frame
from .records import load

SUMMARY_KEYS = ["run_id", "variant", "method", "stream", "levels", "task", "dataset", "split",
                "label_fraction", "seed", "profile", "precision"]


def summary_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [{**{k: r.get(k) for k in SUMMARY_KEYS}, **r.get("metrics", {})} for r in records]
    return pd.DataFrame(rows, columns=None if rows else SUMMARY_KEYS)


def summary_csv(records: list[dict[str, Any]]) -> str:
    """summary.csv's text: text cells and metric names that a spreadsheet would run as a formula
    (``=HYPERLINK(...)``) are neutralised (``reports.escape.csv_cell``)."""
    return csv_frame(summary_frame(records)).to_csv(index=False)


def write_summary(results: str | Path, warn=None, include_smoke: bool = False) -> Path:
    """Rebuild ``results/summary.csv`` (under a lock: runs share results folders); ``warn`` gets
    one line per skipped record file. Smoke records (``"smoke": true``) only if asked."""
    results = Path(results)
    with file_lock(results / ".summary.lock"):
        loaded = load(results, include_smoke=include_smoke)
        path = results / "summary.csv"
        atomic_write_text(path_under(results, "summary.csv"), summary_csv(loaded.records))
    for line in loaded.skipped:
        (warn or (lambda msg: print(msg, file=sys.stderr)))(f"skipped record {line}")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reports.summary", description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="results", type=Path, help="results folder holding records/*.json")
    args = ap.parse_args(argv)
    if not (args.results / "records").is_dir():
        print(f"error: --results {args.results}: no records folder; run `python -m benchmarks.run ...` first "
              "or pass the results folder", file=sys.stderr)
        return 2
    try:
        path = write_summary(args.results)
    except (OSError, ValueError) as err:   # ValueError: a link out of the folder, a lock that is no file
        why = err.strerror if isinstance(err, OSError) and err.strerror else " ".join(str(err).split())
        print(f"error: --results {args.results}: cannot write summary.csv ({why}); "
              "check the folder's permissions, free space and that summary.csv / .summary.lock are plain files",
              file=sys.stderr)
        return 2
    print(f"[summary] {len(load(args.results).records)} records -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
