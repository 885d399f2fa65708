"""Tables 1-3 of the supplementary regenerated from result records, beside the paper's numbers.

Each cell holds our value (mean ± std over seeds), the paper's value and the difference
(ours - paper). Rows map to records through ``variant`` / ``stream`` / ``levels``
(``ROW_MATCH``); a record whose ``stream`` or ``levels`` is null counts as the default
(joint stream, levels F+C+V). Records are grouped into sections by (dataset, split, profile):
values from different datasets or profiles are never averaged together. Cells without a run
are kept and shown as "—".

Reference rows (``REFERENCE_ROWS``, marked "†", no paper value) are measured in the same run and
say what a number is worth on its own: each method's encoder at random initialisation,
fine-tuned the same way (variant ``<method>-random``, levels "-", which is also Table 3's "-"
column), the zero-velocity predictor (repeat the last observed pose) and CrosSCLR on joints alone.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from . import paper_numbers as paper
from .escape import csv_frame, md_text
from .records import is_smoke_profile, is_synthetic, latest_per_seed, mean_std, norm_levels, sections

MISSING = "—"
REF = "†"
DEFAULTS = {"stream": "joint", "levels": "F+C+V"}
ROW_MATCH = {
    "MCC": {"variant": "mcc", "stream": "joint"},
    "CrosSCLR": {"variant": "crossclr", "stream": "joint"},
    "CrosSCLR-3S": {"variant": "crossclr-3s"},
    "Hi-TRS": {"variant": "hitrs", "stream": "joint", "levels": "F+C+V"},
    "Hi-TRS-3s": {"variant": "hitrs-3s", "levels": "F+C+V"},
    # reference rows: not in the paper
    f"CrosSCLR (joint only) {REF}": {"variant": "crossclr", "stream": "joint"},
    f"Zero-velocity {REF}": {"variant": "zero-velocity"},
    f"MCC random init {REF}": {"variant": "mcc-random", "stream": "joint"},
    f"CrosSCLR random init {REF}": {"variant": "crossclr-random", "stream": "joint"},
    f"Hi-TRS random init {REF}": {"variant": "hitrs-random", "stream": "joint"},
}
RANDOM_ROWS = tuple(r for r in ROW_MATCH if r.endswith(f"random init {REF}"))
REFERENCE_ROWS = {"table1": (f"CrosSCLR (joint only) {REF}", *RANDOM_ROWS), "table2": (f"Zero-velocity {REF}", *RANDOM_ROWS)}
REFERENCE_MEANING = {"random init": "random init = the method's encoder not pre-trained, fine-tuned the same way",
                     "Zero-velocity": "zero-velocity = every predicted frame repeats the last observed pose",
                     "CrosSCLR (joint only)": "CrosSCLR (joint only) = the joint stream of CrosSCLR-3S alone"}


def reference_note(rows) -> str | None:
    """The caption line explaining the table's reference rows (None without any)."""
    meant = [text for key, text in REFERENCE_MEANING.items() if any(REF in r and key in r for r in rows)]
    return f"{REF} Reference rows measured in the same run, not from the paper: {'; '.join(meant)}." if meant else None
FRACTION_LABEL = {1.0: "100%", 0.1: "10%"}


@dataclass(frozen=True)
class Cell:
    match: dict
    fraction: float
    metric: str
    paper: float | None


@dataclass(frozen=True)
class TableSpec:
    key: str
    title: str
    task: str
    row_header: str
    rows: tuple[str, ...]
    cols: tuple[str, ...]
    cells: dict  # (row, col) -> Cell
    col_groups: tuple = ()  # ((label, span), ...) for a two-level LaTeX header
    unit: str = "%"
    higher_is_better: bool = True
    paper_dataset: str = ""
    paper_source: str = ""
    paper_data_word: str = ""  # "PKU-MMD" / "NTU-60" for the synthetic warning


def _t1() -> TableSpec:
    src = paper.TABLE1
    cols = [(f, m) for f in (1.0, 0.1) for m in ("mAP_a", "mAP_v")]
    labels = tuple(f"{FRACTION_LABEL[f]} {m}" for f, m in cols)
    rows = (*src["values"], *REFERENCE_ROWS["table1"])
    cells = {(r, lab): Cell(ROW_MATCH[r], f, m, src["values"].get(r, {}).get((f, m)))
             for r in rows for lab, (f, m) in zip(labels, cols)}
    return TableSpec("table1", "Action detection, mAP_a / mAP_v (%)", "detection", "Method",
                     rows, labels, cells, (("100% data", 2), ("10% data", 2)), "%", True,
                     src["dataset"], src["source"], "PKU-MMD")


def _t2() -> TableSpec:
    src = paper.TABLE2
    labels = ("100% MPJPE", "10% MPJPE")
    rows = (*src["values"], *REFERENCE_ROWS["table2"])
    cells = {(r, lab): Cell(ROW_MATCH[r], f, "mpjpe", src["values"].get(r, {}).get((f, "mpjpe")))
             for r in rows for lab, f in zip(labels, (1.0, 0.1))}
    return TableSpec("table2", "Motion prediction, MPJPE (mm, lower is better)", "prediction", "Method",
                     rows, labels, cells, (("100% data", 1), ("10% data", 1)), "mm", False,
                     src["dataset"], src["source"], "NTU-60")


def _t3() -> TableSpec:
    src = paper.TABLE3
    cells = {(m, lv): Cell(ROW_MATCH[f"Hi-TRS random init {REF}"] if lv == "-" else
                           {"variant": "hitrs", "stream": "joint", "levels": lv}, 1.0, m, src["values"][m][lv])
             for m in src["values"] for lv in paper.LEVEL_SETS}
    return TableSpec("table3", "Ablation of Hi-TRS pre-trained levels for detection, 100% data (%)", "detection",
                     "Pre-trained level", tuple(src["values"]), paper.LEVEL_SETS, cells, (), "%", True,
                     src["dataset"], src["source"], "PKU-MMD")


SPECS = {"table1": _t1, "table2": _t2, "table3": _t3}


def matches(record: dict, match: dict) -> bool:
    """Whether one raw record belongs to a row (same rule as the frame-based mask)."""
    for key, want in match.items():
        have = norm_levels(record.get(key)) if key == "levels" else record.get(key)
        if have != want and not (have is None and DEFAULTS.get(key) == want):
            return False
    return True


def _match_mask(df: pd.DataFrame, match: dict) -> np.ndarray:
    mask = np.ones(len(df), dtype=bool)
    for key, want in match.items():
        col = df[key].to_numpy(dtype=object)
        ok = col == want
        if key in DEFAULTS and want == DEFAULTS[key]:
            ok |= pd.isna(df[key]).to_numpy()
        mask &= ok
    return mask


@dataclass
class TableResult:
    spec: TableSpec
    cells: pd.DataFrame  # long: one row per (section, row, col)
    sections: list = field(default_factory=list)  # [(dataset, split, profile)]
    left_out: dict = field(default_factory=dict)  # {"rows": [...], "cols": [...]}: no run, no paper value


def has_paper(value) -> bool:
    return value is not None and not pd.isna(value)


def prune(result: TableResult) -> TableResult:
    """Drop the rows and columns that no run filled in any section and where the paper has no
    number (a zero-velocity row in a recognition table, columns of fractions not run); the
    caption names what was left out. The paper's numbers always keep their row and column."""
    spec, c = result.spec, result.cells
    if c.empty:
        return result
    filled = (c["n_runs"] > 0) | c["paper"].map(has_paper)
    rows = tuple(r for r in spec.rows if filled[c["row"] == r].any())
    cols = tuple(k for k in spec.cols if filled[c["col"] == k].any())
    if rows == spec.rows and cols == spec.cols:
        return result
    groups, start = [], 0
    for label, span in spec.col_groups:   # the two-level LaTeX header keeps only the kept columns
        kept = sum(1 for k in spec.cols[start:start + span] if k in cols)
        start += span
        if kept:
            groups.append((label, kept))
    pruned = replace(spec, rows=rows, cols=cols, col_groups=tuple(groups),
                     cells={k: v for k, v in spec.cells.items() if k[0] in rows and k[1] in cols})
    cells = c[c["row"].isin(rows) & c["col"].isin(cols)].reset_index(drop=True)
    left = {"rows": [r for r in spec.rows if r not in rows], "cols": [k for k in spec.cols if k not in cols]}
    return TableResult(pruned, cells, result.sections, left)


def build_table(spec: TableSpec, df: pd.DataFrame) -> TableResult:
    """Aggregate the long record frame into the table's cells, one block per section."""
    task = df[df["task"] == spec.task] if not df.empty else df
    secs = sections(task) or [("none", "none", "none")]
    out = []
    for ds, split, prof in secs:
        sub = task[(task["dataset"].astype(str) == ds) & (task["split"].astype(str) == split)
                   & (task["profile"].astype(str) == prof)] if not task.empty else task
        sub = latest_per_seed(sub, ["variant", "stream", "levels", "label_fraction"])
        for (row, col), cell in spec.cells.items():
            if sub.empty:
                hit = sub
            else:
                m = (_match_mask(sub, cell.match) & np.isclose(sub["label_fraction"].to_numpy(float), cell.fraction)
                     & (sub["metric"] == cell.metric).to_numpy())
                hit = sub[m]
            mean, std, n = mean_std(hit["value"] if len(hit) else [])
            out.append({"table": spec.key, "dataset": ds, "split": split, "profile": prof,
                        "synthetic": is_synthetic(ds), "row": row, "col": col, "metric": cell.metric,
                        "label_fraction": cell.fraction, "ours_mean": mean, "ours_std": std, "n_seeds": n,
                        "n_runs": len(hit),
                        "seeds": " ".join(str(int(s)) for s in sorted(hit["seed"].dropna().unique())) if n else "",
                        "paper": cell.paper, "diff": mean - cell.paper if n and cell.paper is not None else float("nan"),
                        "run_ids": " ".join(hit["run_id"].astype(str)) if n else ""})
    return prune(TableResult(spec, pd.DataFrame(out), secs))


# ---- formatting --------------------------------------------------------------------------
def fmt_ours(mean: float, std: float, n: int, pm: str = "±", runs: int = 0) -> str:
    """'m ± s' (several seeds), 'm' (one), 'NaN' (runs without a finite value), '—' (no run)."""
    if not n:
        return "NaN" if runs else MISSING
    if n == 1:
        return f"{mean:.1f}"
    sd = f"{std:.2f}" if std < 0.1 else f"{std:.1f}"
    return f"{mean:.1f} {pm} {sd}"


def fmt_paper(value) -> str:
    """The paper's value, or '—' for a reference row (None, or NaN once in a frame)."""
    return MISSING if value is None or pd.isna(value) else f"{value:.1f}"


def fmt_diff(diff: float, minus: str = "−") -> str:
    if not np.isfinite(diff):
        return MISSING
    return f"+{diff:.1f}" if diff >= 0 else f"{minus}{abs(diff):.1f}"


def caption(result: TableResult, section: tuple[str, str, str], cells: pd.DataFrame) -> list[str]:
    """Caption lines: what the values are, which data they come from, what is missing."""
    spec = result.spec
    ds, split, prof = section
    lines = []
    if is_smoke_profile(prof):
        lines.append("⚠ SMOKE run (a few optimizer steps, a few sequences): checks that the jobs run, NOT results.")
    if ds == "none":
        lines.append(f"No {spec.task} records found: every cell is missing ({MISSING}).")
    elif is_synthetic(ds):
        lines.append(f"⚠ SYNTHETIC data ({ds}) — not comparable to the paper's {spec.paper_data_word} numbers.")
    seeds = sorted({s for text in cells["seeds"] for s in text.split()}, key=int)
    ours = (f"Ours: {ds}, split {split}, profile {prof}" + (f", mean ± std over seeds {', '.join(seeds)}" if seeds else ""))
    papers = cells["paper"].map(has_paper) if len(cells) else pd.Series([], dtype=bool)
    lower = ", lower is better" if not spec.higher_is_better else ""
    each = (f"Each cell: ours (paper, Δ = ours − paper{lower})" if papers.all() and len(papers) else
            f"Each cell: ours (paper, Δ = ours − paper{lower}) where the paper has a number, else ours"
            if papers.any() else f"Each cell: ours{lower}")
    lines.append(f"{spec.title}. {ours}. Paper: {spec.paper_dataset} ({spec.paper_source}). {each}.")
    if ds != "none" and not is_synthetic(ds) and prof != "paper":
        lines.append(f"Note: profile '{prof}' uses a reduced schedule; the paper used the full protocol.")
    missing = int((cells["n_runs"] == 0).sum())
    if missing and ds != "none":
        lines.append(f"{missing} of {len(cells)} cells have no run ({MISSING}).")
    nan = int(((cells["n_runs"] > 0) & (cells["n_seeds"] == 0)).sum())
    if nan:
        lines.append(f"{nan} cells have runs without a finite value (NaN: diverged or failed metric).")
    if reference_note(spec.rows):
        lines.append(reference_note(spec.rows))
    left = [f"{kind} {', '.join(names)}" for kind, names in
            (("rows", result.left_out.get("rows") or []), ("columns", result.left_out.get("cols") or [])) if names]
    if left and ds != "none":
        lines.append(f"Left out (no run and no paper value): {'; '.join(left)}.")
    return lines


def _grid(result: TableResult, section, render) -> tuple[list[str], list[list[str]], pd.DataFrame]:
    spec = result.spec
    c = result.cells
    cells = c[(c["dataset"] == section[0]) & (c["split"] == section[1]) & (c["profile"] == section[2])]
    by = {(r.row, r.col): r for r in cells.itertuples(index=False)}
    body = [[row] + [render(by[(row, col)]) for col in spec.cols] for row in spec.rows]
    return [spec.row_header, *spec.cols], body, cells


def to_markdown(result: TableResult) -> str:
    spec = result.spec
    out = [f"# {spec.key.replace('table', 'Table ')}: {spec.title}", ""]
    for sec in result.sections:
        head, body, cells = _grid(result, sec, lambda r: fmt_ours(r.ours_mean, r.ours_std, r.n_seeds, runs=r.n_runs)
                                  + (f" ({fmt_paper(r.paper)}, Δ {fmt_diff(r.diff)})" if has_paper(r.paper) else ""))
        out += [f"**{md_text(line)}**" if line.startswith("⚠") else md_text(line)
                for line in caption(result, sec, cells)] + [""]
        out.append("| " + " | ".join(md_text(h) for h in head) + " |")
        out.append("|" + "|".join([" --- "] + [" ---: "] * (len(head) - 1)) + "|")
        out += ["| " + " | ".join([md_text(row[0]), *row[1:]]) + " |" for row in body]
        out.append("")
    return "\n".join(out)


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex_escape(text: str) -> str:
    text = "".join(_TEX.get(ch, ch) for ch in str(text))
    return text.replace("†", r"\dag{}").replace("—", "---").replace("−", "$-$").replace("±", r"$\pm$").replace("Δ", r"$\Delta$")


def _tex_cell(r) -> str:
    ours = fmt_ours(r.ours_mean, r.ours_std, r.n_seeds, pm=r"\pm", runs=r.n_runs)
    ours = "---" if ours == MISSING else ours if ours == "NaN" else f"${ours}$"
    if not has_paper(r.paper):
        return ours
    pap = fmt_paper(r.paper).replace(MISSING, "---")
    return ours + r" {\scriptsize(" + pap + ", " + fmt_diff(r.diff, "-").replace(MISSING, "---") + ")}"


def to_latex(result: TableResult) -> str:
    """booktabs tables (one per section); needs \\usepackage{booktabs}."""
    spec = result.spec
    out = [f"% {spec.key}: generated by reports.build from result records; needs \\usepackage{{booktabs}}"]
    for sec in result.sections:
        head, body, cells = _grid(result, sec, _tex_cell)
        cap = " ".join("\\textbf{" + tex_escape(line[1:].strip()) + "}" if line.startswith("⚠") else tex_escape(line)
                       for line in caption(result, sec, cells))
        label = f"tab:{spec.key}-{sec[0]}-{sec[2]}".replace("_", "-")
        out += [r"\begin{table}[t]", r"\centering", r"\small", f"\\caption{{{cap}}}", f"\\label{{{label}}}",
                r"\begin{tabular}{l" + "c" * len(spec.cols) + "}", r"\toprule"]
        if spec.col_groups:
            groups, rules, start = [], [], 2
            for name, span in spec.col_groups:
                groups.append(f"\\multicolumn{{{span}}}{{c}}{{{tex_escape(name)}}}")
                rules.append(f"\\cmidrule(lr){{{start}-{start + span - 1}}}")
                start += span
            out.append(" & " + " & ".join(groups) + r" \\")
            out.append("".join(rules))
            sub = [c.split(" ", 1)[1] if " " in c else c for c in spec.cols]
            out.append(tex_escape(spec.row_header) + " & " + " & ".join(tex_escape(s) for s in sub) + r" \\")
        else:
            out.append(" & ".join(tex_escape(h) for h in head) + r" \\")
        out.append(r"\midrule")
        out += [tex_escape(row[0]) + " & " + " & ".join(row[1:]) + r" \\" for row in body]
        out += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(out)


def to_csv(result: TableResult) -> str:
    """Long form: one line per (section, row, column) with every number separately."""
    return csv_frame(result.cells).to_csv(index=False, float_format="%.6g")


def write(result: TableResult, out_dir) -> list:
    from pathlib import Path

    from plumbing.files import atomic_write_text

    out_dir = Path(out_dir)
    paths = []
    for ext, text in (("md", to_markdown(result)), ("tex", to_latex(result)), ("csv", to_csv(result))):
        paths.append(atomic_write_text(out_dir / f"{result.spec.key}.{ext}", text))
    return paths
