"""Action recognition: fine-tuning (supplementary schedules) and linear evaluation; top-1/top-5."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data import BucketBatches, sequence_set
from ..metrics import topk_accuracy
from .common import TaskContext, TaskOutput, fit, predict_batches, step_schedule


class VideoClassifier(nn.Module):
    """Method's video embedding -> Linear(classes)."""

    def __init__(self, method, num_classes: int, frozen: bool = False):
        super().__init__()
        self.method = method
        self.head = nn.Linear(method.video_dim, num_classes)
        self.frozen = frozen

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen:  # linear evaluation: encoder BN statistics and dropout stay in eval mode
            self.method.eval()
        return self

    def forward(self, x, lengths):
        return self.head(self.method.video_embedding(x, lengths))


def _train(ctx: TaskContext, linear: bool) -> tuple[np.ndarray, float]:
    cfg = ctx.task_config
    torch.manual_seed(ctx.seed)
    method = ctx.make_method()
    model = VideoClassifier(method, ctx.train_cache.num_classes, frozen=linear).to(ctx.device)
    if linear:
        for p in method.parameters():
            p.requires_grad_(False)
        params = list(model.head.parameters())
        lr, epochs, milestones = cfg.linear_lr, cfg.linear_epochs, ()
    else:
        params = [p for p in model.parameters() if p.requires_grad]
        lr = cfg.lr
        epochs = cfg.epochs_pretrained if ctx.pretrained else cfg.epochs_scratch
        milestones = cfg.milestones_pretrained if ctx.pretrained else cfg.milestones_scratch
    optimizer = torch.optim.Adam(params, lr=lr)
    scheduler = step_schedule(optimizer, milestones, cfg.lr_decay)
    train = sequence_set(ctx.train_cache, ctx.train_rows, cfg.max_frames)
    batches = BucketBatches(train.lengths, cfg.batch_size, seed=ctx.seed, rank=ctx.dist.rank, world=ctx.dist.world)
    criterion = nn.CrossEntropyLoss()

    def loss_of_batch(net, batch):
        x, lengths, labels = batch
        return criterion(net(x, lengths).float(), labels)

    def epoch_batches(epoch):
        for items in batches.epoch(epoch):
            x, lengths, labels = train.batch(items)
            yield x.to(ctx.device), lengths.to(ctx.device), labels.to(ctx.device)

    rate = fit(model, params, optimizer, scheduler, epochs, epoch_batches, loss_of_batch, ctx,
               desc=f"{'linear' if linear else 'finetune'} {ctx.method_name}")
    test = sequence_set(ctx.test_cache, ctx.test_rows, cfg.max_frames)
    order = np.argsort(test.lengths, kind="stable")
    eval_batches = ((x.to(ctx.device), l.to(ctx.device)) for x, l, _ in
                    (test.batch(order[i:i + cfg.batch_size]) for i in range(0, len(order), cfg.batch_size)))
    logits = predict_batches(model, eval_batches, ctx)
    probs = torch.empty_like(logits)
    probs[torch.from_numpy(order)] = torch.softmax(logits, dim=-1)
    return probs.numpy(), rate


def percent(fractions: dict[str, float], prefix: str = "") -> dict[str, float]:
    return {f"{prefix}{k}": 100.0 * v for k, v in fractions.items()}


def run(ctx: TaskContext) -> TaskOutput:
    labels = ctx.test_cache.manifest["label"].to_numpy()[ctx.test_rows].astype(np.int64)
    probs, rate = _train(ctx, linear=False)
    metrics = percent(topk_accuracy(probs, labels, ks=(1, 5)))
    outputs = {"probs": probs, "labels": labels}
    if ctx.task_config.linear_eval:
        linear_probs, _ = _train(ctx, linear=True)
        metrics.update(percent(topk_accuracy(linear_probs, labels, ks=(1, 5)), prefix="linear_"))
        outputs["linear_probs"] = linear_probs
    return TaskOutput(metrics=metrics, outputs=outputs, samples_per_s=rate)


def combine_streams(outputs: list[dict]) -> dict[str, float]:
    """'-3s': average the stream models' class probabilities, then score."""
    labels = outputs[0]["labels"]
    metrics = percent(topk_accuracy(np.mean([o["probs"] for o in outputs], axis=0), labels, ks=(1, 5)))
    if all("linear_probs" in o for o in outputs):
        mean = np.mean([o["linear_probs"] for o in outputs], axis=0)
        metrics.update(percent(topk_accuracy(mean, labels, ks=(1, 5)), prefix="linear_"))
    return metrics
