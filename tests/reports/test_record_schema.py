"""The record schema in one place: what the runner writes (reports.records.Record) is what the
one reader (reports.records.load) accepts, field for field."""
from __future__ import annotations

import dataclasses
import json
import math

from benchmarks.runner.records import write_record
from reports.records import Record, load, problem


def _record(**changes) -> Record:
    base = Record(run_id="r1-hitrs-detection", method="hitrs", variant="hitrs-3s", stream="3s", levels="F+C+V",
                  task="detection", dataset="synthetic-pkummd", split="xsub", label_fraction=0.1, seed=3,
                  profile="ci", precision="fp32", smoke=False,
                  metrics={"mAP_a": 31.5, "mAP_v": float("nan"), "f1": None}, config={"method": {}},
                  config_sha256="ab" * 32, subset=None, pretrain=None, protocol={"world_size": 1},
                  provenance={"finished_at": "2026-11-29T20:00:00Z"}, artifacts={},
                  streams=["joint", "motion", "bone"])
    return dataclasses.replace(base, **changes)


def test_written_record_is_read_back_unchanged(tmp_path):
    record = _record()
    path = write_record(tmp_path, record)
    on_disk = json.loads(path.read_text())
    assert problem(on_disk) is None
    assert on_disk["metrics"] == {"mAP_a": 31.5, "mAP_v": None, "f1": None}   # non-finite -> null
    assert "plugins" not in on_disk and on_disk["streams"] == ["joint", "motion", "bone"]
    (loaded,) = load(tmp_path).records
    loaded.pop("_path")
    assert loaded == on_disk
    fields = {f.name for f in dataclasses.fields(Record)} - {"plugins"}
    assert set(on_disk) == fields


def test_every_field_the_reader_checks_is_a_record_field():
    broken = _record().to_json()
    for key in ("task", "dataset", "label_fraction", "metrics"):
        assert key in {f.name for f in dataclasses.fields(Record)}
        assert problem({k: v for k, v in broken.items() if k != key}) is not None
    assert problem({**broken, "seed": "three"}) is not None
    assert math.isnan(_record().metrics["mAP_v"])   # the dataclass keeps what the task returned
