"""The supplementary's figures from result records (matplotlib, Agg; PNG + SVG).

* Fig. 1 ``fig1_map_a``: mAP_a bars by method and label fraction (± std over seeds), the
  paper's values as black diamonds;
* Fig. 2 ``fig2_timelines``: per-frame detection timelines of two test videos, ground truth vs
  each method (``timelines.npz`` artifacts);
* Fig. 3 ``fig3_skeletons``: predicted vs ground-truth skeletons at several future frames, drawn
  with the NTU bone graph (``predictions.npz`` artifacts);
* Fig. 4 ``fig4_pretrain_curves``: pre-training losses per task (``pretrain.log``).

Each ``fig*`` function returns a :class:`Figure` with its caption, or the reason it was not drawn.
"""
from __future__ import annotations

import io
import os
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.ticker import FormatStrFormatter, NullLocator  # noqa: E402

from plumbing.files import (UnreadableFileError, atomic_write_bytes, iter_lines, open_regular,  # noqa: E402
                            parse_json)
from .records import is_synthetic  # noqa: E402

plt.rcParams.update({"svg.hashsalt": "hitrs-bench", "font.size": 9})
BLUE, ORANGE, RED, GREY = "#4c72b0", "#f28e2b", "#d62728", "#9a9a9a"
METHOD_COLORS = {"MCC": "#59a14f", "CrosSCLR": "#b07aa1", "CrosSCLR-3S": "#b07aa1", "Hi-TRS": "#4e79a7",
                 "Hi-TRS-3s": "#e15759"}

# NTU bone graph (1-based child, parent) without the root's self loop; mirrors datasets.streams
try:  # the single source of truth when importable (it pulls in torch)
    from datasets.streams import NTU_BONE_PAIRS as _PAIRS
except Exception:  # pragma: no cover - reports must still work without torch
    _PAIRS = ((1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10),
              (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (21, 21),
              (22, 23), (23, 8), (24, 25), (25, 12))
BONES = np.array([(c - 1, p - 1) for c, p in _PAIRS if c != p], dtype=np.int64)


@dataclass
class Figure:
    key: str
    caption: str
    paths: dict[str, Path] = field(default_factory=dict)  # "png"/"svg" -> path
    png: bytes = b""
    reason: str = ""  # why it was not drawn (empty when drawn)


def _save(fig, out_dir: Path, key: str, caption: str) -> Figure:
    out = Figure(key, caption)
    for ext in ("png", "svg"):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=110, metadata={"Date": None} if ext == "svg" else None)
        out.paths[ext] = atomic_write_bytes(out_dir / f"{key}.{ext}", buf.getvalue())
        if ext == "png":
            out.png = buf.getvalue()
    plt.close(fig)
    return out


def _header(fig, title: str, note: str = "", synthetic: bool = False) -> float:
    """Title and (wrapped) data note at the top of ``fig``; returns the inches they take."""
    width, height = fig.get_size_inches()
    fig.text(0.5, 1 - 0.12 / height, title, ha="center", va="top", fontsize=10)
    used = 0.4
    if note:
        wrapped = textwrap.fill(note, width=int(width * 12))
        fig.text(0.5, 1 - 0.36 / height, wrapped, ha="center", va="top", fontsize=8.5,
                 color=RED if synthetic else "#333", weight="bold" if synthetic else "normal")
        used += 0.17 * (wrapped.count("\n") + 1)
    return used + 0.1


def _data_note(dataset: str, paper_word: str) -> str:
    if is_synthetic(dataset):
        return f"SYNTHETIC data ({dataset}) — not comparable to the paper's {paper_word} numbers"
    return f"data: {dataset}"


# ---- Fig. 1 --------------------------------------------------------------------------------
def fig1_map_a(cells: pd.DataFrame, section: tuple[str, str, str], out_dir: Path) -> Figure:
    """Bars from Table 1's cells (one section): mAP_a by method and fraction."""
    ds = section[0]
    sub = cells[(cells["dataset"] == ds) & (cells["split"] == section[1]) & (cells["profile"] == section[2])
                & (cells["metric"] == "mAP_a")]
    methods = list(dict.fromkeys(sub["row"]))
    fracs = [1.0, 0.1]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    width = 0.38
    for j, frac in enumerate(fracs):
        part = sub[np.isclose(sub["label_fraction"], frac)].set_index("row").reindex(methods)
        x = np.arange(len(methods)) + (j - 0.5) * width
        mean = part["ours_mean"].to_numpy(float)
        std = np.where(part["n_seeds"].to_numpy() > 1, part["ours_std"].to_numpy(float), 0.0)
        have = np.isfinite(mean)
        ax.bar(x[have], mean[have], width * 0.95, yerr=std[have], capsize=3, color=[BLUE, ORANGE][j],
               label=f"ours, {int(frac * 100)}% data", edgecolor="black", linewidth=0.5)
        for xi in x[~have]:
            ax.text(xi, 1.0, "missing", rotation=90, ha="center", va="bottom", fontsize=8, color=RED)
        ax.scatter(x, part["paper"].to_numpy(float), marker="D", color="black", s=22, zorder=5,
                   label="paper" if j == 0 else None)
    ax.set_xticks(np.arange(len(methods)), methods, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("mAP_a (%)")
    top = np.nanmax(np.concatenate([sub["ours_mean"].to_numpy(float) + np.nan_to_num(sub["ours_std"].to_numpy(float)),
                                    sub["paper"].to_numpy(float)]))
    ax.set_ylim(0, max(10.0, top * 1.15))
    ax.legend(loc="upper left", fontsize=8, ncol=3)
    note = _data_note(ds, "PKU-MMD")
    top = _header(fig, f"Fig. 1 — mAP_a by method and label fraction ({section[2]} profile)", note, is_synthetic(ds))
    fig.subplots_adjust(left=0.1, right=0.98, top=1 - top / 4.0, bottom=0.2)
    caption = (f"Fig. 1. mAP_a (%) of action detection by method; bars: ours ({note}), mean ± std over seeds, "
               "blue = 100% and orange = 10% of the training videos; black diamonds: the paper's Table 1 values "
               "(PKU-MMD Part I, cross-subject). Missing runs are labelled 'missing'.")
    return _save(fig, out_dir, "fig1_map_a", caption)


# ---- Fig. 2 --------------------------------------------------------------------------------
MAX_ARTIFACT_BYTES = 2**30   # a predictions / timelines file of ours is a few MB
MAX_LOG_LINE = 2**20         # a pre-training log line is a few hundred bytes


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    """An artifact named by a record: a regular file (never a FIFO or a device), arrays only."""
    with open_regular(path, MAX_ARTIFACT_BYTES) as fh, np.load(fh, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def timeline_codes(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Per-frame colour code of a method's row: 0 no action predicted (blue), 1 the ground-truth
    class (orange), 2 another class or an action where there is none (red). ``pred`` is cut or
    zero-padded to the ground truth's length."""
    pred = np.pad(pred, (0, max(0, len(gt) - len(pred))))[:len(gt)]
    return np.where(pred == 0, 0, np.where(pred == gt, 1, 2))


def fig2_timelines(runs: list[tuple[str, Path]], dataset: str, out_dir: Path, videos: int = 2) -> Figure:
    """``runs``: [(method label, timelines.npz)], ground truth taken from the first file."""
    key = "fig2_timelines"
    loaded = []
    for label, path in runs:
        try:
            loaded.append((label, _load_npz(path)))
        except (OSError, ValueError) as err:
            return Figure(key, "", reason=f"{path}: unreadable timelines.npz ({err})")
    if not loaded:
        return Figure(key, "", reason="no detection record with a timelines.npz artifact")
    names = [list(map(str, z["names"])) for _, z in loaded]
    common = [n for n in names[0] if all(n in other for other in names[1:])]
    # prefer different performances: PKU-MMD names are <take>-<view> (L/M/R views of one take)
    takes: dict[str, str] = {}
    for n in common:  # a handful of videos
        takes.setdefault(n.split("-")[0], n)
    distinct = list(takes.values())
    common = (distinct + [n for n in common if n not in distinct])[:videos]
    if not common:
        return Figure(key, "", reason="the methods' timelines share no test video")
    cmap = ListedColormap([BLUE, ORANGE, RED])
    row_in, gap_in = 0.45 * (len(loaded) + 1), 0.7  # inches per video panel and between panels
    fig, axes = plt.subplots(len(common), 1, figsize=(8, row_in * len(common) + gap_in * (len(common) - 1) + 1.9),
                             squeeze=False)
    for ax, name in zip(axes[:, 0], common):
        gt = loaded[0][1][f"gt_{names[0].index(name)}"].astype(np.int64)
        rows = [np.where(gt != 0, 1, 0)]
        for (label, z), nm in zip(loaded, names):
            pred = z[f"pred_{nm.index(name)}"].astype(np.int64)
            rows.append(timeline_codes(gt, pred))
        ax.imshow(np.stack(rows), aspect="auto", cmap=cmap, vmin=0, vmax=2, interpolation="nearest",
                  extent=(0, len(gt), len(rows) - 0.5, -0.5))
        ax.set_yticks(range(len(rows)), ["ground truth"] + [label for label, _ in loaded])
        change = np.nonzero(np.diff(gt))[0] + 1
        starts = np.concatenate([[0], change])
        ends = np.concatenate([change, [len(gt)]])
        for s, e in zip(starts, ends):  # one label per ground-truth action segment
            if gt[s] != 0:
                ax.text((s + e) / 2, 0, str(int(gt[s])), ha="center", va="center", fontsize=7, color="black")
        ax.set_title(f"video {name}", fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("frame")
    note = _data_note(dataset, "PKU-MMD")
    top = _header(fig, "Fig. 2 — per-frame detection: ground truth vs each method", note, is_synthetic(dataset))
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in (BLUE, ORANGE, RED)]
    fig.legend(handles, ["no action", "action (correct class)", "action of a wrong class / false alarm"],
               loc="lower center", ncol=3, fontsize=8, bbox_to_anchor=(0.5, 0.0))
    height = fig.get_size_inches()[1]
    fig.subplots_adjust(left=0.16, right=0.98, top=1 - (top + 0.2) / height, bottom=0.75 / height,
                        hspace=gap_in / row_in)
    caption = (f"Fig. 2. Per-frame detection of {len(common)} test videos ({note}): top row the ground truth "
               "(numbers = action class), below each method's per-frame prediction after post-processing. "
               "Blue: no action; orange: the ground-truth class is detected; red: an action of another class, "
               "or an action where there is none.")
    return _save(fig, out_dir, key, caption)


# ---- Fig. 3 --------------------------------------------------------------------------------
def _segments_many(joints: np.ndarray) -> np.ndarray:
    """(..., 25, 3) joints -> (..., bones, 2, 2) x-y line segments (camera x right, y up)."""
    return np.stack([joints[..., BONES[:, 0], :2], joints[..., BONES[:, 1], :2]], axis=-2)


def fig3_skeletons(runs: list[tuple[str, Path]], dataset: str, out_dir: Path, samples: int = 2,
                   horizons: tuple[int, ...] = (3, 6, 12, 18, 25)) -> Figure:
    """``runs``: [(method label, predictions.npz)]; rows = ground truth + methods per sample,
    one axes per row with the horizons side by side (few axes keep drawing fast)."""
    key = "fig3_skeletons"
    loaded = []
    for label, path in runs:
        try:
            z = _load_npz(path)
            if z["predicted"].shape != z["target"].shape or z["target"].shape[-2:] != (25, 3):
                raise ValueError(f"predicted {z['predicted'].shape} vs target {z['target'].shape}")
            loaded.append((label, z))
        except (OSError, ValueError, KeyError) as err:
            return Figure(key, "", reason=f"{path}: unusable predictions.npz ({err})")
    if not loaded:
        return Figure(key, "", reason="no prediction record with a predictions.npz artifact")
    n_frames = min(z["target"].shape[1] for _, z in loaded)
    hz = [h for h in horizons if 1 <= h <= n_frames] or [n_frames]
    n_s = min(samples, *(z["target"].shape[0] for _, z in loaded))
    per = len(loaded) + 1
    nrow = n_s * per
    allxy = np.concatenate([np.concatenate([z["target"][:n_s], z["predicted"][:n_s]]).reshape(-1, 3)[:, :2]
                            for _, z in loaded])
    extent = allxy.max(0) - allxy.min(0) + 1e-6
    cell_w, cell_h = extent[0] * 1.3, extent[1] * 1.1  # data units per horizon cell
    row_h = 1.3
    cell_w = max(cell_w, 0.95 * cell_h / row_h)  # at least ~0.95 inch per horizon: labels must not overlap
    width = row_h * len(hz) * cell_w / cell_h + 1.0
    fig, axes = plt.subplots(nrow, 1, figsize=(max(width, 5.0), row_h * nrow + 0.9), squeeze=False)
    note = _data_note(dataset, "NTU-60")
    top = _header(fig, "Fig. 3 — predicted (colour) vs ground-truth (grey / black) skeletons", note,
                  is_synthetic(dataset))
    fig.subplots_adjust(left=0.8 / max(width, 5.0), right=0.99, top=1 - (top + 0.2) / (row_h * nrow + 0.9),
                        bottom=0.02, hspace=0.1)
    for s in range(n_s):
        gt = loaded[0][1]["target"][s]
        everything = np.concatenate([gt] + [z["predicted"][s] for _, z in loaded]).reshape(-1, 3)
        centre = (everything[:, :2].min(0) + everything[:, :2].max(0)) / 2
        shift = np.zeros((len(hz), 1, 1, 2))
        shift[..., 0] = (np.arange(len(hz)) * cell_w)[:, None, None]  # horizon c drawn at x + c * cell_w
        for r, (label, z) in enumerate([("GT", None)] + loaded):
            ax = axes[s * per + r, 0]
            idx = np.asarray(hz) - 1
            if z is None:
                ax.add_collection(LineCollection((_segments_many(gt[idx]) + shift).reshape(-1, 2, 2),
                                                 colors="black", linewidths=1.3))
            else:
                ax.add_collection(LineCollection((_segments_many(z["target"][s, idx]) + shift).reshape(-1, 2, 2),
                                                 colors=GREY, linewidths=0.9, alpha=0.6))
                ax.add_collection(LineCollection((_segments_many(z["predicted"][s, idx]) + shift).reshape(-1, 2, 2),
                                                 colors=METHOD_COLORS.get(label, RED), linewidths=1.3))
            ax.set_xlim(centre[0] - cell_w / 2, centre[0] - cell_w / 2 + cell_w * len(hz))
            ax.set_ylim(centre[1] - cell_h / 2, centre[1] + cell_h / 2)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_ylabel(f"{label}\n(sample {s})", fontsize=8)
            if s == 0 and r == 0:
                for c, h in enumerate(hz):
                    ax.text(centre[0] + c * cell_w, centre[1] + cell_h / 2, f"+{h} frames", ha="center",
                            va="bottom", fontsize=8)
    caption = (f"Fig. 3. Motion prediction ({note}): for {n_s} test sample(s), the ground truth (black, 'GT' rows) "
               f"and each method's prediction (colour) over the ground truth (grey) at {', '.join(map(str, hz))} "
               "frames after the 50 observed ones; x-y projection of the 25 NTU joints joined by the NTU bone graph.")
    return _save(fig, out_dir, key, caption)


# ---- Fig. 4 --------------------------------------------------------------------------------
def read_log(path: Path) -> tuple[pd.DataFrame, int]:
    """Pre-training log (JSON lines) -> frame sorted by step, and the number of bad lines."""
    rows, bad = [], 0
    with open_regular(path) as fh:   # a FIFO or a device named pretrain.log is refused, never read
        for line in iter_lines(fh, MAX_LOG_LINE):
            if line is not None and not line.strip():
                continue
            try:
                if line is None:
                    raise UnreadableFileError("line too long")
                rec = parse_json(line, max_depth=8)
                step = rec.get("step") if isinstance(rec, dict) else None
                if not (isinstance(step, (int, float)) and not isinstance(step, bool) and np.isfinite(step)):
                    raise UnreadableFileError("no numeric step")
                rows.append({k: v for k, v in rec.items() if isinstance(v, (int, float, str, type(None)))})
            except UnreadableFileError:
                bad += 1
    df = pd.DataFrame(rows)
    if "step" not in df.columns:
        return pd.DataFrame(), bad + len(rows)
    return df.sort_values("step", kind="stable"), bad


def fig4_pretrain_curves(logs: list[tuple[str, Path]], out_dir: Path, limit: int = 9) -> Figure:
    """``logs``: [(title, pretrain.log)] for distinct pre-trainings; per-task losses vs step."""
    key = "fig4_pretrain_curves"
    panels = []
    for title, path in logs[:limit]:
        try:
            df, bad = read_log(path)
        except (OSError, UnreadableFileError) as err:
            panels.append((title, None, f"unreadable: {getattr(err, 'strerror', None) or err}"))
            continue
        cols = [c for c in df.columns if c == "loss" or str(c).endswith("/loss")]
        panels.append((title, df if cols else None, f"{bad} bad lines skipped" if bad else ("" if cols else "no losses")))
    if not panels:
        return Figure(key, "", reason="no record points to a pre-training log")
    ncol = min(3, len(panels))
    nrow = -(-len(panels) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.4 * ncol, 2.6 * nrow + 0.5), squeeze=False)
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    for ax, (title, df, note) in zip(axes.ravel(), panels):
        ax.set_title(title + (f"\n({note})" if note else ""), fontsize=8)
        if df is None:
            ax.text(0.5, 0.5, "no data", ha="center", transform=ax.transAxes)
            continue
        cols = sorted(c for c in df.columns if c == "loss" or str(c).endswith("/loss"))
        values = []
        for c in cols:
            y = pd.to_numeric(df[c], errors="coerce").to_numpy(float)
            ok = np.isfinite(y)
            values.append(y[ok])
            ax.plot(df["step"].to_numpy(float)[ok], y[ok], lw=1.6 if c == "loss" else 1.0,
                    color="black" if c == "loss" else None, label="total" if c == "loss" else c.rsplit("/", 1)[0])
        flat = np.concatenate(values) if values else np.zeros(0)
        if flat.size and flat.min() > 0 and flat.max() / flat.min() > 30:  # log only across >1.5 decades
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))  # plain labels: no mathtext to typeset
            ax.yaxis.set_minor_locator(NullLocator())  # minor log ticks cost more to draw than they tell
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    top = _header(fig, "Fig. 4 — pre-training losses per task")
    height = 2.6 * nrow + 0.5
    fig.subplots_adjust(left=0.08, right=0.98, top=1 - (top + 0.35) / height, bottom=0.5 / height,
                        wspace=0.3, hspace=0.75)
    caption = ("Fig. 4. Pre-training curves: total loss (black) and each pretext task's loss vs optimizer step, "
               "one panel per distinct pre-training (method, stream, levels, seed); log scale when the losses are positive and span more than 1.5 decades.")
    return _save(fig, out_dir, key, caption)


def resolve(path: Any, results_dir: Path) -> Path | None:
    """A record's path: absolute, or relative to the results folder, its parent or the cwd."""
    if not path:
        return None
    p = Path(os.fspath(path))
    for cand in ([p] if p.is_absolute() else [results_dir / p, results_dir.parent / p, Path.cwd() / p]):
        if cand.exists():
            return cand
    return None
