"""HumanML3D motion representation: joints <-> 263-d (t2m) / 251-d (kit) features.

Implements docs/data-format.md §8.4 (extraction), §5 (recovery) and §7 (Mean/Std)
from the written specification. Extraction runs in float64 numpy; recovery accepts numpy arrays
or torch tensors with any leading batch dimensions.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from .paramUtil import SkeletonSpec, T2M, get_spec, spec_for_feature_dim
from .quaternion import _is_torch, normalize, qbetween, qinv, qmul, qrot, quaternion_to_cont6d, yaw_quaternion
from .skeleton import Skeleton

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None


# ============================================================================ extraction
def uniform_skeleton(positions: np.ndarray, spec: SkeletonSpec = T2M, target_offsets=None) -> np.ndarray:
    """Retarget a joint sequence (F, J, 3) to the target bone lengths (docs/data-format.md §8.4 step 1)."""
    skel = Skeleton(spec.raw_offsets, spec.kinematic_chain)
    src_offset = skel.get_offsets_joints(positions[0])
    tgt_offset = spec.tgt_offsets() if target_offsets is None else np.asarray(target_offsets, dtype=np.float64)
    src_leg = np.abs(src_offset[spec.l_idx1]).max() + np.abs(src_offset[spec.l_idx2]).max()
    tgt_leg = np.abs(tgt_offset[spec.l_idx1]).max() + np.abs(tgt_offset[spec.l_idx2]).max()
    if src_leg <= 0:
        raise ValueError("degenerate skeleton: zero leg length in frame 0")
    scale = tgt_leg / src_leg
    tgt_root = positions[:, 0] * scale
    quats = skel.inverse_kinematics_np(positions, spec.face_joint_indx, smooth_forward=False)
    return skel.forward_kinematics(quats, tgt_root, offsets=tgt_offset)


def foot_detect(positions: np.ndarray, spec: SkeletonSpec, thres: float):
    """Velocity-only foot contacts for (F, J, 3) positions -> feet_l, feet_r of shape (F-1, 2)."""
    def contact(ids):
        d = positions[1:, ids] - positions[:-1, ids]
        return ((d ** 2).sum(-1) < thres).astype(np.float64)

    return contact(spec.fid_l), contact(spec.fid_r)


def process_file(positions: np.ndarray, spec: SkeletonSpec = T2M, feet_thre: float | None = None,
                 target_offsets=None, fix_yaw_flip: bool = False):
    """Full per-clip pipeline of docs/data-format.md §8.4.

    Returns ``(data, global_positions, positions, l_velocity)`` where ``data`` has shape
    (F-1, 12J-1).

    ``fix_yaw_flip``: the released pipeline takes arcsin of the y component of the relative root
    quaternion without fixing its sign, so on a frame where the heading crosses ±180° the stored
    yaw velocity has the wrong sign (and every later frame of the recovered motion is rotated).
    The default keeps that behaviour (it is what the released features contain); True flips the
    relative quaternion into the w >= 0 hemisphere first (used for the synthetic dataset).
    """
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 3 or positions.shape[-1] != 3:
        raise ValueError(f"joint positions must have shape (frames, joints, 3), got {positions.shape}")
    if positions.shape[1] < spec.joints_num:
        raise ValueError(f"need at least {spec.joints_num} joints for {spec.name}, got {positions.shape[1]}")
    if positions.shape[0] < 2:
        raise ValueError("need at least 2 frames to compute velocities")
    if not np.isfinite(positions).all():
        raise ValueError("joint positions contain NaN or Inf")
    thres = spec.foot_threshold if feet_thre is None else feet_thre
    positions = positions[:, : spec.joints_num]

    # 1. uniform skeleton
    positions = uniform_skeleton(positions, spec, target_offsets)
    # 2. floor
    positions[:, :, 1] -= positions.min(axis=0).min(axis=0)[1]
    # 3. XZ origin at the frame-0 root
    positions = positions - positions[0, 0] * np.array([1.0, 0.0, 1.0])
    # 4. face +Z at frame 0 (hips used correctly here)
    r_hip, l_hip, sdr_r, sdr_l = spec.face_joint_indx
    p0 = positions[0]
    across = (p0[r_hip] - p0[l_hip]) + (p0[sdr_r] - p0[sdr_l])
    across = across / np.linalg.norm(across)
    forward_init = normalize(np.cross(np.array([0.0, 1.0, 0.0]), across))
    root_quat_init = qbetween(forward_init, np.array([0.0, 0.0, 1.0]))
    positions = qrot(np.broadcast_to(root_quat_init, positions.shape[:-1] + (4,)), positions)
    global_positions = positions.copy()

    # 5. foot contacts
    feet_l, feet_r = foot_detect(positions, spec, thres)

    # 6. rotations (IK with smoothed facing direction)
    skel = Skeleton(spec.raw_offsets, spec.kinematic_chain)
    quat_params = skel.inverse_kinematics_np(positions, spec.face_joint_indx, smooth_forward=True)
    cont_6d = quaternion_to_cont6d(quat_params)
    r_rot = quat_params[:, 0].copy()
    velocity = qrot(r_rot[1:], positions[1:, 0] - positions[:-1, 0])
    r_velocity = qmul(r_rot[1:], qinv(r_rot[:-1]))
    if fix_yaw_flip:
        r_velocity = np.where(r_velocity[:, :1] < 0, -r_velocity, r_velocity)

    # 7. rotation-invariant coordinates
    ric = positions.copy()
    ric[..., 0] -= ric[:, 0:1, 0]
    ric[..., 2] -= ric[:, 0:1, 2]
    ric = qrot(np.repeat(r_rot[:, None], ric.shape[1], axis=1), ric)

    # 8. assemble
    root_y = ric[:, 0, 1:2]
    r_vel = np.arcsin(np.clip(r_velocity[:, 2:3], -1.0, 1.0))
    l_velocity = velocity[:, [0, 2]]
    root_data = np.concatenate([r_vel, l_velocity, root_y[:-1]], axis=-1)
    rot_data = cont_6d[:, 1:].reshape(len(cont_6d), -1)
    ric_data = ric[:, 1:].reshape(len(ric), -1)
    local_vel = qrot(np.repeat(r_rot[:-1, None], global_positions.shape[1], axis=1),
                     global_positions[1:] - global_positions[:-1]).reshape(len(global_positions) - 1, -1)
    data = np.concatenate([root_data, ric_data[:-1], rot_data[:-1], local_vel, feet_l, feet_r], axis=-1)
    return data, global_positions, ric, l_velocity


def extract_features(joints: np.ndarray, dataname: str = "t2m", target_offsets=None) -> np.ndarray:
    """Joints (F, J, 3) -> features (F-1, 12J-1), float32."""
    spec = get_spec(dataname)
    data, *_ = process_file(joints, spec, target_offsets=target_offsets)
    return data.astype(np.float32)


# ============================================================================ recovery
def _cumsum(x, axis):
    return torch.cumsum(x, dim=axis) if _is_torch(x) else np.cumsum(x, axis=axis)


def recover_root_rot_pos(data):
    """Features (..., T, D) -> (root quaternion (..., T, 4), root position (..., T, 3))."""
    rot_vel = data[..., 0]
    if _is_torch(data):
        r_rot_ang = torch.zeros_like(rot_vel)
    else:
        r_rot_ang = np.zeros_like(rot_vel)
    # exclusive cumulative sum of the half-angle yaw velocity
    r_rot_ang[..., 1:] = _cumsum(rot_vel[..., :-1], -1)
    r_rot_quat = yaw_quaternion(r_rot_ang)

    if _is_torch(data):
        r_pos = torch.zeros(data.shape[:-1] + (3,), dtype=data.dtype, device=data.device)
    else:
        r_pos = np.zeros(data.shape[:-1] + (3,), dtype=data.dtype)
    r_pos[..., 1:, 0] = data[..., :-1, 1]
    r_pos[..., 1:, 2] = data[..., :-1, 2]
    r_pos = qrot(qinv(r_rot_quat), r_pos)
    r_pos = _cumsum(r_pos, -2)
    r_pos[..., 1] = data[..., 3]
    return r_rot_quat, r_pos


def recover_from_ric(data, joints_num: int | None = None):
    """Features (..., T, 12J-1) -> joint positions (..., T, J, 3). numpy or torch, batched."""
    dim = data.shape[-1]
    if joints_num is None:
        joints_num = spec_for_feature_dim(dim).joints_num
    if dim != 12 * joints_num - 1:
        raise ValueError(f"feature width {dim} does not match {joints_num} joints (expected {12 * joints_num - 1})")
    r_rot_quat, r_pos = recover_root_rot_pos(data)
    positions = data[..., 4:(joints_num - 1) * 3 + 4]
    positions = positions.reshape(positions.shape[:-1] + (joints_num - 1, 3))
    q = r_rot_quat[..., None, :]
    if _is_torch(q):
        q = q.expand(positions.shape[:-1] + (4,))
    else:
        q = np.broadcast_to(q, positions.shape[:-1] + (4,))
    positions = qrot(qinv(q), positions)
    positions[..., 0] = positions[..., 0] + r_pos[..., None, 0]
    positions[..., 2] = positions[..., 2] + r_pos[..., None, 2]
    if _is_torch(positions):
        return torch.cat([r_pos[..., None, :], positions], dim=-2)
    return np.concatenate([r_pos[..., None, :], positions], axis=-2)


def recover_from_rot(data, joints_num: int | None = None, spec: SkeletonSpec | None = None):
    """Alternative recovery through FK of the 6D rotations with the target skeleton (docs/data-format.md §5)."""
    from .quaternion import matrix_to_cont6d, quaternion_to_matrix

    dim = data.shape[-1]
    spec = spec or spec_for_feature_dim(dim)
    joints_num = joints_num or spec.joints_num
    r_rot_quat, r_pos = recover_root_rot_pos(data)
    r_rot_cont6d = matrix_to_cont6d(quaternion_to_matrix(r_rot_quat))
    start = 4 + (joints_num - 1) * 3
    end = start + (joints_num - 1) * 6
    cont6d = data[..., start:end].reshape(data.shape[:-1] + (joints_num - 1, 6))
    if _is_torch(data):
        cont6d = torch.cat([r_rot_cont6d[..., None, :], cont6d], dim=-2)
    else:
        cont6d = np.concatenate([r_rot_cont6d[..., None, :], cont6d], axis=-2)
    skel = Skeleton.from_spec(spec)
    return skel.forward_kinematics_cont6d(cont6d, r_pos)


# ============================================================================ layout helpers
def feature_slices(joints_num: int) -> dict:
    """Named slices of the feature vector (docs/data-format.md §4)."""
    j = joints_num
    ric_end = 4 + (j - 1) * 3
    rot_end = ric_end + (j - 1) * 6
    vel_end = rot_end + j * 3
    return {
        "root_rot_vel": slice(0, 1), "root_lin_vel": slice(1, 3), "root_y": slice(3, 4),
        "ric": slice(4, ric_end), "rot6d": slice(ric_end, rot_end), "local_vel": slice(rot_end, vel_end),
        "foot_contact": slice(vel_end, vel_end + 4),
    }


# ============================================================================ statistics
def mean_std(arrays: Iterable[np.ndarray], joints_num: int, feat_bias: float = 1.0):
    """Dataset Mean/Std with the group-averaged std of docs/data-format.md §7.1.

    ``feat_bias`` > 1 divides the std of the root groups [0:4] and of the foot contacts by that
    factor (docs/data-format.md §7.2); ``feat_bias=25`` reproduces the evaluator-style statistics (the
    original training code divides by 5 twice). Files containing NaN are skipped; the number of
    skipped arrays is returned.
    """
    # streamed (Chan et al.'s pairwise update of count, mean and sum of squared deviations, float64): memory
    # stays one clip, not the whole dataset (all of HumanML3D would be ~9 GB of float64 frames)
    n, mean, m2, skipped = 0, None, None, 0
    for arr in arrays:
        if arr.ndim != 2 or arr.shape[1] != 12 * joints_num - 1:
            raise ValueError(f"feature array of shape {arr.shape} does not match {joints_num} joints")
        if np.isnan(arr).any():
            skipped += 1
            continue
        if not len(arr):
            continue
        x = arr.astype(np.float64)
        nb, mb = len(x), x.mean(axis=0)
        m2b = ((x - mb) ** 2).sum(axis=0)
        if mean is None:
            n, mean, m2 = nb, mb, m2b
            continue
        delta, tot = mb - mean, n + nb
        mean = mean + delta * (nb / tot)
        m2 = m2 + m2b + delta ** 2 * (n * nb / tot)
        n = tot
    if mean is None:
        raise ValueError("no valid feature arrays to compute statistics from")
    std = np.sqrt(m2 / n)
    s = feature_slices(joints_num)
    for key in ("root_rot_vel", "root_lin_vel", "root_y", "ric", "rot6d", "local_vel", "foot_contact"):
        sl = s[key]
        std[sl] = std[sl].mean()
    return mean.astype(np.float32), apply_feat_bias(std, feat_bias, joints_num).astype(np.float32), skipped


def apply_feat_bias(std: np.ndarray, feat_bias: float, joints_num: int | None = None) -> np.ndarray:
    """A copy of ``std`` with the root [0:4] and foot-contact groups divided by ``feat_bias``
    (docs/data-format.md §7.2; 25 gives the evaluator/VQVAEV3 meta statistics from a dataset's Std.npy)."""
    out = np.array(std, dtype=np.float64, copy=True)
    if feat_bias != 1.0:
        contacts = feature_slices(joints_num or spec_for_feature_dim(out.shape[-1]).joints_num)["foot_contact"]
        out[..., 0:4] /= feat_bias
        out[..., contacts] /= feat_bias
    return out


def mirror_joints(joints: np.ndarray, spec: SkeletonSpec = T2M) -> np.ndarray:
    """HumanML3D mirror copy: negate X and swap left/right joints (docs/data-format.md §8.1 step 6)."""
    out = joints.copy()
    out[..., 0] *= -1
    for a, b in spec.mirror_pairs:
        out[..., [a, b], :] = out[..., [b, a], :]
    return out
