"""Motion representation: golden tests on the real HumanML3D clip, round trips, bad inputs."""
import numpy as np
import pytest
import torch

from utils.motion_process import (extract_features, feature_slices, mean_std, mirror_joints, process_file,
                                  recover_from_ric, recover_from_rot)
from utils.paramUtil import KIT, T2M, get_spec, spec_for_feature_dim
from utils.quaternion import (cont6d_to_matrix, matrix_to_cont6d, qbetween, qinv, qmul, qrot, quaternion_to_matrix)


@pytest.fixture(scope="module")
def golden(reference_dir):
    d = reference_dir / "humanml3d_sample"
    feats = np.load(d / "new_joint_vecs" / "012314.npy")
    joints = np.load(d / "new_joints" / "012314.npy")
    return feats, joints


# ----------------------------------------------------------------------------- golden clip
def test_recover_from_ric_golden_numpy(golden):
    feats, joints = golden
    assert feats.shape == (170, 263) and joints.shape == (170, 22, 3)
    rec = recover_from_ric(feats.astype(np.float64), 22)
    assert rec.shape == joints.shape
    assert np.abs(rec - joints).max() <= 1e-5
    # float32 input keeps its dtype and stays within tolerance
    rec32 = recover_from_ric(feats)
    assert rec32.dtype == np.float32 and np.abs(rec32 - joints).max() <= 1e-5


def test_recover_from_ric_golden_torch_batched(golden):
    feats, joints = golden
    batch = torch.from_numpy(feats).double()[None].repeat(3, 1, 1)
    batch[1] = batch[1].flip(0)  # a different clip in the batch must not disturb the others
    rec = recover_from_ric(batch, 22)
    assert isinstance(rec, torch.Tensor) and rec.shape == (3, 170, 22, 3)
    assert (rec[0].numpy() - joints).__abs__().max() <= 1e-5
    assert (rec[2].numpy() - joints).__abs__().max() <= 1e-5
    # numpy and torch agree on the other clip as well
    np.testing.assert_allclose(rec[1].numpy(), recover_from_ric(feats[::-1].astype(np.float64).copy()), atol=1e-9)


def test_extraction_golden_first_60_frames(golden):
    feats, joints = golden
    ours = extract_features(joints.astype(np.float64), "t2m")
    assert ours.shape == (169, 263)
    assert np.abs(ours[:60] - feats[:60]).max() <= 1e-4
    # the later frames differ only through the sigma=20 smoothing near the end
    assert np.abs(ours - feats[:169]).max() < 0.05


def test_target_bone_lengths_match_golden_clip(golden):
    _, joints = golden
    lengths = [np.linalg.norm(joints[:, i] - joints[:, T2M.parents[i]], axis=-1) for i in range(1, 22)]
    measured = np.array([0.0] + [float(np.median(x)) for x in lengths])
    np.testing.assert_allclose(measured, T2M.tgt_bone_lengths, atol=1e-6)


def test_face_direction_quirk_is_kept(golden):
    """'Fixing' the IK facing quirk changes the 6D rotations (doc §0.3 fact 2)."""
    feats, joints = golden
    spec = T2M
    fixed = type(spec)(**{**spec.__dict__, "face_joint_indx": [1, 2, 17, 16]})
    data, *_ = process_file(joints.astype(np.float64), fixed)
    rot = feature_slices(22)["rot6d"]
    assert np.abs(data[:60, rot] - feats[:60, rot]).max() > 0.1


def test_recover_from_rot_close_to_ric(golden):
    feats, _ = golden
    a = recover_from_ric(feats.astype(np.float64))
    b = recover_from_rot(feats.astype(np.float64))
    assert b.shape == a.shape
    # different paths (FK with smoothed root vs stored positions) agree to a few centimetres
    assert np.abs(a - b).mean() < 0.05


# ----------------------------------------------------------------------------- round trips
def _synthetic_joints(seed, n=4):
    from prepare.make_synthetic_dataset import generate_motion
    rng = np.random.default_rng(seed)
    return [generate_motion(rng)[0] for _ in range(n)]


@pytest.mark.parametrize("seed", [0, 1])
def test_round_trip_joints_features_joints(seed):
    for joints in _synthetic_joints(seed):
        data, global_positions, _, _ = process_file(joints, T2M)
        assert data.shape == (len(joints) - 1, 263)
        rec = recover_from_ric(data, 22)
        assert np.abs(rec - global_positions[:-1]).max() <= 1e-4
        # canonical frame: floor at 0, frame-0 root at the XZ origin
        assert abs(global_positions[..., 1].min()) < 1e-9
        np.testing.assert_allclose(global_positions[0, 0, [0, 2]], 0.0, atol=1e-9)
        # re-extracting from the recovered joints is consistent over the start of the clip
        again = extract_features(rec, "t2m")
        assert np.abs(again[:30] - data[:30]).max() < 1e-3


def test_round_trip_kit():
    from prepare.make_synthetic_dataset import _kit_from_t2m
    joints = _kit_from_t2m(_synthetic_joints(3, 1)[0])
    data, global_positions, _, _ = process_file(joints, KIT)
    assert data.shape == (len(joints) - 1, 251)
    rec = recover_from_ric(data)  # joints_num inferred from the width
    assert rec.shape[-2] == 21
    assert np.abs(rec - global_positions[:-1]).max() <= 1e-1  # millimetres


def test_retargeting_preserves_target_bone_lengths():
    joints = _synthetic_joints(5, 1)[0] * 1.3  # a taller person
    _, gp, _, _ = process_file(joints, T2M)
    for i in range(1, 22):
        d = np.linalg.norm(gp[:, i] - gp[:, T2M.parents[i]], axis=-1)
        np.testing.assert_allclose(d, T2M.tgt_bone_lengths[i], atol=1e-6)


def test_mirror_swaps_sides():
    joints = _synthetic_joints(7, 1)[0]
    m = mirror_joints(joints, T2M)
    np.testing.assert_allclose(m[:, 1, 0], -joints[:, 2, 0])
    np.testing.assert_allclose(m[:, 20], joints[:, 21] * np.array([-1, 1, 1]))
    np.testing.assert_allclose(mirror_joints(m, T2M), joints)


# ----------------------------------------------------------------------------- statistics
def test_mean_std_group_average_and_evaluator_variant():
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((50, 263)).astype(np.float32) * rng.uniform(0.1, 3, 263) for _ in range(3)]
    bad = arrays[0].copy()
    bad[3, 7] = np.nan
    mean, std, skipped = mean_std(arrays + [bad], 22)
    assert skipped == 1 and mean.shape == std.shape == (263,)
    for name, sl in feature_slices(22).items():
        assert np.allclose(std[sl], std[sl][0]), name  # one value per group
    full = np.concatenate(arrays).astype(np.float64)
    np.testing.assert_allclose(mean, full.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std[67:193], full.std(0)[67:193].mean(), rtol=1e-5)
    _, std25, _ = mean_std(arrays, 22, feat_bias=25.0)
    np.testing.assert_allclose(std25[:4], std[:4] / 25, rtol=1e-6)
    np.testing.assert_allclose(std25[-4:], std[-4:] / 25, rtol=1e-6)
    np.testing.assert_allclose(std25[4:-4], std[4:-4])


def test_mean_std_streams_and_stays_exact_far_from_zero():
    """A generator of clips of different lengths, far from zero: the streamed statistics equal the ones of
    the concatenated frames (no catastrophic cancellation), and at most one clip is held at a time."""
    rng = np.random.default_rng(1)
    clips = [(1e4 + rng.standard_normal((int(n), 263)) * rng.uniform(0.01, 2, 263)).astype(np.float32)
             for n in rng.integers(1, 80, 7)]
    mean, std, skipped = mean_std((c for c in clips), 22)
    full = np.concatenate(clips).astype(np.float64)
    np.testing.assert_allclose(mean, full.mean(0), rtol=1e-7)
    np.testing.assert_allclose(std[67:193], full.std(0)[67:193].mean(), rtol=1e-5)
    assert skipped == 0


def test_released_std_has_group_structure(reference_dir):
    """The released Std.npy and the evaluator meta std relate by 25 on root/contacts (§1.10)."""
    std = np.load(reference_dir / "humanml3d_sample" / "Std.npy")
    meta = np.load(reference_dir / "evaluator_meta" / "std.npy")
    for name, sl in feature_slices(22).items():
        assert np.allclose(std[sl], std[sl][0], rtol=1e-5), name
    ratio = std / meta
    assert np.all((ratio[:4] > 24) & (ratio[:4] < 26)) and np.all((ratio[-4:] > 24) & (ratio[-4:] < 26))
    assert np.all(np.abs(ratio[4:-4] - 1) < 0.01)


# ----------------------------------------------------------------------------- bad input
def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="feature width 100"):
        recover_from_ric(np.zeros((10, 100)))
    with pytest.raises(ValueError, match="does not match 21 joints"):
        recover_from_ric(np.zeros((10, 263)), 21)
    joints = _synthetic_joints(2, 1)[0]
    joints[5, 3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        process_file(joints, T2M)
    with pytest.raises(ValueError, match=r"shape \(frames, joints, 3\)"):
        process_file(np.zeros((10, 22)), T2M)
    with pytest.raises(ValueError, match="at least 22 joints"):
        process_file(np.zeros((10, 5, 3)), T2M)
    with pytest.raises(ValueError, match="unknown dataset"):
        get_spec("amass")
    assert spec_for_feature_dim(251) is KIT


# ----------------------------------------------------------------------------- quaternions
def test_quaternion_helpers_numpy_and_torch_agree():
    rng = np.random.default_rng(0)
    q = rng.standard_normal((5, 4))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    v = rng.standard_normal((5, 3))
    m = quaternion_to_matrix(q)
    np.testing.assert_allclose(qrot(q, v), (m @ v[..., None])[..., 0], atol=1e-12)
    np.testing.assert_allclose(qmul(q, qinv(q)), np.tile([1.0, 0, 0, 0], (5, 1)), atol=1e-12)
    np.testing.assert_allclose(cont6d_to_matrix(matrix_to_cont6d(m)), m, atol=1e-12)
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    qa = qbetween(a, b)
    rotated = qrot(qa, a)
    np.testing.assert_allclose(rotated / np.linalg.norm(rotated, axis=-1, keepdims=True),
                               b / np.linalg.norm(b, axis=-1, keepdims=True), atol=1e-9)
    qt, vt = torch.from_numpy(q), torch.from_numpy(v)
    np.testing.assert_allclose(qrot(qt, vt).numpy(), qrot(q, v), atol=1e-12)
    np.testing.assert_allclose(qbetween(torch.from_numpy(a), torch.from_numpy(b)).numpy(), qa, atol=1e-12)


def test_yaw_flip_fix_makes_recovery_exact_through_180_degrees():
    """When the (smoothed) heading crosses ±180°, the released formula stores one yaw-velocity frame
    with the wrong sign and the recovered joints rotate away; ``fix_yaw_flip`` removes that."""
    from prepare.synthetic.actions import walk
    from prepare.synthetic.body import ground
    rng = np.random.default_rng(0)
    for _ in range(200):
        clip, facts = walk(rng)
        if facts["path"] != "circle":
            continue
        joints = ground(clip)
        raw, gp, _, _ = process_file(joints, T2M)
        if np.abs(recover_from_ric(raw) - gp[:-1]).max() > 0.05:
            break
    else:
        pytest.fail("no circle crossing ±180° found")
    fixed, gp2, _, _ = process_file(joints, T2M, fix_yaw_flip=True)
    assert np.abs(recover_from_ric(fixed) - gp2[:-1]).max() < 1e-4
    differs = np.flatnonzero(np.abs(raw[:, 0] - fixed[:, 0]) > 1e-9)
    assert 1 <= len(differs) <= 4 and np.allclose(raw[:, 1:], fixed[:, 1:])
    np.testing.assert_allclose(np.abs(raw[differs, 0]), np.abs(fixed[differs, 0]))  # same size, other sign
