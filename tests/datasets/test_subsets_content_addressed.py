"""Subset files are content-addressed (issue 26, item 5): two subsets that differ never share a
file name, so every record's subset sha256 matches the file it names."""
from __future__ import annotations

import hashlib

import pytest

import datasets
from datasets.subsets import make_subset
from tests.support import CACHE


@pytest.fixture(scope="module")
def ntu():
    return datasets.ensure_synthetic(CACHE / "synthetic-small", size="small", seed=0, progress=False)["ntu"]


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_nearly_equal_fractions_get_their_own_files(ntu, tmp_path):
    a = make_subset(ntu, "xsub", 0.4999999, 0, tmp_path)
    b = make_subset(ntu, "xsub", 0.5, 0, tmp_path)
    assert len(a.names) != len(b.names) and a.path != b.path   # 55 and 56 names on the small world
    for s in (a, b):   # whichever ran last, each record's sha256 is the file's
        assert _sha(s.path) == s.sha256 and s.path.name.endswith(f"_{s.sha256[:16]}.txt")
        assert s.path.read_text().split() == s.names


def test_different_content_under_one_name_is_distinct(ntu, tmp_path):
    """Two caches that share a dataset name (a different subset, same fraction and seed) write two files."""
    full = make_subset(ntu, "xsub", 0.1, 0, tmp_path)
    other = make_subset(ntu, "xsub", 0.1, 1, tmp_path)
    assert full.path != other.path and _sha(full.path) == full.sha256 and _sha(other.path) == other.sha256


def test_same_subset_twice_is_one_file(ntu, tmp_path):
    first = make_subset(ntu, "xsub", 0.1, 0, tmp_path)
    again = make_subset(ntu, "xsub", 0.1, 0, tmp_path)
    assert first.path == again.path and first.sha256 == again.sha256
    assert len(list(tmp_path.iterdir())) == 1


def test_edited_file_under_a_content_name_is_refused_and_kept(ntu, tmp_path):
    first = make_subset(ntu, "xsub", 0.1, 0, tmp_path)
    first.path.write_text("edited\n")
    with pytest.raises(FileExistsError, match="a different subset file already has this name"):
        make_subset(ntu, "xsub", 0.1, 0, tmp_path)
    assert first.path.read_text() == "edited\n"


def test_subsets_link_out_of_root_is_refused(ntu, tmp_path):
    out, outside = tmp_path / "R", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (out / "subsets").symlink_to(outside)
    with pytest.raises(ValueError, match="outside"):
        make_subset(ntu, "xsub", 0.1, 0, out / "subsets", root=out)
    assert list(outside.iterdir()) == []
