"""Procedural body model for the embedded synthetic dataset.

A hierarchical forward kinematics on the real t2m skeleton (22 joints, bone lengths of the
HumanML3D target skeleton) with an anatomical rest pose. A pose is a set of named joint angles
per frame (radians); the body frame is X = person's left, Y = up, Z = forward.
Grounding puts the lowest contact joint on the floor and locks the stance contact horizontally,
so locomotion comes out of the leg motion instead of sliding feet.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from utils.paramUtil import T2M

# Rest direction of each bone parent -> joint, in the body frame (normalised below).
_REST_DIRS = np.array([
    [0.0, 0.0, 0.0],      # 0 pelvis
    [0.55, -0.8, -0.1],   # 1 left hip
    [-0.55, -0.8, -0.1],  # 2 right hip
    [0.0, 1.0, -0.15],    # 3 spine1
    [0.05, -1.0, 0.0],    # 4 left knee
    [-0.05, -1.0, 0.0],   # 5 right knee
    [0.0, 1.0, 0.05],     # 6 spine2
    [-0.02, -1.0, -0.05],  # 7 left ankle
    [0.02, -1.0, -0.05],  # 8 right ankle
    [0.0, 1.0, 0.05],     # 9 spine3
    [0.05, -0.45, 1.0],   # 10 left foot (toe)
    [-0.05, -0.45, 1.0],  # 11 right foot
    [0.0, 1.0, -0.05],    # 12 neck
    [0.6, 0.8, 0.0],      # 13 left collar
    [-0.6, 0.8, 0.0],     # 14 right collar
    [0.0, 1.0, 0.35],     # 15 head
    [1.0, -0.1, -0.1],    # 16 left shoulder
    [-1.0, -0.1, -0.1],   # 17 right shoulder
    [0.12, -1.0, 0.0],    # 18 left elbow
    [-0.12, -1.0, 0.0],   # 19 right elbow
    [0.04, -1.0, 0.15],   # 20 left wrist
    [-0.04, -1.0, 0.15],  # 21 right wrist
])
_n = np.linalg.norm(_REST_DIRS, axis=1, keepdims=True)
_n[0] = 1.0
REST_DIRS = _REST_DIRS / _n
PARENTS = T2M.parents
BONE_OFFSETS = REST_DIRS * T2M.tgt_bone_lengths[:, None]

FEET = [7, 8, 10, 11]
LEFT_FOOT, RIGHT_FOOT = [7, 10], [8, 11]
KNEES_HANDS = [4, 5, 20, 21]

# Pose parameters understood by :func:`pose_rotations` (all default to 0).
PARAMS = [
    "hip_flex_l", "hip_flex_r", "hip_abd_l", "hip_abd_r", "knee_l", "knee_r", "ankle_l", "ankle_r",
    "spine_bend", "spine_side", "spine_twist", "neck_bend",
    "sh_flex_l", "sh_flex_r", "sh_abd_l", "sh_abd_r", "sh_horiz_l", "sh_horiz_r",
    "elbow_l", "elbow_r", "pelvis_pitch",
]


def rx(a):
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def ry(a):
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def rz(a):
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


@dataclass
class Clip:
    """One procedurally generated action before grounding.

    ``params``: pose angles (T,) by name; ``yaw``: heading change (T,) in radians (positive turns
    left, i.e. counter-clockwise seen from above); ``air``: extra height (T,) in metres while
    airborne (no contact lock on those frames); ``drift``: explicit horizontal body-frame velocity
    (T, 2) in metres/frame added while airborne (e.g. jumping forward); ``contacts``: joint ids
    eligible as ground contacts.
    """

    T: int
    params: dict = field(default_factory=dict)
    yaw: np.ndarray | None = None
    air: np.ndarray | None = None
    drift: np.ndarray | None = None
    contacts: list = field(default_factory=lambda: list(FEET))
    lock: bool | np.ndarray = True  # stance-foot lock (per clip or per frame); False: the root follows ``drift``

    def get(self, name):
        v = self.params.get(name)
        return np.zeros(self.T) if v is None else np.asarray(v, dtype=np.float64)

    def yaw_arr(self):
        return np.zeros(self.T) if self.yaw is None else np.asarray(self.yaw, dtype=np.float64)

    def air_arr(self):
        return np.zeros(self.T) if self.air is None else np.asarray(self.air, dtype=np.float64)

    def lock_arr(self):
        return np.broadcast_to(np.asarray(self.lock, dtype=bool), (self.T,)).copy()

    def drift_arr(self):
        return np.zeros((self.T, 2)) if self.drift is None else np.asarray(self.drift, dtype=np.float64)


def pose_rotations(clip: Clip) -> np.ndarray:
    """Local rotation matrices (T, 22, 3, 3) from the pose angles of a clip."""
    T = clip.T
    g = clip.get
    R = np.broadcast_to(np.eye(3), (T, 22, 3, 3)).copy()
    # pelvis pitch (whole body leaning forward, e.g. crawling); yaw is applied in grounding
    R[:, 0] = rx(g("pelvis_pitch"))
    # hips rotate the thigh (bone hip -> knee): flexion forward is -X rotation, abduction outward
    R[:, 1] = rz(g("hip_abd_l")) @ rx(-g("hip_flex_l"))
    R[:, 2] = rz(-g("hip_abd_r")) @ rx(-g("hip_flex_r"))
    R[:, 4] = rx(g("knee_l"))
    R[:, 5] = rx(g("knee_r"))
    R[:, 7] = rx(-g("ankle_l"))
    R[:, 8] = rx(-g("ankle_r"))
    # spine: bend / side bend / twist spread over the three spine joints
    for j in (3, 6, 9):
        R[:, j] = ry(g("spine_twist") / 3) @ rz(-g("spine_side") / 3) @ rx(g("spine_bend") / 3)
    R[:, 12] = rx(g("neck_bend"))
    # shoulders rotate the upper arm (shoulder -> elbow): horizontal swing, abduction, flexion
    R[:, 16] = ry(-g("sh_horiz_l")) @ rz(g("sh_abd_l")) @ rx(-g("sh_flex_l"))
    R[:, 17] = ry(g("sh_horiz_r")) @ rz(-g("sh_abd_r")) @ rx(-g("sh_flex_r"))
    R[:, 18] = rx(-g("elbow_l"))
    R[:, 19] = rx(-g("elbow_r"))
    return R


def body_fk(local_rots: np.ndarray, root_rot: np.ndarray | None = None) -> np.ndarray:
    """Hierarchical FK with the root at the origin: (T, 22, 3, 3) -> joints (T, 22, 3)."""
    T = local_rots.shape[0]
    glob = [None] * 22
    pos = np.zeros((T, 22, 3))
    glob[0] = local_rots[:, 0] if root_rot is None else root_rot @ local_rots[:, 0]
    for j in range(1, 22):
        p = PARENTS[j]
        pos[:, j] = pos[:, p] + glob[p] @ BONE_OFFSETS[j]
        glob[j] = glob[p] @ local_rots[:, j]
    return pos


def ground(clip: Clip) -> np.ndarray:
    """Pose + yaw + contacts -> world joint positions (T, 22, 3) with a stance-locked root."""
    T = clip.T
    yaw = clip.yaw_arr()
    rel = body_fk(pose_rotations(clip), ry(yaw))  # body at origin, already rotated by heading
    air = clip.air_arr()
    airborne = air > 1e-4
    contacts = np.asarray(clip.contacts)
    heights = rel[:, contacts, 1]
    stance = contacts[np.argmin(heights, axis=1)]  # lowest contact joint per frame
    root_y = -heights.min(axis=1) + air

    # horizontal stance lock: keep the stance joint fixed from frame t to t+1
    t = np.arange(T - 1)
    s = stance[:-1]
    delta = rel[t, s][:, [0, 2]] - rel[t + 1, s][:, [0, 2]]
    drift = clip.drift_arr()
    # drift is given in the body frame: rotate by heading
    c, sn = np.cos(yaw[:-1]), np.sin(yaw[:-1])
    drift_world = np.stack([c * drift[:-1, 0] + sn * drift[:-1, 1], -sn * drift[:-1, 0] + c * drift[:-1, 1]], -1)
    free = airborne | ~clip.lock_arr()
    fly = free[:-1] | free[1:]
    delta = np.where(fly[:, None], drift_world, delta)
    root_xz = np.concatenate([np.zeros((1, 2)), np.cumsum(delta, axis=0)], axis=0)
    world = rel.copy()
    world[..., 0] += root_xz[:, None, 0]
    world[..., 2] += root_xz[:, None, 1]
    world[..., 1] += root_y[:, None]
    return world
