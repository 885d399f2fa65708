"""Every common NTU format prepares to a cache (issue 27): st-gcn / CrosSCLR arrays, frame50, Hi-TRS
arrays, CTR-GCN ``.npz``, PYSKL and MMAction2 pickles, recognised by content.

Each test builds the format from a raw-file cache with a small WRITER of that format (ours, laid
out as the tool's script writes it; which script is named on each writer), prepares it, and
compares the new cache with the raw-file cache. The synthetic raw folder (tests/support.py) runs
everywhere; the same writers on the real fixtures run where ../shared/fixtures exists.
"""
from __future__ import annotations

import json
import pickle
import zipfile

import numpy as np
import pytest

import datasets
from datasets import meta as M
from datasets.__main__ import main as cli
from datasets.readers.ctrgcn import read_ctrgcn_npz, valid_length
from datasets.readers.detect import detect_ntu_source
from tests.support import make_ntu_raw, shared_path

QUIET = dict(progress=False, log=lambda m: None)
T_MAX = 300


@pytest.fixture(scope="module")
def raw_cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    make_ntu_raw(root / "raw", with_bad=False)
    return datasets.open_cache(datasets.prepare("ntu60", root / "raw", root / "cache", **QUIET))


@pytest.fixture(scope="module")
def fixture_cache(tmp_path_factory):
    fixtures = shared_path("fixtures", "ntu60")
    return datasets.open_cache(datasets.prepare("ntu60", fixtures, tmp_path_factory.mktemp("fx") / "cache", **QUIET))


def _stack(samples, t=T_MAX):
    return np.stack(samples) if samples else np.zeros((0, 3, t, 25, 2), np.float32)


def _ctvm(seq, t=T_MAX):
    """(L, 2, 25, 3) -> (3, t, 25, 2) zero-padded: the st-gcn / Hi-TRS sample layout."""
    out = np.zeros((3, t, 25, 2), dtype=np.float32)
    out[:, :len(seq)] = np.asarray(seq).transpose(3, 0, 2, 1)
    return out


# ---- writers of the originals' layouts (ours; never the tools' code) ----------------------------
def write_stgcn(folder, c, benchmarks=("xsub", "xview")):
    """st-gcn tools/ntu_gendata.py (and CrosSCLR's copy): <benchmark>/{train,val}_data.npy float32
    (N, 3, 300, 25, 2) + {train,val}_label.pkl = pickle((names with '.skeleton', 0-based labels))."""
    for b in benchmarks:
        for part, stem in (("train", "train"), ("test", "val")):
            rows = c.indices(b, part)
            (folder / b).mkdir(parents=True, exist_ok=True)
            np.save(folder / b / f"{stem}_data.npy", _stack([_ctvm(c.sequence(i)) for i in rows]))
            with open(folder / b / f"{stem}_label.pkl", "wb") as fh:
                pickle.dump(([f"{c.names[i]}.skeleton" for i in rows], [int(c.labels[i]) for i in rows]), fh)
    return folder


def write_hitrs(folder, c, benchmarks=("xsub", "xview")):
    """Hi-TRS data_process/NTU_RGBD/prepare_NTU_60.py (yuxiaochen1103/Hi-TRS@1409087): per benchmark
    {train,val}_label.npy, {train,val}_data.npy (N, 3, 300, 25, 2), {train,val}_video_info.json
    [{frame_num, boby_num}]; its order is os.listdir's (here: reversed, to show order does not matter)."""
    for b in benchmarks:
        for part, stem in (("train", "train"), ("test", "val")):
            rows = c.indices(b, part)[::-1]
            (folder / b).mkdir(parents=True, exist_ok=True)
            np.save(folder / b / f"{stem}_label.npy", np.asarray([int(c.labels[i]) for i in rows], dtype=np.int64))
            np.save(folder / b / f"{stem}_data.npy", _stack([_ctvm(c.sequence(i)) for i in rows]))
            info = [{"frame_num": int(c.lengths[i]), "boby_num": int(c.manifest["bodies"][i])} for i in rows]
            (folder / b / f"{stem}_video_info.json").write_text(json.dumps(info))
    return folder


def write_ctrgcn(folder, c, dataset="ntu60", copy_lone_body=False):
    """CTR-GCN data/ntu*/seq_transformation.py (Uason-Chen/CTR-GCN@e13d758): NTU60_CS.npz / NTU60_CV.npz
    with x_* (N, T, 150) float32 = (body, joint, xyz) per frame, zero after each sample, T = the longest,
    and one-hot y_* (N, 60 | 120) float64. NTU-120's script copies a lone body into slot 2. The
    values here are the cache's (the translation to joint 2 changes values, not the layout)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = {"ntu60": {"xsub": "NTU60_CS", "xview": "NTU60_CV"},
             "ntu120": {"xsub": "NTU120_CSub", "xset": "NTU120_CSet"}}[dataset]
    classes = 60 if dataset == "ntu60" else 120
    t = int(c.lengths.max())
    for split, stem in names.items():
        arrays = {}
        for part in ("train", "test"):
            rows = c.indices(split, part)
            x = np.zeros((len(rows), t, 150), dtype=np.float32)
            for k, i in enumerate(rows):
                seq = np.array(c.sequence(i))
                if copy_lone_body and not seq[:, 1].any():
                    seq[:, 1] = seq[:, 0]
                x[k, :len(seq)] = seq.reshape(len(seq), 150)
            y = np.zeros((len(rows), classes))
            y[np.arange(len(rows)), c.labels[rows]] = 1
            arrays[f"x_{part}"], arrays[f"y_{part}"] = x, y
        np.savez(folder / f"{stem}.npz", **arrays)
    return folder


def _prepare(raw, out, kind="ntu60", **kw):
    return datasets.open_cache(datasets.prepare(kind, raw, out, **QUIET, **kw))


def _by_content(c):
    return {np.asarray(c.sequence(i)).tobytes(): i for i in range(len(c))}


def _same_samples_by_content(new, raw, splits):
    """Name-less formats: every sample equals one raw sample exactly, with its label and splits."""
    index = _by_content(raw)
    assert len(new) == len(raw)
    for i in range(len(new)):
        j = index[np.asarray(new.sequence(i)).tobytes()]
        assert new.labels[i] == raw.labels[j] and new.lengths[i] == raw.lengths[j]
        assert new.manifest["bodies"][i] == raw.manifest["bodies"][j]
        for s in splits:
            assert new.manifest[f"split:{s}"][i] == raw.manifest[f"split:{s}"][j], (s, new.names[i])


SAME = ["name", "length", "bodies", "label", "setup", "camera", "subject", "replication", "split:xsub", "split:xview"]


# ---- st-gcn / CrosSCLR ---------------------------------------------------------------------------
def test_stgcn_folders_prepare_to_the_raw_cache(raw_cache, tmp_path):
    src = write_stgcn(tmp_path / "NTU-RGB-D", raw_cache)
    assert detect_ntu_source(src).format == "stgcn"
    c = _prepare(src, tmp_path / "cache")
    assert c.meta["source_format"] == "stgcn" and c.splits == ["xsub", "xview"]
    assert raw_cache.meta["source_format"] == "skeleton" and raw_cache.meta["raw_coordinates"] is True
    assert c.manifest[SAME].equals(raw_cache.manifest[SAME])          # names without '.skeleton'
    assert (c.path / "data.bin").read_bytes() == (raw_cache.path / "data.bin").read_bytes()
    assert "lost" in c.meta["source_notes"]["lengths"]


def test_stgcn_one_benchmark_folder_and_files_directly_in_raw(raw_cache, tmp_path):
    write_stgcn(tmp_path / "a", raw_cache, benchmarks=("xview",))
    c = _prepare(tmp_path / "a" / "xview", tmp_path / "c1")
    assert c.splits == ["xview"] and c.manifest["split:xview"].equals(raw_cache.manifest["split:xview"])
    flat = tmp_path / "flat"                      # a folder name that says nothing: the names tell xsub
    write_stgcn(tmp_path / "b", raw_cache, benchmarks=("xsub",))
    (tmp_path / "b" / "xsub").rename(flat)
    c = _prepare(flat, tmp_path / "c2")
    assert c.splits == ["xsub"] and c.manifest["split:xsub"].equals(raw_cache.manifest["split:xsub"])


def test_stgcn_trailing_empty_frames_are_padding_by_the_documented_rule(raw_cache, tmp_path):
    src = write_stgcn(tmp_path / "s", raw_cache, benchmarks=("xsub",))
    data = np.load(src / "xsub" / "train_data.npy")
    n = int(raw_cache.lengths[raw_cache.indices("xsub", "train")[0]])
    data[0, :, n - 3:] = 0                             # the last 3 frames hold no body
    np.save(src / "xsub" / "train_data.npy", data)
    c = _prepare(src, tmp_path / "c")
    first = raw_cache.names[raw_cache.indices("xsub", "train")[0]]
    assert int(c.lengths[c.names.index(first)]) == n - 3


# ---- Hi-TRS --------------------------------------------------------------------------------------
def test_hitrs_folders_prepare_and_benchmarks_join_by_content(raw_cache, tmp_path):
    src = write_hitrs(tmp_path / "NTU_60", raw_cache)
    assert detect_ntu_source(src).format == "hitrs"
    c = _prepare(src, tmp_path / "cache")
    assert c.meta["source_format"] == "hitrs" and c.splits == ["xsub", "xview"]
    _same_samples_by_content(c, raw_cache, ["xsub", "xview"])
    assert all(n.startswith("xsub-") for n in c.names)          # invented: the format stores no names


def test_hitrs_without_benchmark_folder_is_refused_in_one_line(raw_cache, tmp_path, capsys):
    write_hitrs(tmp_path / "h", raw_cache, benchmarks=("xsub",))
    (tmp_path / "h" / "xsub").rename(tmp_path / "arrays")
    assert cli(["prepare", "ntu60", "--raw", str(tmp_path / "arrays"), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "store no sample names" in err[0] and "xsub, xview or xset" in err[0]
    assert not (tmp_path / "c").exists()


# ---- frame50 -------------------------------------------------------------------------------------
def test_frame50_folder_prepares_with_fixed_length(raw_cache, tmp_path):
    """CrosSCLR feeder/preprocess_ntu.py: {train,val}_position.npy (N, 3, 50, 25, 2) + the label pickle."""
    from datasets import preprocess as P

    folder = tmp_path / "frame50" / "xsub"
    folder.mkdir(parents=True)
    for part, stem in (("train", "train"), ("test", "val")):
        rows = raw_cache.indices("xsub", part)
        pos = np.stack([_ctvm(P.frame50_numpy(np.asarray(raw_cache.sequence(i))), 50) for i in rows])
        np.save(folder / f"{stem}_position.npy", pos)
        with open(folder / f"{stem}_label.pkl", "wb") as fh:
            pickle.dump(([f"{raw_cache.names[i]}.skeleton" for i in rows], [int(raw_cache.labels[i]) for i in rows]), fh)
    c = _prepare(tmp_path / "frame50", tmp_path / "cache")
    assert c.meta["source_format"] == "frame50" and c.meta["fixed_length"] == 50
    assert c.meta["raw_coordinates"] is False
    assert (c.lengths == 50).all() and c.names == raw_cache.names
    for i in range(len(c)):
        np.testing.assert_allclose(c.sequence(i), P.frame50_numpy(np.asarray(raw_cache.sequence(i))), atol=1e-6)


# ---- CTR-GCN -------------------------------------------------------------------------------------
def test_ctrgcn_reader_layout(raw_cache, tmp_path):
    write_ctrgcn(tmp_path, raw_cache)
    arr = read_ctrgcn_npz(tmp_path / "NTU60_CS.npz")
    assert arr.num_classes == 60 and isinstance(arr.x["train"], np.memmap)   # np.savez: stored, memory-mapped
    i = raw_cache.indices("xsub", "train")[0]
    x = arr.sample("train", 0)
    assert valid_length(x) == raw_cache.lengths[i]
    np.testing.assert_array_equal(x[:valid_length(x)], raw_cache.sequence(i))
    assert arr.labels["train"][0] == raw_cache.labels[i]


def test_ctrgcn_archives_prepare_to_the_raw_cache(raw_cache, tmp_path):
    src = write_ctrgcn(tmp_path / "ntu", raw_cache)
    c = _prepare(src, tmp_path / "both")                        # the folder: CS + CV joined by content
    assert c.meta["source_format"] == "ctrgcn" and c.splits == ["xsub", "xview"]
    _same_samples_by_content(c, raw_cache, ["xsub", "xview"])
    one = _prepare(src / "NTU60_CV.npz", tmp_path / "cv")      # one archive: its own split only
    assert one.splits == ["xview"] and len(one) == len(raw_cache)
    assert sorted(one.manifest["split:xview"]) == sorted(raw_cache.manifest["split:xview"])


def test_ctrgcn_ntu120_copied_lone_body_is_removed(raw_cache, tmp_path):
    raw_cache = _prepare(raw_cache.meta["raw"], tmp_path / "raw120", kind="ntu120")
    src = write_ctrgcn(tmp_path / "ntu120", raw_cache, dataset="ntu120", copy_lone_body=True)
    c = _prepare(src / "NTU120_CSub.npz", tmp_path / "c", kind="ntu120")
    assert len(c) == len(raw_cache) == 7
    index = _by_content(raw_cache)
    assert all(np.asarray(c.sequence(i)).tobytes() in index for i in range(len(c)))
    assert c.meta["source_notes"]["copied_second_body_removed"] == int((raw_cache.manifest["bodies"] == 1).sum())
    assert (c.manifest["bodies"].sort_values().to_numpy() == raw_cache.manifest["bodies"].sort_values().to_numpy()).all()


def test_ctrgcn_wrong_dataset_and_unnamed_archive_are_refused(raw_cache, tmp_path, capsys):
    src = write_ctrgcn(tmp_path / "n", raw_cache)
    assert cli(["prepare", "ntu120", "--raw", str(src / "NTU60_CS.npz"), "--out", str(tmp_path / "c")]) == 2
    assert "use 'prepare ntu60'" in capsys.readouterr().err
    (src / "NTU60_CS.npz").rename(tmp_path / "mine.npz")
    assert cli(["prepare", "ntu60", "--raw", str(tmp_path / "mine.npz"), "--out", str(tmp_path / "c")]) == 2
    assert "does not say its benchmark" in capsys.readouterr().err


def test_npz_with_pickled_objects_is_refused_not_unpickled(tmp_path):
    np.savez(tmp_path / "NTU60_CS.npz", x_train=np.array([{"a": 1}], dtype=object), y_train=np.zeros((1, 60)),
             x_test=np.zeros((0, 1, 150)), y_test=np.zeros((0, 60)))
    with pytest.raises(datasets.SkeletonFormatError, match="Python objects|not a plain"):
        read_ctrgcn_npz(tmp_path / "NTU60_CS.npz")


# ---- PYSKL / MMAction2 ---------------------------------------------------------------------------
def _anns(c, rows):
    return [dict(frame_dir=c.names[i], label=int(c.labels[i]), total_frames=int(c.lengths[i]),
                 keypoint=np.asarray(c.sequence(i))[:, :int(c.manifest["bodies"][i])].transpose(1, 0, 2, 3)
                 .astype(np.float16)) for i in rows]


def write_mmaction2(path, c, bodyless=()):
    """MMAction2 tools/data/skeleton/gen_ntu_rgbd_raw.py (open-mmlab/mmaction2@4d6c934): dict(split=
    {xsub_train, xsub_val, xview_train, xview_val}, annotations) in xsub_train + xsub_val order,
    keypoint (M, T, 25, 3) float16 with empty bodies dropped (M = 0 for a body-less file);
    mmengine dumps with pickle protocol 2."""
    order = list(c.indices("xsub", "train")) + list(c.indices("xsub", "test"))
    anns = _anns(c, order)
    for k in bodyless:
        anns[k]["keypoint"] = np.zeros((0, anns[k]["total_frames"], 25, 3), np.float16)
    split = {f"{b}_{p}": [c.names[i] for i in c.indices(b, q)] for b in ("xsub", "xview")
             for p, q in (("train", "train"), ("val", "test"))}
    path.write_bytes(pickle.dumps(dict(split=split, annotations=anns), protocol=2))
    return path


def test_mmaction2_pickle_with_a_bodyless_sample(raw_cache, tmp_path):
    pkl = write_mmaction2(tmp_path / "ntu60_3d.pkl", raw_cache, bodyless=(1,))
    c = _prepare(pkl, tmp_path / "cache")
    assert c.meta["source_format"] == "mmaction2" and "M = 0" in c.meta["source_notes"]["recognised_by"]
    assert len(c) == len(raw_cache) - 1 and c.meta["bad_files"] == 1
    assert "no body" in (c.path / "bad_files.txt").read_text()
    for i, name in enumerate(c.names):
        want = np.asarray(raw_cache.sequence(raw_cache.names.index(name))).astype(np.float16).astype(np.float32)
        np.testing.assert_array_equal(c.sequence(i), want)


def test_mmaction2_order_is_recognised_without_a_bodyless_sample(raw_cache, tmp_path):
    c = _prepare(write_mmaction2(tmp_path / "anything.pkl", raw_cache), tmp_path / "cache")
    assert c.meta["source_format"] == "mmaction2"


def test_pyskl_none_annotation_is_named_and_skipped(raw_cache, tmp_path, capsys):
    names = sorted(raw_cache.names)
    anns = _anns(raw_cache, [raw_cache.names.index(n) for n in names])
    anns[2] = None                                              # PYSKL's `if anno_dict is not None` bug
    split = {f"{b}_{p}": [raw_cache.names[i] for i in raw_cache.indices(b, q)] for b in ("xsub", "xview")
             for p, q in (("train", "train"), ("val", "test"))}
    pkl = tmp_path / "ntu60_3danno.pkl"
    pkl.write_bytes(pickle.dumps(dict(split=split, annotations=anns), protocol=2))
    c = _prepare(pkl, tmp_path / "cache")
    assert c.meta["source_format"] == "pyskl" and len(c) == len(raw_cache) - 1
    text = (c.path / "bad_files.txt").read_text()
    assert f"annotation 2 ({names[2]}) is None" in text and "not PYSKL" not in text


# ---- detection by content, wrong --raw -----------------------------------------------------------
def test_formats_are_recognised_by_content_not_extension(raw_cache, tmp_path):
    pkl = write_mmaction2(tmp_path / "ntu60_3d.pkl", raw_cache)
    disguised = pkl.rename(tmp_path / "annotations.bin")
    assert detect_ntu_source(disguised).format == "pickle"
    src = write_ctrgcn(tmp_path / "z", raw_cache)
    assert zipfile.is_zipfile(src / "NTU60_CS.npz")
    (src / "NTU60_CS.npz").rename(src / "NTU60_CS.data")
    det = detect_ntu_source(src)
    assert det.format == "ctrgcn" and {p.name for p in det.files} == {"NTU60_CS.data", "NTU60_CV.npz"}


@pytest.mark.parametrize("make, found", [
    (lambda p: (p / "notes.txt").write_text("hello"), "a folder holding notes.txt"),
    (lambda p: np.save(p / "train_data.npy", np.zeros((2, 3, 10, 25, 2), np.float32)), "no companion train_label.pkl"),
    (lambda p: np.savez(p / "NTU60_CS.npz", a=np.zeros(3)), "a folder holding NTU60_CS.npz"),
])
def test_wrong_raw_folder_is_one_line_naming_what_was_found(tmp_path, capsys, make, found):
    raw = tmp_path / "raw"
    raw.mkdir()
    make(raw)
    assert cli(["prepare", "ntu60", "--raw", str(raw), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(raw) in err[0] and found in err[0] and "accepted:" in err[0]
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("make, found", [
    (lambda p: np.savez(p, a=np.zeros(3)), "not CTR-GCN's"),
    (lambda p: p.write_bytes(b"\x00\x01binary"), "a binary file"),
    (lambda p: p.write_bytes(pickle.dumps((["S001C001P001R001A001.skeleton"], [0]), protocol=2)), "label pickle"),
])
def test_wrong_raw_file_is_one_line(tmp_path, capsys, make, found):
    raw = tmp_path / "thing.npz"
    make(raw)
    assert cli(["prepare", "ntu60", "--raw", str(raw), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(raw) in err[0] and found in err[0]


def test_array_prepare_is_a_noop_the_second_time_and_transactional(raw_cache, tmp_path, capsys):
    src = write_stgcn(tmp_path / "s", raw_cache)
    args = ["prepare", "ntu60", "--raw", str(src), "--out", str(tmp_path / "cache"), "--no-progress"]
    assert cli(args) == 0
    assert cli(args) == 0 and "up to date" in capsys.readouterr().err
    assert not list(tmp_path.glob(".cache.tmp-*"))


# ---- the real fixtures (skipped without ../shared/fixtures) -------------------------------------
def test_fixture_stgcn_and_hitrs_equal_the_raw_cache(fixture_cache, tmp_path):
    c = _prepare(write_stgcn(tmp_path / "stgcn", fixture_cache), tmp_path / "c1")
    assert c.manifest[SAME].equals(fixture_cache.manifest[SAME])
    assert (c.path / "data.bin").read_bytes() == (fixture_cache.path / "data.bin").read_bytes()
    h = _prepare(write_hitrs(tmp_path / "hitrs", fixture_cache, benchmarks=("xsub",)), tmp_path / "c2")
    _same_samples_by_content(h, fixture_cache, ["xsub"])


def test_fixture_ctrgcn_and_mmaction2_equal_the_raw_cache(fixture_cache, tmp_path):
    c = _prepare(write_ctrgcn(tmp_path / "ctr", fixture_cache) / "NTU60_CS.npz", tmp_path / "c1")
    _same_samples_by_content(c, fixture_cache, ["xsub"])
    m = _prepare(write_mmaction2(tmp_path / "ntu60_3d.pkl", fixture_cache), tmp_path / "c2")
    assert m.meta["source_format"] == "mmaction2" and m.names == fixture_cache.names
    for i in range(len(m)):
        np.testing.assert_array_equal(m.sequence(i), np.asarray(fixture_cache.sequence(i)).astype(np.float16)
                                      .astype(np.float32))
