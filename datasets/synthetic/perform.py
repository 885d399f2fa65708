"""Turn DOF tracks into grounded 3-D skeletons and compose performances (an NTU clip or a
PKU-MMD long video) in the stage frame (metres, y up, floor at y = 0)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .actions import ACTION_SPECS, FACE, STATE_POSE, render
from .pose import DOF, foot_flat, idle_poses, to_local
from .skeleton import J, Subject, forward_kinematics, rot_y

ANKLES = np.array([J["l_ankle"], J["r_ankle"]])
SOLES = np.array([J["l_ankle"], J["r_ankle"], J["l_foot"], J["r_foot"]])
FOOT_CLEARANCE = 0.04  # a Kinect foot joint sits a few cm above the floor


@dataclass
class Actor:
    """Skeleton of one person in the stage frame: joints (T, 25, 3), bone rotations
    (T, 25, 3, 3), lean (T, 2) for the body line, and in which frames the person is there."""
    joints: np.ndarray
    rot: np.ndarray
    lean: np.ndarray
    present: np.ndarray


def animate(subject: Subject, delta: np.ndarray, trans: np.ndarray, anchor: np.ndarray,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Idle + deltas -> FK -> feet on the floor (and pinned by ``anchor`` (T, 2) weights) ->
    translation and whole-body yaw. Returns joints, bone rotations, lean; all vectorised over T."""
    n = len(delta)
    idle, sway = idle_poses(subject, n, rng)
    poses = foot_flat(idle + delta)
    yaw = np.deg2rad(poses[:, DOF["pelvis_yaw"]])
    poses[:, DOF["pelvis_yaw"]] = 0.0  # yaw is applied last, about the anchored stance
    pos, rot = forward_kinematics(subject.offsets, to_local(poses))
    ref, _ = forward_kinematics(subject.offsets, to_local(foot_flat(idle[:1])))
    shift = np.zeros((n, 3))
    weights = anchor / np.maximum(anchor.sum(1, keepdims=True), 1e-9)
    moved = np.einsum("tk,tkc->tc", weights, pos[:, ANKLES] - ref[:, ANKLES])
    shift[:, [0, 2]] = -moved[:, [0, 2]] * (anchor.sum(1, keepdims=True) > 0)
    shift[:, 1] = FOOT_CLEARANCE - pos[:, SOLES, 1].min(1)
    spine = pos[:, J["spine_shoulder"]] - pos[:, J["spine_base"]]
    spine /= np.linalg.norm(spine, axis=1, keepdims=True)
    lean = np.stack([spine[:, 0], -spine[:, 2]], 1)
    ry = rot_y(yaw)
    body = pos + shift[:, None]
    body[..., 1] += trans[:, 1:2]  # jump flight height
    planar = (trans + sway) * np.array([1.0, 0.0, 1.0])
    joints = np.einsum("tab,tjb->tja", ry, body) + np.einsum("tab,tb->ta", ry, planar)[:, None]
    return joints, ry[:, None] @ rot, lean


def place(joints: np.ndarray, rot: np.ndarray, yaw: float, offset) -> tuple[np.ndarray, np.ndarray]:
    """Rotate an actor by ``yaw`` (radians) about the stage's vertical axis and move it to ``offset`` (x, z)."""
    r = rot_y(np.asarray(yaw))
    return joints @ r.T + np.array([offset[0], 0.0, offset[1]]), r @ rot


def partner_offset(main: np.ndarray, partner: np.ndarray, contact) -> np.ndarray:
    """(x, z) offset of the partner (its joints already turned to face the main actor, both in
    the main actor's base frame) that realises ``contact`` at the given frames."""
    a = main[list(contact.main)].mean(0)
    b = partner[list(contact.partner)].mean(0)
    return (a - b)[[0, 2]] - np.asarray(contact.gap)


def fit_partner(main: np.ndarray, partner: Subject, pieces, k: int, contact,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Animate the partner facing the main actor (joints ``main`` (25, 3) at the contact frame,
    base frame) and place it so the contact holds; with ``contact.adjust`` the partner's arm angle
    is corrected twice so both hands meet at the same height whatever the two body sizes."""
    d2, t2, a2 = _segment_tracks(pieces)
    seed = int(rng.integers(2 ** 62))
    target = main[list(contact.main)].mean(0)
    for attempt in range(3 if contact.adjust else 1):
        j2, q2, lean2 = animate(partner, d2, t2, a2, np.random.default_rng(seed))
        j2, q2 = place(j2, q2, np.pi / 2, (0.0, 0.0))
        if contact.adjust and attempt < 2:
            end = j2[k, list(contact.partner)].mean(0)
            shoulder = j2[k, J["r_shoulder" if contact.adjust.startswith("R") else "l_shoulder"]]
            reach = max(float(np.linalg.norm((end - shoulder)[[0, 2]])), 0.15)
            col = d2[:, DOF[contact.adjust]]
            d2[:, DOF[contact.adjust]] += np.rad2deg((target[1] - end[1]) / reach) * col / max(np.abs(col).max(), 1e-9)
    off = partner_offset(main, j2[k], contact)
    return j2 + np.array([off[0], 0.0, off[1]]), q2, lean2


def _segment_tracks(pieces: list[tuple[np.ndarray, np.ndarray, tuple]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate (delta, trans, anchor) pieces; a piece's translation carries on into later ones."""
    delta = np.concatenate([p[0] for p in pieces])
    trans_parts, carry = [], np.zeros(3)
    for d, t, _ in pieces:
        trans_parts.append(t + carry)
        carry = trans_parts[-1][-1] if len(t) else carry
    anchor = np.concatenate([np.repeat(np.asarray(a, float)[None], len(p0), 0) for p0, _, a in pieces])
    return delta, np.concatenate(trans_parts), anchor


def _hold(pose: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, tuple]:
    return np.repeat(pose[None], n, 0), np.zeros((n, 3)), (0.5, 0.5)


def clip(action: int, subject: Subject, partner: Subject | None, n_act: int, pads: tuple[int, int],
         yaw: float, rng: np.random.Generator) -> list[Actor]:
    """An NTU-style clip: idle pad, one action instance, idle pad. Two-person actions come out
    with the pair already facing each other, their midpoint at the stage origin."""
    spec = ACTION_SPECS[action]
    r = render(action, n_act, rng, vigour=subject.style["vigour"])
    main_delta = r.main.delta + (FACE if spec.two_person else 0.0)
    pre, post = _hold(STATE_POSE[spec.start], pads[0]), _hold(STATE_POSE[spec.end], pads[1])
    if spec.two_person:
        pre = (pre[0] + FACE, pre[1], pre[2])
        post = (post[0] + FACE, post[1], post[2])
    d, t, a = _segment_tracks([pre, (main_delta, r.main.trans, r.main.anchor), post])
    joints, rot, lean = animate(subject, d, t, a, rng)
    n = len(d)
    if not spec.two_person:
        j, q = place(joints, rot, yaw, (0.0, 0.0))
        return [Actor(j, q, lean, np.ones(n, bool))]
    pieces = [_hold(STATE_POSE["stand"], pads[0]), (r.partner.delta, r.partner.trans, r.partner.anchor),
              _hold(STATE_POSE["stand"], pads[1])]
    k = pads[0] + int(round(r.contact.phase * (n_act - 1)))
    joints2, rot2, lean2 = fit_partner(joints[k], partner, pieces, k, r.contact, rng)
    centre = (joints[0, 0] + joints2[0, 0]) / 2  # the pair's midpoint goes to the stage origin
    j1, q1 = place(joints - centre * [1, 0, 1], rot, yaw, (0.0, 0.0))
    j2, q2 = place(joints2 - centre * [1, 0, 1], rot2, yaw, (0.0, 0.0))
    return [Actor(j1, q1, lean, np.ones(n, bool)), Actor(j2, q2, lean2, np.ones(n, bool))]


def video(actions: list[int], subject: Subject, partners: list[Subject], gaps: list[int], lengths: list[int],
          yaw: float, rng: np.random.Generator) -> tuple[list[Actor], np.ndarray]:
    """A PKU-MMD-style long video: gap, action, gap, ..., gap (``len(gaps) == len(actions) + 1``).

    The posture in a gap is the end posture of the action before it (seated after sit down).
    For an interaction the main actor turns to a partner who appears beside it for that
    segment only. Returns the actors (main first, then one per interaction) and the label rows
    (label 1..C, start, end exclusive).
    """
    pieces, rows, state, start = [_hold(STATE_POSE["stand"], gaps[0])], [], "stand", gaps[0]
    interactions = []
    for a, n_act, gap in zip(actions, lengths, gaps[1:]):
        spec = ACTION_SPECS[a]
        if spec.start != state:
            raise ValueError(f"action {spec.name!r} starts {spec.start} but the performer is {state}")
        r = render(a, n_act, rng, vigour=subject.style["vigour"])
        delta = r.main.delta
        if spec.two_person:
            u = np.linspace(0, 1, n_act)
            turn = np.clip(np.minimum(u, 1 - u) / 0.15, 0, 1)
            delta = delta + FACE[None] * (turn * turn * (3 - 2 * turn))[:, None]
            interactions.append((start, r))
        pieces.append((delta, r.main.trans, r.main.anchor))
        state = spec.end
        pieces.append(_hold(STATE_POSE[state], gap))
        rows.append((a + 1, start, start + n_act))
        start += n_act + gap
    d, t, a = _segment_tracks(pieces)
    joints, rot, lean = animate(subject, d, t, a, rng)
    total = len(d)
    actors = [Actor(*place(joints, rot, yaw, (0.0, 0.0)), lean, np.ones(total, bool))]
    for (s, r), partner in zip(interactions, partners):
        n_act = len(r.partner.delta)
        margin = int(rng.integers(8, 20))
        lo, hi = max(0, s - margin), min(total, s + n_act + margin)
        pieces = [_hold(STATE_POSE["stand"], s - lo), (r.partner.delta, r.partner.trans, r.partner.anchor),
                  _hold(STATE_POSE["stand"], hi - s - n_act)]
        k = int(round(r.contact.phase * (n_act - 1)))
        j2, q2, lean2 = fit_partner(joints[s + k], partner, pieces, s - lo + k, r.contact, rng)
        j2, q2 = place(j2, q2, yaw, (0.0, 0.0))
        actors.append(_embed(j2, q2, lean2, total, lo))
    return actors, np.array(rows, dtype=np.int64).reshape(-1, 3)


def bystander(subject: Subject, total: int, window: tuple[int, int], spot: tuple[float, float], yaw: float,
              rng: np.random.Generator) -> Actor:
    """Someone idling in the background for ``window`` frames: real NTU files contain such
    extra bodies (and spurious ones) in single-person clips."""
    lo, hi = window
    n = hi - lo
    joints, rot, lean = animate(subject, np.zeros((n, len(FACE))), np.zeros((n, 3)), np.full((n, 2), 0.5), rng)
    j, q = place(joints, rot, yaw, spot)
    return _embed(j, q, lean, total, lo)


def _embed(joints: np.ndarray, rot: np.ndarray, lean: np.ndarray, total: int, lo: int) -> Actor:
    """An actor seen only in frames lo .. lo + len(joints) of a ``total``-frame recording."""
    hi = lo + len(joints)
    full_j, full_l = np.zeros((total, 25, 3)), np.zeros((total, 2))
    full_q = np.broadcast_to(np.eye(3), (total, 25, 3, 3)).copy()
    full_j[lo:hi], full_q[lo:hi], full_l[lo:hi] = joints, rot, lean
    present = np.zeros(total, bool)
    present[lo:hi] = True
    return Actor(full_j, full_q, full_l, present)
