"""PYSKL pickles in: a pickle built from the real NTU fixtures prepares to the raw-file cache.

The test writes the pickle the way PYSKL's ``tools/data/ntu_preproc.py`` lays it out (keypoint
(M, T, V, C), label = action - 1, splits ``xsub_train`` / ``xsub_val`` / ``xview_*``). For the
fixtures - one body listed in every frame - PYSKL's body tracking and trimming change nothing,
so its keypoints are the raw-file arrays rounded to float16 (the dtype PYSKL ships).
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest

import datasets
from datasets import meta as M
from datasets.__main__ import main as cli
from datasets.readers.safe_pickle import UnsafePickleError
from tests.support import shared_path

SAME_COLUMNS = ["name", "length", "bodies", "label", "setup", "camera", "subject", "replication",
                "split:xsub", "split:xview"]


def _pyskl_annotations(fixtures, dtype):
    anns = []
    for path in sorted(fixtures.glob("*.skeleton")):
        sk = datasets.parse_ntu_skeleton(path)
        assert (sk.bodies_per_frame == 1).all(), f"{path.name}: the identity below assumes one body per frame"
        kp = sk.xyz[:, :1].transpose(1, 0, 2, 3).astype(dtype)       # (M, T, V, C)
        anns.append(dict(frame_dir=path.stem, label=M.parse_ntu_name(path.stem)["action"] - 1,
                         keypoint=kp, total_frames=int(kp.shape[1])))
    return anns


def _pyskl_splits(names):
    fields = M.parse_ntu_names(names)
    xsub = np.isin(fields["subject"], M.NTU60_XSUB_TRAIN)
    xview = fields["camera"].to_numpy() != 1
    pick = lambda mask: [n for n, m in zip(names, mask) if m]  # noqa: E731
    return dict(xsub_train=pick(xsub), xsub_val=pick(~xsub), xview_train=pick(xview), xview_val=pick(~xview))


def write_pyskl(path, anns, splits=None):
    names = [a["frame_dir"] for a in anns if M.NTU_NAME_RE.match(a["frame_dir"])]
    path.write_bytes(pickle.dumps(dict(split=splits or _pyskl_splits(names), annotations=anns)))
    return path


@pytest.fixture(scope="module")
def raw_cache(tmp_path_factory):
    fixtures = shared_path("fixtures", "ntu60")
    out = tmp_path_factory.mktemp("raw") / "cache"
    datasets.prepare("ntu60", fixtures, out, progress=False, log=lambda m: None)
    return fixtures, datasets.open_cache(out)


def _prepare(pkl, out, log=None):
    return datasets.open_cache(datasets.prepare("ntu60", pkl, out, progress=False, log=log or (lambda m: None)))


def test_float32_pickle_prepares_bit_identical_cache(raw_cache, tmp_path):
    fixtures, raw = raw_cache
    pkl = write_pyskl(tmp_path / "ntu60_3danno.pkl", _pyskl_annotations(fixtures, np.float32))
    c = _prepare(pkl, tmp_path / "cache")
    assert len(c) == len(raw) == 5
    assert (c.path / "data.bin").read_bytes() == (raw.path / "data.bin").read_bytes()
    np.testing.assert_array_equal(c.offsets, raw.offsets)
    assert c.manifest[SAME_COLUMNS].equals(raw.manifest[SAME_COLUMNS])
    assert c.splits == raw.splits and c.num_classes == raw.num_classes and c.class_names == raw.class_names
    assert c.manifest["source"].tolist() == [f"ntu60_3danno.pkl:{n}" for n in raw.names]
    assert c.meta["source_format"] == "pyskl"


def test_float16_pickle_as_pyskl_ships_it_equals_raw_rounded_to_half(raw_cache, tmp_path):
    fixtures, raw = raw_cache
    anns = _pyskl_annotations(fixtures, np.float16)
    c = _prepare(write_pyskl(tmp_path / "ntu60_3danno.pkl", anns[::-1]), tmp_path / "cache")  # any order in
    assert c.manifest[SAME_COLUMNS].equals(raw.manifest[SAME_COLUMNS])
    for i in range(len(raw)):
        want = np.asarray(raw.sequence(i)).astype(np.float16).astype(np.float32)
        np.testing.assert_array_equal(c.sequence(i), want)
        assert np.abs(c.sequence(i) - raw.sequence(i)).max() < 2e-3   # half precision at ~4 m: < 2 mm
    assert not np.array_equal(c.sequence(0), raw.sequence(0))      # really rounded: the test can tell


def test_pickle_splits_win_and_mismatches_are_reported(raw_cache, tmp_path):
    fixtures, raw = raw_cache
    anns = _pyskl_annotations(fixtures, np.float32)
    names = [a["frame_dir"] for a in anns]
    splits = dict(xsub_train=names[:2], xsub_val=names[2:], xview_train=[], xview_val=names)
    log = []
    c = _prepare(write_pyskl(tmp_path / "p.pkl", anns, splits), tmp_path / "cache", log.append)
    assert c.manifest["split:xsub"].tolist() == ["train", "train", "test", "test", "test"]
    assert any("xsub split differs from the official rule on 3 sample(s)" in m for m in log)
    assert not any("xview split differs" in m for m in log)


def test_bad_samples_are_listed_and_skipped(raw_cache, tmp_path):
    fixtures, _ = raw_cache
    anns = _pyskl_annotations(fixtures, np.float32)
    anns[1]["label"] = 7                                           # disagrees with A002
    anns[2]["keypoint"] = np.zeros_like(anns[2]["keypoint"])      # no body
    anns.append(dict(frame_dir="clip_0001", label=0, keypoint=anns[0]["keypoint"], total_frames=103))
    c = _prepare(write_pyskl(tmp_path / "p.pkl", anns), tmp_path / "cache")
    assert c.names == [anns[0]["frame_dir"], anns[3]["frame_dir"], anns[4]["frame_dir"]]
    assert c.meta["bad_files"] == 3
    text = (c.path / "bad_files.txt").read_text()
    assert "disagrees with action A002" in text and "no body" in text and "clip_0001" in text


@pytest.mark.parametrize("broken, message", [
    (lambda a: a[0].update(keypoint=a[0]["keypoint"][..., :2]), "2D keypoints"),
    (lambda a: a[0].update(total_frames=3), "total_frames=3 but the keypoint array has 103 frames"),
    (lambda a: a[0].update(keypoint=a[0]["keypoint"][:, :, :17]), "expected (M, T>=1, 25, 3)"),
    (lambda a: a.append(dict(a[0])), "listed twice"),
    (lambda a: a[0].update(label="drink"), "not a 0-based class id"),
])
def test_structural_problems_fail_before_anything_is_written(raw_cache, tmp_path, capsys, broken, message):
    fixtures, _ = raw_cache
    anns = _pyskl_annotations(fixtures, np.float32)
    broken(anns)
    pkl = write_pyskl(tmp_path / "ntu60_3danno.pkl", anns)
    assert cli(["prepare", "ntu60", "--raw", str(pkl), "--out", str(tmp_path / "cache"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and str(pkl) in err and len(err.splitlines()) == 1
    assert not (tmp_path / "cache").exists()


class _Planted:
    def __reduce__(self):
        import os
        return (os.system, ("echo pwned",))


def test_code_in_the_pickle_is_refused(tmp_path, capsys):
    pkl = tmp_path / "ntu60_3danno.pkl"
    pkl.write_bytes(pickle.dumps(dict(split={}, annotations=[_Planted()])))
    with pytest.raises(UnsafePickleError, match="os.system|posix.system"):
        datasets.prepare("ntu60", pkl, tmp_path / "cache", progress=False, log=lambda m: None)
    assert cli(["prepare", "ntu60", "--raw", str(pkl), "--out", str(tmp_path / "cache")]) == 2
    assert "refused" in capsys.readouterr().err and not (tmp_path / "cache").exists()


def test_cli_prepares_and_is_a_noop_the_second_time(raw_cache, tmp_path, capsys):
    fixtures, raw = raw_cache
    pkl = write_pyskl(tmp_path / "ntu60_3danno.pkl", _pyskl_annotations(fixtures, np.float16))
    args = ["prepare", "ntu60", "--raw", str(pkl), "--out", str(tmp_path / "cache"), "--no-progress"]
    assert cli(args) == 0 and "ntu60: 5 samples" in capsys.readouterr().err
    assert cli(args) == 0 and "up to date" in capsys.readouterr().err
    assert cli(["prepare", "pkummd", "--raw", str(pkl), "--out", str(tmp_path / "x")]) == 2
    assert "use 'prepare ntu60' or 'prepare ntu120'" in capsys.readouterr().err


def test_ntu120_pickle_with_xset_split_and_a_missing_list(raw_cache, tmp_path):
    fixtures, raw = raw_cache
    anns = _pyskl_annotations(fixtures, np.float16)
    names = [a["frame_dir"] for a in anns]
    subject_train = [n for n in names if int(n[9:12]) in M.NTU120_XSUB_TRAIN]
    splits = dict(xsub_train=subject_train, xsub_val=[n for n in names if n not in subject_train],
                  xset_train=[n for n in names if int(n[1:4]) % 2 == 0], xset_val=[n for n in names if int(n[1:4]) % 2])
    missing = tmp_path / "NTU_RGBD120_samples_with_missing_skeletons.txt"
    missing.write_text(names[3] + "\n")
    out = datasets.prepare("ntu120", write_pyskl(tmp_path / "ntu120_3danno.pkl", anns, splits), tmp_path / "cache",
                           progress=False, missing=missing, log=lambda m: None)
    c = datasets.open_cache(out)
    assert c.dataset == "ntu120" and c.num_classes == 120 and c.splits == ["xsub", "xset"]
    assert c.names == names[:3] + names[4:] and c.meta["missing_listed"] == 1
    assert c.manifest["split:xset"].tolist() == ["test"] * 4                      # setup 1 is odd
    np.testing.assert_array_equal(c.sequence(3), np.asarray(raw.sequence(4)).astype(np.float16).astype(np.float32))
