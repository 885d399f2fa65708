"""Named recognition protocols: the supplementary's and the authors' official code's.

Fine-tuning (``recognition.protocol``):
* ``supplementary``: Adam ``lr``, lr x``lr_decay`` at the pre-trained / scratch milestones
  (the Hi-TRS supplementary, section 2).
* ``hitrs_code``: the Hi-TRS code's train_on_NTU_AR.py: AdamW (weight decay 0.01, none on
  biases / norms / position tables / fuse tokens), grad-norm clip 1.0, its augmentation with
  p = 0.5 (one of scale / noise / shear, then one of interpolation / crop), uniform random
  batches, 70 epochs; lr halved every 10 epochs after epoch 20 (floor x0.0025), from scratch
  its own steps.

Linear evaluation (``recognition.linear_protocol``), frozen encoder features:
* ``suite``: Adam ``linear_lr`` for ``linear_epochs``, default head init.
* ``crossclr``: CrosSCLR's official linear_evaluation: SGD lr 3.0, momentum 0.9, no weight
  decay, 100 epochs, x0.1 from epoch 81 on, head N(0, 0.02) / zero bias; "-3S" trains the three
  stream heads as one classifier on their averaged logits.
Both report the last epoch (the official CrosSCLR script prints the best test epoch).
With ``recognition.linear_standardize`` (off in ``paper``: neither reference does it) the frozen
features are z-scored per dimension with the labelled training set's statistics first, as MAE's
linear probe puts a BatchNorm without affine before its head: an untrained or unnormalised
encoder's features can sit far from zero with a scale of 1e-3 or 1e3, where one learning rate
either crawls or collapses to a constant class.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..config import FINETUNE_PROTOCOLS, LINEAR_PROTOCOLS


@dataclass(frozen=True)
class HiTRSCodeFinetune:
    """train_on_NTU_AR.py and cfg/NTU/AR/cfg.yaml (Hi-TRS code, commit ba9ffcb)."""

    epochs: int = 70
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    aug_p: float = 0.5
    aug_spatial: tuple[str, ...] = ("scale", "noise", "shear")
    aug_temporal: tuple[str, ...] = ("interp", "crop")
    decay_after: int = 20        # pre-trained: x0.5 per started 10 epochs after this one
    decay_every: int = 10
    floor: float = 0.01 / 4


@dataclass(frozen=True)
class CrosSCLRLinear:
    """processor/linear_evaluation.py + config/linear_eval/*.yaml (CrosSCLR 792b70c)."""

    lr: float = 3.0
    momentum: float = 0.9
    weight_decay: float = 0.0
    epochs: int = 100
    step: int = 80               # lr x0.1 in 1-based epochs > step (the official adjust_lr): 81..100
    head_std: float = 0.02


HITRS_CODE = HiTRSCodeFinetune()
CROSSCLR_LINEAR = CrosSCLRLinear()


def hitrs_code_factor(epoch: int, pretrained: bool, recipe: HiTRSCodeFinetune = HITRS_CODE) -> float:
    """LR factor of 0-based ``epoch``: the code steps its LambdaLR before each epoch, so epoch
    ``e`` trains at lambda(e + 1) (lr_lambda_ft, or lr_lambda_train_scratch from scratch)."""
    step = epoch + 1
    if not pretrained:
        for limit, factor in ((30, 1.0), (40, 0.5), (50, 0.25), (55, 0.125)):
            if step <= limit:
                return factor
        return 0.125 * 0.1
    if step <= recipe.decay_after:
        return 1.0
    return max(0.5 ** math.ceil((step - recipe.decay_after) / recipe.decay_every), recipe.floor)


def finetune_optimizer(model: nn.Module, cfg, pretrained: bool):
    """``(optimizer, per-epoch scheduler, epochs, grad_clip)`` of ``cfg.protocol``."""
    if cfg.protocol == "supplementary":
        epochs = cfg.epochs_pretrained if pretrained else cfg.epochs_scratch
        milestones = cfg.milestones_pretrained if pretrained else cfg.milestones_scratch
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(milestones), gamma=cfg.lr_decay)
        return optimizer, scheduler, epochs, cfg.grad_clip
    if cfg.protocol != "hitrs_code":
        raise ValueError(f"recognition.protocol {cfg.protocol!r} unknown; choose one of {', '.join(FINETUNE_PROTOCOLS)}")
    from methods.hitrs.model import no_weight_decay  # the code's no-decay list, on our names
    decay, plain = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (plain if no_weight_decay(name) else decay).append(param)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": HITRS_CODE.weight_decay},
                                   {"params": plain, "weight_decay": 0.0}], lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: hitrs_code_factor(e, pretrained))
    return optimizer, scheduler, HITRS_CODE.epochs, HITRS_CODE.grad_clip


def finetune_batching(cfg) -> str:
    """Batch order of the fine-tuning protocol: the Hi-TRS code's shuffling DataLoader gives
    uniform batches; the supplementary says nothing, so the suite keeps its length buckets."""
    return "uniform" if cfg.protocol == "hitrs_code" else "bucket"


def finetune_augment(cfg, seed: int):
    """The protocol's training augmentation on raw joints, or None."""
    if cfg.protocol != "hitrs_code":
        return None
    from datasets.augment import hitrs_augment
    generator = torch.Generator().manual_seed(seed + 104_729)

    def augment(x: torch.Tensor, lengths: torch.Tensor):
        g = generator if x.device.type == "cpu" else None
        return hitrs_augment(x, lengths, g, p=HITRS_CODE.aug_p, spatial=HITRS_CODE.aug_spatial,
                             temporal=HITRS_CODE.aug_temporal)
    return augment


def standardized(features: dict[str, torch.Tensor], eps: float = 1e-6) -> dict[str, torch.Tensor]:
    """Every part z-scored with the ``train`` part's per-dimension mean and std (population),
    computed in float64: a float32 feature far from zero keeps little of its spread otherwise."""
    train = features["train"].double()
    mean, scale = train.mean(dim=0), train.std(dim=0, unbiased=False).clamp_min(eps)
    return {part: ((f.double() - mean) / scale).to(f.dtype) for part, f in features.items()}


def train_linear(features: list[torch.Tensor], labels: torch.Tensor, classes: int, cfg, seed: int) -> list[nn.Linear]:
    """One linear head per feature set (stream), trained as one classifier on the heads'
    averaged logits (one stream: a plain linear classifier) on frozen ``features``."""
    protocol = cfg.linear_protocol
    if protocol not in LINEAR_PROTOCOLS:
        raise ValueError(f"recognition.linear_protocol {protocol!r} unknown; choose one of {', '.join(LINEAR_PROTOCOLS)}")
    heads = [nn.Linear(f.shape[1], classes) for f in features]
    params = [p for h in heads for p in h.parameters()]
    if protocol == "suite":
        optimizer = torch.optim.Adam(params, lr=cfg.linear_lr)
        epochs, factor = cfg.linear_epochs, (lambda e: 1.0)
    else:
        rec = CROSSCLR_LINEAR
        for h in heads:
            nn.init.normal_(h.weight, 0.0, rec.head_std)
            nn.init.zeros_(h.bias)
        optimizer = torch.optim.SGD(params, lr=rec.lr, momentum=rec.momentum, weight_decay=rec.weight_decay)
        epochs, factor = rec.epochs, (lambda e: 0.1 if e + 1 > rec.step else 1.0)
    base = [group["lr"] for group in optimizer.param_groups]
    g = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        for group, lr in zip(optimizer.param_groups, base):
            group["lr"] = lr * factor(epoch)
        order = torch.randperm(len(labels), generator=g)
        for i in range(0, len(order), cfg.batch_size):
            items = order[i:i + cfg.batch_size]
            loss = nn.functional.cross_entropy(averaged_logits(heads, [f[items] for f in features]), labels[items])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return heads


def averaged_logits(heads: list[nn.Linear], features: list[torch.Tensor]) -> torch.Tensor:
    if len(heads) == 1:
        return heads[0](features[0])
    return torch.stack([h(f) for h, f in zip(heads, features)]).mean(0)


@torch.no_grad()
def linear_probs(heads: list[nn.Linear], features: list[torch.Tensor]) -> np.ndarray:
    return torch.softmax(averaged_logits(heads, features), dim=-1).numpy()
