"""Readers against the real fixtures (skipped when ../shared/fixtures is absent) and against
small files written in the real formats."""
from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import datasets
from datasets import meta as M
from tests.support import (FIXTURES, expected_ntu_array, ntu_text, pku_labels_text, pku_text,
                                     random_ntu_frames, simple_read_ntu, write)

NTU_FIXTURES = {f"S001C001P001R001A00{a}": n for a, n in zip(range(1, 6), (103, 158, 104, 99, 54))}


def _fixture(rel):
    path = FIXTURES / rel
    if not path.exists():
        pytest.skip(f"real-data fixture {path} not found (../shared/fixtures is absent); "
                    "the reader is still covered by the synthetic-format tests")
    return path


# ----------------------------------------------------------------------------- real files
@pytest.mark.fixtures
@pytest.mark.parametrize("name", sorted(NTU_FIXTURES))
def test_ntu_fixture_frames_and_values(name):
    path = _fixture(f"ntu60/{name}.skeleton")
    sk = datasets.parse_ntu_skeleton(path)
    assert sk.xyz.shape == (NTU_FIXTURES[name], 2, 25, 3) and sk.xyz.dtype == np.float32
    np.testing.assert_array_equal(sk.xyz, simple_read_ntu(path))
    assert np.all(sk.bodies_per_frame == 1) and np.all(sk.xyz[:, 1] == 0)
    # the body id is a 64-bit integer, exact (as float64 it would round)
    first_id = int(path.read_text().split("\n")[2].split()[0])
    assert sk.body_ids[0, 0] == first_id and sk.body_ids.dtype == np.int64
    assert datasets.parse_ntu_name(path) == {"setup": 1, "camera": 1, "subject": 1, "replication": 1,
                                             "action": int(name[-3:])}


@pytest.mark.fixtures
def test_pku_fixture_shape_and_second_person():
    path = _fixture("pkummd/A10N08-L.txt")
    x = datasets.read_pku_skeleton(path)
    assert x.shape == (1040, 2, 25, 3) and x.dtype == np.float32
    second = np.abs(x[:, 1]).sum(axis=(1, 2)) > 0
    assert int(second.sum()) == 728
    ref = np.array([[float(v) for v in line.split()] for line in path.read_text().splitlines() if line.strip()])
    np.testing.assert_array_equal(x.reshape(1040, 150), ref.astype(np.float32))


@pytest.mark.fixtures
def test_pku_official_split_file():
    split = datasets.read_pku_split(_fixture("pkummd/cross-subject.txt"))
    assert len(split["train"]) == 944 and len(split["test"]) == 132
    videos = sorted({int(n[:4]) for n in split["test"]})
    assert videos == list(range(291, 335))
    assert not set(split["train"]) & set(split["test"])


@pytest.mark.fixtures
@pytest.mark.parametrize("fname,count", [("NTU_RGBD60_samples_with_missing_skeletons.txt", 302),
                                         ("NTU_RGBD120_samples_with_missing_skeletons.txt", 535)])
def test_official_missing_lists(fname, count):
    names = datasets.read_missing_list(_fixture(f"ntu_missing/{fname}"))
    assert len(names) == count and "S001C002P005R002A008" in names


# ----------------------------------------------------------------------------- synthetic files
def test_ntu_zero_and_many_bodies_exponents_crlf(tmp_path):
    rng = np.random.default_rng(1)
    nb = [1, 0, 3, 2, 0, 1]
    frames = random_ntu_frames(rng, len(nb), nb)
    ids = [[(1 << 62) + 7 * t + m for m in range(k)] for t, k in enumerate(nb)]
    p = write(tmp_path / "S002C003P004R002A050.skeleton", ntu_text(frames, ids, newline="\r\n", exp_every=3))
    sk = datasets.parse_ntu_skeleton(p)
    np.testing.assert_array_equal(sk.xyz, expected_ntu_array(frames, 2))
    assert sk.bodies_per_frame.tolist() == nb
    assert sk.body_ids[2].tolist() == [(1 << 62) + 14, (1 << 62) + 15]
    three = datasets.read_ntu_skeleton(p, max_bodies=3)
    np.testing.assert_array_equal(three, expected_ntu_array(frames, 3))
    assert np.all(three[1] == 0) and np.any(three[2, 2] != 0)


def test_ntu_blank_lines_and_leading_blanks(tmp_path):
    frames = random_ntu_frames(np.random.default_rng(2), 3)
    text = "\n".join("  " + ln for ln in ntu_text(frames).splitlines()) + "\n\n\n"
    p = write(tmp_path / "S001C001P001R001A001.skeleton", text)
    np.testing.assert_array_equal(datasets.read_ntu_skeleton(p), expected_ntu_array(frames))


def test_pku_reader_and_labels(tmp_path):
    rng = np.random.default_rng(3)
    x = np.round(rng.normal(size=(7, 2, 25, 3)), 6)
    x[3:, 1] = 0
    p = write(tmp_path / "0002-L.txt", pku_text(x))
    np.testing.assert_array_equal(datasets.read_pku_skeleton(p), x.astype(np.float32))
    rows = [[3, 10, 50, 1], [51, 60, 99, 2]]
    lab = write(tmp_path / "labels" / "0002-L.txt", pku_labels_text(rows))
    got = datasets.read_pku_labels(lab, num_classes=51)
    assert got.dtype == np.int64 and got.tolist() == rows
    assert datasets.parse_pku_name("x/0291-M.txt") == {"video": 291, "view": "M"}


def test_ntu_name_parsing_and_splits():
    names = ["S001C002P003R001A004", "S017C001P038R002A060.skeleton", "S018C003P045R001A061",
             "S032C002P106R002A120"]
    f = M.parse_ntu_names(names)
    assert f.iloc[1].tolist() == [17, 1, 38, 2, 60]
    assert M.in_ntu60(f).tolist() == [True, True, False, False]
    s60 = M.ntu_split_columns(f, "ntu60")
    assert s60["split:xsub"].tolist() == ["test", "train", "test", "test"]   # P003 test, P038 train
    assert s60["split:xview"].tolist() == ["train", "test", "train", "train"]
    s120 = M.ntu_split_columns(f, "ntu120")
    assert s120["split:xsub"].tolist() == ["test", "train", "train", "test"]  # P045 train, P106 test
    assert s120["split:xset"].tolist() == ["test", "test", "train", "train"]
    assert len(M.NTU60_XSUB_TRAIN) == 20 and len(M.NTU120_XSUB_TRAIN) == 53
    with pytest.raises(ValueError, match="S01C002P003R001A004.skeleton.*file-name pattern"):
        datasets.parse_ntu_name("S01C002P003R001A004.skeleton")


def test_pku_split_columns():
    cols = M.pku_split_columns(["0002-L", "0002-M", "0291-R", "0400-R"], ["L", "M", "R", "R"],
                               {"train": ["0002-L", "0002-M"], "test": ["0291-R"]})
    assert cols["split:xsub"].tolist() == ["train", "train", "test", ""]
    assert cols["split:xview"].tolist() == ["test", "train", "train", "train"]


def test_missing_list_discovery(tmp_path):
    write(tmp_path / "raw" / "NTU_RGBD60_samples_with_missing_skeletons.txt", "S001C002P005R002A008\n")
    write(tmp_path / "raw" / "NTU_RGBD120_samples_with_missing_skeletons.txt",
          "# comment\nS001C002P005R002A008\n\nS018C001P045R001A061.skeleton\n")
    found = datasets.find_missing_list(tmp_path / "raw")
    assert found.name.startswith("NTU_RGBD120")
    assert datasets.read_missing_list(found) == {"S001C002P005R002A008", "S018C001P045R001A061"}
    bad = write(tmp_path / "bad.txt", "S001C002P005R002A008\nnot-a-name\n")
    with pytest.raises(datasets.SkeletonFormatError, match=r"bad.txt:2"):
        datasets.read_missing_list(bad)


def test_array_readers(tmp_path):
    rng = np.random.default_rng(4)
    data = rng.normal(size=(3, 3, 300, 25, 2)).astype(np.float32)
    data[:, :, 40:] = 0
    np.save(tmp_path / "train_data.npy", data)
    names = [f"S001C001P001R001A00{i}.skeleton" for i in (1, 2, 3)]
    with open(tmp_path / "train_label.pkl", "wb") as fh:
        pickle.dump((names, [0, 1, 2]), fh)
    ds = datasets.read_stgcn_arrays(tmp_path / "train_data.npy", tmp_path / "train_label.pkl")
    assert len(ds) == 3 and ds.names == names and ds.labels.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(ds.sample(1), data[1].transpose(1, 3, 2, 0))
    assert ds.valid_length(0) == 40
    np.save(tmp_path / "train_position.npy", data[:, :, :50])
    np.save(tmp_path / "train_label.npy", np.array([[0], [1], [2]]))
    f50 = datasets.read_frame50_arrays(tmp_path / "train_position.npy", tmp_path / "train_label.npy")
    assert f50.sample(2).shape == (50, 2, 25, 3)
    (tmp_path / "info.json").write_text(json.dumps([{"frame_num": 40, "boby_num": 1}] * 3))
    hi = datasets.read_hitrs_arrays(tmp_path / "train_data.npy", tmp_path / "train_label.npy", tmp_path / "info.json")
    assert hi.sample(0).shape == (40, 2, 25, 3)
    with pytest.raises(datasets.SkeletonFormatError, match="train_data.npy.*expected 50 frames"):
        datasets.read_frame50_arrays(tmp_path / "train_data.npy", tmp_path / "train_label.npy")
    with open(tmp_path / "short.pkl", "wb") as fh:
        pickle.dump((names[:2], [0, 1]), fh)
    with pytest.raises(datasets.SkeletonFormatError, match="short.pkl.*2 labels for 3 samples"):
        datasets.read_stgcn_arrays(tmp_path / "train_data.npy", tmp_path / "short.pkl")


def test_class_names():
    assert len(datasets.NTU60_CLASSES) == 60 and len(datasets.NTU120_CLASSES) == 120
    assert datasets.NTU60_CLASSES[:5] == ("drink water", "eat meal/snack", "brushing teeth", "brushing hair", "drop")
    assert len(datasets.PKUMMD_CLASSES) == 51
    assert pd.Series(datasets.NTU120_CLASSES).is_unique and pd.Series(datasets.PKUMMD_CLASSES).is_unique


# ----------------------------------------------------------------------------- number parser
@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=60),
       st.sampled_from(["{:.7g}", "{!r}", "{:.6E}", "{:.3f}", "{:e}", "{:.17g}"]))
def test_number_parser_equals_python_float(values, fmt):
    from datasets.readers._text import parse_numbers, scan
    texts = [fmt.format(v) for v in values] + ["-0", ".5", "5.", "+1E+05", "-9.276937E-05", "123456789012345678"]
    tok = scan(" ".join(texts).encode(), "numbers")
    got = parse_numbers(tok, np.arange(len(texts)))
    want = np.array([float(t) for t in texts])
    assert np.array_equal(got, want) and np.array_equal(np.signbit(got), np.signbit(want))


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo planted > planted.txt",))


def test_label_pickles_are_data_never_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "train_data.npy", np.zeros((1, 3, 10, 25, 2), np.float32))
    with open(tmp_path / "evil.pkl", "wb") as fh:
        pickle.dump((["S001C001P001R001A001"], [_RunsCode()]), fh)
    with pytest.raises(datasets.SkeletonFormatError, match=r"evil.pkl: refused: the pickle refers to (posix|nt)\.system"):
        datasets.read_stgcn_arrays(tmp_path / "train_data.npy", tmp_path / "evil.pkl")
    assert not (tmp_path / "planted.txt").exists()
    (tmp_path / "torn.pkl").write_bytes(pickle.dumps((["a"], [0]))[:-3])
    with pytest.raises(datasets.SkeletonFormatError, match=r"torn.pkl: label file: not a readable pickle"):
        datasets.read_stgcn_arrays(tmp_path / "train_data.npy", tmp_path / "torn.pkl")


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_restricted_unpickler_reads_plain_containers_and_arrays(protocol):
    from datasets.readers.safe_pickle import loads_restricted

    obj = {"split": {"xsub_train": ["a"]}, "n": np.int64(4), "s": {1, 2}, "f": np.float32(1.5),
           "annotations": [{"frame_dir": "a", "label": 3, "keypoint": np.ones((1, 10, 25, 3), np.float32)}],
           "mixed": np.array(["a", 1], dtype=object)}
    out = loads_restricted(pickle.dumps(obj, protocol=protocol))
    assert out["split"] == obj["split"] and out["n"] == 4 and out["s"] == {1, 2} and out["f"] == np.float32(1.5)
    np.testing.assert_array_equal(out["annotations"][0]["keypoint"], obj["annotations"][0]["keypoint"])
    assert out["mixed"].tolist() == ["a", 1]
