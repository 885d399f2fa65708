"""Per-sample outputs (issue 28, item 1): every evaluation keeps an ``outputs.npz`` artifact with
its sha256 in the record, and the record's metrics are reproduced from it exactly."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

import datasets
from benchmarks.config import make_run_config
from benchmarks.metrics import paired as P
from benchmarks.runner.records import write_artifacts
from benchmarks.tasks import TaskContext, TaskOutput, detection, prediction, recognition
from reports.records import problem
from tests.support import CACHE as TEST_CACHE


@pytest.fixture(scope="module")
def world():
    return datasets.ensure_synthetic(TEST_CACHE / "synthetic-small", size="small", seed=0, progress=False)


def _ctx(cache, task_config, rows):
    return TaskContext(method_name="zero-velocity", make_method=None, pretrained=False,
                       train_cache=cache, test_cache=cache, train_rows=rows, test_rows=rows, task_config=task_config,
                       device=torch.device("cpu"), seed=0, progress=False)


def test_outputs_artifact_written_with_its_sha256(tmp_path):
    outputs = {"names": np.asarray(["a", "b"]), "rank": np.asarray([0, 3], dtype=np.int16)}
    written = write_artifacts(tmp_path, "run1", {"outputs": outputs, "timelines": {"x": np.zeros(3)}})
    assert written["outputs"] == "artifacts/run1/outputs.npz"
    data = (tmp_path / written["outputs"]).read_bytes()
    assert written["outputs_sha256"] == hashlib.sha256(data).hexdigest()
    assert written["timelines_sha256"] == hashlib.sha256((tmp_path / written["timelines"]).read_bytes()).hexdigest()
    with np.load(tmp_path / written["outputs"], allow_pickle=False) as z:   # no pickled objects
        assert z["names"].tolist() == ["a", "b"] and z["rank"].tolist() == [0, 3]
    # the record's artifacts block stays {name: text}: readers old and new accept it, and a record
    # written before outputs existed (no "outputs" key) is as valid as ever
    base = {"task": "recognition", "dataset": "d", "label_fraction": 1.0, "metrics": {"top1": 1.0}}
    assert problem({**base, "artifacts": written}) is None
    assert problem({**base, "artifacts": {"timelines": "artifacts/old/timelines.npz"}}) is None


def test_prediction_outputs_reproduce_every_mpjpe(world):
    ntu = world["ntu"]
    cfg = make_run_config("ci").prediction
    rows = ntu.indices(cfg.split, "test")
    out = prediction.zero_velocity(_ctx(ntu, cfg, rows))
    per = out.artifacts["outputs"]
    err = per["frame_error"]
    assert err.shape == (len(per["names"]), cfg.predict) and len(set(per["names"])) == len(per["names"])
    assert set(per["names"]) <= set(ntu.manifest["name"].to_numpy(dtype=str)[rows])
    assert err.mean() == pytest.approx(out.metrics["mpjpe"], rel=1e-12)
    for h in per["horizons"]:
        assert err[:, h - 1].mean() == pytest.approx(out.metrics[f"mpjpe@{h}"], rel=1e-12)


def test_recognition_outputs_reproduce_top1_top5_and_keep_the_top5():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 8, 50)
    names = np.asarray([f"s{i:03d}" for i in range(50)])
    outs = [TaskOutput(metrics={}, outputs={"probs": rng.dirichlet(np.ones(8), size=50), "labels": labels,
                                            "names": names}) for _ in range(3)]
    combined = recognition.combine_streams(outs, None)
    per = combined.artifacts["outputs"]
    mean = np.mean([o.outputs["probs"] for o in outs], axis=0)
    assert per["names"].tolist() == names.tolist() and per["label"].tolist() == labels.tolist()
    assert 100 * np.mean(per["rank"] < 1) == pytest.approx(combined.metrics["top1"])
    assert 100 * np.mean(per["rank"] < 5) == pytest.approx(combined.metrics["top5"])
    assert (per["top5_index"][:, 0] == mean.argmax(1)).all()
    assert np.allclose(per["top5_prob"], np.sort(mean, axis=1)[:, ::-1][:, :5], atol=1e-6)
    # rank counts strictly higher scores, as topk_accuracy: a tie counts in the sample's favour
    assert P.true_rank([[0.5, 0.5, 0.0]], [1]).tolist() == [0]


def test_detection_outputs_reproduce_map_and_frame_accuracy(world):
    pku = world["pkummd"]
    cfg = make_run_config("ci").detection
    rows = pku.indices(cfg.split, "test")
    rng = np.random.default_rng(1)
    per_video = {}
    for name, row in zip(np.asarray(pku.manifest["name"].to_numpy(dtype=str))[rows], rows):
        gt = pku.frame_labels(int(row))
        logits = 6.0 * np.eye(pku.num_classes + 1)[gt] + rng.normal(0, 0.5, (len(gt), pku.num_classes + 1))
        per_video[name] = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    out = detection._finish(per_video, _ctx(pku, cfg, rows))
    per = out.artifacts["outputs"]
    assert per["names"].tolist() == list(per_video)
    assert per["frame_offsets"][-1] == sum(len(p) for p in per_video.values())
    entries = P.video_entries(per)
    n = len(entries)
    assert 100 * P.detection_map_a(entries, np.ones(n, int), int(per["num_classes"]), float(per["theta"])) \
        == out.metrics["mAP_a"]
    assert 100 * P.video_ap(entries, int(per["num_classes"]), float(per["theta"])).mean() \
        == pytest.approx(out.metrics["mAP_v"], abs=1e-9)
    assert 100 * np.mean(per["frame_pred"] == per["frame_gt"]) == pytest.approx(out.metrics["frame_acc"], abs=1e-9)
    assert out.metrics["mAP_a"] > 0   # the planted predictions detect something: the check is not vacuous
