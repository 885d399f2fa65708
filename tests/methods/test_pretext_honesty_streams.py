"""The input streams every method trains on, against their published definitions, through the
public ``datasets.streams.to_stream`` and the methods' own stream functions.

* bone: x_child - x_parent over the NTU RGB+D 25-joint kinematic tree. The 24 (child, parent)
  pairs below are NTU's published 1-based bone list (the ST-GCN / CrosSCLR / Hi-TRS graph),
  written out here independently of ``datasets.streams``; joint 21 (spine at the shoulders) is
  the root, its own parent in the reference code's 25-pair list, so its bone is zero.
* motion: Hi-TRS (hitrs.md, "Streams") m_t = x_t - x_{t-1} with the FIRST frame 0; CrosSCLR
  (baselines.md) m_t = x_{t+1} - x_t with the LAST frame 0. A padded batch never differences
  across the end of a sequence (the padding stays zero).
"""
from __future__ import annotations

import pytest
import torch

from datasets.streams import to_stream

#: NTU RGB+D 25 joints, (child, parent), 1-based, as published
NTU25_BONES = [(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
               (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
               (20, 19), (22, 23), (23, 8), (24, 25), (25, 12)]
ROOT = 21


def test_the_spelled_tree_is_a_tree():
    """The list above itself: every joint but the root has one parent, and all reach the root."""
    children = [c for c, _ in NTU25_BONES]
    assert sorted(children) == [j for j in range(1, 26) if j != ROOT]
    parent = dict(NTU25_BONES)
    for j in range(1, 26):
        seen = set()
        while j != ROOT:
            assert j not in seen
            seen.add(j)
            j = parent[j]


def joints(shape=(2, 9, 2), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, 25, 3, generator=g)


@pytest.mark.parametrize("shape", [(2, 9, 2), (3, 7, 1), (9, 1)])
def test_bone_stream_is_child_minus_published_parent(shape):
    x = joints(shape)
    bone = to_stream(x, "bone")
    assert bone.shape == x.shape
    for child, parent in NTU25_BONES:
        torch.testing.assert_close(bone[..., child - 1, :], x[..., child - 1, :] - x[..., parent - 1, :],
                                   rtol=0, atol=0, msg=lambda m: f"bone of joint {child} (parent {parent}): {m}")
    assert torch.equal(bone[..., ROOT - 1, :], torch.zeros_like(bone[..., ROOT - 1, :]))


def test_the_methods_bone_streams_use_the_published_tree():
    """CrosSCLR's and Hi-TRS's own stream functions give the same bones."""
    from methods.crossclr.method import crossclr_stream
    from methods.hitrs.config import make_config
    from methods.hitrs.network import model_stream

    x = joints((2, 8, 2))
    expect = x.clone()
    for child, parent in NTU25_BONES:
        expect[..., child - 1, :] = x[..., child - 1, :] - x[..., parent - 1, :]
    expect[..., ROOT - 1, :] = 0
    torch.testing.assert_close(crossclr_stream(x, "bone"), expect, rtol=0, atol=0)
    torch.testing.assert_close(model_stream(x, make_config("paper", stream="bone")), expect, rtol=0, atol=0)


def backward_difference(x):
    """x_t - x_{t-1}, first frame 0, written as a loop over frames."""
    out = torch.zeros_like(x)
    for t in range(1, x.shape[1]):
        out[:, t] = x[:, t] - x[:, t - 1]
    return out


def forward_difference(x):
    """x_{t+1} - x_t, last frame 0."""
    out = torch.zeros_like(x)
    for t in range(x.shape[1] - 1):
        out[:, t] = x[:, t + 1] - x[:, t]
    return out


def test_hitrs_motion_is_the_backward_difference_first_frame_zero():
    from methods.hitrs.config import make_config
    from methods.hitrs.network import model_stream

    x = joints((3, 10, 2))
    expect = backward_difference(x)
    torch.testing.assert_close(to_stream(x, "motion"), expect, rtol=0, atol=0)
    # the method's stream at the reference setting (motion_scale 1): the same
    torch.testing.assert_close(model_stream(x, make_config("paper", stream="motion")), expect, rtol=0, atol=0)
    # ci's documented suite option: the same stream times motion_scale
    ci = make_config("ci", stream="motion")
    torch.testing.assert_close(model_stream(x, ci), expect * ci.motion_scale, rtol=1e-6, atol=1e-6)


def test_crossclr_motion_is_the_forward_difference_last_frame_zero():
    from methods.crossclr.method import crossclr_stream

    x = joints((3, 10, 2))
    expect = forward_difference(x)
    torch.testing.assert_close(to_stream(x, "motion", forward_motion=True), expect, rtol=0, atol=0)
    torch.testing.assert_close(crossclr_stream(x, "motion"), expect, rtol=0, atol=0)


@pytest.mark.parametrize("forward", [False, True])
def test_motion_of_a_padded_batch_stops_at_each_sequence_end(forward):
    """Frames past a sequence's length are zero in the input and stay zero in the motion; the
    difference between the last real frame and the first padding frame is not a motion."""
    lengths = torch.tensor([10, 6, 3, 1])
    x = joints((4, 10, 2)) * (torch.arange(10)[None] < lengths[:, None])[..., None, None, None]
    got = to_stream(x, "motion", lengths, forward_motion=forward)
    for i, n in enumerate(lengths.tolist()):
        one = x[i:i + 1, :n]
        expect = forward_difference(one) if forward else backward_difference(one)
        torch.testing.assert_close(got[i:i + 1, :n], expect, rtol=0, atol=0)
        assert not got[i, n:].any(), f"sample {i}: motion beyond its length {n}"
