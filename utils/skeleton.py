"""Chain-based skeleton with the inverse / forward kinematics of the HumanML3D pipeline.

Semantics follow docs/data-format.md §8.3 exactly, including two quirks that the
released features depend on:

* the facing direction inside the IK unpacks ``face_joint_idx`` as (l_hip, r_hip, sdr_r, sdr_l)
  although callers pass (r_hip, l_hip, sdr_r, sdr_l);
* every chain (the arm chains starting at the upper spine included) restarts from the root
  rotation instead of the accumulated spine rotation.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from .quaternion import _is_torch, normalize, qbetween, qinv, qmul, qrot, quaternion_to_cont6d
from .paramUtil import SkeletonSpec

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None


class Skeleton:
    def __init__(self, raw_offsets: np.ndarray, kinematic_chain: list):
        self.raw_offsets = np.asarray(raw_offsets, dtype=np.float64)
        self.kinematic_chain = [list(c) for c in kinematic_chain]
        self.joints_num = len(self.raw_offsets)
        self.parents = [-1] * self.joints_num
        for chain in self.kinematic_chain:
            for p, c in zip(chain[:-1], chain[1:]):
                self.parents[c] = p
        self.offsets = self.raw_offsets.copy()

    @classmethod
    def from_spec(cls, spec: SkeletonSpec) -> "Skeleton":
        skel = cls(spec.raw_offsets, spec.kinematic_chain)
        skel.set_offsets(spec.tgt_offsets())
        return skel

    # ------------------------------------------------------------------ offsets
    def set_offsets(self, offsets):
        self.offsets = np.asarray(offsets, dtype=np.float64).copy()

    def get_offsets_joints(self, joints0: np.ndarray) -> np.ndarray:
        """Offsets of a skeleton whose bone lengths are measured on one pose (J, 3)."""
        joints0 = np.asarray(joints0, dtype=np.float64)
        offsets = self.raw_offsets.copy()
        for i in range(1, self.joints_num):
            offsets[i] = self.raw_offsets[i] * np.linalg.norm(joints0[i] - joints0[self.parents[i]])
        return offsets

    # ------------------------------------------------------------------ IK
    def forward_direction(self, joints: np.ndarray, face_joint_idx, smooth_forward: bool = False):
        """Facing direction per frame as the IK computes it (with the unpacking quirk)."""
        l_hip, r_hip, sdr_r, sdr_l = face_joint_idx
        across = (joints[:, r_hip] - joints[:, l_hip]) + (joints[:, sdr_r] - joints[:, sdr_l])
        across = normalize(across)
        forward = np.cross(np.array([[0.0, 1.0, 0.0]]), across)
        if smooth_forward:
            forward = gaussian_filter1d(forward, 20, axis=0, mode="nearest")
        return normalize(forward)

    def inverse_kinematics_np(self, joints: np.ndarray, face_joint_idx, smooth_forward: bool = False):
        """Joint positions (F, J, 3) -> local quaternions (F, J, 4); index 0 is the root rotation."""
        joints = np.asarray(joints, dtype=np.float64)
        forward = self.forward_direction(joints, face_joint_idx, smooth_forward)
        target = np.array([[0.0, 0.0, 1.0]])
        root_quat = qbetween(forward, target)
        root_quat[0] = np.array([1.0, 0.0, 0.0, 0.0])
        quat_params = np.zeros(joints.shape[:-1] + (4,))
        quat_params[:, 0] = root_quat
        for chain in self.kinematic_chain:
            R = root_quat
            for p, c in zip(chain[:-1], chain[1:]):
                u = np.broadcast_to(self.raw_offsets[c], (len(joints), 3))
                v = normalize(joints[:, c] - joints[:, p])
                rot_u_v = qbetween(u, v)
                R_loc = qmul(qinv(R), rot_u_v)
                quat_params[:, c] = R_loc
                R = qmul(R, R_loc)
        return quat_params

    # ------------------------------------------------------------------ FK
    def forward_kinematics(self, quat_params, root_pos, offsets=None):
        """Local quaternions (..., F, J, 4) + root positions (..., F, 3) -> joints (..., F, J, 3).

        Works on numpy arrays and torch tensors.
        """
        offsets = self.offsets if offsets is None else offsets
        if _is_torch(quat_params):
            offsets = torch.as_tensor(offsets, dtype=quat_params.dtype, device=quat_params.device)
            joints = [None] * self.joints_num
        else:
            offsets = np.asarray(offsets, dtype=np.float64)
            joints = [None] * self.joints_num
        joints[0] = root_pos
        for chain in self.kinematic_chain:
            R = quat_params[..., 0, :]
            for p, c in zip(chain[:-1], chain[1:]):
                R = qmul(R, quat_params[..., c, :])
                off = offsets[c]
                joints[c] = qrot(R, off.expand(R.shape[:-1] + (3,)) if _is_torch(R) else np.broadcast_to(off, R.shape[:-1] + (3,))) + joints[p]
        if _is_torch(quat_params):
            return torch.stack(joints, dim=-2)
        return np.stack(joints, axis=-2)

    forward_kinematics_np = forward_kinematics

    def forward_kinematics_cont6d(self, cont6d_params, root_pos, offsets=None):
        """FK from continuous 6D local rotations (..., F, J, 6)."""
        from .quaternion import cont6d_to_matrix

        offsets = self.offsets if offsets is None else offsets
        mats = cont6d_to_matrix(cont6d_params)
        torch_in = _is_torch(mats)
        if torch_in:
            offsets = torch.as_tensor(offsets, dtype=mats.dtype, device=mats.device)
        joints = [None] * self.joints_num
        joints[0] = root_pos
        for chain in self.kinematic_chain:
            R = mats[..., 0, :, :]
            for p, c in zip(chain[:-1], chain[1:]):
                R = R @ mats[..., c, :, :]
                joints[c] = (R @ offsets[c][:, None])[..., 0] + joints[p]
        return torch.stack(joints, dim=-2) if torch_in else np.stack(joints, axis=-2)

    def to_cont6d(self, quat_params):
        return quaternion_to_cont6d(quat_params)
