"""Reproduction records: one JSON per run, its artifacts, and ``summary.csv`` rebuilt from all.

Record fields: see docs/records.md. Writes are atomic; run ids are unique, so two runs sharing a
results folder never overwrite each other; the summary is rebuilt under a lock file.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import platform
import secrets
import socket
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

from plumbing.files import atomic_write_bytes, atomic_write_json, check_name, path_under

# the one reader of record files (and summary.csv built from it) lives on the reports side and
# imports nothing of benchmarks; re-exported here under the runner's names
from reports.records import Record, load
from reports.summary import SUMMARY_KEYS, summary_frame, write_summary  # noqa: F401



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


def write_artifacts(results: Path, run_id: str, artifacts: dict[str, Any]) -> dict[str, str]:
    """Write a task's artifacts under ``artifacts/<run_id>/``; returns relative paths and, for
    every ``.npz``, ``<key>_sha256`` of the bytes written."""
    from ..metrics import write_proposals

    folder = results / "artifacts" / run_id
    written: dict[str, str] = {}
    if "proposals" in artifacts:
        for name, rows in artifacts["proposals"].items():  # video names come from the cache manifest
            check_name(name, "video name")
            write_proposals(path_under(results, "artifacts", run_id, "proposals", f"{name}.txt"), rows)
        written["proposals_dir"] = str((folder / "proposals").relative_to(results))
    for key in ("timelines", "predictions", "outputs"):   # outputs: per-sample outputs (reports.compare)
        if key in artifacts:
            import io
            buffer = io.BytesIO()
            np.savez_compressed(buffer, **artifacts[key])
            data = buffer.getvalue()
            atomic_write_bytes(path_under(results, "artifacts", run_id, f"{key}.npz"), data)
            written[key] = str((folder / f"{key}.npz").relative_to(results))
            written[f"{key}_sha256"] = hashlib.sha256(data).hexdigest()   # a text value: old readers accept it
    return written


def write_record(results: Path, record: Record) -> Path:
    return atomic_write_json(path_under(results, "records", f"{check_name(record.run_id, 'run id')}.json"),
                             record.to_json())


def load_records(results: Path) -> list[dict[str, Any]]:
    """The usable records of ``results`` (bad files are skipped; ``reports.records.load`` lists them)."""
    return load(results).records
