"""Momentum memory bank (MoCo, He et al. CVPR 2020) shared by the MCC and CrosSCLR baselines.

* ``MomentumPair``: online (query) encoder, momentum (key) encoder ``k <- m k + (1 - m) q``
  over parameters (buffers are not averaged), and a ``KeyQueue`` of normalised keys.
* Under ``torch.distributed`` (any backend, world > 1) the keys of every rank are gathered
  before they are enqueued, so every rank holds the same queue; the key batch is shuffled
  across ranks before the key encoder (shuffle-BN) and restored afterwards. On one process
  ``bn_splits > 1`` shuffles the key batch and normalises it in that many groups (split-BN),
  the single-device substitute MoCo describes.
* ``contrastive_logits`` returns ``[q.k+, q.queue] / T`` in float32 (also under autocast).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from datasets.precision import float32_island
from plumbing.rank import rank_and_world

from .base import SkeletonMethod, optimizer_options
from .config import PretrainLoop
from .rng import DeviceGenerators


@torch.no_grad()
def concat_all_gather(t: torch.Tensor) -> torch.Tensor:
    """Concatenate ``t`` (same shape on every rank) from all ranks along dim 0, rank order."""
    _, world = rank_and_world()
    if world == 1:
        return t
    parts = [torch.empty_like(t) for _ in range(world)]
    dist.all_gather(parts, t.contiguous())
    return torch.cat(parts)


def gather_with_local_grad(t: torch.Tensor) -> tuple[torch.Tensor, int]:
    """All ranks' ``t`` concatenated along dim 0 in rank order (sizes may differ) and this
    rank's row offset; the local part keeps its autograd graph, the others are constants."""
    rank, world = rank_and_world()
    if world == 1:
        return t, 0
    size = torch.tensor([t.shape[0]], device=t.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    sizes = [int(s) for s in sizes]
    padded = F.pad(t.detach(), (0, 0) * (t.dim() - 1) + (0, max(sizes) - t.shape[0])).contiguous()
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    parts = [p[:n] for p, n in zip(parts, sizes)]
    parts[rank] = t
    return torch.cat(parts), sum(sizes[:rank])


@torch.no_grad()
def momentum_update(online: nn.Module, target: nn.Module, m: float) -> None:
    """``target <- m * target + (1 - m) * online`` over parameters (not buffers): one foreach
    lerp over all tensors (a few kernels, not two per parameter)."""
    targets = list(target.parameters())
    onlines = [p.detach() for p in online.parameters()]
    if targets:
        torch._foreach_lerp_(targets, onlines, 1.0 - m)


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy with gradients off (the key encoder starts equal to the query encoder)."""
    twin = copy.deepcopy(module)
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin


class KeyQueue(nn.Module):
    """Ring buffer of ``size`` L2-normalised ``dim``-d keys (row i = slot i) and its pointer."""

    def __init__(self, size: int, dim: int):
        super().__init__()
        if size <= 0 or dim <= 0:
            raise ValueError(f"queue size and key dim must be positive, got K={size}, dim={dim}")
        self.size, self.dim = int(size), int(dim)
        self.register_buffer("keys", F.normalize(torch.randn(self.size, self.dim), dim=1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor, gather: bool = True) -> torch.Tensor:
        """Write this step's keys (gathered from all ranks first) at the pointer; advance it.

        Returns the keys written (all ranks' keys, rank order)."""
        if gather:
            keys = concat_all_gather(keys)
        n = keys.shape[0]
        if keys.shape[1:] != (self.dim,):
            raise ValueError(f"keys of shape {tuple(keys.shape)} do not fit a queue of {self.dim}-d keys")
        if self.size % n != 0:
            raise ValueError(
                f"memory bank size K={self.size} is not a multiple of the key batch {n} "
                "(micro-batch size x world size): choose the queue size and loop.batch_size so that "
                "K % (batch x world) == 0 (the pre-training engine drops incomplete batches)")
        # the slots are computed on the device from the pointer (no host read, one shape for
        # every step); out of place: a compiled graph may save the old buffer itself for its
        # backward pass (AOTAutograd recomputes the clone in contrastive_logits), so writing
        # into it would break that backward; a fresh tensor each step costs K x dim floats
        slots = (self.ptr + torch.arange(n, device=self.ptr.device)) % self.size
        self.keys = self.keys.index_copy(0, slots, keys.to(self.keys.dtype))
        self.ptr.copy_((self.ptr + n) % self.size)
        return keys


def contrastive_logits(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(logits (B, 1+K) / T, l_pos (B, 1), l_neg (B, K))`` in float32; label 0 is the positive.

    ``queue`` is cloned so a later in-place enqueue cannot corrupt the backward pass."""
    with float32_island(q):
        q, k = q.float(), k.float()
        l_pos = (q * k).sum(dim=1, keepdim=True)
        l_neg = q @ queue.detach().clone().float().t()
        return torch.cat([l_pos, l_neg], dim=1) / temperature, l_pos, l_neg


@torch.no_grad()
def shuffled_forward(encoder: nn.Module, x: torch.Tensor, bn_splits: int = 1,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """``encoder(x)`` with the batch's BN statistics decoupled from the query batch.

    World > 1: shuffle-BN across ranks (every rank must hold the same batch size). One process:
    split-BN over ``bn_splits`` random groups (``1`` = plain forward)."""
    rank, world = rank_and_world()
    b = x.shape[0]
    if world > 1:
        sizes = concat_all_gather(torch.tensor([b], device=x.device))
        if bool((sizes != b).any()):
            raise ValueError(f"shuffle-BN needs the same key batch on every rank, got sizes {sizes.tolist()}")
        x_all = concat_all_gather(x)
        perm = torch.randperm(b * world, generator=generator).to(x.device)
        dist.broadcast(perm, src=0)
        out_all = concat_all_gather(encoder(x_all[perm.view(world, b)[rank]]))
        return out_all[torch.argsort(perm)].view(world, b, *out_all.shape[1:])[rank]
    if bn_splits > 1:
        if b < bn_splits:
            raise ValueError(f"split-BN with {bn_splits} groups needs a key batch of at least {bn_splits}, got {b}")
        on = generator.device if generator is not None else x.device
        perm = torch.randperm(b, generator=generator, device=on).to(x.device)
        out = torch.cat([encoder(chunk) for chunk in x[perm].chunk(bn_splits)])
        return out[torch.argsort(perm)]
    return encoder(x)


class MomentumPair(nn.Module):
    """Query encoder, momentum key encoder and queue for one view (stream)."""

    def __init__(self, encoder: nn.Module, *, queue_size: int, dim: int, momentum: float,
                 temperature: float, bn_splits: int = 1):
        super().__init__()
        self.encoder_q = encoder
        self.encoder_k = frozen_copy(encoder)
        self.queue = KeyQueue(queue_size, dim)
        self.momentum, self.temperature, self.bn_splits = float(momentum), float(temperature), int(bn_splits)

    def query(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.encoder_q(x), dim=1)

    @torch.no_grad()
    def key(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return F.normalize(shuffled_forward(self.encoder_k, x, self.bn_splits, generator), dim=1)

    def logits(self, q: torch.Tensor, k: torch.Tensor):
        """See ``contrastive_logits`` (against the queue as it is before this step's enqueue)."""
        return contrastive_logits(q, k, self.queue.keys, self.temperature)

    @torch.no_grad()
    def update_key_encoder(self) -> None:
        momentum_update(self.encoder_q, self.encoder_k, self.momentum)

    def reset_key_encoder(self) -> None:
        """Copy the query weights into the key encoder (MoCo's initialisation)."""
        self.encoder_k.load_state_dict(self.encoder_q.state_dict())


def info_nce(logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with the positive at column 0."""
    return F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device))


def multi_positive_nce(logits: torch.Tensor, positive_mask: torch.Tensor) -> torch.Tensor:
    """``-sum(mask * log_softmax) / sum(mask)`` per row, averaged (CrosSCLR / multi-positive)."""
    mask = positive_mask.to(logits.dtype)
    return (-(F.log_softmax(logits, dim=1) * mask).sum(1) / mask.sum(1)).mean()


def top1_accuracy(logits: torch.Tensor) -> torch.Tensor:
    """Share of rows whose largest logit is the positive at column 0 (percent, a 0-d tensor)."""
    return (logits.argmax(dim=1) == 0).float().mean() * 100.0


@torch.no_grad()
def embedding_spread(z: torch.Tensor) -> torch.Tensor:
    """``100 x (1 - mean cosine similarity between different samples)`` of a batch of embeddings.

    The uniformity side of contrastive learning: InfoNCE pushes the negatives apart, so a MoCo
    encoder that learned to discriminate instances spreads a batch over the sphere, while an
    untrained or collapsed one maps every sequence to nearly one direction. Measured on the ci
    world's held-out batch: a frozen random MCC encoder 2-7, the ci MCC pre-training (24 steps)
    0-5 as well, i.e. its query embeddings nearly collapse (results/ci_baseline.json)."""
    n = z.shape[0]
    if n < 2:
        return z.new_full((), float("nan"), dtype=torch.float32)
    z = F.normalize(z.detach().float(), dim=1)
    off_diagonal = (z @ z.t()).sum() - z.pow(2).sum()
    return 100.0 * (1.0 - off_diagonal / (n * (n - 1)))


def step_decay_sgd(params, *, lr: float, momentum: float, weight_decay: float, nesterov: bool,
                   milestones: tuple[float, ...], gamma: float, total_steps: int):
    """SGD and a per-optimizer-step LambdaLR: ``lr * gamma ** (#milestones passed)``.

    ``milestones`` are fractions of ``total_steps`` (epochs expressed through steps, e.g.
    CrosSCLR's "x0.1 after epoch 250 of 300" = ``(250 / 300,)``)."""
    bad = [m for m in milestones if not 0.0 <= m <= 1.0]
    if bad:
        raise ValueError(f"lr milestones are fractions of the pre-training steps in [0, 1], got {bad}")
    params = [p for p in params if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov,
                                **optimizer_options(params))
    marks = torch.tensor([round(m * total_steps) for m in milestones], dtype=torch.long)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: gamma ** int((marks <= step).sum()) if len(marks) else 1.0)
    return optimizer, scheduler


def method_generator() -> torch.Generator:
    """A CPU generator for a method's augmentations: seeded from the global torch RNG (so the
    runner's seed decides it) plus the rank (different draws on every rank under DDP)."""
    rank, _ = rank_and_world()
    seed = int(torch.randint(0, 2**62, ())) + 7919 * rank
    return torch.Generator().manual_seed(seed)


#: pre-training loops shared by the memory-bank methods (paper: 300 epochs of NTU-60 xsub at 128,
#: uniform random batches as the reference's shuffling DataLoader; small / ci keep length buckets)
PAPER_LOOP = PretrainLoop(steps=93_900, batch_size=128, accumulation=1, grad_clip=0.0, max_frames=300,
                          log_every=100, checkpoint_every=3130, batching="uniform")
SMALL_LOOP = PretrainLoop(steps=150, batch_size=16, accumulation=1, grad_clip=0.0, max_frames=120,
                          log_every=10, checkpoint_every=1000, batching="bucket")
CI_LOOP = PretrainLoop(steps=24, batch_size=8, accumulation=1, grad_clip=0.0, max_frames=120,
                       log_every=5, checkpoint_every=1000, batching="bucket")


@dataclass(frozen=True)
class MemoryBankConfig:
    """What every ST-GCN + momentum-memory-bank method shares (CrosSCLR, MCC): encoder widths,
    the queue, SGD with step decay (milestones as fractions of ``loop.steps``), the loop."""

    stream: str = "joint"
    hidden_channels: int = 16
    hidden_dim: int = 256
    feature_dim: int = 128
    mlp: bool = True
    dropout: float = 0.5
    queue_size: int = 32768
    momentum: float = 0.999
    temperature: float = 0.07
    bn_splits: int = 1              # split-BN groups for keys on one process (reference: 1)
    shear: float = 0.5
    lr: float = 0.1
    sgd_momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    lr_milestones: tuple[float, ...] = (250 / 300,)
    lr_gamma: float = 0.1
    loop: PretrainLoop = field(default_factory=lambda: PAPER_LOOP)

    def sgd(self, params):
        """The pre-training optimizer and per-step scheduler of this configuration."""
        return step_decay_sgd(params, lr=self.lr, momentum=self.sgd_momentum, weight_decay=self.weight_decay,
                              nesterov=self.nesterov, milestones=self.lr_milestones, gamma=self.lr_gamma,
                              total_steps=self.loop.steps)


class MemoryBankMethod(SkeletonMethod):
    """What the ST-GCN + memory-bank methods share behind the interface: SGD step-decay
    pre-training from their ``MemoryBankConfig`` and ``hidden_dim``-wide pooled embeddings."""

    #: pretext log of ``pretrain_loss`` -> reported pretext metric (percent)
    PRETEXT: ClassVar[dict[str, str]] = {}

    #: ``self.generator``: the CPU generator a subclass makes with ``method_generator()``; the
    #: generators of other devices are seeded from it on first use
    generator: torch.Generator

    def _devices(self) -> DeviceGenerators:
        gens = self.__dict__.get("_on_devices")
        if gens is None:
            gens = self._on_devices = DeviceGenerators(self.generator.initial_seed())
        return gens

    def draws(self, device: torch.device | str) -> torch.Generator | None:
        """The generator of the views on ``device``: ``self.generator`` on its own device,
        else that device's generator (None with ``use_default_rng`` and on ``meta``)."""
        if self.use_default_rng:
            return None
        if torch.device(device).type == self.generator.device.type:
            return self.generator
        return self._devices().get(device)

    def pretraining_state(self) -> dict:
        return {"generators": self._devices().state()}

    def load_pretraining_state(self, state: dict) -> None:
        self._devices().load(state.get("generators", {}))

    def configure_pretraining(self):
        return self.config.sgd(self.parameters())

    @torch.no_grad()
    def pretext_metrics(self, x: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        """Instance discrimination top-1 against the queue: one ``pretrain_loss`` with
        ``generator`` drawing the views, dropout off and batch-statistics BN (as in training;
        the running statistics of a few dozen CI steps are far from them). The state (queues,
        BN buffers) and the method's own generator are restored afterwards."""
        saved = {k: v.clone() for k, v in self.state_dict().items()}
        own, own_devices, was_training = self.generator, self._devices(), self.training
        self.generator, self._on_devices = generator, DeviceGenerators(generator.initial_seed())
        self.eval()
        for m in self.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.train()
        try:
            _, logs = self.pretrain_loss(x, lengths)
        finally:
            self.generator, self._on_devices = own, own_devices
            self.train(was_training)
            self.load_state_dict(saved)
        return {name: float(logs[key]) for key, name in self.PRETEXT.items() if key in logs}

    @property
    def video_dim(self) -> int:
        return self.config.hidden_dim

    clip_dim = video_dim
