"""Augmentations keep float32 coordinates under autocast (issue 11: the bf16 shear crash)."""
from __future__ import annotations

import torch

from datasets.augment import hitrs_augment, shear


def _batch(b=6, t=20):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, t, 1, 25, 3, generator=g) * 0.3 + torch.tensor([0.1, 0.2, 3.4])
    lengths = torch.tensor([t, t - 3, 12, t, 5, t - 1])[:b]
    x = x * (torch.arange(t)[None, :] < lengths[:, None])[..., None, None, None]
    return x, lengths


def test_shear_under_cpu_bf16_autocast_is_float32_and_identical():
    x, _ = _batch()
    ref = shear(x, torch.Generator().manual_seed(1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = shear(x, torch.Generator().manual_seed(1))
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, ref, rtol=0, atol=0)


def test_hitrs_augment_with_shear_runs_under_bf16_autocast():
    """Used to raise 'Index put requires the source and destination dtypes match'."""
    x, lengths = _batch()
    kwargs = dict(p=1.0, spatial=("shear",), temporal=("interp", "crop"))
    ref, ref_len = hitrs_augment(x, lengths, torch.Generator().manual_seed(2), **kwargs)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, got_len = hitrs_augment(x, lengths, torch.Generator().manual_seed(2), **kwargs)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, ref, rtol=0, atol=0)
    assert torch.equal(got_len, ref_len)
    # motion keeps its millimetre differences: no frame-to-frame difference collapses to zero
    diff = (got[:, 1:] - got[:, :-1]).abs().sum(dim=(2, 3, 4))
    valid = torch.arange(1, x.shape[1])[None, :] < got_len[:, None]
    assert bool((diff[valid] > 0).all())
