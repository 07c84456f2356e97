"""Measured motion facts for chain-of-thought data (docs/method.md §5).

``motion_facts(x)`` takes one clip, either raw (un-normalised) HumanML3D-style features
``(T, 12J-1)`` (263 for t2m, 251 for KIT-ML) or joint positions ``(T, J, 3)``, and returns a flat
dict of plain Python numbers / strings / lists (JSON-serialisable). Everything is vectorised
numpy over the frames of the clip; ``motion_facts_batch`` maps it over a list or a padded batch.

Frame and sign conventions (docs/data-format.md §1, §4, §5, §8.4): Y is up, a processed clip
starts facing +Z and the person's left is +X. Distances are metres (KIT-ML millimetres are
converted), time is seconds (20 fps for t2m, 12.5 fps for KIT-ML unless ``fps`` is given).

**Heading sign.** ``heading_change_deg`` is the signed rotation of the body about +Y from the
first to the last frame: **positive = turning left = counter-clockwise seen from above**,
negative = turning right / clockwise. It is measured from the joints (the facing direction of the
hips and shoulders, ``face_joint_indx``, unwrapped frame by frame) on joints recovered from
features whose root-yaw channel was repaired first (:func:`repair_root_yaw`). Feature channel 0 is
not used directly: it describes the root rotation computed from a σ=20-frame smoothed facing
(docs/data-format.md §8.4 step 6), which on a fast spin averages over the circle and hardly rotates (a 3 s clockwise
running circle of the synthetic set: channel sum +16°, body -358°; the RIC joints carry the rest),
and as stored it flips sign on the step where the heading passes ±180°. Where it is meaningful,
``-2 * sum(features[:-1, 0])`` has the same sign convention (the minus: channel 0 stores the
world->facing rotation, whose yaw is minus the body's).
The sign was checked on the synthetic dataset: captions "turns to the left" / "counterclockwise
circle" give positive values, "turns to the right" / "clockwise circle" negative ones.

Keys (units):

==========================  ===============================================================
``num_frames``              T (frames)
``fps``                     frames per second used
``duration_s``              T / fps
``path_length_m``           horizontal (XZ) length of the root trajectory, after a 5-frame
                            (0.25 s) moving average that removes the step-to-step pelvis sway
``net_displacement_m``      horizontal distance between the first and the last root position
``net_forward_m``           net displacement along the initial facing direction (+ = forward)
``net_left_m``              net displacement towards the initial left (+ = left, - = right)
``heading_change_deg``      signed net yaw change, + = left / counter-clockwise (see above)
``turning_abs_deg``         total unsigned yaw travelled (a full circle and back = 720)
``mean_speed_mps``          mean horizontal root speed (m/s, smoothed trajectory)
``max_speed_mps``           max horizontal root speed (m/s, smoothed trajectory)
``root_height_start_m``     root (pelvis) height above the floor at frame 0
``root_height_min_m``       minimum root height
``root_height_max_m``       maximum root height
``vertical_range_m``        max - min root height
``standing_root_height_m``  expected standing pelvis height = 1.1 x measured leg length
                            (hip-knee + knee-ankle); 1.09 on the real HumanML3D sample clip
``crouch_depth_m``          max(0, standing_root_height - root_height_min)
``crouched``                root_height_min < 0.8 x standing_root_height (squat, sit, crawl,
                            deep lunge)
``airborne_frames``         frames where both feet are more than ``air_threshold`` (0.05 m)
                            above the floor (lowest joint of the clip)
``airborne_ratio``          airborne_frames / T
``jump_count``              airborne phases of at least 2 consecutive frames
``max_air_height_m``        highest clearance of the lower foot over the floor
``contact_ratio``           mean of the 4 foot-contact channels (1 = foot static)
``contact_left``            mean of the left ankle/toe contacts
``contact_right``           mean of the right ankle/toe contacts
``limb_speed_mps``          {left_arm, right_arm, left_leg, right_leg}: mean speed (m/s) of the
                            wrist / ankle relative to the root in the body-facing frame (so
                            walking forward or turning do not count as limb motion)
``limb_rank``               limb names sorted from most to least active
``most_active_limb``        limb_rank[0]
``arms_share``              (left+right arm speed) / (sum of the four limb speeds), in [0, 1]
                            (0.5 when nothing moves); > 0.5 = mostly an upper-body motion
``root_yaw_repairs``        feature input only: root-yaw steps whose sign was repaired before
                            recovering the joints (see :func:`repair_root_yaw`); 0 for joints
``repetitions_est``         rough cycle count of the most active limb: its root-relative path,
                            high-passed (minus a 15-frame moving average), projected on its main
                            axis, counted with a hysteresis of 0.5 std; 0 when that std is under
                            1 cm. An estimate only: on the synthetic set it matches the caption's
                            count for squats, kicks, bows and lunges, is often one short for
                            waves / claps, and counts cycles per leg (half the steps) for marching.
==========================  ===============================================================

Feature input uses the contact channels as stored; joint input recomputes contacts with the
velocity test of docs/data-format.md §8.4 step 5 (threshold of the skeleton spec).
"""
from __future__ import annotations

from typing import Iterable, Optional, Sequence

import numpy as np

from .motion_process import feature_slices, recover_from_ric
from .paramUtil import SkeletonSpec, get_spec, spec_for_feature_dim

LIMBS = ("left_arm", "right_arm", "left_leg", "right_leg")
SMOOTH_FRAMES = 5
AIR_THRESHOLD_M = 0.05
CROUCH_RATIO = 0.8
STANDING_LEG_RATIO = 1.1
REPS_HIGHPASS_FRAMES = 15


def _joint_ids(spec: SkeletonSpec) -> dict:
    """End effectors and leg joints from the kinematic chains (same chain order for t2m and kit:
    right leg, left leg, spine, right arm, left arm)."""
    ch = spec.kinematic_chain
    r_leg, l_leg, r_arm, l_arm = ch[0], ch[1], ch[3], ch[4]
    return {"left_wrist": l_arm[-1], "right_wrist": r_arm[-1], "left_ankle": l_leg[3],
            "right_ankle": r_leg[3], "left_hip": l_leg[1], "right_hip": r_leg[1],
            "left_knee": l_leg[2], "right_knee": r_leg[2]}


def _smooth(x: np.ndarray, k: int = SMOOTH_FRAMES) -> np.ndarray:
    """Centred moving average along axis 0 with edge padding (same length)."""
    if k <= 1 or len(x) < 2:
        return x
    k = min(k, len(x) if len(x) % 2 else len(x) - 1)
    if k <= 1:
        return x
    pad = k // 2
    xp = np.concatenate([np.repeat(x[:1], pad, 0), x, np.repeat(x[-1:], pad, 0)], 0)
    c = np.cumsum(np.concatenate([np.zeros_like(xp[:1]), xp], 0), 0)
    return (c[k:] - c[:-k]) / k


def facing_angle(joints: np.ndarray, spec: SkeletonSpec) -> np.ndarray:
    """Unwrapped yaw (radians) of the body per frame, 0 = facing +Z, + = rotated towards +X (left).

    forward = up x across with across = (r_hip - l_hip) + (r_shoulder - l_shoulder), as docs/data-format.md §8.4 step 4.
    """
    r_hip, l_hip, sdr_r, sdr_l = spec.face_joint_indx
    across = (joints[:, r_hip] - joints[:, l_hip]) + (joints[:, sdr_r] - joints[:, sdr_l])
    # (0,1,0) x (ax, ay, az) = (az, 0, -ax)
    fx, fz = across[:, 2], -across[:, 0]
    return np.unwrap(np.arctan2(fx, fz))


def repair_root_yaw(features: np.ndarray):
    """Undo the sign flips of the root-yaw channel; returns ``(features copy, number of flips)``.

    Channel 0 is ``arcsin(q_y)`` of the per-frame relative root rotation (docs/data-format.md §4). The root
    quaternions come out of IK with w >= 0, so when the heading passes ±180° the two quaternions
    of that step lie on opposite hemispheres and the stored half-angle has the right size but the
    wrong sign. Slow turns lose twice one small step; fast spins (where the σ=20 smoothed facing
    swings quickly) lose more than 100°, and every later frame of the recovered joints is rotated
    by that error. The root rotation is smooth (it comes from a Gaussian-smoothed facing), so a
    single frame whose sign differs from both neighbours is such a flip and is negated. On the
    synthetic set (104 pure turns and circles with known angles) this brings the heading error of
    the recovered joints from up to 160° down to under 1.5°.
    """
    out = np.array(features, dtype=np.float64, copy=True)
    a = out[:, 0]
    if len(a) < 2:
        return out, 0
    prev = np.concatenate([a[1:2], a[:-1]])  # edge frames: the only neighbour counts twice
    nxt = np.concatenate([a[1:], a[-2:-1]])
    s = np.sign(a)
    flip = (np.abs(a) > 1e-4) & (np.sign(prev) == -s) & (np.sign(nxt) == -s)
    a[flip] = -a[flip]
    return out, int(flip.sum())


def _cycles(signal: np.ndarray, min_amp: float) -> int:
    """Number of upward hysteresis crossings of a 1-D signal around its mean."""
    x = signal - signal.mean()
    sd = x.std()
    if sd < min_amp:
        return 0
    h = 0.5 * sd
    state, count = 0, 0
    for v in x:  # short clips (<= 200 frames): a Python loop over a few hundred floats
        if v > h and state <= 0:
            if state == -1:
                count += 1
            state = 1
        elif v < -h:
            state = -1
    return count + (1 if count == 0 and state != 0 else 0)


def _runs(mask: np.ndarray, min_len: int) -> int:
    """Number of runs of True of at least ``min_len`` frames."""
    if not mask.any():
        return 0
    m = np.concatenate([[False], mask, [False]]).astype(np.int8)
    d = np.diff(m)
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return int(((ends - starts) >= min_len).sum())


def _as_input(x, spec: Optional[SkeletonSpec]):
    x = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float64)
    if x.ndim == 2:
        spec = spec or spec_for_feature_dim(x.shape[1])
        if x.shape[1] != spec.feature_dim:
            raise ValueError(f"features of width {x.shape[1]} do not match {spec.name} ({spec.feature_dim})")
        x, flips = repair_root_yaw(x)
        joints = np.asarray(recover_from_ric(x, spec.joints_num), dtype=np.float64)
        sl = feature_slices(spec.joints_num)
        contacts = x[:, sl["foot_contact"]]
        return spec, joints, contacts, flips
    if x.ndim == 3 and x.shape[-1] == 3:
        if spec is None:
            spec = get_spec("t2m" if x.shape[1] == 22 else "kit") if x.shape[1] in (21, 22) else None
            if spec is None:
                raise ValueError(f"cannot infer the skeleton of joints with shape {x.shape}")
        joints = x[:, : spec.joints_num]
        if len(joints) >= 2:
            def contact(ids):
                d = joints[1:, ids] - joints[:-1, ids]
                return ((d ** 2).sum(-1) < spec.foot_threshold).astype(np.float64)
            c = np.concatenate([contact(spec.fid_l), contact(spec.fid_r)], axis=1)
            contacts = np.concatenate([c, c[-1:]], 0)
        else:
            contacts = np.ones((len(joints), 4))
        return spec, joints, contacts, 0
    raise ValueError(f"expected features (T, D) or joints (T, J, 3), got shape {x.shape}")


def motion_facts(x, spec: Optional[SkeletonSpec] = None, fps: Optional[float] = None,
                 air_threshold: float = AIR_THRESHOLD_M) -> dict:
    """Facts of one clip (module doc lists the keys). ``x``: raw features (T, D) or joints (T, J, 3)
    (numpy or torch); ``spec`` defaults to the one matching the shape; ``fps`` to the spec's."""
    spec, joints, contacts, yaw_flips = _as_input(x, spec)
    T = joints.shape[0]
    if T < 1:
        raise ValueError("empty motion")
    if not np.isfinite(joints).all():
        raise ValueError("motion contains NaN or Inf")
    fps = float(fps or spec.fps)
    if spec.unit == "mm":
        joints = joints / 1000.0
    ids = _joint_ids(spec)

    root = joints[:, 0]
    floor = joints[..., 1].min()
    # ---- trajectory
    xz = _smooth(root[:, [0, 2]])
    steps = np.linalg.norm(np.diff(xz, axis=0), axis=1) if T > 1 else np.zeros(1)
    speed = steps * fps
    path_length = float(steps.sum())
    net = root[-1, [0, 2]] - root[0, [0, 2]]
    yaw = facing_angle(joints, spec)
    yaw0 = yaw[: min(3, T)].mean()
    fwd0 = np.array([np.sin(yaw0), np.cos(yaw0)])    # (x, z) of the initial facing direction
    left0 = np.array([np.cos(yaw0), -np.sin(yaw0)])  # rotated +90° about +Y: the initial left
    k = min(3, T)
    heading = float(np.degrees(yaw[-k:].mean() - yaw[:k].mean()))
    turning_abs = float(np.degrees(np.abs(np.diff(_smooth(yaw))).sum())) if T > 1 else 0.0

    # ---- heights
    root_y = root[:, 1] - floor
    leg = (np.linalg.norm(joints[:, ids["left_hip"]] - joints[:, ids["left_knee"]], axis=-1).mean()
           + np.linalg.norm(joints[:, ids["left_knee"]] - joints[:, ids["left_ankle"]], axis=-1).mean())
    standing = STANDING_LEG_RATIO * float(leg)
    foot_l = joints[:, spec.fid_l, 1].min(axis=1) - floor
    foot_r = joints[:, spec.fid_r, 1].min(axis=1) - floor
    lower_foot = np.minimum(foot_l, foot_r)
    airborne = lower_foot > air_threshold

    # ---- limbs in the body-facing frame, relative to the root
    rel = joints - root[:, None]
    c, s = np.cos(yaw), np.sin(yaw)
    # rotate by -yaw about +Y: x' = c*x - s*z, z' = s*x + c*z
    local = np.stack([c[:, None] * rel[..., 0] - s[:, None] * rel[..., 2], rel[..., 1],
                      s[:, None] * rel[..., 0] + c[:, None] * rel[..., 2]], axis=-1)
    eff = {"left_arm": ids["left_wrist"], "right_arm": ids["right_wrist"],
           "left_leg": ids["left_ankle"], "right_leg": ids["right_ankle"]}
    eff_idx = [eff[n] for n in LIMBS]
    traj = _smooth(local[:, eff_idx])  # (T, 4, 3)
    if T > 1:
        lspeed = np.linalg.norm(np.diff(traj, axis=0), axis=-1).mean(axis=0) * fps
    else:
        lspeed = np.zeros(4)
    limb_speed = {n: round(float(v), 4) for n, v in zip(LIMBS, lspeed)}
    rank = [LIMBS[i] for i in np.argsort(-lspeed, kind="stable")]
    top = traj[:, LIMBS.index(rank[0])]
    centred = top - _smooth(top, REPS_HIGHPASS_FRAMES)  # remove slow posture changes (raise, lower)
    centred = centred - centred.mean(0)
    if T > 2:
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        reps = _cycles(centred @ vt[0], min_amp=0.01)
    else:
        reps = 0

    contacts = np.asarray(contacts, dtype=np.float64)
    out = {
        "num_frames": int(T),
        "fps": fps,
        "duration_s": round(T / fps, 3),
        "path_length_m": round(path_length, 4),
        "net_displacement_m": round(float(np.linalg.norm(net)), 4),
        "net_forward_m": round(float(net @ fwd0), 4),
        "net_left_m": round(float(net @ left0), 4),
        "heading_change_deg": round(heading, 2),
        "turning_abs_deg": round(turning_abs, 2),
        "mean_speed_mps": round(float(speed.mean()), 4),
        "max_speed_mps": round(float(speed.max()), 4),
        "root_height_start_m": round(float(root_y[0]), 4),
        "root_height_min_m": round(float(root_y.min()), 4),
        "root_height_max_m": round(float(root_y.max()), 4),
        "vertical_range_m": round(float(root_y.max() - root_y.min()), 4),
        "standing_root_height_m": round(standing, 4),
        "crouch_depth_m": round(max(0.0, standing - float(root_y.min())), 4),
        "crouched": bool(root_y.min() < CROUCH_RATIO * standing),
        "airborne_frames": int(airborne.sum()),
        "airborne_ratio": round(float(airborne.mean()), 4),
        "jump_count": _runs(airborne, 2),
        "max_air_height_m": round(float(max(0.0, lower_foot.max())), 4),
        "contact_ratio": round(float(contacts.mean()), 4),
        "contact_left": round(float(contacts[:, :2].mean()), 4),
        "contact_right": round(float(contacts[:, 2:].mean()), 4),
        "limb_speed_mps": limb_speed,
        "limb_rank": rank,
        "most_active_limb": rank[0],
        "arms_share": round(float((lspeed[0] + lspeed[1]) / (lspeed.sum() + 1e-9)) if lspeed.sum() > 1e-6 else 0.5, 4),
        "repetitions_est": int(reps),
        "root_yaw_repairs": yaw_flips,
    }
    return out


def motion_facts_batch(motions: Iterable | np.ndarray, lengths: Optional[Sequence[int]] = None,
                       **kwargs) -> list[dict]:
    """Facts for a list of clips, or a padded array (B, T, D) / (B, T, J, 3) with ``lengths``."""
    if isinstance(motions, np.ndarray) or hasattr(motions, "detach"):
        arr = motions
        if lengths is None:
            lengths = [arr.shape[1]] * arr.shape[0]
        return [motion_facts(arr[i, : int(n)], **kwargs) for i, n in enumerate(lengths)]
    motions = list(motions)
    if lengths is not None:
        motions = [m[: int(n)] for m, n in zip(motions, lengths)]
    return [motion_facts(m, **kwargs) for m in motions]
