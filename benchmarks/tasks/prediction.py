"""Motion prediction: observe 50 frames, predict 25 (NTU-60, body 1), MPJPE in millimetres.

Decoder: the residual LSTM seq2seq of Martinez et al. (CVPR 2017), sampling-based (fed its own
previous prediction, not detached), initialised from the encoder's sequence embedding.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from datasets.precision import float32_island

from ..metrics import mpjpe, mpjpe_per_horizon
from ..metrics.paired import per_frame_error
from ..engine.loops import fit, predict_batches
from ..engine.step import MicroBatch
from .common import TaskContext, TaskOutput, step_schedule

JOINT_DIMS = 25 * 3
RELATIVE_UNIT_PER_M = 10.0  # relative decoder inputs in decimetres: offsets of order 1


class ResidualDecoder(nn.Module):
    """LSTM cell; output_t = input_t + Linear(dropout(h_t)); state from the encoder embedding.

    The embedding sets h_0 = tanh(Linear(e)) and c_0 = 0, and the velocity layer starts at zero
    so an untrained decoder predicts the last observed pose (zero velocity), the usual floor of
    this task (the suite's choices; the paper only says the encoder feeds the decoder).
    ``warmup`` observed frames before the last are read first, as Martinez's encoder reads the
    observed sequence: a pooled video embedding says little about the current velocity. With
    ``relative`` the cell reads offsets from the last observed pose in decimetres instead of
    camera coordinates, whose depth sits near 3.5 m whatever the motion.
    It reads and writes coordinates, so it runs in float32 under any autocast."""

    def __init__(self, embed_dim: int, hidden: int, dropout: float, *, warmup: int = 0, relative: bool = False):
        super().__init__()
        self.init_h = nn.Linear(embed_dim, hidden)
        self.cell = nn.LSTMCell(JOINT_DIMS, hidden)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, JOINT_DIMS)
        self.warmup, self.relative = warmup, relative
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, embedding: torch.Tensor, observed: torch.Tensor, steps: int) -> torch.Tensor:
        """``observed`` ``(B, obs, 75)`` -> ``(B, steps, 75)``."""
        with float32_island(embedding):
            observed = observed.float()
            last = observed[:, -1]

            def read(pose: torch.Tensor) -> torch.Tensor:
                return (pose - last) * RELATIVE_UNIT_PER_M if self.relative else pose

            h = torch.tanh(self.init_h(embedding.float()))
            c = torch.zeros_like(h)
            for t in range(observed.shape[1] - 1 - self.warmup, observed.shape[1] - 1):  # sequential
                h, c = self.cell(read(observed[:, t]), (h, c))
            current, outputs = last, []
            for _ in range(steps):  # autoregressive over predicted frames (inherently sequential)
                h, c = self.cell(read(current), (h, c))
                current = current + self.out(self.dropout(h))
                outputs.append(current)
            return torch.stack(outputs, dim=1)


class Forecaster(nn.Module):
    """Encoder (the method) + residual decoder; input/output in metres, body 1 only."""

    def __init__(self, method, hidden: int, dropout: float, predict: int, *, warmup: int = 0, relative: bool = False):
        super().__init__()
        self.method = method
        self.decoder = ResidualDecoder(method.video_dim, hidden, dropout, warmup=warmup, relative=relative)
        self.predict = predict

    def forward(self, observed: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """observed ``(B, obs, 25, 3)`` -> predicted ``(B, predict, 25, 3)``."""
        two_bodies = torch.stack([observed, torch.zeros_like(observed)], dim=2)
        embedding = self.method.video_embedding(two_bodies, lengths)
        out = self.decoder(embedding.float(), observed.reshape(*observed.shape[:2], -1), self.predict)
        return out.reshape(len(observed), self.predict, 25, 3)


def training_loss(predicted: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """``mse`` (the supplementary) or ``mpjpe``: the mean joint distance the task reports. MSE
    weighs an error by its square, so a few windows of very fast motion (a jump) set the decoder's
    course for all; the distance weighs every joint's error as the metric does."""
    if kind == "mse":
        return nn.functional.mse_loss(predicted, target)
    return torch.linalg.vector_norm(predicted - target, dim=-1).mean()


def _windows(cache, rows: np.ndarray, total: int, starts: np.ndarray) -> torch.Tensor:
    """``(N, total, 25, 3)`` body-1 windows beginning at ``starts`` of each row (one gather)."""
    index = cache.offsets[np.asarray(rows, dtype=np.int64)][:, None] + np.asarray(starts)[:, None] + np.arange(total)
    return torch.from_numpy(cache.gather(index)[:, :, 0])


def tracked(windows: torch.Tensor) -> torch.Tensor:
    """``(N,)`` bool: body 1 has coordinates in every frame of the window. A frame where the
    sensor lost the body is all zeros, metres away from any pose: as a target it would dominate
    the MSE and the MPJPE with an error no forecaster can avoid, so such windows are left out."""
    return windows.abs().flatten(2).sum(-1).gt(0).all(dim=1)


def eligible(cache, rows: np.ndarray, total: int) -> np.ndarray:
    return rows[cache.manifest["length"].to_numpy()[rows] >= total]


def run(ctx: TaskContext) -> TaskOutput:
    cfg = ctx.task_config
    total = cfg.observe + cfg.predict
    train_rows = eligible(ctx.train_cache, np.asarray(ctx.train_rows), total)
    test_rows = eligible(ctx.test_cache, np.asarray(ctx.test_rows), total)
    if len(train_rows) == 0 or len(test_rows) == 0:
        raise ValueError(f"prediction needs sequences of >= {total} frames: {len(train_rows)} train, "
                         f"{len(test_rows)} test; lower prediction.observe/predict or use longer data")
    torch.manual_seed(ctx.seed)
    model = Forecaster(ctx.make_method(), cfg.hidden, cfg.dropout, cfg.predict, warmup=cfg.warmup_frames,
                       relative=cfg.relative_input).to(ctx.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scheduler = step_schedule(optimizer, cfg.milestones, cfg.lr_decay)
    lengths_all = ctx.train_cache.manifest["length"].to_numpy()[train_rows]

    def epoch_batches(epoch):
        rng = np.random.default_rng([ctx.seed, epoch])
        rows = np.repeat(train_rows, cfg.crops_per_sequence)
        starts = rng.integers(0, np.repeat(lengths_all, cfg.crops_per_sequence) - total + 1)
        order = rng.permutation(len(rows))[ctx.dist.rank::ctx.dist.world]
        for i in range(0, len(order), cfg.batch_size):
            items = order[i:i + cfg.batch_size]
            windows = _windows(ctx.train_cache, rows[items], total, starts[items])
            windows = windows[tracked(windows)]
            if len(windows):
                lengths = torch.full((len(windows),), cfg.observe)
                yield MicroBatch((windows, lengths), model.method.capacities(lengths.numpy(), cfg.observe, "embed"))

    def loss_of_batch(net, batch):
        windows, lengths = batch
        predicted = net(windows[:, :cfg.observe], lengths)
        return training_loss(predicted.float(), windows[:, cfg.observe:], cfg.loss)

    rate = fit(model, model.parameters(), optimizer, scheduler, cfg.epochs, epoch_batches, loss_of_batch, ctx,
               desc=f"prediction {ctx.method_name}", shapes=model.method.static_shapes)
    return _evaluate(lambda batches: predict_batches(model, batches, ctx), test_rows, ctx, rate)


def zero_velocity(ctx: TaskContext) -> TaskOutput:
    """Reference: every predicted frame repeats the last observed pose (no training, no labels)."""
    test_rows = eligible(ctx.test_cache, np.asarray(ctx.test_rows), ctx.task_config.observe + ctx.task_config.predict)
    if len(test_rows) == 0:
        raise ValueError("prediction needs test sequences of >= observe + predict frames; lower "
                         "prediction.observe/predict or use longer data")
    steps = ctx.task_config.predict

    def repeat_last(batches):
        return torch.cat([observed[:, -1:].expand(-1, steps, -1, -1) for observed, _ in batches])

    return _evaluate(repeat_last, test_rows, ctx, 0.0)


def _evaluate(predict, test_rows: np.ndarray, ctx: TaskContext, rate: float) -> TaskOutput:
    """MPJPE (mm) overall and per horizon of ``predict(batches of (observed, lengths))`` on the
    first ``observe + predict`` frames of every eligible test sequence."""
    cfg = ctx.task_config
    total = cfg.observe + cfg.predict
    test = _windows(ctx.test_cache, test_rows, total, np.zeros(len(test_rows), dtype=np.int64))
    kept = tracked(test)
    test = test[kept]
    if len(test) == 0:
        raise ValueError(f"prediction: no test sequence has body 1 tracked in all of its first {total} frames")
    lengths = torch.full((cfg.batch_size,), cfg.observe)
    batches = ((test[i:i + cfg.batch_size, :cfg.observe].to(ctx.device), lengths[: len(test[i:i + cfg.batch_size])].to(ctx.device))
               for i in range(0, len(test), cfg.batch_size))
    predicted_mm = predict(batches).float().cpu().numpy() * 1000.0
    target_mm = test[:, cfg.observe:].numpy() * 1000.0
    metrics = {"mpjpe": float(mpjpe(predicted_mm, target_mm))}
    horizons = tuple(h for h in cfg.horizons if h <= cfg.predict)
    metrics.update(mpjpe_per_horizon(predicted_mm, target_mm, horizons))
    keep = min(cfg.saved_samples, len(test))
    artifacts = {"predictions": {"observed": test[:keep, :cfg.observe].numpy() * 1000.0,
                                 "target": target_mm[:keep], "predicted": predicted_mm[:keep],
                                 "horizons": np.asarray(horizons)},
                 # per test sequence and predicted frame: the error averaged over joints (mm)
                 "outputs": {"names": ctx.test_cache.manifest["name"].to_numpy(dtype=str)[test_rows[kept.numpy()]],
                             "frame_error": per_frame_error(predicted_mm, target_mm),
                             "horizons": np.asarray(horizons)}}
    return TaskOutput(metrics=metrics, artifacts=artifacts, samples_per_s=rate)
