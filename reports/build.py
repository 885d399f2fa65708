"""``python -m reports.build [--results results/] [--out reports/out]``: tables, figures, HTML.

Also called by ``benchmarks.run`` at the end of a run through :func:`build`.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from plumbing.files import atomic_write_text

from . import figures as figs
from . import records as recs
from .html import render
from .extra_tables import build_tables, row_matches
from .tables import matches, write


def _pick(records: list[dict], section: tuple, task: str, rows: dict[str, dict], artifact: str,
          results_dir: Path) -> list[tuple[str, Path]]:
    """Per table row, the artifact of one run in ``section`` (100% data preferred, lowest seed,
    latest record)."""
    out = []
    for row, match in rows.items():
        cands = [r for r in records if r.get("task") == task and matches(r, match)
                 and (str(r.get("dataset")), str(r.get("split")), str(r.get("profile"))) == tuple(section)]
        cands.sort(key=lambda r: str((r.get("provenance") or {}).get("finished_at") or ""), reverse=True)
        cands.sort(key=lambda r: (abs(float(r.get("label_fraction", 0)) - 1.0), r.get("seed", 0)))  # stable
        for r in cands:
            path = figs.resolve((r.get("artifacts") or {}).get(artifact), results_dir)
            if path is not None:
                out.append((row, path))
                break
    return out


def _logs(records: list[dict], results_dir: Path) -> list[tuple[str, Path]]:
    seen, out = set(), []
    for r in records:
        pre = r.get("pretrain") or {}
        pid = pre.get("id")
        if not pid or pid in seen:
            continue
        seen.add(pid)
        path = figs.resolve(pre.get("log"), results_dir) or figs.resolve(Path("pretrain") / pid / "pretrain.log",
                                                                          results_dir)
        if path is not None:
            levels = f" {r['levels']}" if r.get("levels") else ""
            out.append((f"{r.get('method')} {r.get('stream') or ''}{levels} seed {r.get('seed')}".replace("  ", " "),
                        path))
    return sorted(out)


def build(results_dir: str | Path = "results", out_dir: str | Path = "reports/out",
          include_smoke: bool = False) -> dict[str, Any]:
    """Write table{1,2,3}.{md,tex,csv}, recognition.{md,tex,csv}, fig*.{png,svg} and report.html under ``out_dir``.
    Smoke records are left out unless ``include_smoke`` (then in their own SMOKE sections).

    Returns ``{"tables": {key: [paths]}, "figures": {key: {"png", "svg"} | {"reason"}},
    "html": path, "records": n, "skipped": [...], "seconds": s}``.
    """
    t0 = time.perf_counter()
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    loaded = recs.load(results_dir, include_smoke)
    df = recs.frame(loaded.records)
    tables = build_tables(df)
    written = {key: [str(p) for p in write(t, out_dir)] for key, t in tables.items()}
    figures = []
    t1 = tables["table1"]
    det = t1.sections[0]
    if det[0] != "none":
        figures.append(figs.fig1_map_a(t1.cells, det, out_dir))
    else:
        figures.append(figs.Figure("fig1_map_a", "", reason="no detection records"))
    figures.append(figs.fig2_timelines(_pick(loaded.records, det, "detection", row_matches(t1.spec), "timelines",
                                             results_dir), det[0], out_dir))
    pred = tables["table2"].sections[0]
    figures.append(figs.fig3_skeletons(_pick(loaded.records, pred, "prediction", row_matches(tables["table2"].spec),
                                             "predictions", results_dir), pred[0], out_dir))
    figures.append(figs.fig4_pretrain_curves(_logs(loaded.records, results_dir), out_dir))
    page = render(loaded.records, df, tables, figures, loaded.skipped, str(results_dir))
    html_path = atomic_write_text(out_dir / "report.html", page)
    return {"tables": written,
            "figures": {f.key: ({k: str(v) for k, v in f.paths.items()} if not f.reason else {"reason": f.reason})
                        for f in figures},
            "html": str(html_path), "records": len(loaded.records), "skipped": loaded.skipped,
            "smoke_left_out": 0 if include_smoke else loaded.smoke,
            "seconds": round(time.perf_counter() - t0, 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reports.build",
                                 description="Regenerate the paper's Tables 1-3 (beside its numbers), its figures "
                                             "and one self-contained report.html from result records.")
    ap.add_argument("--results", default="results", help="results folder of benchmarks.run (holds records/*.json)")
    ap.add_argument("--out", default="reports/out", help="output folder for tables, figures and report.html")
    ap.add_argument("--include-smoke", action="store_true",
                    help="also tabulate smoke records (benchmarks.run --smoke), in their own sections captioned SMOKE")
    args = ap.parse_args(argv)
    if not (Path(args.results) / "records").is_dir():
        print(f"error: no records folder in {args.results!r}; run `python -m benchmarks.run ...` first or pass "
              "--results DIR", file=sys.stderr)
        return 2
    out = build(args.results, args.out, args.include_smoke)
    print(f"[reports] {out['records']} records -> {args.out} in {out['seconds']} s"
          + (f" ({out['smoke_left_out']} smoke records left out; --include-smoke shows them)"
             if out["smoke_left_out"] else ""))
    for key, paths in out["tables"].items():
        print(f"  {key}: {', '.join(Path(p).name for p in paths)}")
    for key, info in out["figures"].items():
        print(f"  {key}: " + (f"not drawn ({info['reason']})" if "reason" in info else
                              ", ".join(Path(p).name for p in info.values())))
    for s in out["skipped"]:
        print(f"  skipped unreadable record {s}", file=sys.stderr)
    print(f"  report: {out['html']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
