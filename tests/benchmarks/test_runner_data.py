"""The runner's batch assembly equals slicing each sample by hand (vectorised gathers)."""
from __future__ import annotations


import numpy as np
import pytest
import torch

import datasets
from benchmarks.engine.data import BucketBatches, batch_composition, frame_bank, sequence_set, window_indices
from tests.support import CACHE as TEST_CACHE

CACHE = TEST_CACHE / "synthetic-small"


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


@pytest.mark.parametrize("mode", ["uniform", "bucket"])
def test_under_ddp_the_ranks_split_each_global_batch(mode):
    """Issue 14.4: the global batch is the configured one whatever the world size."""
    lengths = np.random.default_rng(2).integers(20, 300, size=200)
    whole = BucketBatches.for_mode(mode, lengths, 16, seed=5, drop_last=True).epoch(2)
    shards = [BucketBatches.for_mode(mode, lengths, 16, seed=5, drop_last=True, rank=r, world=4).epoch(2)
              for r in range(4)]
    assert all(len(s) == len(whole) for s in shards)
    for k, batch in enumerate(whole):
        assert all(len(s[k]) == 4 for s in shards)
        assert np.concatenate([s[k] for s in shards]).tolist() == batch.tolist()
    with pytest.raises(ValueError, match="not divisible by the world size 3"):
        BucketBatches.for_mode(mode, lengths, 16, seed=5, drop_last=True, rank=0, world=3)


def test_uniform_batches_ignore_length_like_a_shuffling_dataloader():
    """Issue 14.1: both references draw batches as slices of a random permutation, so which
    samples share a batch cannot depend on their lengths; bucketing makes it depend on them."""
    rng = np.random.default_rng(0)
    a, b = rng.integers(20, 300, size=512), rng.integers(20, 300, size=512)

    def members(mode, lengths):
        return sorted(tuple(sorted(x.tolist())) for x in
                      BucketBatches.for_mode(mode, lengths, 32, seed=7, drop_last=True).epoch(0))

    assert members("uniform", a) == members("uniform", b)
    assert members("bucket", a) != members("bucket", b)
    with pytest.raises(ValueError, match="batching 'sorted' unknown"):
        BucketBatches.for_mode("sorted", a, 32, seed=7)


def test_batch_composition_measures_what_bucketing_changes():
    """The figures documented in docs/perf.md: NTU-like lengths, batch 64 (Hi-TRS micro-batch)."""
    from benchmarks.perf.lengths import sample_lengths
    lengths = sample_lengths(20_000, seed=0)
    stats = {mode: batch_composition(lengths, BucketBatches.for_mode(mode, lengths, 64, seed=0,
                                                                      drop_last=True).epoch(0))
             for mode in ("uniform", "bucket")}
    assert 140 < stats["uniform"]["length_spread"] < 185 and 20 < stats["bucket"]["length_spread"] < 40
    assert stats["uniform"]["same_length_negatives"] < 0.1 < 0.35 < stats["bucket"]["same_length_negatives"]
    # the share in uniform batches is what random pairs give: sum over bins of p(bin)^2
    p = np.bincount(lengths // 7) / len(lengths)
    assert abs(stats["uniform"]["same_length_negatives"] - float((p ** 2).sum())) < 0.01


def test_batching_report_prints_both_orders(capsys):
    from benchmarks.perf import batching
    assert batching.main(["--samples", "2000"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and sum("uniform" in line for line in lines) == 2
    with pytest.raises(SystemExit) as err:
        batching.main(["--samples", "10"])
    assert err.value.code == 2
