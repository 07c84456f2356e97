"""Tests for utils/bvh.py: reader, forward kinematics, writer round trip, error messages."""
import re

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from utils.bvh import BvhError, joints_to_bvh_rotations, parse_bvh, read_bvh, write_bvh
from utils.paramUtil import KIT, T2M

def _mocap_path():
    from pathlib import Path
    return Path(__file__).resolve().parent / "data" / "test_mocapbank.bvh"


# ----------------------------------------------------------------------------- reader
def test_read_mocapbank():
    bvh = read_bvh(_mocap_path())
    assert bvh.num_joints == 19 and bvh.names[0] == "Hips"
    assert bvh.names[:4] == ["Hips", "Chest", "Chest2", "LeftCollar"]
    assert bvh.parents[bvh.names.index("LeftKnee")] == bvh.names.index("LeftHip")
    assert bvh.end_site_names == ["LeftWrist_end", "RightWrist_end", "Head_end", "LeftAnkle_end", "RightAnkle_end"]
    assert bvh.num_frames == 455 and bvh.motion.shape == (455, 6 + 18 * 3)
    assert bvh.fps == pytest.approx(30.0, abs=1e-2)
    assert bvh.channels[0] == ["Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation"]
    pos = bvh.positions(include_end_sites=True)
    assert pos.shape == (455, 24, 3) and np.isfinite(pos).all()
    names = bvh.all_names()
    y0 = pos[0, :, 1]
    # standing person in cm: head top ~1.6 m above the toes, feet near the floor
    assert 150 < y0[names.index("Head_end")] - y0.min() < 190
    assert y0[names.index("LeftAnkle_end")] < 10
    np.testing.assert_allclose(pos[:, 0], bvh.motion[:, :3])  # root = position channels
    # bone lengths are preserved by FK
    for j in range(1, bvh.num_joints):
        d = np.linalg.norm(pos[:, j] - pos[:, bvh.parents[j]], axis=-1)
        np.testing.assert_allclose(d, np.linalg.norm(bvh.offsets[j]), rtol=1e-9)
    # without End Sites
    assert bvh.positions().shape == (455, 19, 3)
    np.testing.assert_allclose(bvh.positions(frames=slice(3, 5)), pos[3:5, :19])


def _two_joint_bvh(order, angles, root_extra="", child_channels="", child_vals=""):
    chans = " ".join(f"{a}rotation" for a in order)
    return f"""HIERARCHY
ROOT A
{{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition {chans}
  JOINT B
  {{
    OFFSET 1 2 3
    CHANNELS {len(child_channels.split())} {child_channels}
    End Site
    {{
      OFFSET 0 1 0
    }}
  }}
}}
MOTION
Frames: 1
Frame Time: 0.05
0.5 0.25 -1 {' '.join(str(a) for a in angles)} {child_vals}
"""


@pytest.mark.parametrize("order", ["ZXY", "XYZ", "YZX", "ZYX"])
def test_euler_order_is_channel_order(order):
    ang = [30.0, -50.0, 70.0]
    text = _two_joint_bvh(order, ang, child_channels="Zrotation Xrotation Yrotation", child_vals="0 0 0")
    bvh = parse_bvh(text, "mem.bvh")
    pos = bvh.positions(include_end_sites=True)[0]
    # R = R_axis1 @ R_axis2 @ R_axis3 in channel order
    R = np.eye(3)
    for axis, a in zip(order, ang):
        R = R @ Rotation.from_euler(axis.lower(), a, degrees=True).as_matrix()
    np.testing.assert_allclose(pos[0], [0.5, 0.25, -1])
    np.testing.assert_allclose(pos[1], pos[0] + R @ [1, 2, 3], atol=1e-12)
    np.testing.assert_allclose(pos[2], pos[1] + R @ [0, 1, 0], atol=1e-12)


def test_six_channel_joint_and_position_modes():
    text = _two_joint_bvh("ZXY", [90, 0, 0],
                          child_channels="Xposition Yposition Zposition Zrotation Xrotation Yrotation",
                          child_vals="1 2 5 0 0 0")
    rep = parse_bvh(text, "mem.bvh").positions()[0]
    # root rotated 90 deg about Z: local (1, 2, 5) -> (-2, 1, 5)
    np.testing.assert_allclose(rep[1] - rep[0], [-2, 1, 5], atol=1e-12)
    add = parse_bvh(text, "mem.bvh", position_mode="add").positions()[0]
    np.testing.assert_allclose(add[1] - add[0], [-4, 2, 8], atol=1e-12)


@pytest.mark.parametrize("bad,line,msg", [
    (("CHANNELS 3 Zrotation Xrotation Yrotation\n    End", "CHANNELS 3 Zrotation Xrotaton Yrotation\n    End"), 9, "unknown channel"),
    (("OFFSET 1 2 3", "OFFSET 1 two 3"), 8, "number"),
    (("0.5 0.25 -1", "0.5 0.25 abc"), 19, "non-numeric"),
    (("0.5 0.25 -1", "0.5 -1"), 19, "has 8 values, the hierarchy declares 9"),
    (("Frames: 1", "Frames: 3"), 19, "declares 3"),
    (("    }\n  }\n}", "    }\n  }\n"), 16, "missing '}'"),
    (("Frame Time: 0.05", "Frame Tim 0.05"), 18, "Frame Time"),
])
def test_malformed_bvh_names_file_and_line(bad, line, msg):
    text = _two_joint_bvh("ZXY", [0, 0, 0], child_channels="Zrotation Xrotation Yrotation", child_vals="0 0 0")
    assert bad[0] in text
    text = text.replace(bad[0], bad[1], 1)
    with pytest.raises(BvhError) as exc:
        parse_bvh(text, "broken.bvh")
    assert str(exc.value).startswith(f"broken.bvh:{line}:"), str(exc.value)
    assert msg in str(exc.value)


def test_malformed_file_on_disk(tmp_path):
    src = _mocap_path().read_text().splitlines()
    assert src[116] == "MOTION"
    vals = src[120].split()
    vals[7] = "1x.50"
    src[120] = " ".join(vals)  # line 121 = second frame
    p = tmp_path / "bad.bvh"
    p.write_text("\n".join(src) + "\n")
    with pytest.raises(BvhError, match=rf"^{re.escape(str(p))}:121: non-numeric value '1x.50' in frame 1"):
        read_bvh(p)


# ----------------------------------------------------------------------------- writer
def _synthetic_t2m(n_frames=90, seed=0):
    """Hierarchical FK with a rigid pelvis / shoulder girdle and smooth random joint rotations."""
    rng = np.random.default_rng(seed)
    parents = T2M.parents
    off = T2M.tgt_offsets().copy()
    # a non-trivial rigid pelvis and girdle (not the raw-axis layout)
    off[1], off[2], off[3] = [0.06, -0.09, -0.02], [-0.06, -0.09, -0.02], [-0.003, 0.11, -0.03]
    off[12], off[13], off[14] = [0.0, 0.2, 0.02], [0.07, 0.11, -0.02], [-0.07, 0.11, -0.02]
    t = np.linspace(0, 3, n_frames)
    rotvec = np.zeros((n_frames, 22, 3))
    for j in range(22):
        a, f, ph = rng.normal(0, 0.6, 3), rng.uniform(0.3, 1.2, 3), rng.uniform(0, 6.3, 3)
        rotvec[:, j] = a * np.sin(2 * np.pi * f * t[:, None] + ph)
    rotvec[:, 0, 1] += np.linspace(0, 2 * np.pi, n_frames)  # a full turn about Y
    rotvec[n_frames // 2, 1] = [-np.pi / 2, 0, 0]  # thigh forward: Euler gimbal lock in ZXY
    R = Rotation.from_rotvec(rotvec.reshape(-1, 3)).as_matrix().reshape(n_frames, 22, 3, 3)
    root = np.stack([np.sin(t), 0.9 + 0.05 * np.cos(3 * t), 0.8 * t], -1)
    G = np.zeros_like(R)
    P = np.zeros((n_frames, 22, 3))
    for j in range(22):
        p = parents[j]
        if p < 0:
            G[:, j], P[:, j] = R[:, j], root
        else:
            G[:, j] = G[:, p] @ R[:, j]
            P[:, j] = P[:, p] + G[:, p] @ off[j]
    return P


def _read_back(path, names):
    bvh = read_bvh(path)
    idx = [bvh.names.index(n) for n in names]
    return bvh, bvh.positions()[:, idx]


def test_round_trip_synthetic(tmp_path):
    joints = _synthetic_t2m()
    path = write_bvh(tmp_path / "syn.bvh", joints, "t2m", fps=20)
    bvh, back = _read_back(path, T2M.joint_names)
    assert np.abs(back - joints).max() <= 1e-4
    assert bvh.fps == pytest.approx(20.0)
    assert bvh.num_frames == len(joints)
    # hierarchy: the t2m tree with proper nesting, names from paramUtil, End Sites on leaves
    assert [bvh.names[p] if p >= 0 else None for p in bvh.parents] == \
        [T2M.joint_names[T2M.parents[T2M.joint_names.index(n)]] if n != "pelvis" else None for n in bvh.names]
    assert bvh.parents[bvh.names.index("left_collar")] == bvh.names.index("spine3")
    assert bvh.parents[bvh.names.index("spine3")] == bvh.names.index("spine2")
    assert sorted(bvh.end_site_names) == sorted(f"{T2M.joint_names[j]}_end" for j in (10, 11, 15, 20, 21))
    assert bvh.channels[0] == ["Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation"]
    assert all(c == ["Zrotation", "Xrotation", "Yrotation"] for c in bvh.channels[1:])


def test_round_trip_scale_and_order(tmp_path):
    joints = _synthetic_t2m(30, seed=3)
    path = write_bvh(tmp_path / "cm.bvh", joints, "t2m", scale=100.0, euler_order="XYZ", rest_pose="raw")
    bvh, back = _read_back(path, T2M.joint_names)
    assert bvh.channels[1] == ["Xrotation", "Yrotation", "Zrotation"]
    assert np.abs(back / 100.0 - joints).max() <= 1e-4


def test_rest_pose_is_sensible():
    joints = _synthetic_t2m(10)
    _, offsets, ends = joints_to_bvh_rotations(joints, "t2m")
    lengths = np.linalg.norm(offsets, axis=-1)
    for c in range(1, 22):
        d = np.linalg.norm(joints[:, c] - joints[:, T2M.parents[c]], axis=-1).mean()
        assert lengths[c] == pytest.approx(d, rel=1e-9)
    assert offsets[4, 1] < 0 and offsets[7, 1] < 0  # legs down
    assert offsets[6, 1] > 0 and offsets[15, 1] > 0  # spine and head up
    assert offsets[16, 0] > 0 and offsets[17, 0] < 0  # T-pose arms, left = +X
    assert offsets[10, 2] > 0  # toes forward
    assert set(ends) == {10, 11, 15, 20, 21}


def test_round_trip_real_humanml3d(tmp_path, reference_dir):
    joints = np.load(reference_dir / "humanml3d_sample" / "new_joints" / "012314.npy").astype(np.float64)
    path = write_bvh(tmp_path / "real.bvh", joints, "t2m")
    _, back = _read_back(path, T2M.joint_names)
    assert np.abs(back - joints).max() <= 1e-4


def test_round_trip_kit(tmp_path):
    rng = np.random.default_rng(1)
    from utils.skeleton import Skeleton
    from utils.quaternion import axis_angle_to_quaternion
    n = 20
    quats = np.zeros((n, 21, 4))
    quats[..., 0] = 1
    for j in range(1, 21):  # single-child bones of the KIT tree bend, multi-child groups stay rigid
        if j in (1, 11, 16, 4, 5, 8):
            continue
        quats[:, j] = axis_angle_to_quaternion(rng.normal(size=3), 0.4 * np.sin(np.linspace(0, 3, n) + j))
    quats[:, 0] = axis_angle_to_quaternion([0, 1, 0], np.linspace(0, 2, n))
    root = np.stack([np.linspace(0, 500, n), np.full(n, 950.0), np.zeros(n)], -1)
    # the HumanML3D FK restarts arm chains from the root rotation; keep spine chain rotations at
    # identity so the neck_low group stays rigid
    for j in (2, 3):
        quats[:, j] = [1, 0, 0, 0]
    joints = Skeleton.from_spec(KIT).forward_kinematics(quats, root)
    path = write_bvh(tmp_path / "kit.bvh", joints, "kit")
    bvh, back = _read_back(path, KIT.joint_names)
    assert bvh.fps == pytest.approx(12.5)
    assert np.abs(back - joints).max() <= 1e-3  # millimetres


def test_gimbal_lock_round_trip(tmp_path):
    """A thigh pointing straight forward is a 90-degree X rotation: ZXY Euler gimbal lock."""
    import warnings

    from utils.quaternion import axis_angle_to_quaternion
    from utils.skeleton import Skeleton

    n = 5
    quats = np.zeros((n, 22, 4))
    quats[..., 0] = 1
    quats[:, 4] = axis_angle_to_quaternion([1, 0, 0], np.array([-np.pi / 2, -1.2, -np.pi / 2, 0.3, np.pi / 2]))
    quats[:, 18] = axis_angle_to_quaternion([0, 0, 1], np.linspace(0, 1.5, n))
    root = np.stack([np.zeros(n), np.full(n, 0.9), np.linspace(0, 0.4, n)], -1)
    joints = Skeleton.from_spec(T2M).forward_kinematics(quats, root)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the writer must not leak scipy's gimbal-lock warning
        path = write_bvh(tmp_path / "gimbal.bvh", joints, "t2m")
    bvh, back = _read_back(path, T2M.joint_names)
    hip = bvh.channel_values("left_hip")  # Z X Y
    assert np.isclose(np.abs(hip[[0, 2, 4], 1]), 90.0, atol=1e-6).all()
    assert np.abs(back - joints).max() <= 1e-4


def test_write_bvh_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="22"):
        write_bvh(tmp_path / "x.bvh", np.zeros((3, 21, 3)), "t2m")
    bad = _synthetic_t2m(4)
    bad[1, 3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        write_bvh(tmp_path / "x.bvh", bad, "t2m")
