"""The generic pre-training engine: any SkeletonMethod, one GPU / many (torchrun) / CPU.

Checkpoints (model, optimizer, scheduler, method state, RNG states, data position) every
``loop.checkpoint_every`` steps and at the end; a re-run of the same configuration resumes from
the last good checkpoint and ends with exactly the same weights as an uninterrupted run.
"""
from __future__ import annotations

import json
import os
import random
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from plumbing.files import (CorruptFileError, atomic_write_json, atomic_write_text, load_checked, rotate_checked,
                            save_checked)

from . import distributed
from .data import BucketBatches, SequenceSet
from .loader import ahead, micro_batches
from .loops import MethodCall
from .step import LogWindow, train_step
from .tb_log import EventLog


class PretrainInterrupted(RuntimeError):
    """SIGINT/SIGTERM arrived; the last step was checkpointed."""


class DivergedError(RuntimeError):
    """A non-finite loss: training stopped, no metrics are written for this run."""


@dataclass
class PretrainResult:
    pretrain_id: str
    folder: Path
    checkpoint: Path
    log: Path
    steps: int
    wall_time_s: float
    samples_per_s: float
    resumed_from: int


def _generators(method) -> dict[str, torch.Generator]:
    return {name: value for name, value in vars(method).items() if isinstance(value, torch.Generator)}


def _numpy_state() -> dict:
    """numpy's legacy RNG state as a dict of a tensor and plain numbers (weights_only loads it)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def _set_numpy_state(state: dict) -> None:
    np.random.set_state((state["name"], state["keys"].numpy().astype(np.uint32), state["pos"],
                         state["has_gauss"], state["cached_gaussian"]))


def _rng_state(method) -> dict:
    """Every RNG the run draws from, as tensors and plain Python values only."""
    state = {"python": random.getstate(), "numpy": _numpy_state(), "torch": torch.get_rng_state(),
             "generators": {k: g.get_state() for k, g in _generators(method).items()}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(method, state: dict) -> None:
    random.setstate(state["python"])
    _set_numpy_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    for name, g_state in state.get("generators", {}).items():
        gens = _generators(method)
        if name in gens:
            gens[name].set_state(g_state)
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class _StopSignal:
    """Turns SIGINT/SIGTERM into a flag checked between optimizer steps."""

    def __init__(self):
        self.received: str | None = None
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum, frame):
        if self.received is not None:  # second signal: give up immediately
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _load_resume_state(folder: Path, log) -> dict | None:
    for name in ("state.pt", "state.prev.pt"):
        path = folder / name
        if not path.exists():
            continue
        try:
            return load_checked(path)
        except (CorruptFileError, EOFError, RuntimeError, OSError) as err:
            log(f"[pretrain] ignoring unusable checkpoint {path}: {err}")
    return None


def read_log_lines(path: Path, up_to_step: int | None = None, max_line: int = 1 << 20) -> tuple[list[dict], int]:
    """Whole JSON lines of ``pretrain.log`` (with an int ``step``, at most ``up_to_step``) and
    the number of torn / unreadable lines skipped; streamed, and lines over ``max_line`` bytes
    are skipped without being held in memory."""
    kept, bad = [], 0
    with open(path, "rb") as fh:
        while True:
            line = fh.readline(max_line + 1)
            if not line:
                break
            if len(line) > max_line and not line.endswith(b"\n"):
                bad += 1
                while line and not line.endswith(b"\n"):  # skip the rest of the huge line
                    line = fh.readline(max_line)
                continue
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                bad += 1
                continue
            if not line.endswith(b"\n") or not isinstance(entry, dict) or type(entry.get("step")) is not int:
                bad += 1  # a last line without its newline was cut mid-write, even if it parses
                continue
            if up_to_step is None or entry["step"] <= up_to_step:
                kept.append(entry)
    return kept, bad


def fused_accumulation(method, epoch_order):
    """``(epoch order, capacities(lengths, T), micro-batches per step)`` of ``method``'s loop:
    with ``loop.fuse_accumulation`` every ``accumulation`` consecutive batches of the order are
    one micro-batch with ``loss_groups`` (the same groups the unfused run would step on; an
    epoch's last ``len % accumulation`` batches are dropped), else the order as it is."""
    loop = method.config.loop

    def plain(lengths, t):
        return method.capacities(lengths, t, "pretrain")

    if not (loop.fuse_accumulation and loop.accumulation > 1):
        return epoch_order, plain, loop.accumulation
    if not type(method).fuses_accumulation:
        raise ValueError(f"loop.fuse_accumulation: {method.name} computes its losses over the whole micro-batch "
                         "(no per-group losses); set loop.fuse_accumulation=false")
    k = loop.accumulation

    def fused(epoch):
        order = epoch_order(epoch)
        return [np.concatenate(order[i:i + k]) for i in range(0, len(order) - k + 1, k)]

    return fused, lambda lengths, t: {**plain(lengths, t), "loss_groups": k}, 1


def pretrain(method, data: SequenceSet, folder: Path, *, pretrain_id: str, seed: int, device: torch.device,
             dist: distributed.Dist = distributed.Dist(), progress: bool = True, log=print,
             stop_after: int | None = None, compile: bool = False, precision: str | None = None) -> PretrainResult:
    """Pre-train ``method`` on ``data`` into ``folder`` (resuming when a checkpoint exists).

    ``precision``: ``benchmarks.engine.precision`` (None = the device's default).
    ``stop_after`` ends the run early after that many optimizer steps (tests of resume).
    """
    loop = method.config.loop
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / "encoder.pt"
    log_path = folder / "pretrain.log"
    method.to(device)
    torch.manual_seed(seed)
    optimizer, scheduler = method.configure_pretraining()
    batches = BucketBatches.for_mode(loop.batching, data.lengths, loop.batch_size, seed=seed, shuffle=True,
                                     drop_last=True, rank=dist.rank, world=dist.world)
    step, epoch, position, seen = 0, 0, 0, 0
    state = _load_resume_state(folder, log)
    if state is not None:
        method.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        method.load_pretraining_state(state["method"])
        _set_rng_state(method, state["rng"][dist.rank] if isinstance(state["rng"], list) else state["rng"])
        step, epoch, position, seen = state["step"], state["epoch"], state["position"], state["seen"]
        log(f"[pretrain] resuming {pretrain_id} at step {step}/{loop.steps} from {folder}")
    resumed_from = step
    if dist.main and log_path.exists():  # drop log lines of steps that the resume will redo
        kept, torn = read_log_lines(log_path, up_to_step=step)
        if torn:
            log(f"[pretrain] {log_path}: skipped {torn} torn or unreadable line(s)")
        atomic_write_text(log_path, "".join(json.dumps(entry) + "\n" for entry in kept))
    forward = MethodCall(method, "pretrain_loss")  # DDP's gradient hooks need a forward()
    if dist.enabled and loop.fuse_accumulation:
        raise ValueError("loop.fuse_accumulation runs on one process (per-group negatives are local); "
                         "under torchrun keep the accumulation unfused")
    if dist.enabled:
        # absent Hi-TRS levels / frozen key encoders leave parameters without gradients
        forward = nn.parallel.DistributedDataParallel(forward, device_ids=[device.index] if device.type == "cuda" else None,
                                                      find_unused_parameters=True)
    if compile:   # static shapes: one graph per capacity bucket; the default RNG is what it can trace
        method.use_default_rng = True
        forward = torch.compile(forward, dynamic=False)

    def checkpoint(name="state.pt"):
        if not dist.main:
            return
        path = folder / "state.pt"
        rotate_checked(path, folder / "state.prev.pt")
        save_checked({"model": method.state_dict(), "optimizer": optimizer.state_dict(),
                      "scheduler": scheduler.state_dict(), "method": method.pretraining_state(),
                      "rng": _rng_state(method), "step": step, "epoch": epoch, "position": position,
                      "seen": seen}, path)

    if not batches.epoch(epoch):
        raise ValueError(f"pre-training data has {len(data)} samples, fewer than one batch of {loop.batch_size}; "
                         "use a smaller loop.batch_size or more data")
    method.train()
    start_time, start_seen = time.perf_counter(), seen
    bar = tqdm(total=loop.steps, initial=step, desc=f"pretrain {method.name}", disable=not (progress and dist.main),
               dynamic_ncols=True, leave=False)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666) if dist.main else None
    events = EventLog(folder, step) if dist.main else None   # TensorBoard, when installed
    cuda = device.type == "cuda"
    order, capacities, accumulation = fused_accumulation(method, batches.epoch)
    if not order(epoch):
        raise ValueError(f"pre-training data has {len(data)} samples, fewer than one fused micro-batch of "
                         f"{loop.batch_size} x {loop.accumulation}; use more data or loop.fuse_accumulation=false")
    # host work (gather, pad to the static T, capacities, pinning) runs ahead in a thread on CUDA
    source = ahead(micro_batches(data, order, epoch, position, frames=loop.max_frames, capacities=capacities,
                                 pin=cuda), enabled=cuda)
    window, checked = LogWindow(), folder / "state.pt"

    def consumed():
        nonlocal epoch, position, seen
        epoch, position, batch = next(source)
        seen += batch.samples * dist.world
        yield batch

    def check_finite(values: dict | None = None) -> dict:
        """Read the window (one sync); a non-finite loss since the last read stops the run
        before anything of it is written."""
        finite, latest, first = window.read()
        if not finite:
            raise DivergedError(
                f"non-finite pre-training loss at step {first}-{step} (losses are read every "
                f"loop.log_every = {loop.log_every} steps): latest "
                f"{', '.join(f'{k}={v:.4g}' for k, v in latest.items())}; last good checkpoint: "
                f"{checked if checked.exists() else 'none'}. No metrics were written for this run.")
        return latest

    try:
        with _StopSignal() as stop:
            while step < loop.steps:
                method.on_step_start(step, loop.steps)
                sums = train_step(lambda tensors: forward(*tensors),
                                  (b for _ in range(accumulation) for b in consumed()), optimizer,
                                  accumulation=accumulation, device=device, precision=precision,
                                  grad_clip=loop.grad_clip, params=method.parameters, shapes=method.static_shapes,
                                  no_sync=forward.no_sync if dist.enabled else None)
                scheduler.step()
                method.after_optimizer_step()
                step += 1
                window.add(step, sums)
                bar.update(1)
                if step % loop.log_every == 0 or step == loop.steps or step == 1:
                    latest = check_finite()
                    if log_fd is not None:
                        entry = {"step": step, "lr": optimizer.param_groups[0]["lr"], **latest}
                        # one write() of the whole line on an O_APPEND file: a kill leaves whole lines
                        # or one torn last line, never a line interleaved with another
                        os.write(log_fd, (json.dumps(entry) + "\n").encode())
                        events.add(entry)
                        bar.set_postfix(loss=f"{latest['loss']:.3f}")
                stopping = stop.received or (stop_after is not None and step - resumed_from >= stop_after
                                             and step < loop.steps)
                if (step % loop.checkpoint_every == 0 and step < loop.steps) or stopping:
                    check_finite()   # never checkpoint weights a non-finite loss has touched
                    checkpoint()
                if stopping:
                    if stop.received:
                        raise PretrainInterrupted(
                            f"{stop.received} received: stopped after step {step}/{loop.steps}, checkpoint in {folder}. "
                            "Re-run the same command to resume.")
                    return PretrainResult(pretrain_id, folder, folder / "state.pt", log_path, step, 0.0, 0.0, resumed_from)
    finally:
        if hasattr(source, "close"):
            source.close()
        bar.close()
        if log_fd is not None:
            os.close(log_fd)
            events.close()
    wall = time.perf_counter() - start_time
    rate = (seen - start_seen) / wall if wall > 0 else 0.0
    if dist.main:
        save_checked({"model": method.state_dict(), "method": method.name, "steps": step}, final)
        atomic_write_json(folder / "meta.json", {"pretrain_id": pretrain_id, "steps": step, "seed": seed,
                                                 "wall_time_s": wall, "samples_per_s": rate,
                                                 "resumed_from": resumed_from})
        for name in ("state.pt", "state.prev.pt"):
            for path in (folder / name, folder / f"{name}.sha256"):
                path.unlink(missing_ok=True)
    distributed.barrier(dist)
    return PretrainResult(pretrain_id, folder, final, log_path, step, wall, rate, resumed_from)


def load_pretrained(method, result_or_path) -> None:
    path = result_or_path.checkpoint if isinstance(result_or_path, PretrainResult) else Path(result_or_path)
    payload = load_checked(path)
    method.load_state_dict(payload["model"])
