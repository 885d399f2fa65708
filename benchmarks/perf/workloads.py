"""The training work the reproduction repeats, one optimizer step at a time, per method.

Each workload is what the runner trains, built from the runner's own pieces:

* ``pretrain``: ``method.pretrain_loss`` + ``configure_pretraining`` with the profile's loop
  (micro-batch, accumulation, grad clip, hooks), as ``benchmarks.engine.pretrain``;
* ``finetune``: recognition fine-tuning, ``tasks.recognition.VideoClassifier`` (video embedding
  + Linear(60)), Adam, cross-entropy, both bodies (``recognition.*`` of the run profile);
* ``detection``: ``tasks.detection.ClipClassifier`` on 7-frame, dilation-4 windows, Adam;
* ``prediction``: ``tasks.prediction.Forecaster`` (encoder + residual LSTM decoder), MSE.

Inputs come from a ``SkeletonBank`` of NTU-length random walks; ``host_batches`` yields CPU
``MicroBatch`` es (the engine's) in the pattern's order: the static layout of the engine
(padded to the profile's ``max_frames``, the method's capacities) or, for the reference
pattern (``order="random"``), random batches padded to their longest sample with every size
taken from the data. Models and optimizers are built on the measured device (fused
optimizers on CUDA, as the engine); the timing loop only moves batches and steps
(``benchmarks.engine.step.train_step``).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

import methods
from plumbing.config import to_dict

from methods.base import optimizer_options

from ..config import make_run_config
from ..engine.data import BucketBatches
from ..engine.pretrain import fused_accumulation
from ..engine.step import MicroBatch
from ..tasks.detection import ClipClassifier
from ..tasks.prediction import Forecaster, training_loss
from ..tasks.recognition import VideoClassifier
from . import lengths as ntu
from .lengths import NTU60_PRED_TRAIN, NTU60_XSUB_TRAIN, NTU60_XSUB_TRAIN_BODIES, PKU_XSUB_TRAIN_FRAMES
from .synthetic import SkeletonBank, random_walk_bank

PHASES = ("pretrain", "finetune", "detection", "prediction")
NTU_CLASSES, PKU_CLASSES = 60, 51
BANK_CAP = 8192
FIXED_SHAPE_BANK = 512      # detection / prediction only cut windows out of the bank


@dataclass
class Workload:
    method: str
    phase: str
    net: nn.Module                      # forward(*device tensors) -> scalar loss
    optimizer: torch.optim.Optimizer
    scheduler: object | None
    batch_size: int
    accumulation: int
    grad_clip: float
    epoch_samples: int
    epoch_note: str
    host_batches: Callable[[str, bool, int], Iterator[MicroBatch]]   # (order, pin, seed)
    lengths: np.ndarray                 # the bank's lengths (after max_frames)
    config: dict = field(default_factory=dict)
    before_step: Callable[[int], None] = lambda step: None
    after_step: Callable[[], None] = lambda: None
    variable_length: bool = True        # whether bucketing can change the batch shapes
    shapes: Callable | None = None      # the method's ``static_shapes`` (capacities of a MicroBatch)


class _PretrainLoss(nn.Module):
    """Routes forward to ``pretrain_loss`` (DataParallel / compile wrap this module)."""

    def __init__(self, method):
        super().__init__()
        self.method = method

    def forward(self, x, lengths):
        return self.method.pretrain_loss(x, lengths)[0]


class _SupervisedLoss(nn.Module):
    def __init__(self, model: nn.Module, criterion: nn.Module):
        super().__init__()
        self.model, self.criterion = model, criterion

    def forward(self, *inputs_and_target):
        *inputs, target = inputs_and_target
        return self.criterion(self.model(*inputs).float(), target)


def _bank_size(batch: int, accumulation: int, steps: int) -> int:
    """Exactly the samples of the timed steps (so that every pattern times the same samples,
    one epoch of the bank), or whole optimizer steps up to ``BANK_CAP`` samples (the timed
    steps then cover several epochs of the bank)."""
    per_step = batch * accumulation
    return per_step * max(1, min(steps, BANK_CAP // per_step))


def _sequence_batches(bank: SkeletonBank, batch: int, with_labels: int | None, frames: int,
                      capacities: Callable[[np.ndarray, int], dict] | None = None) -> Callable:
    """Infinite epochs over the bank.

    ``order``: "bucketed" = ``BucketBatches`` with length buckets of 8 batches (ours);
    "random" = buckets of 1 batch, i.e. random batches (the reference); "probe" = every batch
    spread evenly over the sorted lengths (FLOP counting: the average sample). Every order but
    "random" is the engine's static layout: padded to ``frames`` with ``capacities(lengths, T)``;
    "random" pads each batch to its longest sample and sizes everything from the data."""
    lengths = bank.lengths.numpy()

    def gen(order: str, pin: bool, seed: int) -> Iterator[MicroBatch]:
        labels = torch.Generator().manual_seed(seed)
        static = order != "random"
        if order == "probe":
            by_length = np.argsort(lengths, kind="stable")
            stride = max(1, len(lengths) // batch)
            epochs = itertools.repeat([by_length[(k + np.arange(batch) * stride) % len(lengths)]
                                       for k in range(stride)])
        else:
            batches = BucketBatches(lengths, batch, seed=seed, shuffle=True, bucket=8 if order == "bucketed" else 1,
                                    drop_last=True)
            epochs = (batches.epoch(e) for e in itertools.count())
        for epoch in epochs:
            for items in epoch:
                x, lens = bank.batch(items, pad_to=max(frames, int(lengths[items].max())) if static else None, pin=pin)
                tensors = (x, lens)
                if with_labels is not None:
                    tensors += (torch.randint(with_labels, (len(items),), generator=labels),)
                caps = capacities(lengths[items], int(x.shape[1])) if static and capacities is not None else {}
                yield MicroBatch(tensors, caps, int(lengths[items].sum()), len(items) * int(x.shape[1]))
    return gen


def _pretrain(name: str, profile: str, overrides: dict, batch: int | None, steps: int, seed: int,
              device: torch.device) -> Workload:
    method = methods.create(name, profile=profile, **overrides).to(device)
    loop = method.config.loop
    b = batch or loop.batch_size
    bodies = 1 if method.split_bodies_for_pretraining else 2
    n = _bank_size(b, loop.accumulation, steps)
    lens = ntu.sample_lengths(n, seed, max_frames=loop.max_frames,
                              min_frames=19 if method.split_bodies_for_pretraining else ntu.MIN_FRAMES)
    bank = random_walk_bank(lens, bodies, seed, two_person_fraction=ntu.TWO_PERSON_FRACTION)
    optimizer, scheduler = method.configure_pretraining()
    method.train()
    total = loop.steps
    # measured steps sit at the end of the schedule (CrosSCLR: the heavier cross-view phase)
    epoch_samples = NTU60_XSUB_TRAIN_BODIES if method.split_bodies_for_pretraining else NTU60_XSUB_TRAIN
    # the engine's layout of a step: loop.fuse_accumulation makes the micro-batches one
    _, capacities, accumulation = fused_accumulation(method, lambda epoch: [])
    micro = b * loop.accumulation // accumulation
    return Workload(
        name, "pretrain", _PretrainLoss(method), optimizer, scheduler, micro, accumulation, loop.grad_clip,
        epoch_samples, "NTU-60 xsub train, every body its own sample (Hi-TRS)" if bodies == 1 else "NTU-60 xsub train",
        _sequence_batches(bank, micro, None, loop.max_frames, capacities),
        lens, {"method": to_dict(method.config)},
        before_step=lambda step: method.on_step_start(max(total - steps, 0) + step, total),
        after_step=method.after_optimizer_step, shapes=method.static_shapes)


def _downstream_bank(n: int, max_frames: int, seed: int, min_frames: int = ntu.MIN_FRAMES) -> tuple[SkeletonBank, np.ndarray]:
    lens = ntu.sample_lengths(n, seed, max_frames=max_frames, min_frames=min_frames)
    return random_walk_bank(lens, 2, seed, two_person_fraction=ntu.TWO_PERSON_FRACTION), lens


def _adam(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=lr, **optimizer_options(model.parameters()))


def _finetune(name: str, profile: str, overrides: dict, batch: int | None, steps: int, seed: int,
              device: torch.device) -> Workload:
    task = make_run_config(profile).recognition
    method = methods.create(name, profile=profile, **overrides)
    b = batch or task.batch_size
    bank, lens = _downstream_bank(_bank_size(b, 1, steps), task.max_frames, seed)
    model = VideoClassifier(method, NTU_CLASSES).to(device)
    return Workload(name, "finetune", _SupervisedLoss(model, nn.CrossEntropyLoss()), _adam(model, task.lr), None, b,
                    1, 0.0, NTU60_XSUB_TRAIN, "NTU-60 xsub train (recognition fine-tuning, both bodies)",
                    _sequence_batches(bank, b, NTU_CLASSES, task.max_frames,
                                      lambda ls, t: method.capacities(ls, t, "embed")), lens,
                    {"method": to_dict(method.config), "task": to_dict(task)}, shapes=method.static_shapes)


def _detection(name: str, profile: str, overrides: dict, batch: int | None, steps: int, seed: int,
               device: torch.device) -> Workload:
    task = make_run_config(profile).detection
    method = methods.create(name, profile=profile, **overrides)
    b = batch or task.batch_size
    bank, lens = _downstream_bank(FIXED_SHAPE_BANK, ntu.MAX_FRAMES, seed)
    model = ClipClassifier(method, PKU_CLASSES, task.window, task.dilation).to(device)
    optimizer = _adam(model, task.lr)
    window, dilation = task.window, task.dilation

    def gen(order: str, pin: bool, seed_: int) -> Iterator[MicroBatch]:
        g = torch.Generator().manual_seed(seed_)
        step = 0
        while True:   # windows have one shape: bucketing does not apply
            items = torch.randint(len(bank), (b,), generator=g)
            clips = bank.clips(items, window, dilation, seed=seed_ * 1_000_003 + step, pin=pin)
            labels = torch.randint(PKU_CLASSES + 1, (b,), generator=g)
            step += 1
            yield MicroBatch((clips, labels), {}, b * window, b * window)

    epoch = math.ceil(PKU_XSUB_TRAIN_FRAMES / task.train_frame_stride)
    return Workload(name, "detection", _SupervisedLoss(model, nn.CrossEntropyLoss()), optimizer, None, b, 1, 0.0,
                    epoch, f"PKU-MMD xsub training frames / train_frame_stride {task.train_frame_stride}",
                    gen, lens, {"method": to_dict(method.config), "task": to_dict(task)}, variable_length=False)


def _prediction(name: str, profile: str, overrides: dict, batch: int | None, steps: int, seed: int,
                device: torch.device) -> Workload:
    task = make_run_config(profile).prediction
    method = methods.create(name, profile=profile, **overrides)
    b = batch or task.batch_size
    total = task.observe + task.predict
    bank, lens = _downstream_bank(FIXED_SHAPE_BANK, ntu.MAX_FRAMES, seed, min_frames=total)
    model = Forecaster(method, task.hidden, task.dropout, task.predict, warmup=task.warmup_frames,
                       relative=task.relative_input).to(device)
    optimizer = _adam(model, task.lr)
    observe = task.observe
    capacities = method.capacities(np.full(b, observe), observe, "embed")

    class _Loss(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, windows, lengths):
            return training_loss(self.model(windows[:, :observe], lengths).float(), windows[:, observe:], task.loss)

    def gen(order: str, pin: bool, seed_: int) -> Iterator[MicroBatch]:
        g = torch.Generator().manual_seed(seed_)
        step = 0
        while True:   # fixed 75-frame windows: bucketing does not apply
            items = torch.randint(len(bank), (b,), generator=g)
            windows = bank.crops(items, total, seed=seed_ * 1_000_003 + step, pin=pin)
            step += 1
            yield MicroBatch((windows, torch.full((b,), observe, dtype=torch.long)),
                             capacities if order != "random" else {}, b * total, b * total)

    return Workload(name, "prediction", _Loss(), optimizer, None, b, 1, 0.0,
                    NTU60_PRED_TRAIN * task.crops_per_sequence,
                    f"NTU-60 xsub sequences >= {total} frames x crops_per_sequence {task.crops_per_sequence}",
                    gen, lens, {"method": to_dict(method.config), "task": to_dict(task)}, variable_length=False,
                    shapes=method.static_shapes)


BUILDERS = {"pretrain": _pretrain, "finetune": _finetune, "detection": _detection, "prediction": _prediction}


def build(name: str, phase: str, profile: str, overrides: dict | None = None, batch: int | None = None,
          steps: int = 10, seed: int = 0, device: torch.device | str = "cpu") -> Workload:
    """The ``phase`` workload of method ``name`` at ``profile`` (``overrides`` go to the method),
    its model and optimizer on ``device`` (``meta``: the methods draw from the default RNG)."""
    if phase not in BUILDERS:
        raise ValueError(f"unknown phase {phase!r}; choose from {', '.join(PHASES)}")
    torch.manual_seed(seed)
    return BUILDERS[phase](name, profile, dict(overrides or {}), batch, steps, seed, torch.device(device))
