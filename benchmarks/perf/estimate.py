"""GPU-hour estimate of the full Tables 1-3 reproduction, from MEASURED throughput.

The work is counted in samples processed (pre-training steps x effective batch, downstream
epochs x training-set size); the time per sample comes from the perf JSON files under
``benchmarks/perf/results/`` (written by ``python -m benchmarks.perf``) measured on the named
device. Only CUDA files at the ``paper`` profile count, and only their ``ours`` rows. Each work
item uses the measurement of its own phase (pretrain / detection / prediction); where a file
has no such row the recognition ``finetune`` row stands in and the line says so. Nothing is
guessed: a method without a measurement on a CUDA device is reported as missing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

# Dataset sizes of the paper's protocol (data.md / protocols.md; PKU frames from the official
# release: 1,076 videos, about 3.4 M frames in Part I, of which the xsub training part is ~88%).
NTU60_XSUB_TRAIN = 40_091
NTU60_XSUB_TRAIN_BODIES = 47_500       # every body its own sample (about 18% two-person samples)
NTU60_PRED_TRAIN = 30_000               # xsub training sequences with >= 75 frames (approx.)
PKU_XSUB_TRAIN_FRAMES = 3_000_000


@dataclass(frozen=True)
class Work:
    name: str
    method: str
    phase: str        # "pretrain" | "finetune" | "detection" | "prediction"
    samples: float    # forward+backward sample passes


def paper_work() -> list[Work]:
    """Every training pass the paper's Tables 1-3 need (one seed)."""
    work: list[Work] = []
    hitrs_pre = 30_000 * 256
    levels_pretrained = ["F", "C", "V", "F+C", "F+V", "C+V", "F+C+V"]
    for lv in levels_pretrained:
        work.append(Work(f"Hi-TRS pre-train [{lv}] joint", "hitrs", "pretrain", hitrs_pre))
    for stream in ("motion", "bone"):
        work.append(Work(f"Hi-TRS pre-train {stream}", "hitrs", "pretrain", hitrs_pre))
    work.append(Work("MCC pre-train", "mcc", "pretrain", 300 * NTU60_XSUB_TRAIN))
    # one CrosSCLR pre-training trains the three streams' encoders together (pretrains_all_streams):
    # every measured pre-training sample already covers all three streams
    work.append(Work("CrosSCLR pre-train (3 streams jointly)", "crossclr", "pretrain", 300 * NTU60_XSUB_TRAIN))
    det = 5 * PKU_XSUB_TRAIN_FRAMES
    for lv in ["-"] + levels_pretrained:
        work.append(Work(f"Hi-TRS detection [{lv}] 100%", "hitrs", "detection", det))
    for stream in ("joint", "motion", "bone"):
        work.append(Work(f"Hi-TRS detection {stream} 10%", "hitrs", "detection", det * 0.1))
        work.append(Work(f"CrosSCLR detection {stream} 100%+10%", "crossclr", "detection", det * 1.1))
    for stream in ("motion", "bone"):
        work.append(Work(f"Hi-TRS detection {stream} 100%", "hitrs", "detection", det))
    work.append(Work("MCC detection 100%+10%", "mcc", "detection", det * 1.1))
    for m in ("hitrs", "mcc", "crossclr"):
        work.append(Work(f"{m} prediction 100%+10%", m, "prediction", 25 * NTU60_PRED_TRAIN * 1.1))
    return work


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a readable perf result ({err}); delete it or re-run "
                         "'python -m benchmarks.perf'") from None
    if not isinstance(data, dict) or not isinstance(data.get("rows", []), list):
        raise ValueError(f"{path}: not a perf result (expected an object with 'device' and 'rows')")
    return data


def load_measurements(results: Path = RESULTS) -> dict[tuple[str, str], dict]:
    """(method, phase) -> the fastest ``ours`` measurement on a CUDA device at the paper profile."""
    best: dict[tuple[str, str], dict] = {}
    for path in sorted(Path(results).glob("*.json")):
        data = _read(path)
        if not str(data.get("device", "")).lower().startswith(("nvidia", "cuda")):
            continue
        if data.get("config", {}).get("profile", "paper") != "paper":
            continue
        for row in data.get("rows", []):
            if row.get("pattern") != "ours" or not row.get("samples_per_s"):
                continue
            key = (row["method"], row["phase"])
            if key not in best or row["samples_per_s"] > best[key]["samples_per_s"]:
                best[key] = {**row, "device": data["device"], "file": path.name}
    return best


def estimate(results: Path = RESULTS) -> tuple[list[tuple[Work, float | None, str]], float, list[str]]:
    measured = load_measurements(results)
    rows, missing, total = [], [], 0.0
    for w in paper_work():
        m, proxy = measured.get((w.method, w.phase)), ""
        if m is None and w.phase != "pretrain":
            m, proxy = measured.get((w.method, "finetune")), " finetune proxy"
        if m is None:
            rows.append((w, None, "no CUDA measurement"))
            missing.append(f"{w.method}/{w.phase}")
            continue
        hours = w.samples / m["samples_per_s"] / 3600.0
        total += hours
        rows.append((w, hours, f"{m['device']} ({m['file']}){proxy}"))
    return rows, total, sorted(set(missing))


def print_estimate(opts=None, profile: str | None = None) -> None:
    rows, total, missing = estimate()
    print("\nGPU-hour estimate for the full Tables 1-3 reproduction (one seed), from measured throughput:")
    for w, hours, source in rows:
        shown = f"{hours:7.2f} h" if hours is not None else "      ? h"
        print(f"  {shown}  {w.name:45s} {w.samples:14,.0f} samples  [{source}]")
    print(f"  total measured: {total:.2f} GPU-hours")
    if missing:
        print(f"  missing CUDA measurements for: {', '.join(missing)} -- run "
              "'python -m benchmarks.perf --device cuda' on a GPU and commit its JSON")
