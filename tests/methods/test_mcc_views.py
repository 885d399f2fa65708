"""MCC reconstruction: batched view grids (crop, speed change, interpolation, motion-broken)."""
import pytest
import torch

from methods.mcc import broken_grid, centre, crop_grid, full_grid, jitter_grid, read_frames, speed_grid


def _ramp(b=4, t=30):
    """x[b, t] = t + 100 b everywhere: reading a frame position returns the position."""
    x = torch.arange(t).float()[None, :, None, None, None] + 100 * torch.arange(b).float()[:, None, None, None, None]
    return x.expand(b, t, 2, 25, 3).clone()


def test_read_frames_interpolates_linearly_and_clamps_to_the_valid_frames():
    x = _ramp()
    lengths = torch.tensor([30, 20, 10, 1])
    times = torch.tensor([[0.0, 2.5, 9.25, 40.0]]).expand(4, -1)
    out = read_frames(x, lengths, times)[:, :, 0, 0, 0]
    base = 100 * torch.arange(4).float()[:, None]
    expected = torch.stack([torch.tensor([0.0, 2.5, 9.25, 29.0]), torch.tensor([0.0, 2.5, 9.25, 19.0]),
                            torch.tensor([0.0, 2.5, 9.0, 9.0]), torch.tensor([0.0, 0.0, 0.0, 0.0])]) + base
    torch.testing.assert_close(out, expected)


def test_crop_and_full_grids_stay_inside():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(2, 300, (256,), generator=g)
    times, span = crop_grid(lengths, 16, 0.5, g)
    last = (lengths - 1).float()[:, None]
    assert times.shape == (256, 16)
    assert (times >= 0).all() and (times <= last + 1e-4).all()
    assert (span >= 0.5 * last[:, 0] - 1e-4).all() and (span <= last[:, 0] + 1e-4).all()
    torch.testing.assert_close(times[:, -1] - times[:, 0], span)
    full = full_grid(lengths, 16)
    torch.testing.assert_close(full[:, 0], torch.zeros(256))
    torch.testing.assert_close(full[:, -1], last[:, 0])


def test_speed_grid_changes_the_span_around_the_same_centre():
    g = torch.Generator().manual_seed(1)
    lengths = torch.full((512,), 300)
    anchor, span = crop_grid(lengths, 20, 0.2, g)
    anchor, span = anchor * 0.3, span * 0.3      # short windows: room to slow down
    fast, factor = speed_grid(anchor, span, lengths, 0.5, 2.0, g)
    assert (factor >= 0.5 - 1e-5).all() and (factor <= 2.0 + 1e-5).all()
    torch.testing.assert_close(fast[:, -1] - fast[:, 0], span * factor, rtol=1e-4, atol=1e-3)
    assert (factor < 0.9).any() and (factor > 1.1).any()   # log-uniform: both directions
    centred = ((fast[:, 0] + fast[:, -1]) / 2 - (anchor[:, 0] + anchor[:, -1]) / 2).abs() < 1e-3
    assert centred.float().mean() > 0.5   # moved only where the window would leave the sequence
    assert (fast >= -1e-4).all() and (fast <= 299 + 1e-3).all()


def test_jitter_grid_moves_by_sub_frame_offsets_and_keeps_the_order():
    g = torch.Generator().manual_seed(2)
    lengths = torch.randint(5, 200, (128,), generator=g)
    anchor, _ = crop_grid(lengths, 32, 0.5, g)
    jittered = jitter_grid(anchor, g)
    offset = jittered - anchor
    assert (offset.abs() < 0.5).all() and offset.abs().mean() > 0.05
    assert (jittered[:, 1:] >= jittered[:, :-1]).all()


@pytest.mark.parametrize("reverse_prob", [0.0, 1.0, 0.5])
def test_broken_grid_is_a_non_identity_reordering(reverse_prob):
    g = torch.Generator().manual_seed(3)
    anchor = torch.arange(12).float().expand(64, -1) + torch.arange(64).float()[:, None]
    broken = broken_grid(anchor, 4, reverse_prob, g)
    torch.testing.assert_close(broken.sort(dim=1).values, anchor)          # same frames ...
    assert not (broken == anchor).all(dim=1).any()                          # ... never in order
    reversed_rows = (broken == anchor.flip(1)).all(dim=1)
    if reverse_prob == 1.0:
        assert reversed_rows.all()
    if reverse_prob == 0.0:  # segments of 3 frames stay contiguous
        pieces = broken.view(64, 4, 3)
        assert (pieces[:, :, 1:] - pieces[:, :, :-1] == 1).all()
    if reverse_prob == 0.5:
        assert 0 < reversed_rows.float().mean() < 1


def test_centre_keeps_empty_bodies_empty():
    x = torch.randn(3, 10, 2, 25, 3) + 3.0
    x[:, :, 1] = 0
    x[:, 7:] = 0
    out = centre(x, torch.tensor([0, 2, 4]))
    torch.testing.assert_close(out[torch.arange(3), torch.tensor([0, 2, 4]), 0, 20], torch.zeros(3, 3))
    assert (out[:, :, 1] == 0).all() and (out[:, 7:] == 0).all()
    origin = x[torch.arange(3), torch.tensor([0, 2, 4]), 0, 20]
    torch.testing.assert_close(out[:, :7, 0] + origin[:, None, None, :], x[:, :7, 0])
