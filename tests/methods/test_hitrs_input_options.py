"""Hi-TRS input options of the suite, on in `small` and `ci`, off in `paper`: ``center_input``
(where the actor stands is not input) and ``motion_scale`` (the motion stream in a usable range)."""
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


@pytest.mark.parametrize("profile", ["small", "ci"])
def test_the_cpu_profiles_centre_and_scale_motion_and_paper_does_not(profile):
    assert make_config(profile).center_input and make_config(profile).motion_scale > 1
    assert not make_config("paper").center_input and make_config("paper").motion_scale == 1


@pytest.mark.parametrize("stream,factor", [("motion", 30.0), ("joint", 1.0), ("bone", 1.0)])
def test_motion_scale_multiplies_the_motion_stream_only(stream, factor):
    plain = methods.create("hitrs", "ci", stream=stream, motion_scale=1.0)
    scaled = methods.create("hitrs", "ci", stream=stream, motion_scale=30.0)
    x, lengths = smooth_batch(b=3, t=30, bodies=2)
    torch.testing.assert_close(scaled.detection_frames(x, lengths), factor * plain.detection_frames(x, lengths))


def test_masked_joint_error_is_reported_in_unscaled_millimetres():
    """A model that scales motion by k, fed the scene shrunk by k, sees the very stream an unscaled
    model with the same weights sees: its error in the scene's own millimetres is k times smaller."""
    k = 30.0
    plain = methods.create("hitrs", "ci", stream="motion", motion_scale=1.0)
    scaled = methods.create("hitrs", "ci", stream="motion", motion_scale=k)
    scaled.load_state_dict(plain.state_dict())
    x, lengths = smooth_batch(b=4, t=40, bodies=1)
    mine = plain.pretext_metrics(x, lengths, torch.Generator().manual_seed(5))
    theirs = scaled.pretext_metrics(x / k, lengths, torch.Generator().manual_seed(5))
    assert mine["masked_joint_err_mm"] > 0
    assert theirs["masked_joint_err_mm"] == pytest.approx(mine["masked_joint_err_mm"] / k, rel=1e-4)
    assert theirs["frame_order_acc"] == pytest.approx(mine["frame_order_acc"])


def test_bad_motion_scale_names_the_key():
    with pytest.raises(ValueError, match="motion_scale"):
        make_config("small", motion_scale=0)


@pytest.mark.parametrize("stream", ["joint", "motion"])
def test_the_reference_layout_classifier_reads_its_input_as_the_method_does(stream):
    """``HiTRSClassifier`` (the reference ``Hi_TRS_AR`` layout) with the method's weights gives
    the method's embedding under the input options, not the raw stream's."""
    from methods.hitrs import HiTRSClassifier
    method = methods.create("hitrs", "ci", stream=stream, center_input=True, motion_scale=30.0).eval()
    classifier = HiTRSClassifier(method.config, num_classes=5).eval()
    classifier.net.load_state_dict(method.net.state_dict())
    x, lengths = smooth_batch(b=3, t=40, bodies=2)
    with torch.no_grad():
        expected = classifier.head(method.video_embedding(x + SHIFT, lengths))
        torch.testing.assert_close(classifier(x + SHIFT, lengths), expected, rtol=1e-5, atol=1e-6)
        raw = methods.create("hitrs", "ci", stream=stream, center_input=False, motion_scale=1.0).eval()
        raw.net.load_state_dict(method.net.state_dict())
        assert not torch.allclose(classifier.head(raw.video_embedding(x + SHIFT, lengths)), expected, atol=1e-4)
