"""Physical plausibility reward (t2m), on joint positions in metres (docs/method.md §7.4).

The motion is the decoded answer: VQ decode -> de-normalise (``x * std + mean``) ->
``recover_from_ric`` (:class:`rewards.base.MotionDecoder`). Nothing here looks at normalised
feature values (the original release did; **fix**). HumanML3D conventions: Y is up, the floor is
the plane y = 0 (every processed clip is shifted so its lowest joint touches it), 20 fps.

Each term is one physical quantity ``q`` with a tolerance ``tol`` (what real motion shows) and a
scale; its reward is ``exp(-max(0, q - tol) / scale)`` in (0, 1], so real motion scores ~1 and
every ``scale`` beyond the tolerance costs a factor e. The physics reward is the weighted mean of
the term rewards, in [0, 1] (``value_range='[-1,0]'`` shifts it to [-1, 0]). A candidate without
a decodable motion gets 0 (-1) and ``components[...]`` 0.

=============  =================================================================  ==========  =======
term           quantity q                                                         tol         scale
=============  =================================================================  ==========  =======
skate          contact-weighted mean horizontal speed of the foot joints (ankles,  0.15 m/s    0.15 m/s
               toes) in m/s. Contact weight of a joint over one frame step:
               w = clip(2 - 2^(h / H), 0, 1) with h its height over its resting
               height (max of the two frames; toes rest at 0, ankles at 0.05 m,
               the lowest ankle height of the real HumanML3D clip is 0.047 m),
               H = 0.05 m: w = 1 on the floor, 0 from 5 cm up (the soft contact
               of PhysDiff-style skating metrics). A planted foot should not move;
               the real sample clip gives 0.11 m/s (heel/toe roll-off, 20 fps
               differences). A body drifting over a planted foot at 0.5 m/s is
               visible skating.
penetration    mean over frames of the depth of the lowest joint below the floor   0.01 m      0.02 m
               y = 0, i.e. mean_t max(0, -min_j y_tj), metres. Real data: 0
               (the floor is the clip's minimum); 1 cm absorbs decoding noise.
floating       mean over frames of the lowest-joint height while *unsupported      0.01 m      0.03 m
               and not jumping*, metres. A frame is airborne when its lowest
               joint is more than 5 cm above y = 0. An airborne run is accepted
               as a jump when it is short (< 0.2 s: toe-off noise; the real clip's
               jump shows 3 frames) or when it lasts at most 1.0 s (flight time of
               a ~1.2 m vertical jump, beyond any human) *and* the root's vertical
               velocity falls across it by at least half of g*duration (ballistic:
               a real flight loses g*duration of vertical velocity). Every other
               airborne frame floats and contributes its lowest-joint height.
speed          mean over frames of the excess of the fastest joint over 12 m/s    0 m/s       1 m/s
               (m/s). Peak segment speeds of fast everyday and sports motion
               (punches, kicks, sprint leg swing) stay below ~10-12 m/s at
               motion-capture resolution; the real sample clip peaks at 10.0 m/s.
               Faster joints are teleports / exploding decodes.
jerk           mean over frames and joints of |d^3 x / dt^3| (m/s^3) by finite     250 m/s^3   250 m/s^3
               differences at the clip's fps. Smooth human motion at 20 fps: the
               real sample clip 113, synthetic everyday actions 1-260. Frame-level
               jitter of 1 cm standard deviation alone adds ~570 m/s^3 (third
               difference of white noise: sigma * sqrt(20) * fps^3 per axis).
bone           mean over bones and frames of |L_bt - L_b| / L_b with L_b the       0.02        0.05
               target skeleton's bone length (``tgt_bone_lengths``; RIC positions
               are not constrained by a skeleton, so a decoded motion can stretch).
               Real HumanML3D data: 0 (retargeted to that skeleton). KIT-ML, whose
               target lengths here are only anthropometric, uses each clip's mean
               length (i.e. the coefficient of variation over time).
=============  =================================================================  ==========  =======

``info`` also carries per-term raw quantities (``q_<term>``) and per-clip details useful for
logging (max penetration depth, floating fraction, peak speed, bone-length CV).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence

import numpy as np

from utils.paramUtil import T2M, SkeletonSpec

from .base import Reward, RewardBatch, RewardOutput

G = 9.81
TERMS = ("skate", "penetration", "floating", "speed", "jerk", "bone")


@dataclass
class PhysicsConfig:
    # foot contact / skating
    contact_height: float = 0.025       # H of the soft contact weight (m)
    ankle_rest_height: float = 0.05     # ankle height of a flat foot (m)
    toe_rest_height: float = 0.0
    skate_tol: float = 0.10             # m/s
    skate_scale: float = 0.15
    # floor
    penetration_tol: float = 0.01       # m
    penetration_scale: float = 0.02
    air_height: float = 0.05            # lowest joint above this = airborne (m)
    min_check_s: float = 0.2            # shorter airborne runs are tolerated (s)
    max_flight_s: float = 1.0           # no human flight lasts longer (s)
    ballistic_fraction: float = 0.5     # jump: vertical velocity drops >= this * g * duration
    floating_tol: float = 0.01          # m
    floating_scale: float = 0.03
    # kinematics
    max_speed: float = 12.0             # m/s
    speed_tol: float = 0.0
    speed_scale: float = 1.0
    jerk_tol: float = 250.0             # m/s^3
    jerk_scale: float = 250.0
    bone_tol: float = 0.02              # relative
    bone_scale: float = 0.05
    bone_reference: Optional[str] = None  # 'skeleton' | 'mean'; None: skeleton for t2m, mean for kit
    weights: dict = field(default_factory=lambda: {t: 1.0 for t in TERMS})


def _term_reward(q: np.ndarray, tol: float, scale: float) -> np.ndarray:
    return np.exp(-np.maximum(0.0, q - tol) / max(scale, 1e-12))


def _pad(joints_list: Sequence[np.ndarray]):
    lens = np.array([len(j) for j in joints_list], dtype=np.int64)
    J = joints_list[0].shape[1]
    T = int(lens.max())
    out = np.zeros((len(joints_list), T, J, 3), dtype=np.float64)
    for i, j in enumerate(joints_list):
        out[i, : len(j)] = j
    return out, lens


def _frame_mask(lens: np.ndarray, T: int) -> np.ndarray:
    return np.arange(T)[None] < lens[:, None]


def _masked_mean(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over axis 1 of (B, T) values where mask; 0 where a row has no valid entry."""
    n = mask.sum(1)
    return np.where(n > 0, (x * mask).sum(1) / np.maximum(n, 1), 0.0)


def physics_quantities(joints_list: Sequence[np.ndarray], spec: SkeletonSpec = T2M,
                       cfg: Optional[PhysicsConfig] = None, fps: Optional[float] = None) -> dict:
    """The raw physical quantities (one (B,) array per term, see the module table) plus details,
    vectorised over a list of clips of different lengths (joints (T_i, J, 3), spec units)."""
    cfg = cfg or PhysicsConfig()
    fps = float(fps or spec.fps)
    x, lens = _pad([np.asarray(j, dtype=np.float64) for j in joints_list])
    if spec.unit == "mm":
        x = x / 1000.0
    B, T, J, _ = x.shape
    m0 = _frame_mask(lens, T)                     # frames
    m1 = _frame_mask(lens - 1, T - 1)             # velocities (t, t+1)
    m3 = _frame_mask(lens - 3, max(T - 3, 0))     # jerks
    y = x[..., 1]
    vel = np.diff(x, axis=1) * fps                # (B, T-1, J, 3)

    # ---- skating: horizontal speed of foot joints weighted by soft contact
    feet = list(spec.fid_l) + list(spec.fid_r)    # [ankle_l, toe_l, ankle_r, toe_r]
    rest = np.array([cfg.ankle_rest_height, cfg.toe_rest_height] * 2)
    h = np.maximum(y[:, :-1, feet], y[:, 1:, feet]) - rest          # (B, T-1, 4)
    w = np.clip(2.0 - np.power(2.0, np.clip(h, 0, None) / cfg.contact_height), 0.0, 1.0) * m1[..., None]
    hspeed = np.linalg.norm(vel[:, :, feet][..., [0, 2]], axis=-1)
    wsum = w.sum((1, 2))
    skate = np.where(wsum >= 1.0, (w * hspeed).sum((1, 2)) / np.maximum(wsum, 1e-9), 0.0)
    contact_ratio = np.where(m1.sum(1) > 0, w.mean(-1).sum(1) / np.maximum(m1.sum(1), 1), 0.0)

    # ---- floor: penetration and floating from the lowest joint of each frame
    low = np.where(m0, y.min(-1), 0.0)                               # (B, T)
    depth = np.maximum(0.0, -low) * m0
    penetration = _masked_mean(depth, m0)
    max_depth = depth.max(1) if T else np.zeros(B)

    air = (low > cfg.air_height) & m0
    floating_mask = _floating_frames(air, x[..., 0, 1], lens, fps, cfg)
    floating = _masked_mean(np.where(floating_mask, low, 0.0), m0)

    # ---- speed and jerk
    speed = np.linalg.norm(vel, axis=-1)                             # (B, T-1, J)
    peak = np.where(m1, speed.max(-1), 0.0) if T > 1 else np.zeros((B, 0))
    speed_excess = _masked_mean(np.maximum(0.0, peak - cfg.max_speed), m1)
    if T >= 4:
        jerk = np.linalg.norm(np.diff(x, n=3, axis=1), axis=-1).mean(-1) * fps ** 3   # (B, T-3)
        jerk_q = _masked_mean(jerk, m3)
    else:
        jerk_q = np.zeros(B)

    # ---- bone lengths
    parents = np.asarray(spec.parents)
    child = np.flatnonzero(parents >= 0)
    L = np.linalg.norm(x[:, :, child] - x[:, :, parents[child]], axis=-1)   # (B, T, nb)
    ref_mode = cfg.bone_reference or ("skeleton" if spec.name == "t2m" else "mean")
    n0 = np.maximum(m0.sum(1), 1)[:, None]
    mean_len = (L * m0[..., None]).sum(1) / n0                               # (B, nb)
    if ref_mode == "skeleton":
        ref = np.asarray(spec.tgt_bone_lengths, dtype=np.float64)[child] / (1000.0 if spec.unit == "mm" else 1.0)
        ref = np.broadcast_to(ref, mean_len.shape)
    elif ref_mode == "mean":
        ref = mean_len
    else:
        raise ValueError(f"bone_reference must be 'skeleton' or 'mean', got {ref_mode!r}")
    rel = np.abs(L - ref[:, None]) / np.maximum(ref[:, None], 1e-6)
    bone = _masked_mean(rel.mean(-1), m0)
    var = ((L - mean_len[:, None]) ** 2 * m0[..., None]).sum(1) / n0
    bone_cv = (np.sqrt(var) / np.maximum(mean_len, 1e-6)).mean(-1)

    return {"skate": skate, "penetration": penetration, "floating": floating, "speed": speed_excess,
            "jerk": jerk_q, "bone": bone,
            "details": {"contact_ratio": contact_ratio, "max_penetration_m": max_depth,
                        "floating_ratio": _masked_mean(floating_mask.astype(np.float64), m0),
                        "airborne_ratio": _masked_mean(air.astype(np.float64), m0),
                        "peak_speed_mps": peak.max(1) if peak.size else np.zeros(B),
                        "bone_cv": bone_cv, "num_frames": lens.astype(np.float64)}}


def _floating_frames(air: np.ndarray, root_y: np.ndarray, lens: np.ndarray, fps: float,
                     cfg: PhysicsConfig) -> np.ndarray:
    """Airborne frames that belong to runs which are not jump-like (module doc), vectorised over
    the padded batch with run labels from a cumulative sum of run starts."""
    B, T = air.shape
    if T == 0 or not air.any():
        return np.zeros_like(air)
    prev = np.concatenate([np.zeros((B, 1), bool), air[:, :-1]], 1)
    start = air & ~prev
    run_id = np.cumsum(start.ravel()).reshape(B, T) * air           # 1-based run ids, 0 = not airborne
    n_runs = int(run_id.max())
    ids = run_id[air]
    t_idx = np.broadcast_to(np.arange(T), (B, T))[air]
    b_idx = np.broadcast_to(np.arange(B)[:, None], (B, T))[air]
    length = np.bincount(ids, minlength=n_runs + 1)
    first = np.full(n_runs + 1, T, dtype=np.int64)
    last = np.full(n_runs + 1, -1, dtype=np.int64)
    np.minimum.at(first, ids, t_idx)
    np.maximum.at(last, ids, t_idx)
    owner = np.zeros(n_runs + 1, dtype=np.int64)
    owner[ids] = b_idx
    dur = length / fps
    # root vertical velocity entering and leaving the run (one-sided differences, clamped to the clip)
    r = np.arange(1, n_runs + 1)
    b, s, e = owner[r], first[r], last[r]
    Lb = lens[b]
    s0, s1 = np.maximum(s - 1, 0), np.minimum(np.maximum(s, 1), Lb - 1)
    e0, e1 = np.maximum(np.minimum(e, Lb - 2), 0), np.minimum(e + 1, Lb - 1)
    v_in = (root_y[b, s1] - root_y[b, s0]) * fps
    v_out = (root_y[b, e1] - root_y[b, e0]) * fps
    ballistic = (v_out - v_in) <= -cfg.ballistic_fraction * G * dur[r]
    ok = np.zeros(n_runs + 1, dtype=bool)
    ok[r] = (dur[r] < cfg.min_check_s) | ((dur[r] <= cfg.max_flight_s) & ballistic)
    return air & ~ok[run_id]


class PhysicsReward(Reward):
    """Weighted mean of the per-term rewards (module doc); components = the term rewards."""

    name = "phys"
    tasks = ("t2m",)

    def __init__(self, spec: SkeletonSpec = T2M, config: Optional[PhysicsConfig] = None,
                 value_range: str = "[0,1]", fps: Optional[float] = None, target: float = 0.0):
        self.spec = spec
        if not 0.0 <= target <= 1.0:
            raise ValueError(f"physics reward target must be in [0, 1] (0 = off), got {target}")
        self.target = float(target)
        self.cfg = config or PhysicsConfig()
        if value_range not in ("[0,1]", "[-1,0]"):
            raise ValueError(f"value_range must be '[0,1]' or '[-1,0]', got {value_range!r}")
        self.value_range = value_range
        self.fps = fps
        unknown = set(self.cfg.weights) - set(TERMS)
        if unknown:
            raise ValueError(f"unknown physics term(s) {sorted(unknown)}; terms are {TERMS}")

    def config(self) -> dict:
        return {**super().config(), "spec": self.spec.name, "value_range": self.value_range,
                "target": self.target, "physics": asdict(self.cfg)}

    def term_rewards(self, q: dict) -> dict:
        c = self.cfg
        return {"skate": _term_reward(q["skate"], c.skate_tol, c.skate_scale),
                "penetration": _term_reward(q["penetration"], c.penetration_tol, c.penetration_scale),
                "floating": _term_reward(q["floating"], c.floating_tol, c.floating_scale),
                "speed": _term_reward(q["speed"], c.speed_tol, c.speed_scale),
                "jerk": _term_reward(q["jerk"], c.jerk_tol, c.jerk_scale),
                "bone": _term_reward(q["bone"], c.bone_tol, c.bone_scale)}

    def score_joints(self, joints_list: Sequence[Optional[np.ndarray]]) -> RewardOutput:
        """Score clips given as joint positions (T_i, J, 3) (None = no motion: the floor value)."""
        N = len(joints_list)
        valid = [i for i, j in enumerate(joints_list)
                 if j is not None and len(j) >= 2 and np.isfinite(np.asarray(j)).all()]
        comps = {t: np.zeros(N) for t in TERMS}
        raw = {f"q_{t}": np.full(N, np.nan) for t in TERMS}
        details: dict = {}
        if valid:
            q = physics_quantities([joints_list[i] for i in valid], self.spec, self.cfg, self.fps)
            terms = self.term_rewards(q)
            for t in TERMS:
                comps[t][valid] = terms[t]
                raw[f"q_{t}"][valid] = q[t]
            for k, v in q["details"].items():
                arr = np.full(N, np.nan)
                arr[valid] = v
                details[k] = arr
        wts = np.array([self.cfg.weights.get(t, 0.0) for t in TERMS], dtype=np.float64)
        if wts.sum() <= 0:
            raise ValueError("physics term weights must have a positive sum")
        values = np.stack([comps[t] for t in TERMS], 1) @ wts / wts.sum()
        ok = np.zeros(N, bool)
        ok[valid] = True
        values = np.where(ok, values, 0.0)
        if self.target > 0:  # plausible enough is enough: only motions below the target differ in reward
            values = np.minimum(values, self.target) / self.target
        if self.value_range == "[-1,0]":
            values = values - 1.0
        info = {"valid": ok, "invalid": int(N - ok.sum()), **raw, **details}
        return RewardOutput(values, comps, info)

    def score(self, batch: RewardBatch) -> RewardOutput:
        app = self.applicable(batch)
        motions = batch.motions
        joints = [m.joints if (m is not None and app[i]) else None for i, m in enumerate(motions)]
        return self.score_joints(joints)
