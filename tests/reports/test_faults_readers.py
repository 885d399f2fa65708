"""Fault injection on the readers (issue 26, item 4): any record / log / artifact file -- deep
nesting, NaN, wrong types anywhere, FIFOs, folders, devices -- is skipped and listed, never a
traceback or a hang; text going into CSV and Markdown is escaped for its format."""
from __future__ import annotations

import csv
import io
import json
import os
import signal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plumbing.files import UnreadableFileError, parse_json, read_json
from reports import summary
from reports.build import build
from reports.records import load
from tests.support import Results


@pytest.fixture(autouse=True)
def no_hang():
    """A reader that blocks (on a FIFO) fails the test instead of hanging the suite."""
    def boom(*_):
        raise TimeoutError("a reader blocked")
    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture
def res(tmp_path) -> Results:
    r = Results(tmp_path)
    r.add("hitrs", "hitrs", "joint", "F+C+V", "detection", 1.0, 0, {"mAP_a": 30.0, "mAP_v": 40.0})
    return r


def _everything_survives(root: Path, capsys, bad: list[str]) -> None:
    """load, the summary (function and command) and the report: the good record kept, each bad
    file listed once by name, no traceback."""
    loaded = load(root)
    assert [r["run_id"] for r in loaded.records] == ["r0001-hitrs-detection"]
    assert sorted(Path(s.split(": ")[0]).name for s in loaded.skipped) == sorted(bad)
    assert all("\n" not in s for s in loaded.skipped)
    assert summary.main(["--results", str(root)]) == 0
    info = build(root, root / "report")
    assert len(info["skipped"]) == len(bad)
    err = capsys.readouterr().err
    assert "Traceback" not in err and all(name in err for name in bad)


def test_deeply_nested_record_is_skipped_everywhere(res, capsys):
    (res.root / "records" / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    (res.root / "records" / "deep_object.json").write_text('{"a":' * 100 + "1" + "}" * 100)
    _everything_survives(res.root, capsys, ["deep.json", "deep_object.json"])
    assert any("nested deeper than" in s for s in load(res.root).skipped)


def test_fifo_and_folder_named_like_records_never_block(res, capsys):
    os.mkfifo(res.root / "records" / "x.json")
    (res.root / "records" / "dir.json").mkdir()
    _everything_survives(res.root, capsys, ["x.json", "dir.json"])
    assert any("a FIFO, not a regular file" in s for s in load(res.root).skipped)


def test_device_linked_as_a_record_is_not_read(res, capsys):
    (res.root / "records" / "zero.json").symlink_to("/dev/zero")
    _everything_survives(res.root, capsys, ["zero.json"])


@pytest.mark.parametrize("field, value", [
    ("provenance", {"finished_at": 5}), ("artifacts", {"timelines": 7}), ("pretrain", {"id": 1, "log": "x"}),
    ("pretrain", {"id": "p", "log": ["x"]}), ("subset", {"path": {}}), ("config_sha256", 12),
])
def test_wrong_typed_nested_fields_are_skipped(res, capsys, field, value):
    rec = {**res.records[0], "run_id": "bad", field: value}
    (res.root / "records" / "bad.json").write_text(json.dumps(rec))
    _everything_survives(res.root, capsys, ["bad.json"])


def test_nan_and_overflowing_numbers_become_null(res, capsys):
    rec = dict(res.records[0])
    text = json.dumps({**rec, "run_id": "n1", "metrics": {"mAP_a": 1.0, "mAP_v": 2.0}})
    text = text.replace('"mAP_a": 1.0', '"mAP_a": NaN').replace('"mAP_v": 2.0', '"mAP_v": 1e999')
    (res.root / "records" / "nan.json").write_text(text)
    (res.root / "records" / "fraction.json").write_text(json.dumps({**rec, "run_id": "f"}).replace(
        '"label_fraction": 1.0', '"label_fraction": NaN'))
    loaded = load(res.root)
    nan = next(r for r in loaded.records if r["run_id"] == "n1")
    assert nan["metrics"] == {"mAP_a": None, "mAP_v": None}
    assert [Path(s.split(": ")[0]).name for s in loaded.skipped] == ["fraction.json"]
    assert summary.main(["--results", str(res.root)]) == 0
    row = next(r for r in csv.DictReader(io.StringIO((res.root / "summary.csv").read_text())) if r["run_id"] == "n1")
    assert row["mAP_a"] == row["mAP_v"] == ""


def test_parse_json_refuses_what_is_not_plain_json(tmp_path):
    for text, why in [("[" * 100 + "]" * 100, "nested deeper"), (b"\xff\xfe", "not UTF-8"), ("{", "not JSON"),
                      ("1" * 5000, "not JSON")]:
        with pytest.raises(UnreadableFileError, match=why):
            parse_json(text)
    (tmp_path / "big.json").write_text("[" + "0," * 100 + "0]")
    with pytest.raises(UnreadableFileError, match="larger than"):
        read_json(tmp_path / "big.json", max_bytes=50)
    assert parse_json('{"a": [Infinity, -Infinity, NaN]}') == {"a": [None, None, None]}


def test_formula_text_in_summary_csv_is_neutralised(res):
    formula = '=HYPERLINK("http://evil","x")'
    rec = {**res.records[0], "run_id": "r2", "variant": formula, "levels": "-", "seed": 1,
           "metrics": {"@SUM(1)": 1.0, "mAP_a": -3.5}, "dataset": "+cmd|' /C calc'!A0", "split": "-x", "profile": "@ci"}
    (res.root / "records" / "r2.json").write_text(json.dumps(rec))
    assert summary.main(["--results", str(res.root)]) == 0
    rows = list(csv.DictReader(io.StringIO((res.root / "summary.csv").read_text())))
    row = next(r for r in rows if r["seed"] == "1")
    assert row["variant"] == "'" + formula
    assert row["dataset"].startswith("'+") and row["split"] == "'-x" and row["profile"] == "'@ci"
    assert row["levels"] == "-" and row["mAP_a"] == "-3.5"          # the lone '-' and numbers stay as they are
    assert "'@SUM(1)" in rows[0] and "@SUM(1)" not in rows[0]
    cells = [v for r in rows for v in r.values() if v] + list(rows[0])
    assert not [c for c in cells if c[0] in "=+@" or (c[0] == "-" and c != "-" and not c[1:2].isdigit())]


def test_tables_csv_is_neutralised_and_markdown_escaped(res):
    res.add("hitrs", "hitrs", "joint", "F+C+V", "detection", 1.0, 1, {"mAP_a": 1.0},
            dataset="<script>alert(1)</script>|x", split="=1+1", profile="ci")
    info = build(res.root, res.root / "report")
    md = "\n".join(Path(p).read_text() for paths in info["tables"].values() for p in paths if p.endswith(".md"))
    assert "<script>" not in md and "&lt;script&gt;" in md and "\\|x" in md
    for paths in info["tables"].values():
        for p in (p for p in paths if p.endswith(".csv")):
            for row in csv.reader(io.StringIO(Path(p).read_text())):
                assert not [c for c in row if c.startswith("=")], (p, row)


@pytest.mark.parametrize("plant", ["fifo", "deep", "text_step", "huge_line", "device"])
def test_bad_pretraining_logs_and_artifacts_never_stop_the_report(res, capsys, plant):
    log = res.root / "pretrain" / "p" / "pretrain.log"
    log.parent.mkdir(parents=True)
    arts = res.root / "artifacts" / "a"
    arts.mkdir(parents=True)
    if plant == "fifo":
        os.mkfifo(log)
        os.mkfifo(arts / "timelines.npz")
    elif plant == "device":
        log.symlink_to("/dev/zero")
        (arts / "timelines.npz").symlink_to("/dev/zero")
    else:
        line = {"deep": "[" * 100_000, "text_step": '{"step": "abc", "loss": 1}',
                "huge_line": '{"step": 1, "loss": "' + "x" * (3 * 2**20) + '"}'}[plant]
        log.write_text(line + '\n{"step": 2, "loss": 0.5}\n')
        (arts / "timelines.npz").write_text(line)
    rec = {**res.records[0], "run_id": "r2", "seed": 1, "pretrain": {"id": "p", "log": str(log)},
           "artifacts": {"timelines": "artifacts/a/timelines.npz"}}
    (res.root / "records" / "r2.json").write_text(json.dumps(rec))
    info = build(res.root, res.root / "report")
    assert info["records"] == 2
    assert "Traceback" not in capsys.readouterr().err


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                     max_leaves=6)


@settings(max_examples=40, deadline=None)
@given(field=st.sampled_from(["provenance", "pretrain", "subset", "artifacts", "config"]),
       key=st.sampled_from(["finished_at", "device", "id", "log", "path", "timelines", "predictions", "lr"]),
       value=_JSON)
def test_fuzz_nested_record_fields_never_crash_the_report(tmp_path_factory, field, key, value):
    root = tmp_path_factory.mktemp("res")
    r = Results(root)
    rec = r.add("hitrs", "hitrs", "joint", "F+C+V", "detection", 1.0, 0, {"mAP_a": 30.0})
    rec[field] = {**(rec.get(field) or {}), key: value}
    (root / "records" / f"{rec['run_id']}.json").write_text(json.dumps(rec))
    loaded = load(root)
    assert len(loaded.records) + len(loaded.skipped) == 1
    summary.write_summary(root, warn=lambda line: None)
    build(root, root / "report")
