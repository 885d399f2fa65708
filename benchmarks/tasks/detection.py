"""Action detection on long videos: per-frame classification of a 7-frame, dilation-4 window,
frames -> scored intervals, official PKU-MMD mAP_a / mAP_v."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..engine.data import frame_bank
from ..metrics import frames_to_intervals, pkummd_scores
from ..metrics.paired import detection_outputs
from ..engine.loops import fit, predict_batches
from .common import TaskContext, TaskOutput, step_schedule


class ClipClassifier(nn.Module):
    """Method's clip embedding of the window around a frame -> Linear(classes + background)."""

    def __init__(self, method, num_classes: int, window: int, dilation: int, stream_scope: str = "video"):
        super().__init__()
        self.method = method
        self.head = nn.Linear(method.clip_dim, num_classes + 1)
        self.window, self.dilation = window, dilation
        self.embed = method.detection_clip_embedding if stream_scope == "video" else method.clip_embedding

    def forward(self, clips):
        return self.head(self.embed(clips))


def _bank(cache, rows, method, cfg, device):
    """Frames windows are cut from: the method's stream over each whole video
    (``stream_scope="video"``, as pre-training) or raw frames (``"window"``: each window
    converts itself, so motion is a difference of the window's dilated frames)."""
    if cfg.stream_scope == "window":
        return frame_bank(cache, rows)
    was_training = method.training
    method.eval()
    bank = frame_bank(cache, rows, lambda x, lengths: method.detection_frames(x.to(device), lengths.to(device)))
    method.train(was_training)
    return bank


def _score(probs_per_video: dict[str, np.ndarray], test_cache, rows, cfg) -> tuple[dict, dict]:
    videos, proposals = {}, {}
    for name, row in zip(probs_per_video, rows):
        props = frames_to_intervals(probs_per_video[name], method=cfg.postprocess)
        proposals[name] = props
        videos[name] = {"proposals": [list(p) for p in props],
                        "ground_truth": np.asarray(test_cache.intervals(int(row))).tolist()}
    scores = pkummd_scores(videos, num_classes=test_cache.num_classes, theta=cfg.theta)
    return {k: 100.0 * v for k, v in scores.items()}, proposals


def _timelines(probs_per_video, test_cache, rows, proposals, count) -> dict:
    """Per-frame ground truth and post-processed prediction of the first ``count`` test videos."""
    names = list(probs_per_video)[:count]
    out = {"names": np.asarray(names), "num_classes": np.asarray(test_cache.num_classes)}
    for i, (name, row) in enumerate(zip(names, rows)):
        length = len(probs_per_video[name])
        out[f"gt_{i}"] = np.asarray(test_cache.frame_labels(int(row)), dtype=np.int64)
        pred = np.zeros(length, dtype=np.int64)
        for label, start, end, _ in proposals[name]:
            pred[int(start):int(end)] = int(label)
        out[f"pred_{i}"] = pred
    return out


def run(ctx: TaskContext) -> TaskOutput:
    cfg = ctx.task_config
    torch.manual_seed(ctx.seed)
    method = ctx.make_method()
    num_classes = ctx.train_cache.num_classes
    model = ClipClassifier(method, num_classes, cfg.window, cfg.dilation, cfg.stream_scope).to(ctx.device)
    train = _bank(ctx.train_cache, ctx.train_rows, method, cfg, ctx.device)
    frames = torch.arange(0, len(train.labels), cfg.train_frame_stride)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scheduler = step_schedule(optimizer, (), 1.0)
    criterion = nn.CrossEntropyLoss()

    def epoch_batches(epoch):
        g = torch.Generator().manual_seed(ctx.seed * 1000 + epoch)
        order = frames[torch.randperm(len(frames), generator=g)]
        order = order[ctx.dist.rank::ctx.dist.world]
        for i in range(0, len(order), cfg.batch_size):
            ids = order[i:i + cfg.batch_size]
            yield (train.clips(ids, cfg.window, cfg.dilation).to(ctx.device), train.labels[ids].to(ctx.device))

    def loss_of_batch(net, batch):
        clips, labels = batch
        return criterion(net(clips).float(), labels)

    rate = fit(model, model.parameters(), optimizer, scheduler, cfg.epochs, epoch_batches, loss_of_batch, ctx,
               desc=f"detection {ctx.method_name}")
    test = _bank(ctx.test_cache, ctx.test_rows, method, cfg, ctx.device)
    all_frames = torch.arange(len(test.labels))
    batches = ((test.clips(all_frames[i:i + cfg.batch_size], cfg.window, cfg.dilation).to(ctx.device),)
               for i in range(0, len(all_frames), cfg.batch_size))
    probs = torch.softmax(predict_batches(model, batches, ctx), dim=-1).numpy()
    per_video = {name: probs[s:s + n] for name, s, n in zip(test.names, test.starts, test.lengths)}
    return _finish(per_video, ctx, rate)


def _finish(per_video: dict[str, np.ndarray], ctx: TaskContext, rate: float = 0.0) -> TaskOutput:
    cfg = ctx.task_config
    metrics, proposals = _score(per_video, ctx.test_cache, ctx.test_rows, cfg)
    frame_acc = float(np.mean(np.concatenate([
        per_video[n].argmax(-1) == np.asarray(ctx.test_cache.frame_labels(int(r)))
        for n, r in zip(per_video, ctx.test_rows)]))) * 100.0
    metrics["frame_acc"] = frame_acc
    artifacts = {"proposals": proposals,
                 "timelines": _timelines(per_video, ctx.test_cache, ctx.test_rows, proposals, cfg.timeline_videos),
                 "outputs": detection_outputs(   # per video: per-frame labels, proposals, ground truth
                     list(per_video), [per_video[n].argmax(-1) for n in per_video],
                     [ctx.test_cache.frame_labels(int(r)) for r in ctx.test_rows], [proposals[n] for n in per_video],
                     [ctx.test_cache.intervals(int(r)) for r in ctx.test_rows], ctx.test_cache.num_classes, cfg.theta)}
    return TaskOutput(metrics=metrics, outputs={"probs": per_video}, artifacts=artifacts, samples_per_s=rate)


def combine_streams(outputs: list[TaskOutput], ctx: TaskContext) -> TaskOutput:
    """'-3s': average per-frame class probabilities of the stream models, then post-process."""
    names = list(outputs[0].outputs["probs"])
    mean = {n: np.mean([o.outputs["probs"][n] for o in outputs], axis=0) for n in names}
    return _finish(mean, ctx)
