"""The 25-joint Kinect v2 / NTU skeleton as a kinematic tree, subject body models and
vectorised forward kinematics.

Body frame: x = the performer's right, y = up, z = backwards (the performer faces -z, as a
person facing a Kinect does in its camera space). Every joint except the root carries the
rotation of the bone that ENDS at it, relative to its parent's bone frame, so a shoulder
angle lives on the elbow joint, a knee angle on the ankle joint, etc.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

JOINT_NAMES = (
    "spine_base", "spine_mid", "neck", "head",
    "l_shoulder", "l_elbow", "l_wrist", "l_hand",
    "r_shoulder", "r_elbow", "r_wrist", "r_hand",
    "l_hip", "l_knee", "l_ankle", "l_foot",
    "r_hip", "r_knee", "r_ankle", "r_foot",
    "spine_shoulder", "l_hand_tip", "l_thumb", "r_hand_tip", "r_thumb",
)
J = {name: i for i, name in enumerate(JOINT_NAMES)}

#: kinematic parent (0-based) of each joint; the root (spine base) is its own parent
PARENT = np.array([0, 0, 20, 2, 20, 4, 5, 6, 20, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18, 1, 7, 7, 11, 11])


def _depths(parent: np.ndarray) -> np.ndarray:
    depth = np.zeros(len(parent), dtype=int)
    for _ in range(len(parent)):  # fixed point over a 25-node tree, run once at import
        depth = np.where(np.arange(len(parent)) == 0, 0, depth[parent] + 1)
    return depth


DEPTH = _depths(PARENT)
#: joints grouped by tree depth: FK loops over these 7 levels, each level vectorised
LEVELS = tuple(np.flatnonzero(DEPTH == d) for d in range(1, DEPTH.max() + 1))

#: median bone lengths (cm) measured on real NTU files (spec/data.md), keyed by 1-based NTU pair
MEASURED_BONES_CM = {
    (1, 2): 26.7, (2, 21): 19.9, (3, 21): 6.6, (4, 3): 12.1, (5, 21): 14.3, (6, 5): 23.7,
    (7, 6): 21.8, (8, 7): 7.0, (9, 21): 13.0, (10, 9): 21.1, (11, 10): 21.1, (12, 11): 5.7,
    (13, 1): 5.4, (14, 13): 33.7, (15, 14): 33.0, (16, 15): 9.2, (17, 1): 7.7, (18, 17): 33.1,
    (19, 18): 34.0, (20, 19): 8.2, (22, 23): 3.9, (23, 8): 3.6, (24, 25): 5.9, (25, 12): 3.8,
}

HAND_TIP_CM = 7.0  # hand -> hand tip along the hand; not in the measured list (the tip's ST-GCN parent is the thumb)


def _thumb_offset(tip_thumb: float, thumb_hand: float) -> tuple[float, float]:
    """(along-hand, sideways) thumb offset giving the measured tip-thumb and thumb-hand lengths."""
    along = (HAND_TIP_CM ** 2 - (tip_thumb ** 2 - thumb_hand ** 2)) / (2 * HAND_TIP_CM)
    return along, float(np.sqrt(thumb_hand ** 2 - along ** 2))


def _unit(*v: float) -> np.ndarray:
    a = np.array(v, dtype=float)
    return a / np.linalg.norm(a)


def _rest_offsets_cm() -> np.ndarray:
    """Rest pose (standing, arms hanging, thumbs forward) as offsets from the kinematic parent."""
    b = {k: v for k, v in MEASURED_BONES_CM.items()}
    off = np.zeros((25, 3))
    down, fwd = _unit(0, -1, 0), _unit(0, 0, -1)
    spec = {
        1: (b[(1, 2)], _unit(0, 1, 0.03)), 20: (b[(2, 21)], _unit(0, 1, -0.05)),
        2: (b[(3, 21)], _unit(0, 1, 0)), 3: (b[(4, 3)], _unit(0, 1, -0.05)),
        4: (b[(5, 21)], _unit(-1, -0.25, 0.05)), 5: (b[(6, 5)], down), 6: (b[(7, 6)], down), 7: (b[(8, 7)], down),
        8: (b[(9, 21)], _unit(1, -0.25, 0.05)), 9: (b[(10, 9)], down), 10: (b[(11, 10)], down), 11: (b[(12, 11)], down),
        12: (b[(13, 1)], _unit(-0.8, -0.6, 0)), 13: (b[(14, 13)], down), 14: (b[(15, 14)], down),
        15: (b[(16, 15)], _unit(0, -0.35, -1)),
        16: (b[(17, 1)], _unit(0.8, -0.6, 0)), 17: (b[(18, 17)], down), 18: (b[(19, 18)], down),
        19: (b[(20, 19)], _unit(0, -0.35, -1)),
        21: (HAND_TIP_CM, down), 23: (HAND_TIP_CM, down),
    }
    for j, (length, direction) in spec.items():
        off[j] = length * direction
    for thumb, (tip_thumb, thumb_hand) in ((22, (b[(22, 23)], b[(23, 8)])), (24, (b[(24, 25)], b[(25, 12)]))):
        along, side = _thumb_offset(tip_thumb, thumb_hand)
        off[thumb] = along * down + side * fwd
    return off


REST_OFFSETS = _rest_offsets_cm() / 100.0  # metres

# bone groups scaled together by a subject's proportions
_GROUPS = {
    "torso": [1, 20], "neck": [2, 3], "shoulder": [4, 8], "upper_arm": [5, 9], "forearm": [6, 10],
    "hand": [7, 11, 21, 22, 23, 24], "hip": [12, 16], "thigh": [13, 17], "shank": [14, 18], "foot": [15, 19],
}


@dataclass(frozen=True)
class Subject:
    """One performer: bone offsets (25, 3) in metres and an idle-posture style (degrees)."""
    sid: int
    offsets: np.ndarray
    style: dict


def make_subject(sid: int, rng: np.random.Generator) -> Subject:
    """Random body proportions (height +-12 %, segment groups +-4-6 %) and idle style."""
    height = rng.uniform(0.88, 1.12)
    scale = np.full(25, height)
    for name, idx in _GROUPS.items():
        sd = 0.06 if name in ("shoulder", "hip") else 0.04
        scale[idx] *= np.clip(rng.normal(1.0, sd), 1 - 2 * sd, 1 + 2 * sd)
    style = {
        "L_sh_abd": rng.uniform(3, 12), "R_sh_abd": rng.uniform(3, 12),
        "L_elbow": rng.uniform(4, 20), "R_elbow": rng.uniform(4, 20),
        "L_hip_abd": rng.uniform(1, 7), "R_hip_abd": rng.uniform(1, 7),
        "L_hip_yaw": rng.uniform(0, 12), "R_hip_yaw": rng.uniform(0, 12),
        "lumbar_fwd": rng.uniform(-3, 6), "neck_fwd": rng.uniform(-4, 10), "head_tilt": rng.normal(0, 3),
        "tempo": rng.uniform(0.9, 1.1), "vigour": rng.uniform(0.9, 1.1), "sway": rng.uniform(0.5, 1.5),
    }
    return Subject(sid, REST_OFFSETS * scale[:, None], style)


def rot_x(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([o, z, z, z, c, -s, z, s, c], -1).reshape(a.shape + (3, 3))


def rot_y(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([c, z, s, z, o, z, -s, z, c], -1).reshape(a.shape + (3, 3))


def rot_z(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([c, -s, z, s, c, z, z, z, o], -1).reshape(a.shape + (3, 3))


def local_rotations(params: np.ndarray) -> np.ndarray:
    """(..., 4) radians [flex about x, abduction about z, yaw about parent y, twist about own y]
    -> (..., 3, 3) = Ry(yaw) Rz(abd) Rx(flex) Ry(twist)."""
    return (rot_y(params[..., 2]) @ rot_z(params[..., 1])) @ (rot_x(params[..., 0]) @ rot_y(params[..., 3]))


def forward_kinematics(offsets: np.ndarray, local: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Joint positions (T, 25, 3) relative to the root and global bone rotations (T, 25, 3, 3).

    ``local`` (T, 25, 3, 3): the root's entry is the whole-body orientation. One vectorised
    step per tree level (7), over all frames and all joints of that level at once.
    """
    glob = np.empty_like(local)
    pos = np.zeros(local.shape[:2] + (3,))
    glob[:, 0] = local[:, 0]
    for level in LEVELS:
        par = PARENT[level]
        glob[:, level] = glob[:, par] @ local[:, level]
        pos[:, level] = pos[:, par] + np.einsum("tjab,jb->tja", glob[:, level], offsets[level])
    return pos, glob


def bone_lengths(x: np.ndarray) -> np.ndarray:
    """Lengths (..., 24) of the measured NTU pairs (MEASURED_BONES_CM order) for joints (..., 25, 3)."""
    pairs = np.array(list(MEASURED_BONES_CM)) - 1
    return np.linalg.norm(x[..., pairs[:, 0], :] - x[..., pairs[:, 1], :], axis=-1)
