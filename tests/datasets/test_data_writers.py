"""Self-checks of the real-format writers in tests/support.py that the data-layer tests use."""
from __future__ import annotations

import numpy as np

from tests.support import expected_ntu_array, ntu_text, pku_text, random_ntu_frames, simple_read_ntu, write

# ----------------------------------------------------------------------------- self-checks
def test_writer_round_trips_through_the_simple_reader(tmp_path):
    rng = np.random.default_rng(0)
    frames = random_ntu_frames(rng, 4, [1, 0, 3, 2])
    p = write(tmp_path / "S001C001P001R001A001.skeleton", ntu_text(frames))
    np.testing.assert_array_equal(simple_read_ntu(p), expected_ntu_array(frames))


def test_pku_text_has_150_values_per_line():
    x = np.zeros((3, 2, 25, 3))
    assert [len(line.split()) for line in pku_text(x).splitlines()] == [150, 150, 150]
