"""MAMP's input pipeline on batched tensors, as the authors' data preparation and feeder compute it.

From the suite's ``x`` ``(B, T, M, V, C)`` raw camera coordinates + ``lengths``:

1. body slots padded / cut to ``bodies`` (the feeder always delivers 2; an absent body is zeros);
2. ``seq_translation`` (data/ntu/seq_transformation.py): subtract joint 2 (``center_joint``) of
   body 1 in the first frame where body 1 is present from every present frame of every body
   (absent frames and padding stay zero);
3. valid length = the number of frames whose coordinate sum is non-zero (feeder_ntu.py's
   ``valid_frame_num``; the first that many frames are used);
4. ``valid_crop_resize`` (feeder/tools.py): training: a crop of ratio p ~ U(p_interval) of the
   valid length, at least ``min_crop`` frames (at most the valid length), at a uniform start;
   evaluation: the centre crop dropping ``int((1 - test_p) * L / 2)`` frames at each end; then
   linear resampling to ``num_frames`` (``F.interpolate`` bilinear, align_corners=False);
5. training: ``random_rot``: one rotation per sample, angles U(-rot_theta, rot_theta) about x,
   y, z, R = Rz Ry Rx applied to every joint;
6. the stream (feeder's ``bone`` / ``vel``: bone vectors, or x_(t+1) - x_t with the last frame 0).

Every step is batched on the tensors' device; the draws come from a passed-in generator.
"""
from __future__ import annotations

import torch

from datasets.augment import frame_mask
from datasets.preprocess import centre
from datasets.streams import to_stream

from .config import MAMPConfig


def _draw(shape, device, generator: torch.Generator | None) -> torch.Tensor:
    gdev = generator.device if generator is not None else torch.device(device)
    return torch.rand(shape, generator=generator, device=gdev).to(device)


def _float64(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64   # MPS has no float64


def fit_bodies(x: torch.Tensor, lengths: torch.Tensor, bodies: int) -> torch.Tensor:
    """Pad / cut the body slots to ``bodies`` and zero the frames past ``lengths``."""
    B, T, M = x.shape[:3]
    if M < bodies:
        x = torch.cat([x, x.new_zeros(B, T, bodies - M, *x.shape[3:])], dim=2)
    x = x[:, :, :bodies]
    return x * frame_mask(lengths.to(x.device), T)


def seq_translation(x: torch.Tensor, joint: int = 1) -> torch.Tensor:
    """Origin = ``joint`` of body 1 in its first present frame; present entries minus the origin."""
    present = (x[:, :, 0] != 0).flatten(2).any(dim=2)                      # (B, T)
    first = torch.argmax(present.to(torch.uint8), dim=1)                   # first True (0 if none)
    return centre(x, first, joint)


def valid_length(x: torch.Tensor) -> torch.Tensor:
    """Frames whose coordinate sum over (M, V, C) is non-zero (a count, as the feeder)."""
    return (x.sum(dim=(2, 3, 4)) != 0).sum(dim=1)


def crop_window(L: torch.Tensor, cfg: MAMPConfig, train: bool, generator: torch.Generator | None = None):
    """``(start, length)`` of the crop per sample (int64 tensors on ``L``'s device)."""
    dev = L.device
    L = L.long()
    wide = _float64(dev)
    if train and len(cfg.p_interval) == 2:
        low, high = cfg.p_interval
        u = _draw((L.shape[0], 2), dev, generator).to(wide)
        p = u[:, 0] * (high - low) + low
        length = torch.minimum(torch.floor(L.to(wide) * p).long().clamp(min=cfg.min_crop), L)
        start = torch.floor(u[:, 1] * (L - length + 1).to(wide)).long()
        return torch.minimum(start, L - length), length
    p = cfg.p_interval[0] if train else cfg.test_p
    bias = torch.trunc((1 - p) * L.to(wide) / 2).long()
    return bias, L - 2 * bias


def crop_resize(x: torch.Tensor, start: torch.Tensor, length: torch.Tensor, size: int) -> torch.Tensor:
    """Frames ``[start, start + length)`` of each sample linearly resampled to ``size`` frames
    (PyTorch's bilinear / align_corners=False source index, float32 as its CPU kernel); a
    sample of length 0 comes out as zeros."""
    B, T = x.shape[:2]
    dev = x.device
    start, length = start.to(dev).long(), length.to(dev).long()
    scale = length.to(torch.float32) / size                                   # (B,)
    j = torch.arange(size, device=dev, dtype=torch.float32)
    src = (scale[:, None] * (j[None, :] + 0.5) - 0.5).clamp(min=0)             # (B, size)
    i0 = src.long()
    i1 = torch.where(i0 < (length - 1)[:, None], i0 + 1, i0)
    w = (src - i0.to(torch.float32)).clamp(0, 1).to(x.dtype)
    top = T - 1
    f0 = (start[:, None] + i0).clamp(0, top)
    f1 = (start[:, None] + i1).clamp(0, top)
    shape = (B, size) + (1,) * (x.dim() - 2)
    idx0 = f0.view(shape).expand(B, size, *x.shape[2:])
    idx1 = f1.view(shape).expand(B, size, *x.shape[2:])
    w = w.view(shape)
    out = torch.gather(x, 1, idx0) * (1 - w) + torch.gather(x, 1, idx1) * w
    return out * (length > 0).to(x.dtype).view((B,) + (1,) * (x.dim() - 1))


def rotation_matrices(angles: torch.Tensor) -> torch.Tensor:
    """``(B, 3)`` angles about x, y, z -> ``(B, 3, 3)`` R = Rz Ry Rx (feeder/tools.py ``_rot``)."""
    c, s = angles.cos(), angles.sin()
    one, zero = torch.ones_like(c[:, 0]), torch.zeros_like(c[:, 0])

    def mat(rows):
        return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)

    rx = mat([(one, zero, zero), (zero, c[:, 0], s[:, 0]), (zero, -s[:, 0], c[:, 0])])
    ry = mat([(c[:, 1], zero, -s[:, 1]), (zero, one, zero), (s[:, 1], zero, c[:, 1])])
    rz = mat([(c[:, 2], s[:, 2], zero), (-s[:, 2], c[:, 2], zero), (zero, zero, one)])
    return rz @ ry @ rx


def rotate(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Every coordinate vector of sample b times ``rotation_matrices(angles)[b]``."""
    R = rotation_matrices(angles.to(x.device, x.dtype))
    return torch.einsum("bij,btmvj->btmvi", R, x)


def feeder_input(x: torch.Tensor, lengths: torch.Tensor, cfg: MAMPConfig, *, train: bool,
                 generator: torch.Generator | None = None, window: tuple[torch.Tensor, torch.Tensor] | None = None,
                 angles: torch.Tensor | None = None, frames: int | None = None) -> torch.Tensor:
    """``(B, T, M, V, C)`` raw -> ``(B, frames, bodies, V, C)`` in ``cfg.stream``, float32.

    ``window`` ``(start, length)`` and ``angles`` ``(B, 3)``: use these instead of drawing them
    (reproducing a given crop / rotation); ``frames``: output length (default ``num_frames``)."""
    lengths = lengths.to(x.device).long()
    x = seq_translation(fit_bodies(x.float(), lengths, cfg.bodies), cfg.center_joint)
    if window is None:
        window = crop_window(valid_length(x), cfg, train, generator)
    x = crop_resize(x, window[0], window[1], frames or cfg.num_frames)
    if train and cfg.random_rot:
        if angles is None:
            angles = (_draw((x.shape[0], 3), x.device, generator) * 2 - 1) * cfg.rot_theta
        x = rotate(x, angles)
    return to_stream(x, cfg.stream, forward_motion=True)


def sequences(x: torch.Tensor) -> torch.Tensor:
    """``(B, T, M, V, C)`` -> ``(B*M, T, V, C)``, sample-major (the reference's ``N * M`` rows)."""
    B, T, M, V, C = x.shape
    return x.permute(0, 2, 1, 3, 4).reshape(B * M, T, V, C)
