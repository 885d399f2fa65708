"""The runner's batch assembly equals slicing each sample by hand (vectorised gathers)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import datasets
from benchmarks.engine.data import BucketBatches, frame_bank, sequence_set, window_indices

CACHE = Path(__file__).resolve().parents[1] / ".cache" / "synthetic-small"


@pytest.fixture(scope="module")
def world():
    return datasets.ensure_synthetic(CACHE, size="small", seed=0, progress=False)


@pytest.mark.parametrize("split_bodies", [False, True])
def test_batch_equals_per_sample_slices(world, split_bodies):
    cache = world["ntu"]
    data = sequence_set(cache, np.arange(len(cache)), 80, split_bodies=split_bodies)
    items = np.random.default_rng(0).choice(len(data), size=9, replace=False)
    x, lengths, labels = data.batch(items)
    assert x.shape[2] == (1 if split_bodies else 2)
    for k, item in enumerate(items):
        seq = cache.sequence(int(data.rows[item]))[: lengths[k]]
        expected = seq[:, [data.bodies[item]]] if split_bodies else seq
        np.testing.assert_array_equal(x[k, : lengths[k]].numpy(), expected)
        assert not x[k, lengths[k]:].any()
        assert labels[k] == cache.manifest["label"].iloc[int(data.rows[item])]


def test_detection_windows_centre_dilation_and_padding(world):
    cache = world["pkummd"]
    bank = frame_bank(cache, np.arange(2))
    first_len = bank.lengths[0]
    ids = torch.tensor([0, 5, first_len - 1, first_len])  # video starts / ends
    clips = bank.clips(ids, window=7, dilation=4)
    for k, g in enumerate(ids.tolist()):
        video = 0 if g < first_len else 1
        t = g - bank.starts[video]
        seq = cache.sequence(video)
        for j, off in enumerate(range(-12, 13, 4)):
            if 0 <= t + off < len(seq):
                np.testing.assert_array_equal(clips[k, j].numpy(), seq[t + off])
            else:
                assert not clips[k, j].any()
    idx, valid = window_indices(torch.tensor([0]), torch.tensor([10]), 7, 4)
    assert valid.tolist() == [[False, False, False, True, True, True, False]]


def test_bucket_batches_cover_each_sample_once_and_shard_evenly():
    lengths = np.random.default_rng(1).integers(20, 300, size=103)
    whole = BucketBatches(lengths, 8, seed=3).epoch(0)
    assert sorted(np.concatenate(whole).tolist()) == list(range(103))
    shards = [BucketBatches(lengths, 8, seed=3, rank=r, world=2).epoch(0) for r in range(2)]
    assert len(shards[0]) == len(shards[1])
    other = BucketBatches(lengths, 8, seed=3).epoch(1)
    assert [b.tolist() for b in other] != [b.tolist() for b in whole]
