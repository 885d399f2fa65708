"""One self-contained ``report.html``: tables, figures (base64 PNG), provenance; opens offline.

No external scripts, fonts or stylesheets: everything the page shows is inside the file.
"""
from __future__ import annotations

import base64
import datetime as dt
import html
import json
from typing import Any

import pandas as pd

from .figures import Figure
from .records import is_synthetic
from .tables import MISSING, TableResult, caption, fmt_diff, fmt_ours, fmt_paper, has_paper

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right;vertical-align:top}
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}
td.missing{color:#b00;text-align:center}
.paper{display:block;color:#666;font-size:.85em;white-space:nowrap}
.scroll{overflow-x:auto}
.banner{background:#fde8e8;border:2px solid #c00;color:#900;padding:.8em 1em;font-weight:bold;margin:1em 0}
.caption{color:#444;font-size:.92em;margin:.2em 0}.warn{color:#900;font-weight:bold}
figure{margin:1.2em 0}figure img{max-width:100%;border:1px solid #ddd}figcaption{font-size:.9em;color:#444}
details{margin:.3em 0}pre{background:#f7f7f7;padding:.6em;overflow:auto;font-size:.8em}
.small{font-size:.8em;color:#555}
"""


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _table_html(result: TableResult) -> str:
    spec = result.spec
    parts = [f'<h2 id="{spec.key}">{_e(spec.key.replace("table", "Table "))}: {_e(spec.title)}</h2>']
    c = result.cells
    for sec in result.sections:
        cells = c[(c["dataset"] == sec[0]) & (c["split"] == sec[1]) & (c["profile"] == sec[2])]
        for line in caption(result, sec, cells):
            cls = "caption warn" if line.startswith("⚠") else "caption"
            parts.append(f'<p class="{cls}">{_e(line)}</p>')
        by = {(r.row, r.col): r for r in cells.itertuples(index=False)}
        rows = ["<tr>" + "".join(f"<th>{_e(h)}</th>" for h in (spec.row_header, *spec.cols)) + "</tr>"]
        for row in spec.rows:
            tds = [f"<td>{_e(row)}</td>"]
            for col in spec.cols:
                r = by[(row, col)]
                ours = fmt_ours(r.ours_mean, r.ours_std, r.n_seeds, runs=r.n_runs)
                pap = fmt_paper(r.paper)
                title = f"seeds: {r.seeds}; runs: {r.run_ids}" if r.n_seeds else "no run"
                cls = ' class="missing"' if ours == MISSING else ""
                paper_part = (f'<span class="paper">paper {_e(pap)}, Δ {_e(fmt_diff(r.diff))}</span>'
                              if has_paper(r.paper) else "")
                tds.append(f'<td{cls} title="{_e(title)}">{_e(ours)}{paper_part}</td>')
            rows.append("<tr>" + "".join(tds) + "</tr>")
        parts.append(f'<table class="result" data-table="{spec.key}" data-dataset="{_e(sec[0])}">'
                     + "".join(rows) + "</table>")
    return "\n".join(parts)


def _figure_html(fig: Figure) -> str:
    if fig.reason:
        return f'<p class="caption warn">{_e(fig.key)}: not drawn — {_e(fig.reason)}</p>'
    data = base64.b64encode(fig.png).decode("ascii")
    return (f'<figure id="{fig.key}"><img alt="{_e(fig.key)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_e(fig.caption)}</figcaption></figure>")


def _all_results(df: pd.DataFrame) -> str:
    if df.empty:
        return "<p>No records.</p>"
    keys = ["dataset", "split", "profile", "task", "variant", "stream", "levels", "label_fraction", "metric"]
    g = df.fillna({k: "" for k in ("stream", "levels", "split", "profile")}).groupby(keys, dropna=False)["value"]
    agg = g.agg(mean="mean", std="std", n="count").reset_index()
    agg["mean"] = agg["mean"].round(3)
    agg["std"] = agg["std"].round(3)
    return '<div class="scroll">' + agg.to_html(index=False, na_rep=MISSING, classes="allres", border=0) + "</div>"


def _provenance(records: list[dict]) -> str:
    rows = []
    for r in records:
        p = r.get("provenance") or {}
        commit = (p.get("git_commit") or "")[:10] + (" (dirty)" if p.get("git_dirty") else "")
        rows.append({"run_id": r.get("run_id"), "variant": r.get("variant"), "stream": r.get("stream"),
                     "levels": r.get("levels"), "task": r.get("task"), "dataset": r.get("dataset"),
                     "fraction": r.get("label_fraction"), "seed": r.get("seed"), "profile": r.get("profile"),
                     "commit": commit, "device": p.get("device"), "world": p.get("world_size"),
                     "torch": p.get("torch"), "cuda": p.get("cuda"), "wall_time_s": p.get("wall_time_s"),
                     "samples/s": p.get("samples_per_s"), "finished": p.get("finished_at"),
                     "config": (r.get("config_sha256") or "")[:12]})
    if not rows:
        return "<p>No records.</p>"
    return '<div class="scroll">' + pd.DataFrame(rows).to_html(index=False, na_rep="", classes="prov", border=0) + "</div>"


def _configs(records: list[dict]) -> str:
    seen: dict[str, tuple[dict, list[str]]] = {}
    for r in records:
        sha = r.get("config_sha256") or json.dumps(r.get("config"), sort_keys=True)[:12]
        seen.setdefault(sha, (r.get("config") or {}, []))[1].append(str(r.get("run_id")))
    out = []
    for sha, (cfg, runs) in seen.items():
        out.append(f"<details><summary>config {_e(sha[:12])} — {len(runs)} run(s): {_e(', '.join(runs[:4]))}"
                   f"{' …' if len(runs) > 4 else ''}</summary><pre>{_e(json.dumps(cfg, indent=1, sort_keys=True))}</pre></details>")
    return "\n".join(out) or "<p>No configurations.</p>"


PAIRS = (("hitrs", "mcc"), ("hitrs", "crossclr"), ("hitrs-3s", "crossclr-3s"))   # the tables' main rows
PAIRED_METRICS = ["mAP_a", "mAP_v", "mpjpe", "top1", "linear_top1", "knn_top1"]
PAIRED_RESAMPLES, PAIRED_MAP_RESAMPLES = 2000, 200


def _paired(records: list[dict], results_dir: str) -> str:
    """Hi-TRS against the other table rows on the same test sets (reports.compare), per pair."""
    from . import compare
    from .records import is_smoke

    records = [r for r in records if not is_smoke(r)]
    have = {r.get("variant") for r in records}
    parts = [f'<p class="caption">{_e(line)}</p>' for line in (
        f"A - B for the tables' metrics ({', '.join(PAIRED_METRICS)}) where both ran on the same test set; "
        f"here {PAIRED_RESAMPLES} resamples ({PAIRED_MAP_RESAMPLES} for mAP_a), RNG seed {compare.RNG_SEED}. "
        "More, and every metric: python -m reports.compare --results RESULTS A B.",
        compare.method_lines([], compare.RNG_SEED)[0])]
    for a, b in PAIRS:
        if a not in have or b not in have:
            continue
        parts.append(f"<h3>{_e(a)} vs {_e(b)}</h3>")
        try:
            rows = compare.compare(results_dir, a, b, resamples=PAIRED_RESAMPLES, map_resamples=PAIRED_MAP_RESAMPLES,
                                   records=records, metrics=PAIRED_METRICS)
        except compare.CompareError as err:
            parts.append(f'<p class="caption warn">not compared: {_e(err)}</p>')
            continue
        frame = pd.DataFrame(compare.table(rows, a, b))
        parts.append('<div class="scroll">' + frame.to_html(index=False, na_rep="", classes="paired", border=0)
                     + "</div>" if not frame.empty else "<p>nothing to compare</p>")
    if len(parts) == 2:
        parts.append("<p>No pair of the tables' rows ran in these records.</p>")
    return "\n".join(parts)


def render(records: list[dict], df: pd.DataFrame, tables: dict[str, TableResult], figures: list[Figure],
           skipped: list[str], results_dir: str) -> str:
    """The whole page as a string."""
    datasets = sorted({str(r.get("dataset")) for r in records})
    synthetic = [d for d in datasets if is_synthetic(d)]
    prov = [r.get("provenance") or {} for r in records]
    commits = sorted({(p.get("git_commit") or "?")[:10] + ("+dirty" if p.get("git_dirty") else "") for p in prov})
    devices = sorted({str(p.get("device")) for p in prov})
    wall = sum(float(p.get("wall_time_s") or 0) for p in prov)
    body = ["<h1>Hi-TRS benchmark report</h1>",
            f'<p class="small">Generated {_e(dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))} '
            f"from <code>{_e(results_dir)}</code> by <code>python -m reports.build</code>.</p>"]
    if synthetic:
        body.append(f'<div class="banner">SYNTHETIC data ({_e(", ".join(synthetic))}) — these numbers come from the '
                    "suite's generated data and are NOT comparable to the paper's NTU / PKU-MMD numbers.</div>")
    body.append("<h2>Runs</h2><ul>"
                f"<li>{len(records)} records; datasets: {_e(', '.join(datasets) or 'none')}</li>"
                f"<li>commits: {_e(', '.join(commits) or 'none')}</li>"
                f"<li>devices: {_e('; '.join(devices) or 'none')}</li>"
                f"<li>total wall time: {wall:.1f} s ({wall / 3600:.2f} h)</li></ul>")
    if skipped:
        body.append('<p class="warn">Unreadable record files (not included):</p><ul>'
                    + "".join(f"<li>{_e(s)}</li>" for s in skipped) + "</ul>")
    body += [_table_html(t) for t in tables.values()]
    body += ['<h2 id="paired">Paired comparisons (95% CI over test samples, permutation p)</h2>',
             _paired(records, results_dir)]
    body.append("<h2>Figures</h2>")
    body += [_figure_html(f) for f in figures]
    body += ["<h2>All results (mean, std and count over seeds)</h2>", _all_results(df),
             "<h2>Provenance</h2>", _provenance(records), "<h2>Configurations</h2>", _configs(records)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>Hi-TRS benchmark report</title>"
            # marks every decoded image with its pixel width: lets a headless browser test prove they render
            "<script>window.addEventListener('load',function(){document.querySelectorAll('img').forEach("
            "function(i){i.setAttribute('data-rendered-width',String(i.naturalWidth));});});</script>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
