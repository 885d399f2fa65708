"""Result files (JSON) and the printed table of the perf benchmark.

File layout (read by ``estimate.py``)::

    {"schema": 1, "device": "NVIDIA H100 80GB HBM3" | "CPU: ...", "device_slug": ..., "torch": ...,
     "config": {"profile", "methods", "phases", "patterns", "steps", ...}, "host": {...},
     "length_distribution": {...}, "rows": [{"method", "phase", "pattern", "samples_per_s", ...}],
     "speedups": [{"method", "phase", "ours_over_reference"}], "skipped": [{"method", "phase", "error"}]}
"""
from __future__ import annotations

import json
from pathlib import Path

from plumbing.files import atomic_write_text

SCHEMA = 1


def speedups(rows: list[dict]) -> list[dict]:
    """ours / reference samples/s for every (method, phase) measured in both patterns."""
    by = {(r["method"], r["phase"], r["pattern"]): r for r in rows}
    out = []
    for (method, phase, pattern), row in by.items():
        ref = by.get((method, phase, "reference"))
        if pattern == "ours" and ref and ref["samples_per_s"] > 0:
            out.append({"method": method, "phase": phase,
                        "ours_over_reference": round(row["samples_per_s"] / ref["samples_per_s"], 3)})
    return out


def file_name(slug: str, profile: str, methods: list[str], all_methods: list[str], patterns: list[str],
              compile: bool, batch: int | None, precision: str | None = None) -> str:
    """``<device-slug>_<profile>[_<methods>][_<patterns>][_<precision>][_compile][_b<batch>].json``
    (the precision only when given explicitly, so default runs keep their names)."""
    parts = [slug, profile]
    if sorted(methods) != sorted(all_methods):
        parts.append("+".join(methods))
    if sorted(patterns) != ["ours", "reference"]:
        parts.append("+".join(patterns))
    if precision:
        parts.append(precision)
    if compile:
        parts.append("compile")
    if batch:
        parts.append(f"b{batch}")
    return "_".join(parts) + ".json"


def write(result: dict, out: Path) -> Path:
    """Atomically write ``result``; ``out`` is a folder (file named by ``result['file_name']``)
    or a path ending in ``.json``."""
    out = Path(out)
    path = out if out.suffix == ".json" else out / result["file_name"]
    try:
        atomic_write_text(path, json.dumps(result, indent=1) + "\n")
    except OSError as err:
        raise SystemExit(f"--out {out}: cannot write the result file {path}: {err}") from None
    return path


def _fmt_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def _fmt_time(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s / 3600:.2f} h" if s >= 3600 else (f"{s / 60:.1f} min" if s >= 60 else f"{s:.1f} s")


def table(result: dict) -> str:
    """The short table printed last: one line per row, speed-up on the ``ours`` line."""
    ups = {(u["method"], u["phase"]): u["ours_over_reference"] for u in result.get("speedups", [])}
    head = (f"{'method':9s} {'phase':10s} {'pattern':9s} {'samples/s':>10s} {'epoch':>9s} {'peak mem':>10s} "
            f"{'GFLOP/smp':>9s} {'MFU':>6s} {'pad':>5s} {'speed-up':>8s}")
    lines = [f"perf: {result['device']} | torch {result['torch']} | profile {result['config']['profile']} | "
             f"{result['host']['torch_threads']} thread(s), load {result['host']['load_average_1_5_15'][0]}", head,
             "-" * len(head)]
    for r in result["rows"]:
        up = ups.get((r["method"], r["phase"])) if r["pattern"] == "ours" else None
        gf = f"{r['flops_per_sample'] / 1e9:.3f}" if r.get("flops_per_sample") else "-"
        mfu = f"{100 * r['mfu']:.1f}%" if r.get("mfu") is not None else "-"
        pad = f"{100 * r['padding_fraction']:.0f}%" if r.get("padding_fraction") is not None else "-"
        lines.append(f"{r['method']:9s} {r['phase']:10s} {r['pattern']:9s} {r['samples_per_s']:10.1f} "
                     f"{_fmt_time(r['epoch_time_s']):>9s} {_fmt_bytes(r['peak_memory_bytes']):>10s} {gf:>9s} "
                     f"{mfu:>6s} {pad:>5s} {(f'{up:.2f}x' if up else '-'):>8s}")
    for s in result.get("skipped", []):
        lines.append(f"{s['method']:9s} {s['phase']:10s} SKIPPED: {s['error']}")
    if not any(r["pattern"] == "reference" for r in result["rows"]) or not any(
            r["pattern"] == "ours" for r in result["rows"]):
        lines.append("speed-up: n/a (run both patterns: --patterns ours,reference)")
    lines.append(f"MFU peak: {result['config']['peak_flops_source']}")
    return "\n".join(lines)
