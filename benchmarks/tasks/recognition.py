"""Action recognition: fine-tuning and linear evaluation under named protocols
(``protocols.py``: the supplementary's, the Hi-TRS code's, CrosSCLR's), top-1/top-5, and kNN
retrieval (top-1, cosine, no training) on the frozen encoder's video embeddings."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..engine.data import BucketBatches, sequence_set
from ..engine.loops import MethodCall, fit, predict_batches
from ..engine.step import MicroBatch
from ..metrics import knn_predict, topk_accuracy
from ..metrics.paired import topk_outputs
from . import protocols
from .common import TaskContext, TaskOutput


class VideoClassifier(nn.Module):
    """Method's video embedding -> Linear(classes)."""

    def __init__(self, method, num_classes: int):
        super().__init__()
        self.method = method
        self.head = nn.Linear(method.video_dim, num_classes)

    def forward(self, x, lengths):
        return self.head(self.method.video_embedding(x, lengths))


def _eval_batches(data, batch_size: int, device):
    """Length-sorted batches (less padding) and the order that undoes the sort."""
    order = np.argsort(data.lengths, kind="stable")
    batches = ((x.to(device), l.to(device)) for x, l, _ in
               (data.batch(order[i:i + batch_size]) for i in range(0, len(order), batch_size)))
    return batches, torch.from_numpy(order)


def _in_input_order(outputs: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    restored = torch.empty_like(outputs)
    restored[order] = outputs
    return restored


def finetune(ctx: TaskContext) -> tuple[np.ndarray, float]:
    """Fine-tuning under ``recognition.protocol`` (protocols.py): the supplementary's by default."""
    cfg = ctx.task_config
    torch.manual_seed(ctx.seed)
    model = VideoClassifier(ctx.make_method(), ctx.train_cache.num_classes).to(ctx.device)
    optimizer, scheduler, epochs, grad_clip = protocols.finetune_optimizer(model, cfg, ctx.pretrained)
    augment = protocols.finetune_augment(cfg, ctx.seed)
    train = sequence_set(ctx.train_cache, ctx.train_rows, cfg.max_frames)
    batches = BucketBatches.for_mode(protocols.finetune_batching(cfg), train.lengths, cfg.batch_size, seed=ctx.seed,
                                     rank=ctx.dist.rank, world=ctx.dist.world)
    criterion = nn.CrossEntropyLoss()

    def loss_of_batch(net, batch):
        x, lengths, labels = batch
        return criterion(net(x, lengths).float(), labels)

    method = model.method

    def epoch_batches(epoch):   # padded to the static max_frames, the method's capacities
        for items in batches.epoch(epoch):
            x, lengths, labels = train.batch(items, cfg.max_frames)
            if augment is not None:
                x, lengths = augment(x, lengths)
            yield MicroBatch((x, lengths, labels), method.capacities(lengths.numpy(), x.shape[1], "embed"))

    rate = fit(model, model.parameters(), optimizer, scheduler, epochs, epoch_batches, loss_of_batch, ctx,
               desc=f"finetune {ctx.method_name}", grad_clip=grad_clip, shapes=method.static_shapes)
    test = sequence_set(ctx.test_cache, ctx.test_rows, cfg.max_frames)
    batches_, order = _eval_batches(test, cfg.batch_size, ctx.device)
    logits = _in_input_order(predict_batches(model, batches_, ctx), order)
    return torch.softmax(logits, dim=-1).numpy(), rate


def frozen_features(ctx: TaskContext) -> dict[str, torch.Tensor]:
    """Video embeddings of the labelled training rows and the test rows from the frozen encoder
    (eval mode), in row order: what linear evaluation and kNN retrieval both score."""
    cfg = ctx.task_config
    torch.manual_seed(ctx.seed)
    embed = MethodCall(ctx.make_method(), "video_embedding").to(ctx.device)
    features = {}
    for part, rows in (("train", ctx.train_rows), ("test", ctx.test_rows)):
        data = sequence_set(ctx.train_cache if part == "train" else ctx.test_cache, rows, cfg.max_frames)
        batches_, order = _eval_batches(data, cfg.batch_size, ctx.device)
        features[part] = _in_input_order(predict_batches(embed, batches_, ctx), order)
    return features


def linear_evaluation(ctx: TaskContext, features: dict[str, torch.Tensor] | None = None) -> tuple[np.ndarray, dict]:
    """Frozen encoder: embeddings are computed once, then only the linear head is trained under
    ``recognition.linear_protocol`` - identical to re-running the frozen encoder every epoch.
    Returns test probabilities and what a joint "-3S" classifier needs."""
    cfg = ctx.task_config
    features = features if features is not None else frozen_features(ctx)  # seeds; the head's init follows
    if cfg.linear_standardize:
        features = protocols.standardized(features)
    labels = torch.from_numpy(ctx.train_cache.manifest["label"].to_numpy()[ctx.train_rows].astype(np.int64))
    classes = ctx.train_cache.num_classes
    heads = protocols.train_linear([features["train"]], labels, classes, cfg, ctx.seed)
    joint = {}
    if cfg.linear_protocol == "crossclr":  # "-3S" trains one classifier over the three streams
        joint = {"train": features["train"], "test": features["test"], "labels": labels, "classes": classes,
                 "config": cfg, "seed": ctx.seed}
    return protocols.linear_probs(heads, [features["test"]]), joint


def percent(fractions: dict[str, float], prefix: str = "") -> dict[str, float]:
    return {f"{prefix}{k}": 100.0 * v for k, v in fractions.items()}


def run(ctx: TaskContext) -> TaskOutput:
    labels = ctx.test_cache.manifest["label"].to_numpy()[ctx.test_rows].astype(np.int64)
    names = ctx.test_cache.manifest["name"].to_numpy(dtype=str)[ctx.test_rows]
    probs, rate = finetune(ctx)
    metrics = percent(topk_accuracy(probs, labels, ks=(1, 5)))
    outputs = {"probs": probs, "labels": labels, "names": names}
    per_sample = {"names": names, "label": labels.astype(np.int16), **topk_outputs(probs, labels)}
    cfg = ctx.task_config
    features = frozen_features(ctx) if (cfg.linear_eval or cfg.knn) else None
    if cfg.linear_eval:
        linear_probs, joint = linear_evaluation(ctx, features)
        metrics.update(percent(topk_accuracy(linear_probs, labels, ks=(1, 5)), prefix="linear_"))
        outputs["linear_probs"] = linear_probs
        per_sample.update(topk_outputs(linear_probs, labels, prefix="linear_"))
        if joint:
            outputs["linear_features"] = joint
    if cfg.knn:  # no training: the labelled subset is the retrieval gallery
        train_labels = ctx.train_cache.manifest["label"].to_numpy()[ctx.train_rows]
        predicted = knn_predict(features["train"], train_labels, features["test"], k=cfg.knn_k)
        metrics["knn_top1"] = 100.0 * float((predicted == labels).mean())   # = knn_accuracy
        per_sample["knn_pred"] = predicted.astype(np.int16)
    return TaskOutput(metrics=metrics, outputs=outputs, artifacts={"outputs": per_sample}, samples_per_s=rate)


def combine_streams(outputs: list[TaskOutput], ctx: TaskContext) -> TaskOutput:
    """'-3s': average the stream models' class probabilities, then score."""
    kept = [o.outputs for o in outputs]
    labels = kept[0]["labels"]
    probs = np.mean([o["probs"] for o in kept], axis=0)
    metrics = percent(topk_accuracy(probs, labels, ks=(1, 5)))
    per_sample = {"label": labels.astype(np.int16), **topk_outputs(probs, labels)}
    if "names" in kept[0]:
        per_sample["names"] = kept[0]["names"]
    if all("linear_features" in o for o in kept):  # crossclr protocol: one classifier on averaged logits
        setup = kept[0]["linear_features"]
        parts = [o["linear_features"] for o in kept]
        heads = protocols.train_linear([p["train"] for p in parts], setup["labels"], setup["classes"],
                                       setup["config"], setup["seed"])
        mean = protocols.linear_probs(heads, [p["test"] for p in parts])
        metrics.update(percent(topk_accuracy(mean, labels, ks=(1, 5)), prefix="linear_"))
        per_sample.update(topk_outputs(mean, labels, prefix="linear_"))
    elif all("linear_probs" in o for o in kept):
        mean = np.mean([o["linear_probs"] for o in kept], axis=0)
        metrics.update(percent(topk_accuracy(mean, labels, ks=(1, 5)), prefix="linear_"))
        per_sample.update(topk_outputs(mean, labels, prefix="linear_"))
    return TaskOutput(metrics=metrics, artifacts={"outputs": per_sample})
