"""Label-fraction subsets: stratified, seeded, by name, by video for detection, stable sha256."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

import datasets
from datasets.subsets import load_subset, make_subset, stratified_counts
from tests.support import make_pku_raw
from tests.support import ntu_text, random_ntu_frames, write


@pytest.fixture(scope="module")
def ntu_cache(tmp_path_factory):
    """60 classes, 3..12 training samples each (performers 1/2 train, 3 test), 5 frames per file."""
    root = tmp_path_factory.mktemp("subsets")
    text = ntu_text(random_ntu_frames(np.random.default_rng(0), 5))
    rng = np.random.default_rng(1)
    for action in range(1, 61):
        for r in range(int(rng.integers(3, 13))):
            subject = (1, 2, 3)[r % 3]
            write(root / "raw" / f"S001C001P{subject:03d}R{r + 1:03d}A{action:03d}.skeleton", text)
    datasets.prepare("ntu60", root / "raw", root / "cache", progress=False, workers=1, log=lambda m: None)
    return datasets.open_cache(root / "cache")


def test_stratified_counts_properties():
    sizes = np.array([668] * 59 + [700])
    for f in (0.1, 0.05, 0.01):
        k = stratified_counts(sizes, f)
        assert k.sum() == round(f * sizes.sum()) and (k >= 1).all() and (k <= sizes).all()
    assert stratified_counts(np.array([1, 1, 50]), 0.1).tolist() == [1, 1, 5]
    assert stratified_counts(np.array([0, 10]), 0.5).tolist() == [0, 5]


def test_make_subset_stratified_seeded_by_name(ntu_cache, tmp_path):
    train = ntu_cache.indices("xsub", "train")
    sub = make_subset(ntu_cache, "xsub", 0.1, 0, tmp_path)
    labels = ntu_cache.labels[sub.indices]
    assert set(labels.tolist()) == set(ntu_cache.labels[train].tolist())       # every class present
    assert len(sub.indices) == max(60, round(0.1 * len(train)))
    assert set(sub.indices.tolist()) <= set(train.tolist())
    blob = sub.path.read_bytes()
    assert blob.decode().splitlines() == sub.names == sorted(sub.names)
    assert sub.sha256 == hashlib.sha256(blob).hexdigest()
    again = make_subset(ntu_cache, "xsub", 0.1, 0, tmp_path / "other")
    assert again.sha256 == sub.sha256 and again.path.read_bytes() == blob
    other = make_subset(ntu_cache, "xsub", 0.1, 1, tmp_path)
    assert other.sha256 != sub.sha256 and other.path != sub.path
    half = make_subset(ntu_cache, "xsub", 0.5, 0, tmp_path)
    assert abs(len(half.indices) - 0.5 * len(train)) <= 60
    full = make_subset(ntu_cache, "xsub", 1.0, 0, tmp_path)
    assert full.indices.tolist() == train.tolist()
    back = load_subset(ntu_cache, sub.path)
    assert back.indices.tolist() == sub.indices.tolist() and back.sha256 == sub.sha256
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="fraction"):
            make_subset(ntu_cache, "xsub", bad, 0, tmp_path)


def test_subset_does_not_depend_on_cache_order(ntu_cache, tmp_path):
    from datasets.subsets import name_keys
    names = ntu_cache.manifest["name"].tolist()
    k1 = name_keys(names, 3)
    k2 = name_keys(names[::-1], 3)[::-1]
    assert np.array_equal(k1, k2) and not np.array_equal(k1, name_keys(names, 4))


def test_detection_subsets_are_by_video(tmp_path):
    make_pku_raw(tmp_path / "raw", n_videos=4)
    datasets.prepare("pkummd", tmp_path / "raw", tmp_path / "c", progress=False, log=lambda m: None)
    c = datasets.open_cache(tmp_path / "c")
    train = c.indices("xsub", "train")
    assert len(train) == 9
    sub = make_subset(c, "xsub", 0.1, 0, tmp_path)
    assert len(sub.indices) == 1 and sub.names[0] in c.manifest["name"].tolist()
    sub = make_subset(c, "xsub", 0.34, 0, tmp_path)
    assert len(sub.indices) == 3 and set(sub.indices.tolist()) <= set(train.tolist())
