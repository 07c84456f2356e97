"""Skeleton constants of the HumanML3D (t2m, 22 joints) and KIT-ML (kit, 21 joints) formats.

Values are the published constants (docs/data-format.md §3). The target bone lengths
of the t2m skeleton are those of clip ``000021`` frame 0; they are measured from the real sample
clip ``012314`` (which was retargeted to that skeleton, so every frame carries those lengths).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# ----------------------------------------------------------------------------- t2m (HumanML3D)
t2m_joint_names = [
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
]

t2m_kinematic_chain = [[0, 2, 5, 8, 11], [0, 1, 4, 7, 10], [0, 3, 6, 9, 12, 15],
                       [9, 14, 17, 19, 21], [9, 13, 16, 18, 20]]

t2m_raw_offsets = np.array([
    [0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, -1, 0], [0, 1, 0],
    [0, -1, 0], [0, -1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0], [1, 0, 0],
    [-1, 0, 0], [0, 0, 1], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0],
    [0, -1, 0],
], dtype=np.float64)

# Bone length (metres) from each joint's parent, target skeleton '000021'.
t2m_tgt_bone_lengths = np.array([
    0.0, 0.1030739, 0.1098834, 0.1315682, 0.3936232, 0.3901881, 0.1431903, 0.432433,
    0.4256433, 0.0573647, 0.1433817, 0.1494187, 0.21936, 0.1374868, 0.1433828, 0.1030393,
    0.131614, 0.1229843, 0.2568399, 0.2630919, 0.2660119, 0.2698763,
], dtype=np.float64)

# left/right pairs (mirror), HumanML3D raw_pose_processing
t2m_mirror_pairs = [(1, 2), (4, 5), (7, 8), (10, 11), (13, 14), (16, 17), (18, 19), (20, 21)]

# ----------------------------------------------------------------------------- kit (KIT-ML)
kit_joint_names = [
    "root", "pelvis_up", "torso", "neck_low", "head", "right_shoulder", "right_elbow",
    "right_wrist", "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee",
    "right_ankle", "right_foot_mid", "right_toe", "left_hip", "left_knee", "left_ankle",
    "left_foot_mid", "left_toe",
]

kit_kinematic_chain = [[0, 11, 12, 13, 14, 15], [0, 16, 17, 18, 19, 20], [0, 1, 2, 3, 4],
                       [3, 5, 6, 7], [3, 8, 9, 10]]

kit_raw_offsets = np.array([
    [0, 0, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0], [1, 0, 0], [0, -1, 0],
    [0, -1, 0], [-1, 0, 0], [0, -1, 0], [0, -1, 0], [1, 0, 0], [0, -1, 0], [0, -1, 0],
    [0, 0, 1], [0, 0, 1], [-1, 0, 0], [0, -1, 0], [0, -1, 0], [0, 0, 1], [0, 0, 1],
], dtype=np.float64)

# The KIT target skeleton is clip '03950' of KIT-ML, which is not shipped here. These are
# anthropometric bone lengths (millimetres) of a 1.75 m adult in the same joint layout; real
# KIT-ML runs do not need them (the release already contains processed features).
kit_tgt_bone_lengths = np.array([
    0.0, 100.0, 180.0, 200.0, 200.0, 170.0, 290.0, 250.0, 170.0, 290.0, 250.0, 95.0, 430.0,
    420.0, 100.0, 80.0, 95.0, 430.0, 420.0, 100.0, 80.0,
], dtype=np.float64)

kit_mirror_pairs = [(5, 8), (6, 9), (7, 10), (11, 16), (12, 17), (13, 18), (14, 19), (15, 20)]


@dataclass(frozen=True)
class SkeletonSpec:
    """Everything the processing pipeline needs to know about one skeleton format."""

    name: str
    joints_num: int
    kinematic_chain: list
    raw_offsets: np.ndarray
    tgt_bone_lengths: np.ndarray
    joint_names: list
    mirror_pairs: list
    l_idx1: int
    l_idx2: int
    fid_r: list
    fid_l: list
    face_joint_indx: list
    foot_threshold: float
    fps: float
    min_motion_len: int
    max_motion_len: int = 196
    unit: str = "m"
    plot_radius: float = 4.0
    parents: list = field(default_factory=list)

    @property
    def feature_dim(self) -> int:
        return 12 * self.joints_num - 1

    def tgt_offsets(self) -> np.ndarray:
        return self.raw_offsets * self.tgt_bone_lengths[:, None]


def parents_from_chains(chains, joints_num):
    parents = [-1] * joints_num
    for chain in chains:
        for p, c in zip(chain[:-1], chain[1:]):
            parents[c] = p
    return parents


T2M = SkeletonSpec(
    name="t2m", joints_num=22, kinematic_chain=t2m_kinematic_chain, raw_offsets=t2m_raw_offsets,
    tgt_bone_lengths=t2m_tgt_bone_lengths, joint_names=t2m_joint_names,
    mirror_pairs=t2m_mirror_pairs, l_idx1=5, l_idx2=8, fid_r=[8, 11], fid_l=[7, 10],
    face_joint_indx=[2, 1, 17, 16], foot_threshold=0.002, fps=20.0, min_motion_len=40,
    unit="m", plot_radius=4.0, parents=parents_from_chains(t2m_kinematic_chain, 22),
)

KIT = SkeletonSpec(
    name="kit", joints_num=21, kinematic_chain=kit_kinematic_chain, raw_offsets=kit_raw_offsets,
    tgt_bone_lengths=kit_tgt_bone_lengths, joint_names=kit_joint_names,
    mirror_pairs=kit_mirror_pairs, l_idx1=17, l_idx2=18, fid_r=[14, 15], fid_l=[19, 20],
    face_joint_indx=[11, 16, 5, 8], foot_threshold=0.05, fps=12.5, min_motion_len=24,
    unit="mm", plot_radius=240 * 8, parents=parents_from_chains(kit_kinematic_chain, 21),
)

SPECS = {"t2m": T2M, "kit": KIT}


def get_spec(dataname: str) -> SkeletonSpec:
    """Skeleton spec by dataset name ('t2m'/'humanml3d' or 'kit'/'kit-ml')."""
    key = {"humanml3d": "t2m", "humanml": "t2m", "kit-ml": "kit", "kitml": "kit"}.get(dataname.lower(), dataname.lower())
    if key not in SPECS:
        raise ValueError(f"unknown dataset name {dataname!r}: expected 't2m' (HumanML3D) or 'kit' (KIT-ML)")
    return SPECS[key]


def spec_for_feature_dim(dim: int) -> SkeletonSpec:
    for spec in SPECS.values():
        if spec.feature_dim == dim:
            return spec
    raise ValueError(f"feature width {dim} matches no known format (263 for t2m, 251 for kit)")
