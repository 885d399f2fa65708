"""Reader speed: the vectorised reader vs line-by-line Python readers (pytest-benchmark).

CI runs these once (``--benchmark-disable``) as correctness checks; to measure, run
``python -m pytest tests/datasets/test_data_bench.py --benchmark-enable`` or ``python tests/datasets/test_data_bench.py``
(prints the table recorded in docs/data.md). No timing is asserted.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import datasets  # noqa: E402
from tests.support import FIXTURES, ntu_text, random_ntu_frames, simple_read_ntu, write  # noqa: E402

_BODY_KEYS = ("bodyID", "clipedEdges", "handLeftConfidence", "handLeftState", "handRightConfidence",
              "handRightState", "isRestricted", "leanX", "leanY", "trackingState")
_JOINT_KEYS = ("x", "y", "z", "depthX", "depthY", "colorX", "colorY", "orientationW", "orientationX",
               "orientationY", "orientationZ", "trackingState")


def dict_read_ntu(path, max_bodies=2) -> np.ndarray:
    """The common line-by-line reader of the ST-GCN-family preparation scripts: every field of
    every line into a dict, then x, y, z copied into the array."""
    with open(path) as f:
        frames = []
        for _ in range(int(f.readline())):
            bodies = []
            for _ in range(int(f.readline())):
                body = {k: float(v) for k, v in zip(_BODY_KEYS, f.readline().split())}
                body["joints"] = [{k: float(v) for k, v in zip(_JOINT_KEYS, f.readline().split())}
                                  for _ in range(int(f.readline()))]
                bodies.append(body)
            frames.append(bodies)
    out = np.zeros((len(frames), max_bodies, 25, 3), np.float32)
    for t, bodies in enumerate(frames):
        for m, body in enumerate(bodies[:max_bodies]):
            for j, joint in enumerate(body["joints"][:25]):
                out[t, m, j] = (joint["x"], joint["y"], joint["z"])
    return out


def simple_read_pku(path) -> np.ndarray:
    """Line-by-line PKU-MMD reader: float() of every value of every line."""
    with open(path) as f:
        rows = [[float(v) for v in line.split()] for line in f if line.strip()]
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), 2, 25, 3)


def _files(tmp_dir: Path | None = None) -> list[Path]:
    real = sorted((FIXTURES / "ntu60").glob("*.skeleton"))
    if real:
        return real
    if tmp_dir is None:
        return []
    rng = np.random.default_rng(0)
    return [write(tmp_dir / f"S001C001P001R001A00{a}.skeleton", ntu_text(random_ntu_frames(rng, 100)))
            for a in range(1, 4)]


@pytest.fixture(scope="module")
def ntu_files(tmp_path_factory):
    return _files(tmp_path_factory.mktemp("bench"))


def _read_all(reader, files):
    return [reader(p) for p in files]


@pytest.mark.parametrize("reader", [datasets.read_ntu_skeleton, simple_read_ntu, dict_read_ntu],
                         ids=["vectorised", "line-by-line-xyz", "line-by-line-dict"])
def test_bench_ntu_readers(benchmark, reader, ntu_files):
    out = benchmark(_read_all, reader, ntu_files)
    ref = _read_all(simple_read_ntu, ntu_files)
    assert all(np.array_equal(a, b) for a, b in zip(out, ref))


def test_bench_pku_reader(benchmark):
    path = FIXTURES / "pkummd" / "A10N08-L.txt"
    if not path.exists():
        pytest.skip(f"{path} not found (../shared/fixtures is absent)")
    x = benchmark(datasets.read_pku_skeleton, path)
    assert x.shape == (1040, 2, 25, 3) and np.array_equal(x, simple_read_pku(path))


def measure(repeats: int = 30, clock=time.process_time) -> dict:
    """Best-of-``repeats`` seconds to read every fixture once, per reader (interleaved).

    ``clock=time.process_time`` counts this process's CPU time, so that other jobs on a shared
    machine do not count (pass ``time.perf_counter`` for wall time).
    """
    files = _files()
    if not files:
        raise SystemExit("../shared/fixtures/ntu60 is absent: nothing to measure")
    readers = {"vectorised": datasets.read_ntu_skeleton, "line-by-line (x,y,z only)": simple_read_ntu,
               "line-by-line (dict of all fields)": dict_read_ntu}
    best = {k: float("inf") for k in readers}
    for _ in range(repeats):
        for name, fn in readers.items():
            t0 = clock()
            _read_all(fn, files)
            best[name] = min(best[name], clock() - t0)
    res = {"files": len(files), "frames": sum(len(datasets.read_ntu_skeleton(p)) for p in files), **best}
    pku = FIXTURES / "pkummd" / "A10N08-L.txt"
    if pku.exists():
        for name, fn in (("pku vectorised", datasets.read_pku_skeleton), ("pku line-by-line", simple_read_pku)):
            res[name] = min(_timed(clock, fn, pku) for _ in range(max(repeats // 3, 3)))
    return res


def _timed(clock, fn, *args) -> float:
    t0 = clock()
    fn(*args)
    return clock() - t0


def _print(res: dict, title: str) -> None:
    fast = res["vectorised"]
    print(f"{title}: {res['files']} NTU fixture files, {res['frames']} frames (CPU time, best of 30 runs)")
    for name in ("vectorised", "line-by-line (x,y,z only)", "line-by-line (dict of all fields)"):
        print(f"  {name:36s} {res[name] * 1e3:8.2f} ms   x{res[name] / fast:5.1f}")
    if "pku vectorised" in res:
        print("  PKU-MMD fixture A10N08-L.txt, 1,040 frames x 150 values:")
        for name in ("pku vectorised", "pku line-by-line"):
            print(f"  {name:36s} {res[name] * 1e3:8.2f} ms   x{res[name] / res['pku vectorised']:5.1f}")


if __name__ == "__main__":
    _print(measure(), "default malloc")
    from datasets._malloc import tune_malloc
    if tune_malloc():
        _print(measure(), "tuned malloc (as python -m datasets prepare runs)")

