"""Synthetic world, unit level: skeleton, forward kinematics, DOF table, actions, sensor, writers.

No full dataset is generated here (tests/datasets/test_synthetic_world.py does that once)."""
from __future__ import annotations

import numpy as np
import pytest

from datasets import parse_ntu_skeleton, read_pku_labels, read_pku_skeleton, read_pku_split
from datasets.synthetic import ACTION_SPECS, ACTIONS, MEASURED_BONES_CM, bone_lengths
from datasets.synthetic.actions import STATE_POSE, render
from datasets.synthetic.perform import animate, clip, video
from datasets.synthetic.pose import N_DOF, mirror, pose_vector, to_local
from datasets.synthetic.sensor import BODY_ID_BASE, make_camera, ntu_rows, observe, quaternions
from datasets.synthetic.skeleton import J, PARENT, REST_OFFSETS, forward_kinematics, make_subject
from datasets.synthetic.writers import ntu_text, pku_text, write_cross_subject, write_pku_labels

from tests.support import shared_path

MEASURED = np.array(list(MEASURED_BONES_CM.values())) / 100.0


def _random_poses(rng, n=40):
    return rng.uniform(-120, 120, size=(n, N_DOF))


def test_rest_skeleton_has_the_measured_bone_lengths():
    pos, _ = forward_kinematics(REST_OFFSETS, to_local(np.zeros((1, N_DOF))))
    np.testing.assert_allclose(bone_lengths(pos[0]), MEASURED, atol=1e-9)
    assert PARENT[0] == 0 and (PARENT[1:] != np.arange(1, 25)).all()


def test_fk_keeps_every_bone_length_under_any_pose():
    rng = np.random.default_rng(0)
    subject = make_subject(7, rng)
    pos, rot = forward_kinematics(subject.offsets, to_local(_random_poses(rng)))
    lengths = np.linalg.norm(pos[:, 1:] - pos[:, PARENT[1:]], axis=-1)
    np.testing.assert_allclose(lengths, np.broadcast_to(np.linalg.norm(subject.offsets[1:], axis=1), lengths.shape),
                               atol=1e-9)
    np.testing.assert_allclose(rot @ np.swapaxes(rot, -1, -2), np.broadcast_to(np.eye(3), rot.shape), atol=1e-9)


def test_subjects_differ_in_size_but_keep_proportions_plausible():
    rng = np.random.default_rng(1)
    heights = []
    for sid in range(30):
        s = make_subject(sid, rng)
        pos, _ = forward_kinematics(s.offsets, to_local(np.zeros((1, N_DOF))))
        heights.append(pos[0, J["head"], 1] - min(pos[0, J["l_foot"], 1], pos[0, J["r_foot"], 1]))
        ratio = bone_lengths(pos[0]) / MEASURED
        assert 0.75 < ratio.min() and ratio.max() < 1.3
    assert np.ptp(heights) > 0.1  # per-subject height variation
    assert 1.2 < np.median(heights) < 1.8  # Kinect head joint to foot joint


def test_semantic_angles_move_limbs_the_anatomical_way():
    def fk(**kw):
        return forward_kinematics(REST_OFFSETS, to_local(pose_vector(**kw)[None]))[0][0]
    rest = fk()
    # body frame: x right, y up, performer faces -z
    assert fk(R_sh_flex=90)[J["r_wrist"], 2] < rest[J["r_wrist"], 2] - 0.3       # arm forward
    assert fk(R_sh_abd=90)[J["r_wrist"], 0] > rest[J["r_wrist"], 0] + 0.3        # arm out to the right
    assert fk(L_sh_abd=90)[J["l_wrist"], 0] < rest[J["l_wrist"], 0] - 0.3        # arm out to the left
    assert fk(R_hip_flex=80)[J["r_ankle"], 2] < rest[J["r_ankle"], 2] - 0.3      # kick forward
    assert fk(R_knee=90)[J["r_ankle"], 2] > rest[J["r_ankle"], 2] + 0.2          # knee bends backwards
    assert fk(lumbar_fwd=45)[J["head"], 2] < rest[J["head"], 2] - 0.3            # bow forward
    assert fk(pelvis_yaw=90)[J["r_shoulder"], 2] < rest[J["r_shoulder"], 2] - 0.1  # turn left: right shoulder ahead


def test_mirror_is_an_involution_and_reflects_the_skeleton():
    rng = np.random.default_rng(2)
    poses = _random_poses(rng, 10)
    np.testing.assert_allclose(mirror(mirror(poses)), poses)
    swap = np.arange(25)
    left = [J[n] for n in ("l_shoulder", "l_elbow", "l_wrist", "l_hand", "l_hip", "l_knee", "l_ankle", "l_foot",
                           "l_hand_tip", "l_thumb")]
    right = [J[n] for n in ("r_shoulder", "r_elbow", "r_wrist", "r_hand", "r_hip", "r_knee", "r_ankle", "r_foot",
                            "r_hand_tip", "r_thumb")]
    swap[left], swap[right] = right, left
    sym = REST_OFFSETS.copy()
    sym[left] = REST_OFFSETS[right] * [-1, 1, 1]  # a left/right symmetric body
    a, _ = forward_kinematics(sym, to_local(poses))
    b, _ = forward_kinematics(sym, to_local(mirror(poses)))
    np.testing.assert_allclose(b, a[:, swap] * [-1, 1, 1], atol=1e-9)


@pytest.mark.parametrize("index", range(len(ACTIONS)))
def test_every_action_starts_and_ends_in_its_posture(index):
    """Shared first / last poses are what stop a single frame from giving the class away."""
    spec = ACTION_SPECS[index]
    rng = np.random.default_rng(index)
    r = render(index, 60, rng)
    for track in (r.main, r.partner) if spec.two_person else (r.main,):
        assert track.delta.shape == (60, N_DOF) and np.isfinite(track.delta).all()
        np.testing.assert_allclose(track.delta[0], STATE_POSE[spec.start], atol=1e-6)
        np.testing.assert_allclose(track.delta[-1], STATE_POSE[spec.end], atol=1e-6)
    assert np.abs(np.diff(r.main.delta, axis=0)).max() < 45  # degrees per frame: no teleporting
    assert np.ptp(r.main.delta, axis=0).max() > 20           # it actually moves


def test_grounding_keeps_feet_on_the_floor_and_jump_leaves_it():
    rng = np.random.default_rng(3)
    s = make_subject(1, rng)
    squat = clip(ACTIONS.index("squat"), s, None, 60, (5, 5), 0.0, rng)[0].joints
    feet = squat[:, [J["l_foot"], J["r_foot"], J["l_ankle"], J["r_ankle"]], 1].min(1)
    np.testing.assert_allclose(feet, feet[0], atol=1e-9)
    assert squat[:, J["spine_base"], 1].min() < squat[0, J["spine_base"], 1] - 0.25  # hips go down
    jump = clip(ACTIONS.index("jump"), s, None, 60, (5, 5), 0.0, rng)[0].joints
    assert jump[:, [J["l_foot"], J["r_foot"]], 1].min(1).max() > feet[0] + 0.08


def test_interaction_partners_meet():
    rng = np.random.default_rng(4)
    a, b = make_subject(1, rng), make_subject(2, rng)
    shake = clip(ACTIONS.index("handshake"), a, b, 80, (5, 5), 0.3, rng)
    gap = np.linalg.norm(shake[0].joints[:, J["r_hand"]] - shake[1].joints[:, J["r_hand"]], axis=1)
    assert gap.min() < 0.08 and gap[0] > 0.3
    actors, rows = video([ACTIONS.index("push"), ACTIONS.index("wave")], a, [b], [20, 25, 20], [50, 60], 0.0, rng)
    assert len(actors) == 2 and rows.tolist() == [[16, 20, 70], [1, 95, 155]]
    assert actors[1].present[20:70].all() and not actors[1].present[100:].any()


def test_video_refuses_an_impossible_order():
    rng = np.random.default_rng(5)
    s = make_subject(1, rng)
    with pytest.raises(ValueError, match="stand up"):
        video([ACTIONS.index("stand up")], s, [], [10, 10], [40], 0.0, rng)


def test_quaternions_are_unit_and_encode_the_rotation():
    rng = np.random.default_rng(6)
    _, rot = forward_kinematics(REST_OFFSETS, to_local(_random_poses(rng, 5)))
    q = quaternions(rot)
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-9)
    w, x, y, z = np.moveaxis(q, -1, 0)
    back = np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
                     2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
                     2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1).reshape(rot.shape)
    np.testing.assert_allclose(back, rot, atol=1e-7)


def _observed_clip(seed=7, action="handshake"):
    rng = np.random.default_rng(seed)
    a, b = make_subject(1, rng), make_subject(2, rng)
    actors = clip(ACTIONS.index(action), a, b, 60, (6, 6), 0.2, rng)
    cam = make_camera(0.0, rng)
    return [observe(act, cam, rng, failures=False) for act in actors], rng


def test_ntu_writer_round_trips_through_the_reader(tmp_path):
    views, rng = _observed_clip()
    views[1]["present"][10:13] = False          # the second body is lost for 3 frames ...
    views[0]["present"][30] = False             # ... and a frame with the first one only listed second
    bodies = []
    for k, v in enumerate(views):
        body, joints = ntu_rows(v, 1)
        ids = BODY_ID_BASE + 1234 + k + np.cumsum(v["new_id"])
        bodies.append({"present": v["present"], "ids": ids, "body": body, "joints": joints})
    path = tmp_path / "S001C002P003R001A050.skeleton"
    path.write_text(ntu_text(bodies))
    parsed = parse_ntu_skeleton(path)
    xyz = parsed.xyz
    assert xyz.shape == (72, 2, 25, 3)
    np.testing.assert_allclose(xyz[:10], np.stack([views[0]["xyz"][:10], views[1]["xyz"][:10]], 1), atol=2e-6)
    # slot = order listed in that frame: while body 2 is lost, slot 1 is empty
    assert (xyz[10:13, 1] == 0).all() and (xyz[10:13, 0] != 0).all()
    np.testing.assert_allclose(xyz[30, 0], views[1]["xyz"][30], atol=2e-6)
    assert parsed.bodies_per_frame.tolist().count(1) == 4
    assert parsed.body_ids[0].tolist() == [BODY_ID_BASE + 1234, BODY_ID_BASE + 1235]  # exact 64-bit ids
    lines = path.read_text().splitlines()
    assert lines[0] == "72" and lines[1] == "2" and len(lines[2].split()) == 10 and lines[3] == "25"
    fields = np.array(lines[4].split(), dtype=float)
    assert len(fields) == 12 and abs(np.linalg.norm(fields[7:11]) - 1) < 1e-5 and fields[11] in (1, 2)
    assert 0 < fields[3] < 512 and 0 < fields[4] < 424 and 0 < fields[5] < 1920 and 0 < fields[6] < 1080


def test_ntu_writer_rejects_nan():
    views, _ = _observed_clip(8, "wave")
    body, joints = ntu_rows(views[0], 1)
    joints[3, 4, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ntu_text([{"present": views[0]["present"], "ids": np.full(len(body), BODY_ID_BASE), "body": body,
                   "joints": joints}])


def test_pku_writers_round_trip(tmp_path):
    rng = np.random.default_rng(9)
    xyz = rng.normal(0, 1, (7, 2, 25, 3))
    xyz[2:4, 1] = 0
    skel = tmp_path / "0002-M.txt"
    skel.write_text(pku_text(xyz))
    np.testing.assert_allclose(read_pku_skeleton(skel), xyz, atol=1e-6)
    lines = skel.read_text().splitlines()
    assert len(lines) == 7 and not lines[0].startswith(" ") and lines[1].startswith(" ")
    assert len(lines[3].split()) == 150
    labels = tmp_path / "labels.txt"
    rows = np.array([[3, 10, 50, 2], [16, 70, 120, 1]])
    write_pku_labels(labels, rows)
    assert labels.read_text() == "3,10,50,2\n16,70,120,1\n"
    np.testing.assert_array_equal(read_pku_labels(labels), rows)


def test_cross_subject_file_has_the_official_layout(tmp_path):
    ours = tmp_path / "cross-subject.txt"
    write_cross_subject(ours, ["0002-L", "0002-M"], ["0291-L"])
    assert read_pku_split(ours) == {"train": ["0002-L", "0002-M"], "test": ["0291-L"]}
    real = shared_path("fixtures", "pkummd", "cross-subject.txt").read_text().splitlines()
    mine = ours.read_text().splitlines()
    assert len(mine) == len(real) == 4
    assert mine[0] == real[0] and mine[2] == real[2]
    assert mine[1][-2:] == real[1][-2:] and mine[3][-1:] == real[3][-1:]  # the trailing separators


def test_sensor_noise_is_larger_on_hands_and_failures_are_marked():
    rng = np.random.default_rng(10)
    s = make_subject(3, rng)
    joints, rot, lean = animate(s, np.zeros((200, N_DOF)), np.zeros((200, 3)), np.full((200, 2), 0.5), rng)
    from datasets.synthetic.perform import Actor
    actor = Actor(joints, rot, lean, np.ones(200, bool))
    cam = make_camera(0.0, rng)
    clean = cam.transform(joints)
    err = np.concatenate([observe(actor, cam, np.random.default_rng(i), failures=False)["xyz"] - clean
                          for i in range(3)])
    spread = np.median(np.linalg.norm(err, axis=-1), axis=0)
    assert spread[J["r_hand_tip"]] > 4 * spread[J["spine_mid"]]
    assert 0.0002 < spread[J["spine_mid"]] < 0.005
    marked = [observe(actor, cam, np.random.default_rng(i)) for i in range(40)]
    assert any(not m["present"].all() for m in marked)               # lost bodies happen ...
    assert any((m["state"] == 1).any() for m in marked)              # ... and inferred joints
    assert np.mean([m["present"].mean() for m in marked]) > 0.98     # ... but rarely
