"""NTU RGB+D ``.skeleton`` reader, vectorised over the whole file (data.md has the format).

Why not a line loop: each file holds ~100-300 frames x 25 joint lines; NTU-120 has 114k files.
We tokenise the file once (``_text.scan``), classify every line by its token count (1 = a
count, 10 = body info, 12 = joint), find the frame headers (count lines that do not follow a
body-info line), rebuild the layout those headers imply and compare it with the file in one
vectorised step. Any difference is reported with its line number. Then x, y, z (the first three
fields of each joint line) and the 64-bit body ids are parsed for all lines at once.

Body slot m of frame t is the m-th body listed in that frame (the ST-GCN convention: no
tracking by bodyID, no energy sort); bodies beyond ``max_bodies`` are dropped.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SkeletonFormatError
from ._text import checked_float32, checked_integers, parse_tokens, read_bytes as _read_bytes, scan

NUM_JOINTS = 25
BODY_FIELDS = 10
JOINT_FIELDS = 12
_LINES_PER_BODY = 2 + NUM_JOINTS        # body-info line, joint-count line, 25 joint lines
_MAX_BODIES_PER_FRAME = 64              # anything above is a corrupt count, not a crowd
_KIND = {1: "a count (1 value)", BODY_FIELDS: "a body-info line (10 values)",
         JOINT_FIELDS: "a joint line (12 values)"}


@dataclass
class NTUSkeleton:
    """Everything the reader extracts from one file."""

    xyz: np.ndarray               # float32 (T, max_bodies, 25, 3), zeros where no body
    body_ids: np.ndarray          # int64 (T, max_bodies), 0 where no body
    bodies_per_frame: np.ndarray  # int64 (T,), as listed in the file (may exceed max_bodies)

    @property
    def num_frames(self) -> int:
        return int(self.xyz.shape[0])


def _describe(count: int) -> str:
    return f"{count} value" + ("" if count == 1 else "s")


def parse_ntu_skeleton(path=None, max_bodies: int = 2, *, raw: bytes | None = None) -> NTUSkeleton:
    """Parse one NTU ``.skeleton`` file (or its bytes via ``raw=``, ``path`` used in messages)."""
    if max_bodies < 1:
        raise ValueError(f"max_bodies must be >= 1, got {max_bodies}")
    name = str(path) if path is not None else "<bytes>"
    if raw is None:
        raw = _read_bytes(path)
    tok = scan(raw, name)
    rec = np.flatnonzero(tok.line_count > 0)           # non-blank lines ("records")
    if len(rec) == 0:
        raise SkeletonFormatError(name, 1, "empty file", "expected the frame count on line 1")
    cnt = tok.line_count[rec]
    first = tok.line_first[rec]

    def line(r: int) -> int:                             # record -> 1-based line number
        return int(rec[r]) + 1

    if cnt[0] != 1:
        raise SkeletonFormatError(name, line(0), f"expected the frame count (1 value), found {_describe(cnt[0])}")

    # one parse of every token we use, chosen by line kind: counts, body-info lines, x y z
    count_rec = np.flatnonzero(cnt == 1)
    body_rec = np.flatnonzero(cnt == BODY_FIELDS)
    joint_rec = np.flatnonzero(cnt == JOINT_FIELDS)
    n_c, n_b = len(count_rec), len(body_rec)
    wanted = np.concatenate([first[count_rec],
                             (first[body_rec][:, None] + np.arange(BODY_FIELDS)).ravel(),
                             (first[joint_rec][:, None] + np.arange(3)).ravel()])
    parsed = parse_tokens(tok, wanted)

    counts = np.zeros(len(cnt), dtype=np.int64)         # value of every 1-token record
    counts[count_rec] = checked_integers(tok, wanted, parsed, slice(0, n_c))
    num_frames = int(counts[0])
    if num_frames <= 0:
        raise SkeletonFormatError(name, line(0), f"the file declares {num_frames} frames",
                                  "a sequence needs at least one frame; list the sample as missing")

    # joint counts (the count line after each body-info line) must say 25
    jc_rec = body_rec + 1
    jc_rec = jc_rec[jc_rec < len(cnt)]
    jc_rec = jc_rec[cnt[jc_rec] == 1]
    wrong = np.flatnonzero(counts[jc_rec] != NUM_JOINTS)
    if len(wrong):
        r = int(jc_rec[wrong[0]])
        raise SkeletonFormatError(name, line(r), f"a body with {int(counts[r])} joints, expected {NUM_JOINTS}",
                                  "NTU RGB+D skeletons have 25 Kinect v2 joints")

    # frame headers: count lines not directly after a body-info line (record 0 is the file header)
    after_body = np.zeros(len(cnt), dtype=bool)
    after_body[1:] = cnt[:-1] == BODY_FIELDS
    headers = np.flatnonzero((cnt == 1) & ~after_body)[1:]
    used = min(num_frames, len(headers))
    nb = counts[headers[:used]]
    bad_nb = np.flatnonzero((nb < 0) | (nb > _MAX_BODIES_PER_FRAME))
    if len(bad_nb):
        k = int(bad_nb[0])
        raise SkeletonFormatError(name, line(int(headers[k])), f"frame {k + 1} declares {int(nb[k])} bodies",
                                  f"expected 0..{_MAX_BODIES_PER_FRAME}")

    # the layout the headers imply, compared with the file's line kinds in one go
    n_bodies = int(nb.sum())
    body_before = np.concatenate([[0], np.cumsum(nb)[:-1]]).astype(np.int64)
    hpos = 1 + np.arange(used, dtype=np.int64) + _LINES_PER_BODY * body_before
    frame_of_body = np.repeat(np.arange(used, dtype=np.int64), nb)
    slot = np.arange(n_bodies, dtype=np.int64) - body_before[frame_of_body]
    bpos = hpos[frame_of_body] + 1 + _LINES_PER_BODY * slot
    total = 1 + used + _LINES_PER_BODY * n_bodies
    expected = np.full(total, JOINT_FIELDS, dtype=np.int64)
    expected[0] = 1
    expected[hpos] = 1
    expected[bpos] = BODY_FIELDS
    expected[bpos + 1] = 1
    common = min(total, len(cnt))
    diff = np.flatnonzero(expected[:common] != cnt[:common])
    if len(diff):
        r = int(diff[0])
        frame = int(np.searchsorted(hpos, r, side="right"))
        raise SkeletonFormatError(name, line(r),
                                  f"expected {_KIND[int(expected[r])]}, found {_describe(int(cnt[r]))}"
                                  + (f" (in frame {frame})" if frame else ""),
                                  "truncated, wrong joint/body count, or not an NTU .skeleton file")
    if total > len(cnt) or used < num_frames:
        raise SkeletonFormatError(name, line(len(cnt) - 1) + 1,
                                  f"file ends early: {num_frames} frames declared, the file stops in or before frame {used}",
                                  "the file is truncated; re-extract it")
    if len(cnt) > total:
        raise SkeletonFormatError(name, line(total), f"unexpected data after the last of {num_frames} frames",
                                  "the frame count on line 1 is wrong or files were concatenated")

    # the layout matches, so body and joint records are exactly the ones parsed above, in order
    ids = checked_integers(tok, wanted, parsed, slice(n_c, n_c + n_b * BODY_FIELDS, BODY_FIELDS))
    first_xyz = n_c + n_b * BODY_FIELDS
    xyz = checked_float32(tok, wanted[first_xyz:], parsed.value[first_xyz:]).reshape(n_bodies, NUM_JOINTS, 3)

    out = np.zeros((num_frames, max_bodies, NUM_JOINTS, 3), dtype=np.float32)
    out_ids = np.zeros((num_frames, max_bodies), dtype=np.int64)
    keep = slot < max_bodies
    out[frame_of_body[keep], slot[keep]] = xyz[keep]
    out_ids[frame_of_body[keep], slot[keep]] = ids[keep]
    return NTUSkeleton(out, out_ids, nb.astype(np.int64))


def read_ntu_skeleton(path, max_bodies: int = 2) -> np.ndarray:
    """float32 ``(T, max_bodies, 25, 3)`` camera-space x, y, z in metres, zero-padded bodies."""
    return parse_ntu_skeleton(path, max_bodies).xyz

