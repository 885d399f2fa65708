"""Writers of small files in the REAL formats, for the data-layer tests (plus their own checks).

Kept deliberately plain (loops, f-strings): they are the independent statement of the formats
the vectorised readers must accept.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FIXTURES = SHARED / "fixtures"


def ntu_text(xyz_per_frame, body_ids=None, *, newline="\n", exp_every=0) -> str:
    """xyz_per_frame: list over frames of arrays (bodies, 25, 3). Real field layout, plausible
    values in the other fields; ``exp_every=k`` writes every k-th x in E-notation."""
    lines = [str(len(xyz_per_frame))]
    count = 0
    for t, bodies in enumerate(xyz_per_frame):
        lines.append(str(len(bodies)))
        for m, joints in enumerate(bodies):
            bid = body_ids[t][m] if body_ids is not None else 72057594037931101 + m
            lines.append(f"{bid} 0 1 1 1 1 0 0.02764709 0.05745083 2")
            lines.append("25")
            for j, (x, y, z) in enumerate(joints):
                count += 1
                xs = f"{x:.6E}" if exp_every and count % exp_every == 0 else f"{x:.7g}"
                lines.append(f"{xs} {y:.7g} {z:.7g} 277.419 191.8218 1036.233 519.1677 "
                             f"-0.2059419 0.05349901 0.9692109 -0.1239193 2")
    return newline.join(lines) + newline


def random_ntu_frames(rng, n_frames, bodies_per_frame=None):
    """Random camera-like skeletons, rounded to what 7 significant digits can hold."""
    if bodies_per_frame is None:
        bodies_per_frame = [1] * n_frames
    frames = []
    for nb in bodies_per_frame:
        arr = rng.normal(0.0, 0.3, size=(nb, 25, 3)) + np.array([0.0, 0.2, 3.5])
        frames.append(np.array([[[float(f"{v:.7g}") for v in joint] for joint in body] for body in arr]))
    return frames


def expected_ntu_array(frames, max_bodies=2):
    out = np.zeros((len(frames), max_bodies, 25, 3), dtype=np.float32)
    for t, bodies in enumerate(frames):
        for m, joints in enumerate(bodies[:max_bodies]):
            out[t, m] = joints
    return out


def pku_text(x: np.ndarray, *, leading_space=True) -> str:
    """x: (T, 2, 25, 3) -> one line of 150 numbers per frame."""
    pre = " " if leading_space else ""
    return "".join(pre + " ".join(f"{v:.6f}" for v in frame.ravel()) + "\n" for frame in x)


def pku_labels_text(rows) -> str:
    return "".join(",".join(str(int(v)) for v in r) + "\n" for r in rows)


def pku_split_text(train, test) -> str:
    return f"Training videos: \n{', '.join(train)}\nValidataion videos: \n{', '.join(test)}"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())
    return path


def simple_read_ntu(path, max_bodies=2) -> np.ndarray:
    """A plain line-by-line reader (x, y, z only): the baseline the fast reader is checked against."""
    with open(path) as f:
        num_frames = int(f.readline())
        out = np.zeros((num_frames, max_bodies, 25, 3), np.float32)
        for t in range(num_frames):
            for m in range(int(f.readline())):
                f.readline()
                for j in range(int(f.readline())):
                    vals = f.readline().split()
                    if m < max_bodies:
                        out[t, m, j] = [float(v) for v in vals[:3]]
    return out


# ----------------------------------------------------------------------------- self-checks
def test_writer_round_trips_through_the_simple_reader(tmp_path):
    rng = np.random.default_rng(0)
    frames = random_ntu_frames(rng, 4, [1, 0, 3, 2])
    p = write(tmp_path / "S001C001P001R001A001.skeleton", ntu_text(frames))
    np.testing.assert_array_equal(simple_read_ntu(p), expected_ntu_array(frames))


def test_pku_text_has_150_values_per_line():
    x = np.zeros((3, 2, 25, 3))
    assert [len(line.split()) for line in pku_text(x).splitlines()] == [150, 150, 150]
