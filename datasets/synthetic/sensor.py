"""A Kinect-v2-like sensor: camera placement, pinhole projection, joint noise, tracking
failures, joint orientations and the NTU body-line fields. All vectorised over frames/joints."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .perform import Actor
from .skeleton import PARENT, rot_x, rot_y

# pinhole fits to the real NTU fixture (depth 512x424, colour 1920x1080): u = c + f * x / z
DEPTH_F, DEPTH_C = (366.4, 366.5), (256.3, 208.5)
COLOR_F, COLOR_C = (1048.0, 1056.4), (976.4, 567.3)

# per-joint white-noise sigma in metres (hands, hand tips and thumbs are the noisiest on a Kinect)
NOISE_SIGMA = np.array([
    0.5, 0.5, 0.7, 0.7,        # spine base, spine mid, neck, head
    1.2, 1.5, 2.5, 4.0,        # left shoulder, elbow, wrist, hand
    1.2, 1.5, 2.5, 4.0,        # right
    0.6, 0.8, 1.2, 3.0,        # left hip, knee, ankle, foot
    0.6, 0.8, 1.2, 3.0,        # right
    0.5, 7.0, 7.0, 7.0, 7.0,   # spine shoulder, hand tips, thumbs
]) / 1000.0
EXTREMITIES = np.array([6, 7, 10, 11, 14, 15, 18, 19, 21, 22, 23, 24])  # joints that collapse / jump
HAND_JOINTS = np.array([7, 11, 21, 22, 23, 24])
LEAVES = np.array([3, 15, 19, 21, 22, 23, 24])  # Kinect reports no orientation for these
BODY_ID_BASE = 72057594037927936  # 2**56: real Kinect body ids are 64-bit integers above this


@dataclass(frozen=True)
class Camera:
    """Extrinsics: the stage is rotated by ``azimuth`` about y, tilted by ``tilt`` about x,
    then shifted so the stage origin lies at (x_offset, -height, distance) in camera space."""
    azimuth: float
    tilt: float
    distance: float
    height: float
    x_offset: float

    def transform(self, x: np.ndarray) -> np.ndarray:
        r = rot_x(np.asarray(self.tilt)) @ rot_y(np.asarray(self.azimuth))
        return x @ r.T + np.array([self.x_offset, -self.height, self.distance])

    def rotation(self) -> np.ndarray:
        return rot_x(np.asarray(self.tilt)) @ rot_y(np.asarray(self.azimuth))


def make_camera(azimuth_deg: float, rng: np.random.Generator, distance=(3.0, 4.0)) -> Camera:
    """A camera near ``azimuth_deg``; height puts a standing spine base near y = 0.2 m."""
    return Camera(np.deg2rad(azimuth_deg + rng.normal(0, 3)), np.deg2rad(rng.normal(0, 3)),
                  rng.uniform(*distance), rng.uniform(0.5, 0.65), rng.uniform(-0.25, 0.25))


def quaternions(rot: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) -> unit quaternions (..., 4) as w, x, y, z."""
    m = rot
    w = np.sqrt(np.maximum(0, 1 + m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2])) / 2
    x = np.copysign(np.sqrt(np.maximum(0, 1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2])) / 2, m[..., 2, 1] - m[..., 1, 2])
    y = np.copysign(np.sqrt(np.maximum(0, 1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2])) / 2, m[..., 0, 2] - m[..., 2, 0])
    z = np.copysign(np.sqrt(np.maximum(0, 1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2])) / 2, m[..., 1, 0] - m[..., 0, 1])
    q = np.stack([w, x, y, z], -1)
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def _smooth_noise(rng: np.random.Generator, shape, width: int = 9) -> np.ndarray:
    """Temporally correlated unit-ish noise along axis 0 (moving average of white noise)."""
    white = rng.standard_normal((shape[0] + width,) + tuple(shape[1:]))
    c = np.cumsum(white, axis=0)
    return (c[width:] - c[:-width]) / np.sqrt(width)


def observe(actor: Actor, cam: Camera, rng: np.random.Generator, *, failures: bool = True) -> dict:
    """One camera's view of one actor: camera-space joints with noise and tracking failures.

    Returns ``xyz`` (T, 25, 3), ``state`` (T, 25) tracking states (2 tracked, 1 inferred),
    ``quat`` (T, 25, 4), ``lean`` (T, 2), ``present`` (T,) and ``new_id`` (T,) True where the
    sensor starts a new body id (after the body was lost).
    """
    xyz = cam.transform(actor.joints)
    n = len(xyz)
    sigma = NOISE_SIGMA[None, :, None] * np.array([1.0, 1.0, 1.4])  # depth (z) is noisier
    xyz = xyz + sigma * (rng.standard_normal(xyz.shape) + 1.2 * _smooth_noise(rng, xyz.shape))
    state = np.full((n, 25), 2, dtype=np.int64)
    state[:, HAND_JOINTS[2:]] = np.where(rng.random((n, 4)) < 0.15, 1, 2)
    present = actor.present.copy()
    if failures and n > 8:
        if rng.random() < 0.15:  # a joint collapses onto its parent for a few frames
            for _ in range(int(rng.integers(1, 3))):
                j = int(rng.choice(EXTREMITIES))
                a = int(rng.integers(1, n - 4))
                b = min(n, a + int(rng.integers(2, 12)))
                xyz[a:b, j] = xyz[a:b, PARENT[j]]
                state[a:b, j] = 1
        if rng.random() < 0.10:  # a hand joint jumps away for 1-3 frames
            j = int(rng.choice(HAND_JOINTS))
            a = int(rng.integers(1, n - 4))
            b = a + int(rng.integers(1, 4))
            jump = rng.normal(0, 1, 3)
            xyz[a:b, j] += jump / np.linalg.norm(jump) * rng.uniform(0.08, 0.25)
            state[a:b, j] = 1
    new_id = np.zeros(n, bool)
    if failures and n > 8 and rng.random() < 0.08:  # the body is lost for a few frames
        a = int(rng.integers(1, n - 6))
        b = a + int(rng.integers(1, 5))
        present[a:b] &= False
        new_id[b] = True
    quat = quaternions(cam.rotation() @ actor.rot)
    quat[:, LEAVES] = 0.0
    return {"xyz": xyz, "state": state, "quat": quat, "lean": actor.lean, "present": present, "new_id": new_id}


def ntu_rows(view: dict, hand_state: int) -> tuple[np.ndarray, np.ndarray]:
    """Body-line fields (T, 9) after the id and joint rows (T, 25, 12) of one observed body."""
    xyz = view["xyz"]
    z = np.maximum(xyz[..., 2], 0.1)
    depth = np.stack([DEPTH_C[0] + DEPTH_F[0] * xyz[..., 0] / z, DEPTH_C[1] - DEPTH_F[1] * xyz[..., 1] / z], -1)
    color = np.stack([COLOR_C[0] + COLOR_F[0] * xyz[..., 0] / z, COLOR_C[1] - COLOR_F[1] * xyz[..., 1] / z], -1)
    joints = np.concatenate([xyz, depth, color, view["quat"], view["state"][..., None]], -1)
    n = len(xyz)
    lean = np.clip(view["lean"], -1, 1)
    # clipedEdges, handLeftConfidence, handLeftState, handRightConfidence, handRightState, isRestricted
    ints = np.tile(np.array([0, 1, hand_state, 1, hand_state, 0], float), (n, 1))
    body = np.concatenate([ints, lean, np.full((n, 1), 2.0)], 1)
    return body, joints


def body_ids(new_id: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 64-bit body id per frame; a new id after the sensor lost the body."""
    first = BODY_ID_BASE + int(rng.integers(1000, 100000))
    return first + np.cumsum(new_id).astype(np.int64) * int(rng.integers(1, 40))
