"""Fault injection on prepared caches (issue 26, item 3): meta.json is covered by a checksum, and
open_cache cross-checks manifest, offsets, labels, names, lengths, detection arrays and the
dataset identity; a cache that disagrees is refused with one line naming the file and the first
bad row, before any work (``--data`` then exits 2 with nothing written)."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import datasets
from benchmarks import run
from datasets.cache import META_SHA_KEY, CorruptCacheError, checksums, write_meta
from tests.support import CACHE


@pytest.fixture(scope="module")
def world():
    return datasets.ensure_synthetic(CACHE / "synthetic-small", size="small", seed=0, progress=False)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _meta(path: Path) -> dict:
    return json.loads((path / "meta.json").read_text())


def _resign(path: Path, edit_meta=None) -> Path:
    """What a tool that recomputes every checksum would leave: only the cross-checks can tell."""
    meta = _meta(path)
    meta.pop(META_SHA_KEY)
    if edit_meta:
        edit_meta(meta)
    meta["checksums"] = checksums(path)
    write_meta(path, meta)
    return path


def _edit_manifest(path: Path, edit) -> Path:
    man = pd.read_csv(path / "manifest.csv", dtype={"name": str, "view": str}, keep_default_na=False)
    edit(man)
    man.to_csv(path / "manifest.csv", index=False)
    return _resign(path)


def _refused(path: Path, match: str, error=ValueError) -> str:
    with pytest.raises(error, match=match) as err:
        datasets.open_cache(path)
    line = str(err.value)
    assert "\n" not in line
    return line


def test_edited_meta_json_is_caught_by_its_checksum(world, tmp_path):
    ntu = _copy(world["ntu"].path, tmp_path / "ntu")
    meta = _meta(ntu)
    meta["dataset"] = "ntu120"      # every record would say ntu120 and the report drop its SYNTHETIC banner
    (ntu / "meta.json").write_text(json.dumps(meta, indent=1))
    _refused(ntu, r"meta.json: checksum mismatch", CorruptCacheError)
    meta.pop(META_SHA_KEY)
    (ntu / "meta.json").write_text(json.dumps(meta, indent=1))
    _refused(ntu, rf"meta.json: no {META_SHA_KEY}", CorruptCacheError)


@pytest.mark.parametrize("dataset, needle", [("ntu120", "has 120 classes, but the cache says num_classes 16"),
                                             ("ntu60", "has 60 classes"),
                                             ("pkummd", "is a detection dataset")])
def test_dataset_identity_is_cross_checked(world, tmp_path, dataset, needle):
    ntu = _resign(_copy(world["ntu"].path, tmp_path / "ntu"), lambda m: m.update(dataset=dataset))
    _refused(ntu, needle)


def test_identity_with_matching_class_count_still_needs_the_class_names(world, tmp_path):
    ntu = _resign(_copy(world["ntu"].path, tmp_path / "ntu"),
                  lambda m: m.update(dataset="ntu60", num_classes=60, class_names=["x"] * 60))
    _refused(ntu, "class_names are not ntu60's")


def test_label_beyond_num_classes_names_the_row(world, tmp_path):
    def edit(man):
        man.loc[4, "label"] = 16      # the case: accepted before, traceback after pre-training
    line = _refused(_edit_manifest(_copy(world["ntu"].path, tmp_path / "ntu"), edit),
                    r"manifest.csv:6: label 16 of '.*' is outside 0..15")
    assert "re-run 'python -m datasets prepare'" in line


@pytest.mark.parametrize("value, needle", [("1.5", "label '1.5' is not an integer"),
                                           ("x", "class labels missing or negative \\(label 'x'\\)")])
def test_non_integer_labels(world, tmp_path, value, needle):
    def edit(man):
        man["label"] = man["label"].astype(object)
        man.loc[2, "label"] = value
    _refused(_edit_manifest(_copy(world["ntu"].path, tmp_path / "ntu"), edit), "manifest.csv:4: " + needle)


def test_label_disagreeing_with_the_sample_name(world, tmp_path):
    def edit(man):
        man.loc[3, "label"] = (int(man.loc[3, "label"]) + 1) % 16
    _refused(_edit_manifest(_copy(world["ntu"].path, tmp_path / "ntu"), edit), "manifest.csv:5: .*whose name says action")


def test_offsets_disagreeing_with_manifest_lengths(world, tmp_path):
    """Two sequence boundaries moved (same total): the cache would silently train on wrong boundaries."""
    ntu = _copy(world["ntu"].path, tmp_path / "ntu")
    offsets = np.load(ntu / "offsets.npy")
    offsets[3] += 1
    np.save(ntu / "offsets.npy", offsets)
    _resign(ntu)
    _refused(ntu, r"manifest.csv:4: length \d+ of '.*', but offsets.npy gives \d+ frames")


def test_duplicate_and_zero_length_samples(world, tmp_path):
    def dup(man):
        man.loc[7, "name"] = man.loc[2, "name"]
    _refused(_edit_manifest(_copy(world["ntu"].path, tmp_path / "a"), dup), r"manifest.csv:9: .* appears twice \(first on line 4\)")
    ntu = _copy(world["ntu"].path, tmp_path / "b")
    offsets = np.load(ntu / "offsets.npy")
    offsets[2] = offsets[1]           # sample 1 has 0 frames, sample 2 gets them
    np.save(ntu / "offsets.npy", offsets)
    _resign(ntu)
    _refused(ntu, r"manifest.csv:3: sample '.*' has 0 frames")


def test_detection_arrays_are_cross_checked(world, tmp_path):
    pku = _copy(world["pkummd"].path, tmp_path / "a")
    iv = np.load(pku / "intervals.npy")
    iv[1, 0] = 99
    np.save(pku / "intervals.npy", iv)
    _refused(_resign(pku), r"intervals.npy: row 1 .* not \(label 1..")

    def more(man):
        man.loc[0, "actions"] = int(man.loc[0, "actions"]) + 1
    _refused(_edit_manifest(_copy(world["pkummd"].path, tmp_path / "b"), more),
             r"manifest.csv:2: actions .* but interval_offsets.npy gives")
    pku = _copy(world["pkummd"].path, tmp_path / "c")
    np.save(pku / "frame_labels.npy", np.load(pku / "frame_labels.npy")[:-1])
    _refused(_resign(pku), r"frame_labels.npy: .* not one integer per frame")


@pytest.mark.parametrize("plant, needle", [("fifo", "a FIFO, not a regular file"),
                                           ("deep", "nested deeper than"),
                                           ("checksum_path", "not a plain file name"),
                                           ("nan_frames", "incomplete or malformed meta.json")])
def test_hostile_meta_json(world, tmp_path, plant, needle):
    ntu = _copy(world["ntu"].path, tmp_path / "ntu")
    meta_path = ntu / "meta.json"
    if plant == "fifo":
        meta_path.unlink()
        os.mkfifo(meta_path)
    elif plant == "deep":
        meta_path.write_text("[" * 100_000 + "]" * 100_000)
    elif plant == "checksum_path":
        _resign(ntu, lambda m: m["checksums"].update({"../../etc/passwd": "0" * 64}))
        meta = _meta(ntu)
        meta["checksums"]["../../etc/passwd"] = "0" * 64
        meta.pop(META_SHA_KEY)
        write_meta(ntu, meta)
    else:
        _resign(ntu, lambda m: m.update(frames="abc"))
    _refused(ntu, needle)


def test_runner_refuses_the_bad_cache_before_any_work(world, tmp_path, capsys):
    def edit(man):
        man.loc[4, "label"] = 99
    ntu = _edit_manifest(_copy(world["ntu"].path, tmp_path / "ntu"), edit)
    out = tmp_path / "R"
    with pytest.raises(SystemExit) as exc:
        run.main(["--method", "hitrs", "--task", "recognition", "--profile", "ci", "--no-progress",
                  "--data", f"ntu60={ntu}", "--out", str(out)])
    assert exc.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "manifest.csv:6: label 99" in err[0] and err[0].startswith("error: --data ntu60=")
    assert not out.exists()


def test_prepared_caches_open_and_carry_their_meta_checksum(world):
    for cache in world.values():
        assert META_SHA_KEY in cache.meta and len(datasets.open_cache(cache.path)) == len(cache)
