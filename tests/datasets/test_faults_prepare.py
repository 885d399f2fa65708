"""Transactional prepare (issue 26, item 2): the cache is built in a temporary sibling and swapped
in whole; a good old cache stays usable until then, whatever happens to the rebuild; a lock
refuses a second prepare on the same --out; temporary folders never outlive a run (a SIGKILL's
are removed by the next prepare)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import datasets
import datasets.prepare_cache as prepare_mod
from datasets.__main__ import main as cli
from plumbing import files as plumbing_files
from plumbing.files import swap_folder
from plumbing.locks import file_lock
from tests.support import make_ntu_raw, ntu_text, random_ntu_frames, write

QUIET = {"progress": False, "log": lambda m: None}


@pytest.fixture
def cache(tmp_path) -> Path:
    make_ntu_raw(tmp_path / "raw", with_bad=False)
    return datasets.prepare("ntu60", tmp_path / "raw", tmp_path / "c", **QUIET)


def _siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.") and
                  not p.name.endswith(".lock"))


@pytest.mark.parametrize("exchange", [True, False])
def test_swap_folder(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(plumbing_files, "_exchange", lambda a, b: False)
    new, dst = tmp_path / "new", tmp_path / "dst"
    new.mkdir()
    (new / "x").write_text("new")
    assert swap_folder(new, dst) is None and (dst / "x").read_text() == "new"
    new.mkdir()
    (new / "x").write_text("newer")
    old = swap_folder(new, dst)
    assert (dst / "x").read_text() == "newer" and (old / "x").read_text() == "new"


def test_failed_rebuild_keeps_the_old_cache(cache, monkeypatch):
    before = datasets.open_cache(cache).names
    calls = {"n": 0}
    real = prepare_mod._read_one

    def dying(job):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk gone")
        return real(job)

    monkeypatch.setattr(prepare_mod, "_read_one", dying)
    with pytest.raises(RuntimeError):
        datasets.prepare("ntu60", cache.parent / "raw", cache, force=True, **QUIET)
    assert datasets.open_cache(cache).names == before       # still a whole, verified cache
    assert _siblings(cache) == []


def test_rebuild_from_other_raw_is_all_new_or_all_old(cache, tmp_path):
    raw2 = tmp_path / "raw2"
    text = ntu_text(random_ntu_frames(np.random.default_rng(5), 7))
    for name in ("S001C001P001R001A010", "S001C001P003R001A011", "S001C002P001R001A012"):
        write(raw2 / f"{name}.skeleton", text)
    datasets.prepare("ntu60", raw2, cache, **QUIET)
    c = datasets.open_cache(cache)
    assert c.names == ["S001C001P001R001A010", "S001C001P003R001A011", "S001C002P001R001A012"]
    assert c.meta["raw"] == str(raw2.resolve()) and set(c.lengths) == {7}
    assert _siblings(cache) == []


def test_second_prepare_on_the_same_out_is_refused(cache, capsys):
    with file_lock(cache.parent / f".{cache.name}.prepare.lock"):
        with pytest.raises(ValueError, match="another prepare is writing this cache now"):
            datasets.prepare("ntu60", cache.parent / "raw", cache, force=True, **QUIET)
        assert cli(["prepare", "ntu60", "--raw", str(cache.parent / "raw"), "--out", str(cache), "--force"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "another prepare is writing" in err[0]
    assert len(datasets.open_cache(cache)) == 6


def test_temp_folders_of_a_killed_prepare_are_removed_next_time(cache):
    stale = cache.parent / f".{cache.name}.tmp-dead"
    stale.mkdir()
    (stale / "data.bin").write_bytes(b"\0" * 4096)
    datasets.prepare("ntu60", cache.parent / "raw", cache, force=True, **QUIET)
    assert not stale.exists() and _siblings(cache) == []


def test_all_bad_inputs_leave_the_old_cache_untouched(cache, tmp_path):
    bad = tmp_path / "bad_raw"
    write(bad / "S001C001P001R001A001.skeleton", "not a skeleton\n")
    with pytest.raises(ValueError, match="none of the 1 input file"):
        datasets.prepare("ntu60", bad, cache, **QUIET)
    assert len(datasets.open_cache(cache)) == 6
    assert (cache.parent / f"{cache.name}.bad_files.txt").exists()


def test_prepared_cache_has_the_usual_mode(cache):
    assert (os.stat(cache).st_mode & 0o777) == (0o777 & ~plumbing_files._umask())
