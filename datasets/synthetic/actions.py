"""Action classes as joint-angle trajectories (deltas from the performer's idle pose).

Every single-person action starts and ends at the idle standing pose (sit down ends seated,
stand up starts seated), so the first and last frames of all classes look alike: a class is
told apart by how the pose moves, not by one frame. Random per sample: duration, key timing,
amplitude, oscillation count and phase, and (for one-sided actions) the hand / leg used.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .pose import mirror, pose_vector
from .skeleton import J

FPS = 30.0


@dataclass
class Track:
    """One actor's part of an action: DOF deltas (n, N_DOF) in degrees, translation (n, 3) in the
    actor's body frame (metres, x right / y flight height / z backwards), feet anchor weights (L, R)."""
    delta: np.ndarray
    trans: np.ndarray
    anchor: tuple[float, float] = (0.5, 0.5)


@dataclass
class Contact:
    """Where the partner stands: at phase ``phase`` the mean of the main actor's ``main`` joints
    is ``gap`` (metres, along / across the line between the two) from the partner's ``partner``
    joints. The composer solves the partner's position from it, whatever the body sizes."""
    phase: float
    main: tuple[int, ...]
    partner: tuple[int, ...]
    gap: tuple[float, float]
    adjust: str | None = None        # partner DOF tuned so the contact joints share a height


@dataclass
class Rendered:
    """An action instance: the main actor, and for interactions the partner and their contact."""
    main: Track
    partner: Track | None = None
    contact: Contact | None = None


@dataclass(frozen=True)
class ActionSpec:
    name: str
    frames: int                      # nominal duration at 30 fps
    build: Callable[[np.ndarray, float, np.random.Generator], Rendered] = field(repr=False)
    start: str = "stand"             # posture before / after: "stand" or "sit"
    end: str = "stand"
    two_person: bool = False
    sided: bool = True               # may be performed left-handed (mirrored)


# ---------------------------------------------------------------- helpers (vectorised over frames)
def keyframes(u: np.ndarray, times, poses, rng: np.random.Generator | None = None) -> np.ndarray:
    """Smooth-step interpolation of DOF vectors (K, N_DOF) at phases ``times`` -> (n, N_DOF).
    With ``rng`` the interior key times are jittered (timing variation between samples)."""
    t = np.asarray(times, dtype=float)
    if rng is not None and len(t) > 2:
        gaps = np.diff(t) * rng.uniform(0.8, 1.2, len(t) - 1)
        t = np.concatenate([[0.0], np.cumsum(gaps)]) * (t[-1] - t[0]) / gaps.sum() + t[0]
    v = np.asarray(poses, dtype=float)
    k = np.clip(np.searchsorted(t, u, side="right") - 1, 0, len(t) - 2)
    w = np.clip((u - t[k]) / (t[k + 1] - t[k]), 0.0, 1.0)
    s = (w * w * (3 - 2 * w))[:, None]
    return v[k] * (1 - s) + v[k + 1] * s


def window(u: np.ndarray, a: float, b: float, ramp: float = 0.05) -> np.ndarray:
    """Smooth 0 -> 1 -> 0 envelope over the phase interval [a, b]."""
    up = np.clip((u - a) / ramp, 0, 1)
    down = np.clip((b - u) / ramp, 0, 1)
    w = np.minimum(up, down)
    return w * w * (3 - 2 * w)


def oscillate(u, a, b, cycles, phase=0.0) -> np.ndarray:
    """A sine with ``cycles`` periods over [a, b], faded in and out."""
    return np.sin(2 * np.pi * cycles * (u - a) / (b - a) + phase) * window(u, a, b, ramp=0.04)


def flight(u, a, b, height) -> np.ndarray:
    """Parabolic jump height over phases [a, b]."""
    x = np.clip((u - a) / (b - a), 0, 1)
    return 4 * height * x * (1 - x)


def P(**kw) -> np.ndarray:
    return pose_vector(**kw)


def both(**kw) -> dict:
    """Same anatomical angle on both sides: both(sh_flex=90) -> L_sh_flex=90, R_sh_flex=90."""
    out = {}
    for k, v in kw.items():
        out[f"L_{k}"] = v
        out[f"R_{k}"] = v
    return out


REST = P()
SIT = P(**both(hip_flex=88, knee=88, sh_flex=28, elbow=45), lumbar_fwd=4)


def _single(delta, n, anchor=(0.5, 0.5), trans=None) -> Rendered:
    return Rendered(Track(delta, np.zeros((n, 3)) if trans is None else trans, anchor))


# ---------------------------------------------------------------- single-person actions
def _wave(u, amp, rng):
    up = P(R_sh_abd=rng.uniform(70, 95) * amp, R_sh_flex=20, R_sh_twist=-90, R_elbow=80)
    d = keyframes(u, [0, 0.2, 0.8, 1], [REST, up, up, REST], rng)
    cycles = rng.integers(2, 5)
    d += (P(R_elbow=28, R_sh_abd=6) * amp)[None] * oscillate(u, 0.2, 0.8, cycles, rng.uniform(0, np.pi))[:, None]
    return _single(d, len(u))


def _raise_arms(u, amp, rng):
    up = P(**both(sh_flex=rng.uniform(150, 172) * amp, sh_abd=rng.uniform(5, 25), elbow=10), head_fwd=-12)
    return _single(keyframes(u, [0, 0.35, 0.62, 1], [REST, up, up, REST], rng), len(u))


def _kick(u, amp, rng):
    chamber = P(R_hip_flex=50 * amp, R_knee=80, **both(sh_abd=15), lumbar_fwd=-5)
    strike = P(R_hip_flex=rng.uniform(65, 85) * amp, R_knee=5, **both(sh_abd=20), lumbar_fwd=-12)
    back = P(R_hip_flex=40, R_knee=70, **both(sh_abd=12))
    d = keyframes(u, [0, 0.3, 0.45, 0.6, 0.85, 1], [REST, chamber, strike, back, P(R_hip_flex=5, R_knee=10), REST], rng)
    return _single(d, len(u), anchor=(1.0, 0.0))


def _squat(u, amp, rng):
    down = P(**both(hip_flex=95 * amp, knee=115 * amp, sh_flex=80, elbow=10), lumbar_fwd=25)
    return _single(keyframes(u, [0, 0.4, 0.6, 1], [REST, down, down, REST], rng), len(u))


def _jump(u, amp, rng):
    crouch = P(**both(hip_flex=50, knee=70, sh_flex=-40, elbow=20), lumbar_fwd=25)
    push = P(**both(hip_flex=-5, knee=0, ankle=-30, sh_flex=150 * amp, elbow=10))
    air = P(**both(hip_flex=20, knee=30, sh_flex=120 * amp, elbow=15))
    land = P(**both(hip_flex=45, knee=65, sh_flex=40, elbow=20), lumbar_fwd=20)
    d = keyframes(u, [0, 0.25, 0.42, 0.53, 0.66, 1], [REST, crouch, push, air, land, REST])
    trans = np.zeros((len(u), 3))
    trans[:, 1] = flight(u, 0.42, 0.64, rng.uniform(0.12, 0.3) * amp)
    return _single(d, len(u), trans=trans)


def _bow(u, amp, rng):
    deep = rng.uniform(0.55, 0.9) * amp
    bow = P(pelvis_fwd=15 * deep, **both(hip_flex=15 * deep), lumbar_fwd=35 * deep, thorax_fwd=20 * deep,
            neck_fwd=15)
    return _single(keyframes(u, [0, 0.35, 0.6, 1], [REST, bow, bow, REST], rng), len(u))


def _clap(u, amp, rng):
    ready = P(**both(sh_flex=rng.uniform(55, 75), sh_yaw=30, elbow=60))
    d = keyframes(u, [0, 0.2, 0.85, 1], [REST, ready, ready, REST], rng)
    d += (P(**both(sh_yaw=16)) * amp)[None] * oscillate(u, 0.2, 0.85, rng.integers(3, 7), -np.pi / 2)[:, None]
    return _single(d, len(u))


def _punch(u, amp, rng):
    guard = P(**both(sh_flex=35, sh_abd=10, sh_yaw=10, elbow=120))
    k = int(rng.integers(2, 5))
    times, poses = [0.0, 0.15], [REST, guard]
    hit = np.linspace(0.24, 0.72, k)
    back = min(0.12, 0.5 * (hit[1] - hit[0]))
    for i, t in enumerate(hit):
        side = "R" if i % 2 == 0 else "L"
        strike = guard + P(**{f"{side}_sh_flex": 52 * amp, f"{side}_elbow": -115 * amp},
                           thorax_twist=15 if side == "R" else -15)
        times += [t, t + back]
        poses += [strike, guard]
    return _single(keyframes(u, times + [1.0], poses + [REST]), len(u))


def _turn(u, amp, rng):
    angle = rng.uniform(140, 185) * amp * rng.choice([-1, 1])
    yaw = keyframes(u, [0, 0.4, 0.6, 1], [REST, P(pelvis_yaw=angle), P(pelvis_yaw=angle), REST], rng)
    d = yaw + P(head_turn=angle / 8)[None] * window(u, 0.02, 0.98, 0.1)[:, None]
    steps = P(L_hip_flex=15, L_knee=25)[None] * np.clip(oscillate(u, 0.05, 0.95, 4), 0, None)[:, None]
    steps += P(R_hip_flex=15, R_knee=25)[None] * np.clip(-oscillate(u, 0.05, 0.95, 4), 0, None)[:, None]
    return _single(d + steps, len(u))


def _reach(u, amp, rng):
    reach = P(R_sh_flex=rng.uniform(125, 150) * amp, R_sh_abd=10, R_elbow=10, R_wrist=20, lumbar_side=-5,
              head_fwd=-15, **both(ankle=-15))
    grasp = reach + P(R_wrist=15, R_elbow=10)
    lower = P(R_sh_flex=60, R_elbow=70)
    return _single(keyframes(u, [0, 0.45, 0.6, 0.8, 1], [REST, reach, grasp, lower, REST], rng), len(u))


def _sit_down(u, amp, rng):
    # the seated end pose is fixed (it is the posture of the idle gap that follows); the way
    # down varies
    lean = P(**both(hip_flex=70, knee=60, sh_flex=30), lumbar_fwd=30 * amp)
    low = SIT + P(lumbar_fwd=14 * amp)
    return _single(keyframes(u, [0, 0.35, 0.72, 1], [REST, lean, low, SIT], rng), len(u))


def _stand_up(u, amp, rng):
    seat = SIT
    lean = seat + P(**both(hip_flex=8, sh_flex=14), lumbar_fwd=32 * amp)
    mid = P(**both(hip_flex=40, knee=35, sh_flex=15), lumbar_fwd=15)
    return _single(keyframes(u, [0, 0.3, 0.65, 1], [seat, lean, mid, REST], rng), len(u))


def _touch_head(u, amp, rng):
    touch = P(R_sh_flex=rng.uniform(90, 110), R_sh_abd=40, R_sh_twist=-40, R_elbow=140, neck_fwd=12 * amp)
    d = keyframes(u, [0, 0.35, 0.75, 1], [REST, touch, touch, REST], rng)
    d += P(R_elbow=6, R_sh_abd=5)[None] * oscillate(u, 0.35, 0.75, rng.integers(1, 4), rng.uniform(0, 6))[:, None]
    return _single(d, len(u))


def _pick_up(u, amp, rng):
    down = P(pelvis_fwd=30 * amp, **both(hip_flex=70 * amp, knee=55 * amp), lumbar_fwd=35 * amp, thorax_fwd=15,
             R_sh_flex=80, L_sh_flex=55, L_elbow=30)
    grab = down + P(R_elbow=15, R_wrist=20)
    hold = P(R_sh_flex=30, R_elbow=75)
    d = keyframes(u, [0, 0.4, 0.55, 0.85, 1], [REST, down, grab, hold, REST], rng)
    return _single(d, len(u))


# ---------------------------------------------------------------- two-person interactions
FACE = P(pelvis_yaw=-90)  # the main actor faces the partner (who stands to its right)


def _handshake(u, amp, rng):
    reach = P(R_sh_flex=rng.uniform(35, 45), R_sh_yaw=10, R_elbow=rng.uniform(38, 48), R_wrist=-10)
    d = keyframes(u, [0, 0.3, 0.8, 1], [REST, reach, reach, REST], rng)
    shake = P(R_elbow=10, R_sh_flex=6)[None] * oscillate(u, 0.32, 0.78, rng.integers(2, 5))[:, None]
    late = rng.uniform(0.0, 0.06)  # the partner reacts a little later
    lag = np.clip((u - late) / (1 - late), 0, 1)
    d_b = keyframes(lag, [0, 0.3, 0.8, 1], [REST, reach, reach, REST]) + shake
    n = len(u)
    touch = Contact(0.55, (J["r_hand"],), (J["r_hand"],), (rng.uniform(-0.02, 0.03), rng.uniform(-0.03, 0.03)), "R_sh_flex")
    return Rendered(Track(d + shake, np.zeros((n, 3))), Track(d_b, np.zeros((n, 3))), touch)


def _push(u, amp, rng):
    ready = P(**both(sh_flex=70, elbow=80, sh_yaw=10))
    shove = P(**both(sh_flex=88, elbow=5 * amp, sh_yaw=8), lumbar_fwd=12)
    d = keyframes(u, [0, 0.3, 0.45, 0.65, 1], [REST, ready, shove, shove, REST], rng)
    trans = np.zeros((len(u), 3))
    trans[:, 2] = -0.1 * keyframes(u, [0, 0.3, 0.5, 1], [[0], [0], [1], [1]])[:, 0]
    hit = P(lumbar_fwd=-12, **both(sh_abd=25), R_hip_flex=-15, L_hip_flex=10)
    d_b = keyframes(u, [0, 0.42, 0.55, 0.75, 1], [REST, REST, hit * amp, P(lumbar_fwd=-3), REST])
    trans_b = np.zeros((len(u), 3))
    trans_b[:, 2] = rng.uniform(0.2, 0.4) * amp * keyframes(u, [0, 0.43, 0.62, 1], [[0], [0], [1], [1]])[:, 0]
    touch = Contact(0.45, (J["l_hand"], J["r_hand"]), (J["spine_shoulder"],),
                    (-rng.uniform(0.08, 0.13), rng.uniform(-0.03, 0.03)))
    return Rendered(Track(d, trans), Track(d_b, trans_b), touch)


ACTION_SPECS: tuple[ActionSpec, ...] = (
    ActionSpec("wave", 70, _wave), ActionSpec("raise arms", 60, _raise_arms, sided=False),
    ActionSpec("kick", 45, _kick), ActionSpec("squat", 60, _squat, sided=False),
    ActionSpec("jump", 50, _jump, sided=False), ActionSpec("bow", 60, _bow, sided=False),
    ActionSpec("clap", 60, _clap, sided=False), ActionSpec("punch", 55, _punch),
    ActionSpec("turn around", 75, _turn, sided=False), ActionSpec("reach up", 65, _reach),
    ActionSpec("sit down", 55, _sit_down, end="sit", sided=False),
    ActionSpec("stand up", 55, _stand_up, start="sit", sided=False),
    ActionSpec("touch head", 55, _touch_head), ActionSpec("pick up", 70, _pick_up),
    ActionSpec("handshake", 80, _handshake, two_person=True, sided=False),
    ActionSpec("push", 55, _push, two_person=True, sided=False),
)
#: class names; index = 0-based NTU-layout label, PKU-layout label = index + 1
ACTIONS: list[str] = [a.name for a in ACTION_SPECS]
STATE_POSE = {"stand": REST, "sit": SIT}


def render(index: int, n: int, rng: np.random.Generator, *, vigour: float = 1.0, left_p: float = 0.15) -> Rendered:
    """Action ``index`` over ``n`` frames with random amplitude / timing / handedness."""
    spec = ACTION_SPECS[index]
    u = np.linspace(0.0, 1.0, n)
    amp = rng.uniform(0.85, 1.12) * vigour
    out = spec.build(u, amp, rng)
    if spec.sided and rng.random() < left_p:
        t = out.main
        out.main = Track(mirror(t.delta), t.trans * np.array([-1.0, 1.0, 1.0]), t.anchor[::-1])
    return out
