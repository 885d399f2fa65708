"""Batched augmentations and preprocessing vs plain per-sample re-statements of the rules."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from datasets import augment as A
from datasets import preprocess as P

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"


def _batch(B=6, T=40, M=2, seed=0, second_body=(1, 3)):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, M, 25, 3, generator=g)
    lengths = torch.randint(20, T + 1, (B,), generator=g)
    lengths[0] = T
    x = x * A.frame_mask(lengths, T)
    if M > 1:
        keep = torch.zeros(B, dtype=torch.bool)
        keep[[i for i in second_body if i < B]] = True
        x[:, :, 1] *= keep.view(B, 1, 1, 1)
    return x, lengths


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def test_shear_is_a_per_sample_linear_map_with_unit_diagonal():
    x, lengths = _batch()
    y = A.shear(x, _gen(1), r=0.5)
    for b in range(x.shape[0]):
        X = x[b].reshape(-1, 3).double()
        Y = y[b].reshape(-1, 3).double()
        Rt = torch.linalg.lstsq(X, Y).solution  # Y = X R^T
        R = Rt.T
        assert torch.allclose(torch.diagonal(R), torch.ones(3, dtype=R.dtype), atol=1e-5)
        off = R[~torch.eye(3, dtype=torch.bool)]
        assert off.abs().max() <= 0.5 + 1e-6
        assert off.abs().max() > 1e-3
    assert torch.all(y[~A.frame_mask(lengths, x.shape[1]).expand_as(y)] == 0)
    assert torch.all(y[:, :, 1][[0, 2, 4, 5]] == 0)  # empty bodies stay empty


def test_seeded_and_different_across_seeds():
    x, lengths = _batch()
    a = A.hitrs_augment(x, lengths, _gen(7), p=1.0)
    b = A.hitrs_augment(x, lengths, _gen(7), p=1.0)
    c = A.hitrs_augment(x, lengths, _gen(8), p=1.0)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_scale_one_factor_per_sample():
    x, lengths = _batch()
    y = A.scale(x, _gen(2))
    nz = x != 0
    for b in range(x.shape[0]):
        ratio = y[b][nz[b]] / x[b][nz[b]]
        assert torch.allclose(ratio, ratio[0].expand_as(ratio), atol=1e-5)
        assert 0.8 <= float(ratio[0]) <= 1.2


@pytest.mark.parametrize("per_frame", [False, True])
def test_joint_noise_hits_exactly_k_joints(per_frame):
    x, lengths = _batch()
    y = A.joint_noise(x, lengths, _gen(3), joints=5, amp=0.2, per_frame=per_frame)
    d = y - x
    assert d.abs().max() <= 0.2 + 1e-6
    mask = A.frame_mask(lengths, x.shape[1])
    assert torch.all(d[~mask.expand_as(d)] == 0)
    assert torch.all(d[:, :, 1][[0, 2, 4, 5]] == 0)
    for b in range(x.shape[0]):
        L = int(lengths[b])
        hit = (d[b, :L, 0] != 0).any(-1)  # (L, V)
        assert torch.all(hit.sum(-1) == 5)
        if not per_frame:
            assert torch.all(hit == hit[0]) and torch.allclose(d[b, :L, 0], d[b, :1, 0].expand(L, -1, -1), atol=1e-6)
            if b in (1, 3):  # both bodies share the sample's transform
                assert torch.allclose(d[b, :L, 1], d[b, :L, 0], atol=1e-6)
    if per_frame:
        assert not torch.all((d[0, :, 0] != 0).any(-1) == (d[0, :1, 0] != 0).any(-1))


def test_time_interpolate_matches_rule():
    x, lengths = _batch()
    y, new_len = A.time_interpolate(x, lengths, _gen(4))
    assert torch.equal(new_len, lengths)
    for b in range(x.shape[0]):
        L = int(lengths[b])
        xs, ys = x[b, :L].double(), y[b, :L].double()
        r = ((ys[0] - xs[0]) / (xs[1] - xs[0]))[0, 0, 0]
        assert 0.0 <= float(r) <= 1.0
        expect = xs.clone()
        expect[:-1] = xs[:-1] + r * (xs[1:] - xs[:-1])
        assert torch.allclose(ys, expect, atol=1e-4)
        assert torch.all(y[b, L:] == 0)


def test_temporal_crop_is_a_contiguous_window():
    x, lengths = _batch(B=16, T=60)
    y, new_len = A.temporal_crop(x, lengths, _gen(5), max_ratio=0.2)
    assert torch.all(new_len <= lengths)
    assert torch.all(new_len >= torch.floor(lengths * 0.8) - 1)
    assert (new_len < lengths).any()
    for b in range(x.shape[0]):
        L, n = int(lengths[b]), int(new_len[b])
        starts = [s for s in range(L - n + 1) if torch.equal(x[b, s:s + n], y[b, :n])]
        assert starts, f"sample {b}: output is not a window of the input"
        assert torch.all(y[b, n:] == 0)


def test_crossclr_temporal_crop_windows_of_symmetric_padding():
    x, _ = _batch(B=8, T=50)
    y = A.crossclr_temporal_crop(x, _gen(6))
    pad = 50 // 6
    seen = set()
    for b in range(x.shape[0]):
        padded = np.pad(x[b].numpy(), [(pad, pad), (0, 0), (0, 0), (0, 0)], mode="symmetric")
        starts = [s for s in range(2 * pad + 1) if np.array_equal(padded[s:s + 50], y[b].numpy())]
        assert starts
        seen.update(starts)
    assert len(seen) > 1


def test_hitrs_augment_probability_and_selection():
    x, lengths = _batch(B=400, T=30, M=1)
    same = lambda out: (out[0] == x).flatten(1).all(1) & (out[1] == lengths)  # noqa: E731
    assert same(A.hitrs_augment(x, lengths, _gen(0), p=0.0)).all()
    assert not same(A.hitrs_augment(x, lengths, _gen(0), p=1.0)).any()
    frac = 1 - same(A.hitrs_augment(x, lengths, _gen(0), p=0.5)).float().mean()
    assert 0.4 < float(frac) < 0.6
    # scale + interp only: every augmented sample keeps its length; crop only: never longer
    y, n = A.hitrs_augment(x, lengths, _gen(1), p=1.0, spatial=("scale",), temporal=("interp",))
    assert torch.equal(n, lengths)
    y, n = A.hitrs_augment(x, lengths, _gen(1), p=1.0, spatial=A.REFERENCE_SPATIAL, temporal=("crop",))
    assert torch.all(n <= lengths) and (n < lengths).any()
    assert torch.all(y * ~A.frame_mask(n, x.shape[1]) == 0)
    with pytest.raises(ValueError, match="rotate"):
        A.hitrs_augment(x, lengths, _gen(0), spatial=("rotate",))
    with pytest.raises(ValueError, match="lengths"):
        A.hitrs_augment(x, lengths[:3], _gen(0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_runs_on_cuda_with_cpu_generator():
    x, lengths = _batch()
    out, n = A.hitrs_augment(x.cuda(), lengths.cuda(), _gen(0), p=1.0)
    ref, rn = A.hitrs_augment(x, lengths, _gen(0), p=1.0)
    assert torch.allclose(out.cpu(), ref, atol=1e-5) and torch.equal(n.cpu(), rn)


# ----------------------------------------------------------------------------- frame50
def _frame50_reference(seq: np.ndarray, size=50) -> np.ndarray:
    """Plain per-sample statement of the CrosSCLR frame50 rules (data.md), loops allowed."""
    seq = seq.astype(np.float64)                                   # (T, M, V, 3)
    L = int((np.abs(seq[:, 0, 0, :]).sum(-1) != 0).sum())
    seq = seq - seq[:, :, 20:21, :]
    out = np.zeros((size,) + seq.shape[1:])
    if L == 0:
        return out
    for j in range(size):
        src = max((j + 0.5) * L / size - 0.5, 0.0)
        i0 = int(math.floor(src))
        if i0 >= L - 1:
            out[j] = seq[L - 1]
        else:
            w = src - i0
            out[j] = (1 - w) * seq[i0] + w * seq[i0 + 1]
    for m in range(out.shape[1]):
        vec = out[:, m, 8] - out[:, m, 4]
        vec[:, 1] = 0
        deg = np.degrees(np.arccos(vec[:, 0] / (np.linalg.norm(vec, axis=1) + 1e-4)))
        if vec[:, 2].sum() >= 0:
            deg = -deg
        for t in range(size):
            th = np.radians(deg[t])
            R = np.array([[np.cos(th), 0, -np.sin(th)], [0, 1, 0], [np.sin(th), 0, np.cos(th)]])
            out[t, m] = out[t, m] @ R.T
    return out


def test_frame50_matches_reference_rules_on_varied_lengths():
    x, lengths = _batch(B=5, T=90)
    x[:, :, :, :, 2] += 3.0  # keep it camera-like
    x = x * A.frame_mask(lengths, 90)
    lengths[2] = 37
    x[2, 37:] = 0
    x[4] = 0  # empty sample
    lengths[4] = 0
    got = P.frame50(x, lengths)
    assert got.shape == (5, 50, 2, 25, 3)
    for b in range(5):
        ref = _frame50_reference(x[b].numpy())
        np.testing.assert_allclose(got[b].numpy(), ref, atol=1e-5)
    assert torch.all(got[4] == 0)


def test_frame50_on_real_fixture():
    path = FIXTURES / "ntu60" / "S001C001P001R001A002.skeleton"
    if not path.exists():
        pytest.skip(f"real NTU fixture not found at {path} (../shared/fixtures is absent)")
    from datasets import read_ntu_skeleton
    seq = read_ntu_skeleton(path)
    got = P.frame50_numpy(seq)
    np.testing.assert_allclose(got, _frame50_reference(seq), atol=1e-5)
    assert got.shape == (50, 2, 25, 3) and np.all(got[:, 1] == 0)
    sh = got[:, 0, 8] - got[:, 0, 4]  # the shoulder line now lies on +x (up to the 1e-4 epsilon)
    assert np.all(np.abs(sh[:, 2]) < 1e-3) and np.all(sh[:, 0] > 0.1)
    assert np.all(got[:, 0, 20] == 0)


def test_split_bodies_drops_empty_and_short():
    x, lengths = _batch(B=6, T=40)
    lengths[3] = 18
    x[3, 18:] = 0
    out, n, idx = P.split_bodies(x, lengths, return_index=True)
    expect = [(0, 0), (1, 0), (1, 1), (2, 0), (4, 0), (5, 0)]
    assert [tuple(r) for r in idx.tolist()] == expect
    assert out.shape == (6, 40, 1, 25, 3)
    for k, (b, m) in enumerate(expect):
        assert torch.equal(out[k, :, 0], x[b, :, m]) and int(n[k]) == int(lengths[b])


def test_preprocess_dispatch():
    x, lengths = _batch(B=2, T=30)
    assert P.preprocess(x, lengths, "raw")[0] is x
    y, n = P.preprocess(x, lengths, "frame50")
    assert y.shape[1] == 50 and torch.all(n == 50)
    with pytest.raises(ValueError, match="frame50"):
        P.preprocess(x, lengths, "bogus")
