"""prepare / open_cache / ensure_synthetic on small raw folders written in the real formats."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

import datasets
from datasets import ensure as ensure_mod
from datasets import prepare_cache as prepare_mod
from datasets.__main__ import main as cli
from tests.support import NTU_NAMES, make_ntu_raw, make_pku_raw, ntu_text, random_ntu_frames

def _quiet():
    lines = []
    return lines, lines.append


def test_prepare_ntu60_cache_contents(tmp_path):
    frames = make_ntu_raw(tmp_path / "raw")
    log, say = _quiet()
    out = datasets.prepare("ntu60", tmp_path / "raw", tmp_path / "cache", progress=False, log=say)
    c = datasets.open_cache(out)
    assert c.dataset == "ntu60" and c.num_classes == 60 and c.splits == ["xsub", "xview"]
    assert c.manifest["name"].tolist() == NTU_NAMES[:6]          # A061 is not NTU-60; missing one skipped
    for i, name in enumerate(NTU_NAMES[:6]):
        seq = c.sequence(i)
        assert seq.shape == (len(frames[name]), 2, 25, 3) and isinstance(seq, np.memmap)
        np.testing.assert_array_equal(seq, datasets.read_ntu_skeleton(tmp_path / "raw" / "nturgb+d_skeletons" / f"{name}.skeleton"))
    m = c.manifest
    assert m["bodies"].tolist() == [1, 1, 2, 1, 1, 1] and m["label"].tolist() == [0, 0, 1, 1, 2, 2]
    assert m["length"].tolist() == [20, 25, 30, 35, 40, 45]
    assert m["split:xview"].tolist() == ["test", "train", "train", "test", "train", "train"]
    assert m["split:xsub"].tolist() == ["train", "test", "train", "train", "train", "test"]
    assert c.indices("xsub", "test").tolist() == [1, 5]
    meta = c.meta
    assert meta["bad_files"] == 3 and meta["missing_listed"] == 1 and meta["outside_dataset"] == 1
    bad = (out / "bad_files.txt").read_text()
    assert "S003C001P001R001A004.skeleton" in bad and "notes.skeleton" in bad and "no body in any frame" in bad
    text = "\n".join(log)
    assert "skipped 3 bad file(s)" in text and "1 on the missing-skeleton list" in text
    with pytest.raises(ValueError, match="no split 'xset'"):
        c.indices("xset", "train")
    with pytest.raises(ValueError, match="only for PKU-MMD"):
        c.frame_labels(0)


def test_prepare_is_a_noop_when_inputs_are_unchanged(tmp_path):
    make_ntu_raw(tmp_path / "raw", with_bad=False)
    out = datasets.prepare("ntu120", tmp_path / "raw", tmp_path / "c", progress=False, log=lambda m: None)
    stamp = (out / "data.bin").stat().st_mtime_ns
    log, say = _quiet()
    datasets.prepare("ntu120", tmp_path / "raw", tmp_path / "c", progress=False, log=say)
    assert "up to date" in log[0] and (out / "data.bin").stat().st_mtime_ns == stamp
    c = datasets.open_cache(out)
    assert len(c) == 7 and c.splits == ["xsub", "xset"] and c.num_classes == 120
    assert c.manifest["split:xset"].tolist()[-1] == "train"      # setup 18 is even
    # a changed input file is noticed
    p = tmp_path / "raw" / "nturgb+d_skeletons" / f"{NTU_NAMES[0]}.skeleton"
    p.write_text(ntu_text(random_ntu_frames(np.random.default_rng(9), 12)))
    datasets.prepare("ntu120", tmp_path / "raw", tmp_path / "c", progress=False, log=lambda m: None)
    assert datasets.open_cache(out).manifest["length"].iloc[0] == 12


def test_interrupted_prepare_never_looks_complete(tmp_path, monkeypatch):
    make_ntu_raw(tmp_path / "raw", with_bad=False)
    out = datasets.prepare("ntu60", tmp_path / "raw", tmp_path / "c", progress=False, log=lambda m: None)
    calls = {"n": 0}
    real = prepare_mod._read_one

    def dying(job):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(job)

    monkeypatch.setattr(prepare_mod, "_read_one", dying)
    with pytest.raises(KeyboardInterrupt):
        datasets.prepare("ntu60", tmp_path / "raw", tmp_path / "c", progress=False, force=True, log=lambda m: None)
    # transactional (issue 26): the interrupted rebuild leaves the good old cache as it was, no temp folder
    assert len(datasets.open_cache(out)) == 6
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]
    assert not [f for f in os.listdir(out.parent) if ".tmp-" in f]
    monkeypatch.setattr(prepare_mod, "_read_one", real)
    datasets.prepare("ntu60", tmp_path / "raw", tmp_path / "c", progress=False, log=lambda m: None)
    assert len(datasets.open_cache(out)) == 6


def test_truncated_cache_files_are_rejected(tmp_path):
    make_ntu_raw(tmp_path / "raw", with_bad=False)
    out = datasets.prepare("ntu60", tmp_path / "raw", tmp_path / "c", progress=False, log=lambda m: None)
    with open(out / "data.bin", "r+b") as fh:
        fh.truncate(100)
    with pytest.raises(datasets.CorruptCacheError, match="checksum mismatch"):
        datasets.open_cache(out)
    with pytest.raises(ValueError, match="disagree with meta.json"):  # the size check without hashing
        datasets.open_cache(out, verify=False)


def test_prepare_pkummd_layout(tmp_path):
    data, rows = make_pku_raw(tmp_path / "raw")
    log, say = _quiet()
    out = datasets.prepare("pkummd", tmp_path / "raw", tmp_path / "c", progress=False, log=say)
    c = datasets.open_cache(out)
    assert c.dataset == "pkummd" and c.num_classes == 51 and c.is_detection
    assert len(c) == 12 and c.meta["bad_files"] == 1 and "no label file" in (out / "bad_files.txt").read_text()
    m = c.manifest
    assert (m["label"] == -1).all() and m["view"].tolist()[:3] == ["L", "M", "R"] and m["video"].iloc[0] == 2
    assert m["bodies"].tolist()[:6] == [2, 2, 2, 1, 1, 1]
    assert c.indices("xsub", "test").tolist() == [0, 1, 2]
    assert c.indices("xview", "test").tolist() == [0, 3, 6, 9]
    i = 4                                                    # 0003-M: 70 frames
    name = m["name"].iloc[i]
    np.testing.assert_array_equal(c.sequence(i), data[name].astype(np.float32))
    assert c.intervals(i).tolist() == rows[name]
    fl = c.frame_labels(i)
    assert fl.shape == (70,) and fl.dtype == np.int64
    assert fl[5:20].tolist() == [2] * 15 and fl[20:25].tolist() == [0] * 5 and fl[25:40].tolist() == [3] * 15
    assert fl[65:].tolist() == [2] * 5 and fl[4] == 0 and fl[40] == 0


def test_cli_prepare_info_and_errors(tmp_path, capsys):
    make_ntu_raw(tmp_path / "raw", with_bad=False)
    assert cli(["prepare", "ntu60", "--raw", str(tmp_path / "raw"), "--out", str(tmp_path / "c"),
                "--no-progress", "--missing", str(tmp_path / "raw" / "NTU_RGBD_samples_with_missing_skeletons.txt")]) == 0
    assert cli(["info", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "xsub: 4 train / 2 test" in out
    assert cli(["prepare", "pkummd", "--raw", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 2
    assert "nothing: no such folder" in capsys.readouterr().err


def test_ensure_synthetic_generates_once(tmp_path, monkeypatch):
    calls = []

    def fake_generate(raw, size, seed):      # stands in for datasets.synthetic.generate
        calls.append((size, seed))
        make_ntu_raw(raw / "ntu", with_bad=False)
        make_pku_raw(raw / "pkummd", n_videos=2)

    monkeypatch.setattr(ensure_mod, "_generate", fake_generate)
    caches = datasets.ensure_synthetic(tmp_path / "s", size="small", seed=0, progress=False)
    assert set(caches) == {"ntu", "pkummd"}
    assert caches["ntu"].dataset == "synthetic-ntu" and caches["pkummd"].dataset == "synthetic-pkummd"
    assert caches["pkummd"].splits == ["xsub", "xview"] and len(caches["ntu"].indices("xview", "test")) == 3
    again = datasets.ensure_synthetic(tmp_path / "s", size="small", seed=0, progress=False)
    assert calls == [("small", 0)] and len(again["ntu"]) == len(caches["ntu"])
    datasets.ensure_synthetic(tmp_path / "s", size="small", seed=1, progress=False)
    assert calls == [("small", 0), ("small", 1)]
    assert json.loads((tmp_path / "s" / "raw.json").read_text()) == {"size": "small", "seed": 1}


@pytest.mark.slow
def test_ensure_synthetic_with_the_real_generator(tmp_path):
    try:
        from datasets.synthetic import generate  # noqa: F401
    except ImportError:
        pytest.skip("datasets.synthetic.generate is not available in this checkout yet")
    caches = datasets.ensure_synthetic(tmp_path / "s", size="small", seed=0, progress=False)
    ntu, pku = caches["ntu"], caches["pkummd"]
    for c in (ntu, pku):
        for s in c.splits:
            assert len(c.indices(s, "train")) and len(c.indices(s, "test")), (c.dataset, s)
    assert ntu.num_classes >= 12 and ntu.labels.max() < ntu.num_classes
    fl = pku.frame_labels(0)
    assert fl.max() <= pku.num_classes and (fl > 0).any() and (fl == 0).any()
