"""Detection windows are cut from the stream computed over the whole video (issue 14.5):
motion is x_t - x_(t-1) of consecutive video frames, as in pre-training, not a difference of
a 7-frame dilated window's frames (which made the first frame zero and put up to 4 m spikes
at the video ends)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import methods
from benchmarks.config import DetectionConfig
from benchmarks.engine.data import frame_bank
from benchmarks.tasks.detection import ClipClassifier, _bank
from datasets.streams import to_stream
from methods.crossclr import crossclr_stream


class TwoVideos:
    """The part of a prepared cache that ``frame_bank`` reads: two long videos far apart."""

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.videos = []
        for n, offset in ((40, 0.0), (33, 2.0)):
            walk = torch.cumsum(0.01 * torch.randn(n, 2, 25, 3, generator=g), dim=0)
            self.videos.append((walk + torch.tensor([offset, 0.3, 3.5])).numpy())
        self.manifest = pd.DataFrame({"name": ["v0", "v1"]})

    def sequence(self, row):
        return self.videos[row]

    def frame_labels(self, row):
        return np.zeros(len(self.videos[row]), dtype=np.int64)


def _windows(seq: np.ndarray, t: int, window=7, dilation=4) -> np.ndarray:
    """The window centred on frame t, zero outside the video, cut by hand."""
    out = np.zeros((window,) + seq.shape[1:], np.float32)
    for j in range(window):
        k = t + (j - window // 2) * dilation
        if 0 <= k < len(seq):
            out[j] = seq[k]
    return out


#: Hi-TRS's input options off whatever a profile sets: these tests follow the raw stream through
#: the window bank; centring on each window's own first frame would differ between the scopes by design
RAW_INPUT = {"hitrs": {"center_input": False, "motion_scale": 1.0}}


def test_hitrs_motion_windows_come_from_the_whole_video(one_thread):
    torch.manual_seed(0)
    method = methods.create("hitrs", "ci", stream="motion", **RAW_INPUT["hitrs"]).eval()
    cache = TwoVideos()
    bank = _bank(cache, [0, 1], method, DetectionConfig(), torch.device("cpu"))
    for v, seq in enumerate(cache.videos):
        start, n = bank.starts[v], bank.lengths[v]
        expected = to_stream(torch.from_numpy(seq)[None], "motion")[0].numpy()
        np.testing.assert_allclose(bank.frames[start:start + n].numpy(), expected, atol=1e-6)
        assert not bank.frames[start].any()          # each video's first frame: no difference across videos
    model = ClipClassifier(method, 5, 7, 4, "video").eval()
    ids = torch.tensor([0, 1, 20, 39, 40, 41, 72])
    clips = bank.clips(ids, 7, 4)
    with torch.no_grad():
        got = model.embed(clips)
        motion = [to_stream(torch.from_numpy(s)[None], "motion")[0].numpy() for s in cache.videos]
        by_hand = torch.from_numpy(np.stack([_windows(motion[0 if g < 40 else 1], g if g < 40 else g - 40)
                                             for g in ids.tolist()]))
        torch.testing.assert_close(got, method.net.encoder.clip_embedding(by_hand))
    # no spikes: every value is a frame-to-frame motion; the per-window stream had |x| ~ 3.5 m
    assert float(clips.abs().max()) < 0.1
    raw = frame_bank(cache, [0, 1]).clips(ids, 7, 4)
    assert float(to_stream(raw, "motion").abs().max()) > 3.0


@pytest.mark.parametrize("name", ["hitrs", "mcc", "crossclr"])
@pytest.mark.parametrize("stream", ["joint", "bone"])
def test_joint_and_bone_are_unchanged_by_the_scope(name, stream, one_thread):
    torch.manual_seed(0)
    method = methods.create(name, "ci", stream=stream, **RAW_INPUT.get(name, {})).eval()
    cache = TwoVideos()
    ids = torch.tensor([0, 5, 20, 39, 40, 60])
    out = {}
    for scope in ("video", "window"):
        bank = _bank(cache, [0, 1], method, DetectionConfig(stream_scope=scope), torch.device("cpu"))
        with torch.no_grad():
            out[scope] = ClipClassifier(method, 5, 7, 4, scope).eval().embed(bank.clips(ids, 7, 4))
    # (CrosSCLR's rotation sign is now summed per video rather than per window; it agrees here
    # because the shoulder line of these videos never turns through the camera axis)
    torch.testing.assert_close(out["video"], out["window"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["mcc", "crossclr"])
def test_st_gcn_baselines_take_motion_over_the_whole_video(name, one_thread):
    torch.manual_seed(0)
    method = methods.create(name, "ci", stream="motion").eval()
    cache = TwoVideos()
    bank = _bank(cache, [0, 1], method, DetectionConfig(), torch.device("cpu"))
    seq = torch.from_numpy(cache.videos[1])[None]
    if name == "crossclr":  # forward difference, last frame 0, after frame50's spatial normalisation
        expected = method.detection_frames(seq, torch.tensor([33]))[0]
        assert not expected[-1].any() and expected[:-1].abs().sum(dim=(1, 2, 3)).min() > 0
        centred = seq - seq[:, :, :, 20:21]
        from datasets.preprocess import y_rotate_shoulders
        torch.testing.assert_close(expected, crossclr_stream(y_rotate_shoulders(centred), "motion")[0])
    else:
        expected = to_stream(seq, "motion")[0]
    torch.testing.assert_close(bank.frames[40:], expected)
    assert float(bank.clips(torch.tensor([40]), 7, 4).abs().max()) < 0.2


def test_stream_scope_is_validated():
    with pytest.raises(ValueError, match="detection.stream_scope"):
        DetectionConfig(stream_scope="clip")
    assert DetectionConfig().stream_scope == "video"
