"""How many distinct input shapes a training step sees over one epoch, and the padding they cost.

    python -m benchmarks.perf.shapes [--profile paper] [--methods hitrs] [--phases pretrain]

Every step's shapes follow from its ``MicroBatch.shape_key()``: the tensors' shapes (padded to
the profile's static ``max_frames``) and the method's capacities (``SkeletonMethod.capacities``).
A compiled graph or CUDA graph is made once per key, so this count is what ``--compile``
pays for. Per (method, phase), over one epoch of the NTU-like length model
(``benchmarks.perf.lengths``) in the engine's batch order, it prints the distinct keys now
("static") and what the variable-length layout gave (each batch padded to its longest sample,
every packed size exactly the data's, "variable"), and the share of capacity slots that hold
no real row ("padding", the computation the static layout wastes).
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

import methods

from ..config import make_run_config
from ..engine.data import BucketBatches
from ..tasks import protocols
from .lengths import NTU60_PRED_TRAIN, NTU60_XSUB_TRAIN, NTU60_XSUB_TRAIN_BODIES, sample_lengths
from .workloads import PHASES


def epoch_shapes(name: str, phase: str, profile: str = "paper", seed: int = 0) -> dict:
    """Distinct step shapes (static and variable layout) and capacity padding over one epoch."""
    method = methods.create(name, profile=profile)
    run = make_run_config(profile)
    if phase == "pretrain":
        loop = method.config.loop
        single = method.split_bodies_for_pretraining
        n = NTU60_XSUB_TRAIN_BODIES if single else NTU60_XSUB_TRAIN
        lengths = sample_lengths(n, seed, max_frames=loop.max_frames, min_frames=19 if single else 20)
        order = BucketBatches.for_mode(loop.batching, lengths, loop.batch_size, seed=seed, drop_last=True).epoch(0)
        frames, use, bodies, lead = loop.max_frames, "pretrain", 1 if single else 2, ()
    elif phase == "finetune":
        cfg = run.recognition
        lengths = sample_lengths(NTU60_XSUB_TRAIN, seed, max_frames=cfg.max_frames)
        order = BucketBatches.for_mode(protocols.finetune_batching(cfg), lengths, cfg.batch_size, seed=seed).epoch(0)
        frames, use, bodies, lead = cfg.max_frames, "embed", 2, ()
    elif phase == "prediction":
        cfg = run.prediction
        count = NTU60_PRED_TRAIN * cfg.crops_per_sequence
        lengths = np.full(count, cfg.observe)
        order = [np.arange(i, min(i + cfg.batch_size, count)) for i in range(0, count, cfg.batch_size)]
        frames, use, bodies, lead = cfg.observe, "embed", None, (cfg.predict,)
    else:  # detection: 7-frame windows, nothing varies but the epoch's last batch
        cfg = run.detection
        count = int(np.ceil(3_000_000 / cfg.train_frame_stride))
        sizes = {min(cfg.batch_size, count - i) for i in range(0, count, cfg.batch_size)}
        return {"method": name, "phase": phase, "profile": profile, "steps": int(np.ceil(count / cfg.batch_size)),
                "static": len(sizes), "variable": len(sizes), "padding": 0.0}
    static, variable = set(), set()
    used = slots = 0
    for items in order:
        ls = lengths[items]
        caps = method.capacities(ls, frames, use)
        exact = method.capacities(ls, frames, use, exact=True)
        shape = (len(items), frames + sum(lead)) + ((bodies,) if bodies else ())
        static.add(shape + tuple(sorted(caps.items())))
        variable.add((len(items), int(ls.max()) + sum(lead)) + ((bodies,) if bodies else ())
                     + tuple(sorted(exact.items())))
        used += sum(exact.values())
        slots += sum(caps.values())
    return {"method": name, "phase": phase, "profile": profile, "steps": len(order), "static": len(static),
            "variable": len(variable), "padding": round(1.0 - used / slots, 4) if slots else 0.0}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.perf.shapes", description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="paper", choices=["paper", "small", "ci"])
    p.add_argument("--methods", default=",".join(methods.available()))
    p.add_argument("--phases", default=",".join(PHASES))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    print(f"{'method':9s} {'phase':10s} {'steps':>7s} {'static':>7s} {'variable':>9s} {'padding':>8s}")
    for name in [m for m in args.methods.split(",") if m]:
        for phase in [ph for ph in args.phases.split(",") if ph]:
            r = epoch_shapes(name, phase, args.profile, args.seed)
            print(f"{name:9s} {phase:10s} {r['steps']:7d} {r['static']:7d} {r['variable']:9d} {100 * r['padding']:7.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
