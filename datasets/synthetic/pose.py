"""Named joint-angle degrees of freedom (DOFs), their mapping onto the kinematic tree, left/right
mirroring and the idle (standing, slightly swaying) posture.

Angles are in degrees with anatomical signs: flexion / abduction / forward lean are positive on
both sides; the table below turns them into rotations about the body-frame axes.
"""
from __future__ import annotations

import numpy as np

from .skeleton import J, Subject, local_rotations

# name -> (joint carrying the rotation, slot 0 flex-x / 1 abd-z / 2 yaw-y / 3 twist-y, sign)
_CENTRE = {
    "pelvis_fwd": (0, 0, -1), "pelvis_roll": (0, 1, 1), "pelvis_yaw": (0, 2, 1),
    "lumbar_fwd": (J["spine_mid"], 0, -1), "lumbar_side": (J["spine_mid"], 1, 1), "lumbar_twist": (J["spine_mid"], 2, 1),
    "thorax_fwd": (J["spine_shoulder"], 0, -1), "thorax_side": (J["spine_shoulder"], 1, 1),
    "thorax_twist": (J["spine_shoulder"], 2, 1),
    "neck_fwd": (J["neck"], 0, -1), "head_fwd": (J["head"], 0, -1), "head_turn": (J["head"], 2, 1),
    "head_tilt": (J["head"], 1, 1),
}
# per side: name -> (joint name without side prefix, slot, sign on the RIGHT side, sign on the LEFT)
_SIDED = {
    "shrug": ("shoulder", 1, 1, -1),
    "sh_flex": ("elbow", 0, 1, 1), "sh_abd": ("elbow", 1, 1, -1), "sh_yaw": ("elbow", 2, 1, -1),
    "sh_twist": ("elbow", 3, 1, -1),
    "elbow": ("wrist", 0, 1, 1), "wrist": ("hand", 0, 1, 1),
    "hip_flex": ("knee", 0, 1, 1), "hip_abd": ("knee", 1, 1, -1), "hip_yaw": ("knee", 2, -1, 1),
    "knee": ("ankle", 0, -1, -1), "ankle": ("foot", 0, 1, 1),
}

DOF_NAMES: tuple[str, ...] = tuple(_CENTRE) + tuple(f"{s}_{n}" for s in "LR" for n in _SIDED)
DOF = {name: i for i, name in enumerate(DOF_NAMES)}
N_DOF = len(DOF_NAMES)

_joint = np.zeros(N_DOF, dtype=int)
_slot = np.zeros(N_DOF, dtype=int)
_sign = np.zeros(N_DOF)
for _name, (_j, _s, _g) in _CENTRE.items():
    _joint[DOF[_name]], _slot[DOF[_name]], _sign[DOF[_name]] = _j, _s, _g
for _side, _prefix in (("L", "l_"), ("R", "r_")):
    for _n, (_jn, _s, _gr, _gl) in _SIDED.items():
        _i = DOF[f"{_side}_{_n}"]
        _joint[_i], _slot[_i], _sign[_i] = J[_prefix + _jn], _s, (_gr if _side == "R" else _gl)

#: mirror (left <-> right) as a permutation of DOF columns and a sign per column
MIRROR_PERM = np.array([DOF[n.replace("L_", "#").replace("R_", "L_").replace("#", "R_")] if n[:2] in ("L_", "R_")
                        else DOF[n] for n in DOF_NAMES])
MIRROR_SIGN = np.array([-1.0 if (n in _CENTRE and _CENTRE[n][1] in (1, 2)) else 1.0 for n in DOF_NAMES])


def pose_vector(**angles: float) -> np.ndarray:
    """A DOF vector (degrees) from keyword angles; unknown names raise with the valid list."""
    v = np.zeros(N_DOF)
    for name, value in angles.items():
        if name not in DOF:
            raise ValueError(f"unknown DOF {name!r}; valid: {', '.join(DOF_NAMES)}")
        v[DOF[name]] = value
    return v


def mirror(poses: np.ndarray) -> np.ndarray:
    """Left/right mirror of DOF tracks (..., N_DOF): a left-handed performance of an action."""
    return poses[..., MIRROR_PERM] * MIRROR_SIGN


def foot_flat(poses: np.ndarray) -> np.ndarray:
    """Add the ankle angle that keeps each foot level as the pelvis, hip and knee rotate."""
    out = poses.copy()
    for s in "LR":
        pitch = -poses[..., DOF["pelvis_fwd"]] + poses[..., DOF[f"{s}_hip_flex"]] - poses[..., DOF[f"{s}_knee"]]
        out[..., DOF[f"{s}_ankle"]] -= pitch
    return out


def to_local(poses: np.ndarray) -> np.ndarray:
    """DOF tracks (T, N_DOF) in degrees -> local rotations (T, 25, 3, 3)."""
    params = np.zeros(poses.shape[:-1] + (25, 4))
    params[..., _joint, _slot] += np.deg2rad(poses) * _sign  # no two DOFs share a (joint, slot)
    return local_rotations(params)


def idle_poses(subject: Subject, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Standing idle with small sway: DOF tracks (n, N_DOF) and root sway translation (n, 3) in metres."""
    st = subject.style
    base = pose_vector(**{k: v for k, v in st.items() if k in DOF})
    t = np.arange(n)[:, None] / 30.0
    freq = rng.uniform(0.15, 0.45, size=(1, 4))
    phase = rng.uniform(0, 2 * np.pi, size=(1, 4))
    wave = np.sin(2 * np.pi * freq * t + phase) * st["sway"]  # (n, 4) slow oscillators
    poses = np.repeat(base[None], n, 0)
    poses[:, DOF["lumbar_side"]] += 1.2 * wave[:, 0]
    poses[:, DOF["lumbar_fwd"]] += 1.0 * wave[:, 1]
    poses[:, DOF["head_turn"]] += 3.0 * wave[:, 2]
    poses[:, DOF["L_sh_flex"]] += 2.0 * wave[:, 3]
    poses[:, DOF["R_sh_flex"]] -= 2.0 * wave[:, 3]
    sway = np.zeros((n, 3))
    sway[:, 0] = 0.012 * wave[:, 0]
    sway[:, 2] = 0.010 * wave[:, 1]
    return poses, sway
