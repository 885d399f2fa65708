"""benchmarks.perf: the ci-size CPU run's JSON, its contract with the GPU-hour estimator, the
synthetic input (lengths, batches, windows) and the pattern's padding. No timing asserts."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.config import make_run_config
from benchmarks.perf import __main__ as perf_cli
from benchmarks.perf import estimate, hardware, lengths, report
from benchmarks.engine.loader import Prefetch
from benchmarks.perf.measure import Pattern, measure
from benchmarks.perf.synthetic import random_walk_bank
from benchmarks.perf.workloads import build

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT.parent / "shared" / "fixtures" / "ntu60"


def _run(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks.perf", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def ci_result(tmp_path_factory):
    out = tmp_path_factory.mktemp("perf") / "hitrs_ci.json"
    proc = _run("--device", "cpu", "--profile", "ci", "--methods", "hitrs", "--phases", "pretrain,finetune",
                "--steps", "1", "--warmup", "0", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text()), proc.stdout, out


def test_ci_run_writes_device_tagged_rows(ci_result):
    data, stdout, _ = ci_result
    assert data["device"].startswith("CPU: ") and data["device_slug"].startswith("cpu-")
    assert data["torch"] == torch.__version__ and data["device_type"] == "cpu"
    cfg = data["config"]
    assert cfg["profile"] == "ci" and cfg["methods"] == ["hitrs"] and cfg["threads"] == 1
    assert cfg["patterns"] == ["ours", "reference"] and cfg["steps"] == 1
    assert {(r["phase"], r["pattern"]) for r in data["rows"]} == {
        ("pretrain", "ours"), ("pretrain", "reference"), ("finetune", "ours"), ("finetune", "reference")}
    for r in data["rows"]:
        assert r["method"] == "hitrs" and r["samples_per_s"] > 0 and r["timed_samples"] > 0
        assert r["peak_memory_bytes"] > 0 and r["memory_kind"].startswith("cpu_peak_rss")
        assert r["flops_per_sample"] > 0 and r["mfu"] is None          # MFU only on CUDA
        assert r["epoch_time_s"] == pytest.approx(r["epoch_samples"] / r["samples_per_s"], rel=1e-2, abs=0.2)
        assert r["pattern_settings"]["bf16"] is False                 # no autocast on CPU
    by = {(r["phase"], r["pattern"]): r for r in data["rows"]}
    assert by["pretrain", "ours"]["epoch_samples"] == estimate.NTU60_XSUB_TRAIN_BODIES   # single bodies
    assert by["finetune", "ours"]["epoch_samples"] == estimate.NTU60_XSUB_TRAIN
    assert by["finetune", "ours"]["batch_size"] == make_run_config("ci").recognition.batch_size
    # both patterns time the same samples (one epoch of the same bank)
    assert by["finetune", "ours"]["mean_length"] == by["finetune", "reference"]["mean_length"]
    assert by["pretrain", "reference"]["pattern_settings"]["data_parallel"] is True
    assert {(u["method"], u["phase"]) for u in data["speedups"]} == {("hitrs", "pretrain"), ("hitrs", "finetune")}
    dist = data["length_distribution"]
    assert dist["literature"] == {**dist["literature"], "mean": 80.0, "max": 300}
    assert 75 <= dist["sampled"]["mean"] <= 85 and dist["sampled"]["max"] <= 300
    lines = stdout.strip().splitlines()
    assert lines[-1].startswith("MFU peak") and any("speed-up" in line for line in lines)


def test_estimator_reads_the_files_perf_writes(ci_result, tmp_path):
    data, _, _ = ci_result
    (tmp_path / "cpu.json").write_text(json.dumps(data))               # CPU files never count
    rows, total, missing = estimate.estimate(tmp_path)
    assert total == 0 and "hitrs/pretrain" in missing
    gpu = {**data, "device": "NVIDIA H100 80GB HBM3", "config": {**data["config"], "profile": "paper"}}
    (tmp_path / "gpu.json").write_text(json.dumps(gpu))        # fp32 rows: not Hi-TRS's CUDA default (bf16)
    assert "hitrs/pretrain" in estimate.estimate(tmp_path)[2]
    gpu["rows"] = [{**r, "pattern_settings": {**r["pattern_settings"], "precision": "bf16"}} for r in data["rows"]]
    (tmp_path / "gpu.json").write_text(json.dumps(gpu))
    rows, total, missing = estimate.estimate(tmp_path)
    pre = [(w, h, src) for w, h, src in rows if w.method == "hitrs" and w.phase == "pretrain"]
    ours = next(r for r in data["rows"] if r["phase"] == "pretrain" and r["pattern"] == "ours")
    assert pre and all(h == pytest.approx(w.samples / ours["samples_per_s"] / 3600) for w, h, _ in pre)
    det = [src for w, h, src in rows if w.method == "hitrs" and w.phase == "detection"]
    assert det and all(src.endswith("finetune proxy") for src in det)   # no detection row in this file
    assert "hitrs/pretrain" not in missing and "mcc/pretrain" in missing and total > 0
    (tmp_path / "gpu.json").write_text(json.dumps({**gpu, "config": {**gpu["config"], "profile": "ci"}}))
    assert estimate.estimate(tmp_path)[1] == 0                          # ci-size models never count
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="broken.json"):
        estimate.estimate(tmp_path)


@pytest.mark.parametrize("argv, message", [
    (["--device", "cpu", "--methods", "nosuch"], "--methods 'nosuch': unknown nosuch; choose from crossclr, hitrs, mcc"),
    (["--device", "cpu", "--phases", "train"], "--phases 'train'"),
    (["--device", "cpu", "--set", "levels"], "expected KEY=VALUE"),
    (["--device", "tpu"], "expected cpu, meta or cuda"),
])
def test_bad_flags_name_the_flag(argv, message, tmp_path):
    threads = torch.get_num_threads()
    with pytest.raises(SystemExit, match=re.escape(message)):
        perf_cli.run(perf_cli.parse_args([*argv, "--out", str(tmp_path)]))
    assert torch.get_num_threads() == threads and not list(tmp_path.iterdir())


def test_cuda_request_without_cuda_is_an_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SystemExit, match="CUDA is not available"):
        hardware.resolve("cuda")


def test_length_model_matches_literature_mean_and_caps():
    a = lengths.sample_lengths(20_000, seed=3)
    assert 78 <= a.mean() <= 82 and a.max() <= 300 and a.min() >= lengths.MIN_FRAMES
    assert (a > 150).mean() > 0.02                                      # a real tail, not all near 80
    b = lengths.sample_lengths(1000, seed=3, max_frames=48)
    assert b.max() == 48 and np.array_equal(b, np.minimum(lengths.sample_lengths(1000, seed=3), 48))


def test_fixture_lengths_are_measured():
    if not FIXTURES.is_dir():
        pytest.skip(f"real NTU fixtures not available at {FIXTURES}")
    real, source = lengths.fixture_lengths(FIXTURES)
    assert sorted(real.tolist()) == [54, 99, 103, 104, 158] and "5 files" in source


def test_bank_batch_matches_per_sample_padding():
    lens = np.array([5, 9, 3, 7])
    bank = random_walk_bank(lens, bodies=2, seed=0, two_person_fraction=0.5)
    x, got = bank.batch([2, 0, 3])
    assert x.shape == (3, 7, 2, 25, 3) and got.tolist() == [3, 5, 7]
    for k, i in enumerate([2, 0, 3]):
        s, n = int(bank.starts[i]), int(lens[i])
        assert torch.equal(x[k, :n], bank.frames[s:s + n]) and not x[k, n:].any()
    walk = bank.frames[:5, 0]
    assert walk.diff(dim=0).abs().mean() > 0                             # every joint moves
    assert bank.frames[:, 0, :, 2].mean() > 2                          # about 3 m from the camera
    clips = bank.clips([1, 1], window=7, dilation=4, seed=1)
    assert clips.shape == (2, 7, 2, 25, 3)
    crops = bank.crops([1, 3], total=6, seed=2)
    assert crops.shape == (2, 6, 25, 3)
    with pytest.raises(ValueError, match="shorter than 6"):
        bank.crops([2], total=6)


def test_ours_batches_are_static_and_random_ones_sized_by_the_data():
    """ours: the engine's static layout (T = the profile's max_frames, the method's capacities);
    reference ("random"): each batch padded to its longest sample, no capacities."""
    wl = build("hitrs", "finetune", "ci", steps=8, seed=0)
    max_frames = wl.config["task"]["max_frames"]
    for order in ("bucketed", "random"):
        batches = wl.host_batches(order, False, 0)
        got = [next(batches) for _ in range(8)]
        assert sum(b.samples for b in got) == len(wl.lengths)            # the timed steps = one bank epoch
        for b in got:
            x, lengths = b.tensors[:2]
            if order == "bucketed":
                assert x.shape[1] == max_frames and set(b.capacities) == {"embed_clips"}
            else:
                assert x.shape[1] == int(lengths.max()) and b.capacities == {}


def test_peak_table_and_speedups():
    assert hardware.peak_for("NVIDIA H100 80GB HBM3")[0] == 989e12
    assert hardware.peak_for("NVIDIA H100 PCIe")[0] == 756e12
    assert hardware.peak_for("NVIDIA H200")[0] == 989e12
    assert hardware.peak_for("NVIDIA A100-SXM4-80GB")[0] == 312e12
    assert hardware.peak_for("NVIDIA GeForce GTX 1080")[0] is None
    rows = [{"method": "m", "phase": "pretrain", "pattern": "ours", "samples_per_s": 30.0},
            {"method": "m", "phase": "pretrain", "pattern": "reference", "samples_per_s": 10.0},
            {"method": "m", "phase": "finetune", "pattern": "ours", "samples_per_s": 5.0}]
    assert report.speedups(rows) == [{"method": "m", "phase": "pretrain", "ours_over_reference": 3.0}]


def test_cuda_pattern_plumbing_runs_on_cpu():
    """The CUDA fast path's host side (prefetch thread) and the reference's DataParallel wrapper
    run here with the same code; only autocast / pinning need a GPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        wl = build("mcc", "pretrain", "ci", steps=1, seed=0)
        info = hardware.resolve("cpu")
        pattern = Pattern("ours", bucketed=True, bf16=True, pinned=False, prefetch=True, compile=False,
                          data_parallel=True)
        row = measure(wl, pattern, info, steps=1, warmup=0, flops_per_sample=1e6)
    finally:
        torch.set_num_threads(threads)
    assert row["timed_samples"] == 8 and row["samples_per_s"] > 0 and row["pattern_settings"]["prefetch"]
    assert row["achieved_flops_per_s"] == pytest.approx(1e6 * row["samples_per_s"], rel=1e-3)


def test_prefetch_passes_errors_to_the_consumer():
    def source():
        yield 1
        raise RuntimeError("bank broke")

    fetch = Prefetch(source())
    try:
        assert next(fetch) == 1
        with pytest.raises(RuntimeError, match="bank broke"):
            next(fetch)
    finally:
        fetch.close()


def test_cuda_runs_keep_attention_off_cudnn():
    """configure() is what every run and perf measurement calls: on CUDA it turns the cuDNN SDPA
    backend off (it re-plans every new shape; measured 2.5x slower Hi-TRS pre-training)."""
    from benchmarks.engine import precision as numerics

    if not hasattr(torch.backends.cuda, "enable_cudnn_sdp"):
        pytest.skip(f"torch {torch.__version__} has no cuDNN SDPA switch")
    before = torch.backends.cuda.cudnn_sdp_enabled()
    try:
        torch.backends.cuda.enable_cudnn_sdp(True)
        numerics.configure("bf16", "cpu")
        assert torch.backends.cuda.cudnn_sdp_enabled()          # CPU runs leave the CUDA flags alone
        numerics.configure("bf16", "cuda")                       # sets flags only; needs no GPU
        assert not torch.backends.cuda.cudnn_sdp_enabled()
        assert torch.backends.cuda.flash_sdp_enabled() and torch.backends.cuda.mem_efficient_sdp_enabled()
    finally:
        torch.backends.cuda.enable_cudnn_sdp(before)


def test_profile_lists_the_operators_of_a_workload(capsys):
    from benchmarks.perf import profile as perf_profile

    threads = torch.get_num_threads()
    try:
        assert perf_profile.main(["--method", "mcc", "--phase", "detection", "--device", "cpu",
                                  "--warmup", "1", "--steps", "1", "--rows", "5"]) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "mcc/detection ours fp32" in out and "aten::" in out and "Self CPU" in out


@pytest.mark.parametrize("argv, message", [
    (["--method", "nosuch"], "invalid choice: 'nosuch'"),
    (["--method", "mcc", "--set", "levels"], "expected KEY=VALUE"),
    (["--method", "mcc", "--set", "nosuch=1"], "unknown setting 'nosuch'"),
])
def test_profile_refuses_bad_flags_with_exit_2(argv, message, capsys):
    from benchmarks.perf import profile as perf_profile

    try:
        code = perf_profile.main([*argv, "--device", "cpu"])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err.strip().splitlines()[-1]
