"""Reproduction records: one JSON per run, its artifacts, and ``summary.csv`` rebuilt from all.

Record fields: see docs/records.md. Writes are atomic; run ids are unique, so two runs sharing a
results folder never overwrite each other; the summary is rebuilt under a lock file.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
import secrets
import socket
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from datasets.cache import file_lock

from .io import atomic_write_bytes, atomic_write_json, atomic_write_text

RECORD_VERSION = 1
SUMMARY_KEYS = ["run_id", "variant", "method", "stream", "levels", "task", "dataset", "split",
                "label_fraction", "seed", "profile", "precision"]


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_run_id(method: str, task: str) -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{method}-{task}-{secrets.token_hex(3)}"


def git_state(repo: Path | None = None) -> dict[str, Any]:
    repo = repo or Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                                    capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, None
    return {"git_commit": commit, "git_dirty": dirty}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def provenance(device: torch.device, world: int, started_at: str, wall_time_s: float, samples_per_s: float) -> dict:
    return {**git_state(), "torch": torch.__version__, "cuda": torch.version.cuda if device.type == "cuda" else None,
            "device": device_name(device), "world_size": world, "wall_time_s": round(wall_time_s, 3),
            "samples_per_s": round(samples_per_s, 3), "hostname": socket.gethostname(),
            "python": platform.python_version(), "started_at": started_at, "finished_at": now_iso()}


def _jsonable(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: (None if v is None or not np.isfinite(v) else float(v)) for k, v in metrics.items()}


def write_artifacts(results: Path, run_id: str, artifacts: dict[str, Any]) -> dict[str, str]:
    """Write a task's artifacts under ``artifacts/<run_id>/``; returns relative paths."""
    from .metrics import write_proposals

    folder = results / "artifacts" / run_id
    written: dict[str, str] = {}
    if "proposals" in artifacts:
        for name, rows in artifacts["proposals"].items():
            write_proposals(folder / "proposals" / f"{name}.txt", rows)
        written["proposals_dir"] = str((folder / "proposals").relative_to(results))
    for key in ("timelines", "predictions"):
        if key in artifacts:
            import io
            buffer = io.BytesIO()
            np.savez_compressed(buffer, **artifacts[key])
            atomic_write_bytes(folder / f"{key}.npz", buffer.getvalue())
            written[key] = str((folder / f"{key}.npz").relative_to(results))
    return written


def write_record(results: Path, record: dict[str, Any]) -> Path:
    record = {"record_version": RECORD_VERSION, **record, "metrics": _jsonable(record["metrics"])}
    path = results / "records" / f"{record['run_id']}.json"
    atomic_write_json(path, record)
    return path


def load_records(results: Path) -> list[dict[str, Any]]:
    records = []
    for path in sorted((results / "records").glob("*.json")):
        try:
            records.append(json.loads(path.read_text()))
        except (json.JSONDecodeError, OSError) as err:
            raise ValueError(f"{path}: unreadable result record ({err}); move it away or delete it") from None
    return records


def summary_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [{**{k: r.get(k) for k in SUMMARY_KEYS}, **r.get("metrics", {})} for r in records]
    frame = pd.DataFrame(rows, columns=None if rows else SUMMARY_KEYS)
    return frame


def write_summary(results: Path, include_smoke: bool = False) -> Path:
    """``summary.csv`` of every record; smoke records (``"smoke": true``) only if asked."""
    with file_lock(results / ".summary.lock"):
        frame = summary_frame([r for r in load_records(results) if include_smoke or r.get("smoke") is not True])
        path = results / "summary.csv"
        atomic_write_text(path, frame.to_csv(index=False))
    return path
