"""Hi-TRS ``center_input`` (a suite option, on in `small`): where the actor stands is not input."""
from __future__ import annotations

import pytest
import torch

import methods
from methods.hitrs import make_config
from tests.methods.test_hitrs_model import smooth_batch

pytestmark = pytest.mark.usefixtures("one_thread")

SHIFT = torch.tensor([0.4, -0.3, 3.2])  # another camera placement: metres, mostly depth


@pytest.mark.parametrize("center,invariant", [(True, True), (False, False)])
def test_a_shift_of_the_whole_scene_changes_the_embedding_only_without_centering(center, invariant):
    method = methods.create("hitrs", "ci", center_input=center).eval()
    x, lengths = smooth_batch(b=3, t=40, bodies=2)
    x[2, :, 1] = 0  # one single-person sample: its empty body slot must stay empty
    shifted = torch.where(x.abs().sum(dim=(-2, -1), keepdim=True) > 0, x + SHIFT, x)
    with torch.no_grad():
        same = torch.allclose(method.video_embedding(x, lengths), method.video_embedding(shifted, lengths), atol=1e-5)
        frames_same = torch.allclose(method.detection_frames(x, lengths), method.detection_frames(shifted, lengths),
                                     atol=1e-5)
    assert same == invariant and frames_same == invariant


def test_centering_moves_body_one_spine_base_of_frame_zero_to_the_origin_and_keeps_padding():
    method = methods.create("hitrs", "ci", center_input=True)
    x, lengths = smooth_batch(b=2, t=30, bodies=2, min_len=20)
    out = method.detection_frames(x, lengths)
    assert torch.equal(out[:, 0, 0, 0], torch.zeros(2, 3))
    torch.testing.assert_close(out[:, :, 1] - out[:, :, 0], x[:, :, 1] - x[:, :, 0])  # the pair keeps its layout
    padded = x.abs().sum(dim=(-2, -1)) == 0
    assert torch.equal(out.abs().sum(dim=(-2, -1))[padded], torch.zeros(int(padded.sum())))


@pytest.mark.parametrize("center", [True, False])
def test_pretext_metrics_see_the_input_as_pre_training_does(center):
    """With centring, the held-out pretext metrics read centred input, as the training loss does:
    a shift of the scene leaves them unchanged; without it, the raw coordinates move them."""
    method = methods.create("hitrs", "ci", center_input=center)
    x, lengths = smooth_batch(b=4, t=40, bodies=1)
    shifted = torch.where(x.abs().sum(dim=(-2, -1), keepdim=True) > 0, x + SHIFT, x)
    before = method.pretext_metrics(x, lengths, torch.Generator().manual_seed(3))
    after = method.pretext_metrics(shifted, lengths, torch.Generator().manual_seed(3))
    same = all(abs(before[k] - after[k]) < 1e-3 for k in before)
    assert before and same == center


def test_only_small_centres():
    assert make_config("small").center_input and not make_config("paper").center_input
    assert not make_config("ci").center_input
