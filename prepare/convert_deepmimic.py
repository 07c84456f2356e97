#!/usr/bin/env python
"""Convert the DeepMimic humanoid motion clips (pybullet's ``pybullet_data``) into the HumanML3D format.

    pip install pybullet==3.2.7
    python prepare/convert_deepmimic.py --out data/deepmimic            # every humanoid3d_*.txt in pybullet_data
    python -m prepare.convert_deepmimic path/humanoid3d_walk.txt --out D [--no-mirror] [--no-loop] [--hold-short]

Input: a DeepMimic motion file is JSON ``{"Loop": "wrap" | "none", "Frames": [[...44 numbers...], ...]}``.
A frame is (the layout pybullet's ``pybullet_envs/deep_mimic/env/humanoid_pose_interpolator.py`` reads)::

    [0]      duration of the frame in seconds (time to the next frame; the last frame's is ignored)
    [1:4]    root (pelvis) position, metres, Y up
    [4:8]    root orientation, quaternion (w, x, y, z)
    [8:12]   chest    [12:16] neck                                  quaternions (w, x, y, z), local
    [16:20]  right hip   [20] right knee angle   [21:25] right ankle   [25:29] right shoulder   [29] right elbow angle
    [30:34]  left hip    [34] left knee angle    [35:39] left ankle    [39:43] left shoulder    [43] left elbow angle

Pipeline per clip::

    parse + validate (errors name the file and the frame / line) -> normalise the quaternions
    -> time stamps from the per-frame durations -> [looped clips: whole cycles until the clip reaches
       the dataset minimum, seams cross-faded] -> sampled at 20 fps (slerp / lerp of the pose, as
       pybullet interpolates keyframes) -> forward kinematics on pybullet_data/humanoid/humanoid.urdf
       (stdlib XML; scaled by 0.25, the globalScaling pybullet's DeepMimic environment loads it with;
       the clips' root positions are in those metres) -> the 22 t2m joints (table T2M_FROM_HUMANOID)
    -> lowest joint of the clip on the floor (y = 0)
    -> utils.motion_process.process_file -> new_joint_vecs/<id>.npy, new_joints/<id>.npy (recover_from_ric)
    -> texts/<id>.txt: captions from the action name (HumanML3D line caption#word/POS ...#0.0#0.0)
    -> the same for M<id> (utils.motion_process.mirror_joints; left/right swapped in the captions)
    -> all.txt and test.txt list every id; Mean.npy / Std.npy (prepare/compute_mean_std.py);
       deepmimic_report.json (per clip: source, frames, loops, length filter, captions)

Skeleton mapping (DeepMimic humanoid -> t2m). The humanoid has 15 bodies: root (pelvis, at hip height),
chest, neck (with the head), hips, knees, ankles (with a box foot), shoulders, elbows and wrists; no
toes, no collar bones, one lumbar joint. The t2m joints it lacks are placed on rigid parts:

    pelvis, hips, knees, ankles, neck, shoulders, elbows, wrists   the humanoid joint of that name
    spine1        halfway root -> chest joint (rigid with the pelvis)
    spine2        the chest joint (the humanoid's single lumbar joint)
    spine3        a quarter of the way chest -> neck joint (rigid with the chest)
    collars       halfway neck joint -> shoulder joint (rigid with the chest; ~9 cm off the midline)
    head          60% of the way from the neck joint to the centre of the head sphere (neck body)
    feet (toes)   a point on the foot box of the ankle body: 85% of the way heel -> toe tip, a quarter of
                  the box height above the sole (the ball of the foot; ~11 cm ahead of the ankle)

Clips shorter than the dataset minimum (40 feature frames, i.e. 41 joint frames = 2 s at 20 fps):
a ``"Loop": "wrap"`` clip is repeated for whole cycles until it is long enough (the root advances by
the clip's start-to-end displacement each cycle, as DeepMimic loops it; the pose mismatch at the seam,
tens of degrees for some joints of some clips, is cross-faded over --blend seconds), and the captions say how
many times a discrete action (a backflip, a jump ...) happens. Other short clips are written as
they are with a warning (the loaders drop them), or, with --hold-short, padded by holding the
final pose. --no-loop turns the looping off.

The exit status is 1 when any file failed (the others are still converted).
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python prepare/convert_deepmimic.py` as well as `python -m prepare.convert_deepmimic`
    sys.path.insert(0, str(ROOT))
from prepare.synthetic.captions import mirror_text, realise  # noqa: E402
from utils.motion_process import mirror_joints, process_file, recover_from_ric  # noqa: E402
from utils.paramUtil import T2M  # noqa: E402
from utils.quaternion import qinv, qmul, qrot  # noqa: E402

__all__ = [
    "DeepMimicError", "DeepMimicClip", "HumanoidModel", "FRAME_LAYOUT", "FRAME_WIDTH", "URDF_SCALE",
    "T2M_FROM_HUMANOID", "ACTIONS", "pybullet_data_dir", "default_inputs", "load_clip", "load_humanoid",
    "loop_cycles", "sample_poses", "humanoid_points", "to_t2m", "clip_joints", "captions_for",
    "convert_clip", "convert_many", "main",
]

# (name, kind) of the joints after the root in a frame, in file order; spherical = quaternion (w, x, y, z),
# revolute = one angle in radians about the URDF joint axis (+z for knees and elbows: negative bends the knee)
FRAME_LAYOUT = [
    ("chest", "spherical"), ("neck", "spherical"),
    ("right_hip", "spherical"), ("right_knee", "revolute"), ("right_ankle", "spherical"),
    ("right_shoulder", "spherical"), ("right_elbow", "revolute"),
    ("left_hip", "spherical"), ("left_knee", "revolute"), ("left_ankle", "spherical"),
    ("left_shoulder", "spherical"), ("left_elbow", "revolute"),
]
FRAME_WIDTH = 1 + 3 + 4 + sum(4 if kind == "spherical" else 1 for _, kind in FRAME_LAYOUT)  # 44
assert FRAME_WIDTH == 44

# pybullet_envs/deep_mimic/env/humanoid_stable_pd.py loads humanoid.urdf with globalScaling=0.25; the clips'
# root positions are in the resulting metres (standing root height ~0.85 m = the scaled leg length)
URDF_SCALE = 0.25
URDF_RELPATH = ("humanoid", "humanoid.urdf")
MOTIONS_RELPATH = ("data", "motions")
LOOP_MODES = {"wrap": True, "none": False}  # DeepMimic's "Loop" values
# Longest clip written (joint frames at 20 fps): the loaders drop clips of 200 feature frames or more.
MAX_JOINT_FRAMES = 200
# Refused outright (1 hour at 20 fps): durations that long are a unit error (milliseconds?), not a clip.
MAX_SAMPLED_FRAMES = 72_000
DEFAULT_BLEND_S = 0.25
DEFAULT_PREFIX = "deepmimic_"

# t2m joint -> how it is placed on the humanoid: ("joint", link) = the origin of that URDF link (its
# joint); ("lerp", a, b, t) = a + t (b - a) of two link origins; ("point", link, key) = a point fixed in
# that link's frame, computed from the URDF geometry (HumanoidModel.points).
T2M_FROM_HUMANOID = {
    "pelvis": ("joint", "root"),
    "left_hip": ("joint", "left_hip"),
    "right_hip": ("joint", "right_hip"),
    "spine1": ("lerp", "root", "chest", 0.5),
    "left_knee": ("joint", "left_knee"),
    "right_knee": ("joint", "right_knee"),
    "spine2": ("joint", "chest"),
    "left_ankle": ("joint", "left_ankle"),
    "right_ankle": ("joint", "right_ankle"),
    "spine3": ("lerp", "chest", "neck", 0.25),
    "left_foot": ("point", "left_ankle", "ball_of_foot"),
    "right_foot": ("point", "right_ankle", "ball_of_foot"),
    "neck": ("joint", "neck"),
    "left_collar": ("lerp", "neck", "left_shoulder", 0.5),
    "right_collar": ("lerp", "neck", "right_shoulder", 0.5),
    "head": ("point", "neck", "head"),
    "left_shoulder": ("joint", "left_shoulder"),
    "right_shoulder": ("joint", "right_shoulder"),
    "left_elbow": ("joint", "left_elbow"),
    "right_elbow": ("joint", "right_elbow"),
    "left_wrist": ("joint", "left_wrist"),
    "right_wrist": ("joint", "right_wrist"),
}
assert list(T2M_FROM_HUMANOID) == T2M.joint_names
HEAD_FRACTION = 0.6          # neck joint -> head sphere centre
FOOT_BALL_ALONG = 0.85       # heel -> toe tip
FOOT_BALL_UP = 0.25          # sole -> top of the foot box


class DeepMimicError(ValueError):
    """An unreadable or invalid DeepMimic motion file or humanoid URDF (the message names the file and,
    where it applies, the frame and line)."""


# ============================================================================ quaternions
def _qpow(q, a):
    """Unit quaternion ``q`` raised to the real power ``a`` (broadcasting): the rotation angle times ``a``."""
    q = np.where(q[..., :1] < 0, -q, q)
    v = q[..., 1:]
    s = np.linalg.norm(v, axis=-1, keepdims=True)
    half = np.arctan2(s, q[..., :1])
    axis = np.where(s > 1e-12, v / np.maximum(s, 1e-12), 0.0)
    a = np.asarray(a, dtype=np.float64)[..., None] if np.ndim(a) else a
    return np.concatenate([np.cos(half * a), np.sin(half * a) * axis], axis=-1)


def _slerp(q0, q1, t):
    """Spherical interpolation between unit quaternions (..., 4) with fractions t (...,), shortest arc."""
    dot = (q0 * q1).sum(-1)
    q1 = np.where(dot[..., None] < 0, -q1, q1)
    return qmul(q0, _qpow(qmul(qinv(q0), q1), t))


def _rpy_quaternion(rpy):
    """URDF origin rpy (fixed axes: roll about x, then pitch about y, then yaw about z) -> (w, x, y, z)."""
    r, p, y = (float(v) for v in rpy)
    qx = np.array([math.cos(r / 2), math.sin(r / 2), 0.0, 0.0])
    qy = np.array([math.cos(p / 2), 0.0, math.sin(p / 2), 0.0])
    qz = np.array([math.cos(y / 2), 0.0, 0.0, math.sin(y / 2)])
    return qmul(qz, qmul(qy, qx))


# ============================================================================ humanoid (URDF)
@dataclass
class UrdfJoint:
    name: str
    kind: str               # spherical / revolute / fixed (continuous is read as revolute)
    parent: str
    child: str
    xyz: np.ndarray         # origin, metres (scaled)
    quat: np.ndarray        # origin rotation (w, x, y, z)
    axis: np.ndarray


@dataclass
class HumanoidModel:
    """The DeepMimic humanoid read from its URDF: kinematic tree, scaled to metres, plus the fixed points the
    t2m mapping needs (``points[key] = (link, xyz in that link's frame)``)."""

    path: str
    scale: float
    base: str
    joints: list                          # topological order (parents first)
    points: dict = field(default_factory=dict)
    rest_height: float = float("nan")     # metres, soles to the top of the head, all joints at zero
    rest_bounds: tuple = ()               # (lowest y, highest y) of the rest pose geometry, metres

    def forward_kinematics(self, root_pos, root_quat, values: dict):
        """World frames of every link: ``{link: (quat (F, 4), position (F, 3))}``.

        ``values[joint]`` is (F, 4) for a spherical joint, (F,) for a revolute one; fixed joints need none.
        """
        frames = {self.base: (np.asarray(root_quat, dtype=np.float64), np.asarray(root_pos, dtype=np.float64))}
        n = frames[self.base][0].shape[0]
        for j in self.joints:
            pq, pp = frames[j.parent]
            q = qmul(pq, np.broadcast_to(j.quat, (n, 4)))
            if j.kind == "spherical":
                q = qmul(q, values[j.name])
            elif j.kind == "revolute":
                angle = np.asarray(values[j.name], dtype=np.float64)
                local = np.concatenate([np.cos(angle / 2)[:, None], np.sin(angle / 2)[:, None] * j.axis[None]], axis=-1)
                q = qmul(q, local)
            p = pp + qrot(pq, np.broadcast_to(j.xyz, (n, 3)))
            frames[j.child] = (q, p)
        return frames


def _floats(text, n, where):
    try:
        vals = [float(v) for v in str(text).split()]
    except ValueError:
        vals = []
    if len(vals) != n or not all(math.isfinite(v) for v in vals):
        raise DeepMimicError(f"{where}: expected {n} numbers, got {text!r}")
    return np.array(vals)


def _geometry_extent(shape, origin_xyz, origin_quat, where):
    """Points bounding one URDF geometry (sphere / box / capsule / cylinder) in its link frame (URDF units);
    None for other shapes (meshes)."""
    def attr(name, n):
        return _floats(shape.get(name), n, f"{where} <{shape.tag} {name}>")

    if shape.tag == "sphere":
        r = attr("radius", 1)[0]
        pts = [[s * r * (i == k) for k in range(3)] for i in range(3) for s in (-1, 1)]
    elif shape.tag == "box":
        sx, sy, sz = attr("size", 3) / 2
        pts = [[a, b, c] for a in (-sx, sx) for b in (-sy, sy) for c in (-sz, sz)]
    elif shape.tag in ("capsule", "cylinder"):  # URDF: along the local z axis
        r, half = attr("radius", 1)[0], attr("length", 1)[0] / 2
        cap = r if shape.tag == "capsule" else 0.0
        pts = [[a * r, b * r, c * (half + cap)] for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 1)]
    else:
        return None
    pts = np.array(pts, dtype=np.float64)
    return qrot(np.broadcast_to(origin_quat, (len(pts), 4)), pts) + origin_xyz


def load_humanoid(path=None, scale: float = URDF_SCALE) -> HumanoidModel:
    """Parse pybullet_data/humanoid/humanoid.urdf (or ``path``) with the standard library's XML parser."""
    path = Path(path) if path is not None else pybullet_data_dir().joinpath(*URDF_RELPATH)
    if not path.is_file():
        raise DeepMimicError(f"humanoid URDF not found: {path}")
    raw = path.read_bytes().rstrip(b"\x00\r\n\t ")  # the shipped file ends in a NUL byte
    try:
        robot = ET.fromstring(raw)
    except ET.ParseError as exc:
        line, col = exc.position
        raise DeepMimicError(f"{path}:{line}:{col}: invalid URDF XML: {exc}") from None
    links = {}
    for link in robot.iter("link"):
        links[link.get("name")] = link
    joints, children = [], set()
    for el in robot.iter("joint"):
        name, kind = el.get("name"), el.get("type")
        where = f"{path}: joint {name!r}"
        parent, child = el.find("parent"), el.find("child")
        if parent is None or child is None or parent.get("link") not in links or child.get("link") not in links:
            raise DeepMimicError(f"{where}: needs <parent link=...> and <child link=...> naming links of the file")
        origin = el.find("origin")
        xyz = _floats(origin.get("xyz", "0 0 0"), 3, where + " origin xyz") if origin is not None else np.zeros(3)
        rpy = _floats(origin.get("rpy", "0 0 0"), 3, where + " origin rpy") if origin is not None else np.zeros(3)
        axis_el = el.find("axis")
        axis = _floats(axis_el.get("xyz"), 3, where + " axis") if axis_el is not None else np.array([1.0, 0.0, 0.0])
        if kind == "continuous":
            kind = "revolute"
        if kind not in ("spherical", "revolute", "fixed"):
            raise DeepMimicError(f"{where}: unsupported joint type {kind!r} (spherical, revolute or fixed)")
        if np.linalg.norm(axis) < 1e-9:
            raise DeepMimicError(f"{where}: zero joint axis")
        joints.append(UrdfJoint(name, kind, parent.get("link"), child.get("link"), xyz * scale,
                                _rpy_quaternion(rpy), axis / np.linalg.norm(axis)))
        children.add(child.get("link"))
    roots = [n for n in links if n not in children]
    if len(roots) != 1:
        raise DeepMimicError(f"{path}: expected one root link, found {roots or 'none'}")
    ordered, known, pending = [], {roots[0]}, list(joints)
    while pending:
        ready = [j for j in pending if j.parent in known]
        if not ready:
            raise DeepMimicError(f"{path}: joints {[j.name for j in pending]} are not connected to {roots[0]!r}")
        for j in ready:
            ordered.append(j)
            known.add(j.child)
            pending.remove(j)
    model = HumanoidModel(str(path), scale, roots[0], ordered)
    names = {j.name for j in ordered}
    needed = [n for n, _ in FRAME_LAYOUT] + ["root", "left_wrist", "right_wrist"]
    missing = [n for n in needed if n not in names]
    if missing:
        raise DeepMimicError(f"{path}: not the DeepMimic humanoid: joints {missing} missing")
    by_name = {j.name: j for j in ordered}
    for name, kind in FRAME_LAYOUT:
        if by_name[name].kind != kind:
            raise DeepMimicError(f"{path}: joint {name!r} is {by_name[name].kind}, the motion format needs {kind}")

    # geometry: rest-pose bounds (all joint values zero) and the head / ball-of-foot points
    rest = model.forward_kinematics(np.zeros((1, 3)), np.array([[1.0, 0, 0, 0]]),
                                    {j.name: (np.array([[1.0, 0, 0, 0]]) if j.kind == "spherical" else np.zeros(1))
                                     for j in ordered})
    lo, hi, shapes = np.inf, -np.inf, {}
    for lname, link in links.items():
        for geom_parent in list(link.findall("collision")) + list(link.findall("visual")):
            geom = geom_parent.find("geometry")
            if geom is None:
                continue
            origin = geom_parent.find("origin")
            where = f"{path}: link {lname!r} {geom_parent.tag}"
            oxyz = _floats(origin.get("xyz", "0 0 0"), 3, where + " origin xyz") if origin is not None else np.zeros(3)
            orpy = _floats(origin.get("rpy", "0 0 0"), 3, where + " origin rpy") if origin is not None else np.zeros(3)
            shape = geom[0] if len(geom) else None
            pts = None if shape is None else _geometry_extent(shape, oxyz, _rpy_quaternion(orpy), where)
            if pts is None:
                continue
            shapes.setdefault(lname, (shape, oxyz, orpy))
            q, p = rest[lname]
            world = qrot(np.broadcast_to(q[0], (len(pts), 4)), pts * scale) + p[0]
            lo, hi = min(lo, world[:, 1].min()), max(hi, world[:, 1].max())
    model.rest_bounds = (float(lo), float(hi))
    model.rest_height = float(hi - lo)
    for side in ("left", "right"):  # the foot: an axis-aligned box on the ankle body, toes towards +x
        shape, centre, rpy = shapes.get(f"{side}_ankle", (None, None, None))
        if shape is None or shape.tag != "box" or np.abs(rpy).max() > 1e-6:
            raise DeepMimicError(f"{path}: link '{side}_ankle' has no axis-aligned box foot (the mapping places "
                                 f"the ball of the foot on it)")
        sx, sy, _ = _floats(shape.get("size"), 3, f"{path}: link '{side}_ankle' box size")
        ball = np.array([centre[0] - sx / 2 + FOOT_BALL_ALONG * sx, centre[1] - sy / 2 + FOOT_BALL_UP * sy, centre[2]])
        model.points[f"{side}_ankle:ball_of_foot"] = (f"{side}_ankle", ball * scale)
    shape, centre, _ = shapes.get("neck", (None, None, None))
    if shape is None or shape.tag != "sphere":
        raise DeepMimicError(f"{path}: link 'neck' has no sphere head geometry")
    model.points["neck:head"] = ("neck", HEAD_FRACTION * centre * scale)
    return model


# ============================================================================ motion files
@dataclass
class DeepMimicClip:
    path: str
    loop: bool
    times: np.ndarray            # (N,) seconds from the first frame
    root_pos: np.ndarray         # (N, 3) metres
    root_quat: np.ndarray        # (N, 4) (w, x, y, z), normalised
    values: dict                 # joint -> (N, 4) quaternions or (N,) angles
    renormalised: int = 0        # quaternions whose norm was off by more than 1%

    @property
    def num_frames(self) -> int:
        return len(self.times)

    @property
    def duration(self) -> float:
        return float(self.times[-1])

    @property
    def action(self) -> str:
        stem = Path(self.path).stem
        return stem[len("humanoid3d_"):] if stem.startswith("humanoid3d_") else stem


def _frame_lines(text: str):
    """1-based line of the start of every element of the "Frames" array (None when it cannot be located)."""
    m = re.search(r'"Frames"\s*:\s*\[', text)
    if not m:
        return None
    lines, depth, line = [], 1, text.count("\n", 0, m.end()) + 1
    for ch in text[m.end():]:
        if ch == "\n":
            line += 1
        elif ch == "[":
            depth += 1
            if depth == 2:
                lines.append(line)
        elif ch == "]":
            depth -= 1
            if depth == 0:
                break
    return lines


def load_clip(path) -> DeepMimicClip:
    """Read and validate one DeepMimic motion file (humanoid3d layout, FRAME_LAYOUT)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DeepMimicError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise DeepMimicError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DeepMimicError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"
                             f"{' (truncated file?)' if exc.pos >= len(text.rstrip()) else ''}") from None
    if not isinstance(data, dict) or "Frames" not in data:
        raise DeepMimicError(f"{path}: expected a JSON object with a \"Frames\" list (DeepMimic motion file)")
    frames = data["Frames"]
    if not isinstance(frames, list):
        raise DeepMimicError(f"{path}: \"Frames\" must be a list of frames, got {type(frames).__name__}")
    loop = data.get("Loop", "none")
    if not isinstance(loop, str) or loop.lower() not in LOOP_MODES:
        raise DeepMimicError(f"{path}: \"Loop\" must be one of {sorted(LOOP_MODES)}, got {loop!r}")
    if len(frames) < 2:
        raise DeepMimicError(f"{path}: needs at least 2 frames, has {len(frames)}")
    lines = _frame_lines(text)
    if lines is not None and len(lines) != len(frames):
        lines = None

    def where(i):
        return f"{path}: frame {i}" + (f" (line {lines[i]})" if lines else "")

    for i, fr in enumerate(frames):
        if not isinstance(fr, list):
            raise DeepMimicError(f"{where(i)}: expected a list of {FRAME_WIDTH} numbers, got {type(fr).__name__}")
        if len(fr) != FRAME_WIDTH:
            hint = " (a value missing or extra?)" if abs(len(fr) - FRAME_WIDTH) == 1 else \
                " (not the humanoid3d layout: another character's clip?)"
            raise DeepMimicError(f"{where(i)}: has {len(fr)} values, expected {FRAME_WIDTH} "
                                 f"(duration, root position 3, root quaternion 4, 8 joint quaternions, "
                                 f"4 joint angles){hint}")
        for k, v in enumerate(fr):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise DeepMimicError(f"{where(i)}: value {k} is {v!r}, expected a finite number")
    arr = np.asarray(frames, dtype=np.float64)
    dur = arr[:-1, 0]
    bad = np.flatnonzero(~(dur > 0))
    if len(bad):
        raise DeepMimicError(f"{where(int(bad[0]))}: duration {float(arr[bad[0], 0])!r} s, expected > 0 "
                             f"(only the last frame's duration is ignored)")
    times = np.concatenate([[0.0], np.cumsum(dur)])

    renormalised = 0

    def quats(col, label):
        nonlocal renormalised
        q = arr[:, col:col + 4]
        n = np.linalg.norm(q, axis=-1)
        small = np.flatnonzero(n < 0.1)
        if len(small):
            i = int(small[0])
            raise DeepMimicError(f"{where(i)}: {label} quaternion (values {col}-{col + 3}) has norm {n[i]:.3g}, "
                                 f"not a rotation")
        renormalised += int((np.abs(n - 1) > 0.01).sum())
        return q / n[:, None]

    values, col = {}, 8
    root_quat = quats(4, "root")
    for name, kind in FRAME_LAYOUT:
        if kind == "spherical":
            values[name] = quats(col, name)
            col += 4
        else:
            values[name] = arr[:, col].copy()
            col += 1
    return DeepMimicClip(str(path), LOOP_MODES[loop.lower()], times, arr[:, 1:4].copy(), root_quat, values,
                         renormalised)


# ============================================================================ time
def _n_frames(duration: float, fps: float) -> int:
    return int(math.floor(duration * fps + 1e-6)) + 1


def loop_cycles(clip: DeepMimicClip, min_frames: int, fps: float = 20.0, max_frames: int = MAX_JOINT_FRAMES) -> int:
    """Whole cycles of a looping clip so it has at least ``min_frames`` frames at ``fps`` (1 if it already has,
    or if it cannot loop); never more than ``max_frames`` frames unless one cycle is already longer."""
    if not clip.loop:
        return 1
    cycles = 1
    while (_n_frames(cycles * clip.duration, fps) < min_frames
           and _n_frames((cycles + 1) * clip.duration, fps) <= max_frames):
        cycles += 1
    return cycles


def _interp(clip, tau):
    """Pose of one cycle at times ``tau`` in [0, duration] (slerp / lerp between keyframes)."""
    i = np.clip(np.searchsorted(clip.times, tau, side="right") - 1, 0, clip.num_frames - 2)
    f = np.clip((tau - clip.times[i]) / (clip.times[i + 1] - clip.times[i]), 0.0, 1.0)
    pose = {"root_pos": clip.root_pos[i] + f[:, None] * (clip.root_pos[i + 1] - clip.root_pos[i]),
            "root_quat": _slerp(clip.root_quat[i], clip.root_quat[i + 1], f)}
    for name, kind in FRAME_LAYOUT:
        v = clip.values[name]
        pose[name] = _slerp(v[i], v[i + 1], f) if kind == "spherical" else v[i] + f * (v[i + 1] - v[i])
    return pose


def sample_poses(clip: DeepMimicClip, times, cycles: int = 1, blend_s: float = DEFAULT_BLEND_S) -> dict:
    """Pose parameters at ``times`` (seconds) of ``cycles`` repetitions of the clip.

    Each repetition is shifted by the clip's start-to-end root displacement in the ground plane (x, z), as
    DeepMimic loops a clip. The mismatch between the last and the first frame (a pose jump at each seam)
    is spread over ``blend_s`` seconds on either side of the seam: the frames before it move halfway
    towards the next cycle's first frame, the frames after it halfway back, with a smoothstep weight.
    """
    times = np.asarray(times, dtype=np.float64)
    D = clip.duration
    c = np.clip(np.floor(times / D + 1e-9), 0, cycles - 1).astype(int)
    tau = np.clip(times - c * D, 0.0, D)
    pose = _interp(clip, tau)
    offset = clip.root_pos[-1] - clip.root_pos[0]
    offset[1] = 0.0
    pose["root_pos"] = pose["root_pos"] + c[:, None] * offset
    if cycles < 2:
        return pose
    w = min(float(blend_s), 0.45 * D)
    if w <= 0:
        return pose
    deltas = {"root_quat": qmul(clip.root_quat[0], qinv(clip.root_quat[-1]))}
    pos_delta = clip.root_pos[0] + offset - clip.root_pos[-1]
    for name, kind in FRAME_LAYOUT:
        v = clip.values[name]
        deltas[name] = qmul(v[0], qinv(v[-1])) if kind == "spherical" else v[0] - v[-1]
    for k in range(1, cycles):
        d = times - k * D
        near = np.abs(d) < w
        if not near.any():
            continue
        x = 1.0 - np.abs(d[near]) / w
        alpha = 0.5 * x * x * (3 - 2 * x) * np.where(d[near] < 0, 1.0, -1.0)
        pose["root_pos"][near] += alpha[:, None] * pos_delta
        pose["root_quat"][near] = qmul(_qpow(deltas["root_quat"], alpha), pose["root_quat"][near])
        for name, kind in FRAME_LAYOUT:
            if kind == "spherical":
                pose[name][near] = qmul(_qpow(deltas[name], alpha), pose[name][near])
            else:
                pose[name][near] += alpha * deltas[name]
    return pose


# ============================================================================ joints
def humanoid_points(model: HumanoidModel, pose: dict) -> dict:
    """World positions (F, 3) of every link origin and of the mapping's fixed points (``link:key``)."""
    values = {name: pose[name] for name, _ in FRAME_LAYOUT}
    frames = model.forward_kinematics(pose["root_pos"], pose["root_quat"], values)
    out = {j.name: frames[j.child][1] for j in model.joints}
    out.setdefault("root", frames[model.base][1])  # the base link when the URDF has no 'root' joint
    for key, (link, xyz) in model.points.items():
        q, p = frames[link]
        out[key] = p + qrot(q, np.broadcast_to(xyz, p.shape))
    return out


def to_t2m(points: dict) -> np.ndarray:
    """The 22 t2m joints (F, 22, 3) from :func:`humanoid_points` following T2M_FROM_HUMANOID."""
    cols = []
    for name, rule in T2M_FROM_HUMANOID.items():
        if rule[0] == "joint":
            cols.append(points[rule[1]])
        elif rule[0] == "lerp":
            a, b, t = points[rule[1]], points[rule[2]], rule[3]
            cols.append(a + t * (b - a))
        else:
            cols.append(points[f"{rule[1]}:{rule[2]}"])
    return np.stack(cols, axis=1)


def clip_joints(clip: DeepMimicClip, model: HumanoidModel, fps: float = 20.0, cycles: int = 1,
                blend_s: float = DEFAULT_BLEND_S, hold_to: int = 0):
    """t2m joints (T, 22, 3) in metres at ``fps``, Y up, lowest joint of the clip at y = 0.

    Returns ``(joints, floor_offset)``: the height the clip was lifted by (minus the lowest joint's height
    in DeepMimic's world, whose floor is y = 0). ``hold_to``: pad to that many frames with the final pose.
    """
    n = _n_frames(cycles * clip.duration, fps)
    times = np.minimum(np.arange(n) / fps, cycles * clip.duration)
    joints = to_t2m(humanoid_points(model, sample_poses(clip, times, cycles, blend_s)))
    if hold_to > n:
        joints = np.concatenate([joints, np.repeat(joints[-1:], hold_to - n, axis=0)], axis=0)
    lift = -float(joints[..., 1].min())
    joints[..., 1] += lift
    return joints, lift


# ============================================================================ captions
def _count_words(n):
    return {2: "two", 3: "three", 4: "four", 5: "five"}.get(n, str(n))


def _times_phrase(n):
    return "twice/ADV" if n == 2 else f"{_count_words(n)}/NUM times/NOUN:time"


@dataclass(frozen=True)
class Action:
    """Caption templates (``surface/POS[:lemma]`` words, see prepare/synthetic/captions.py) for one clip.

    ``once``: captions of a single performance. ``repeated(n)``: captions for n back-to-back repetitions
    (None: the action is an ongoing activity, e.g. walking, whose captions do not change when looped).
    """

    once: tuple
    repeated: object = None


def _rep(*templates):
    """Templates with {n} (number word /NUM), {times} (twice / n times) placeholders."""
    def make(n):
        return tuple(t.format(n=f"{_count_words(n)}/NUM", times=_times_phrase(n)) for t in templates)
    return make


ACTIONS = {
    # ongoing activities: looping the clip does not change what the captions say
    "walk": Action(("a/DET person/NOUN walks/VERB:walk forward/ADV",
                    "someone/PRON walks/VERB:walk straight/ADV ahead/ADV",
                    "a/DET man/NOUN is/AUX walking/VERB:walk forward/ADV at/ADP a/DET normal/ADJ pace/NOUN")),
    "run": Action(("a/DET person/NOUN runs/VERB:run forward/ADV",
                   "someone/PRON jogs/VERB:jog straight/ADV ahead/ADV",
                   "a/DET man/NOUN is/AUX running/VERB:run forward/ADV")),
    "crawl": Action(("a/DET person/NOUN crawls/VERB:crawl forward/ADV on/ADP hands/NOUN:hand and/CCONJ knees/NOUN:knee",
                     "someone/PRON crawls/VERB:crawl on/ADP the/DET floor/NOUN",
                     "a/DET person/NOUN is/AUX crawling/VERB:crawl on/ADP all/DET fours/NOUN:four")),
    "dance_b": Action(("a/DET person/NOUN dances/VERB:dance in/ADP place/NOUN",
                       "someone/PRON dances/VERB:dance swinging/VERB:swing the/DET arms/NOUN:arm",
                       "a/DET person/NOUN is/AUX dancing/VERB:dance energetically/ADV")),
    # one performance per cycle (checked on the clips: directions are the performer's, from the root path
    # and heading; mirror_text swaps left/right and clockwise/counterclockwise for the M copies)
    "dance_a": Action(("a/DET person/NOUN dances/VERB:dance and/CCONJ spins/VERB:spin around/ADV clockwise/ADV "
                       "with/ADP the/DET arms/NOUN:arm stretched/VERB:stretch out/ADP",
                       "someone/PRON twirls/VERB:twirl around/ADV to/ADP the/DET right/NOUN with/ADP arms/NOUN:arm "
                       "out/ADV",
                       "a/DET person/NOUN dances/VERB:dance ,/PUNCT turning/VERB:turn a/DET full/ADJ circle/NOUN "
                       "to/ADP the/DET right/NOUN"),
                      _rep("a/DET person/NOUN dances/VERB:dance and/CCONJ spins/VERB:spin around/ADV clockwise/ADV "
                           "{times} with/ADP the/DET arms/NOUN:arm stretched/VERB:stretch out/ADP",
                           "someone/PRON twirls/VERB:twirl around/ADV to/ADP the/DET right/NOUN {times}",
                           "a/DET person/NOUN dances/VERB:dance ,/PUNCT turning/VERB:turn {n} full/ADJ "
                           "circles/NOUN:circle "
                           "to/ADP the/DET right/NOUN")),
    "backflip": Action(("a/DET person/NOUN does/VERB:do a/DET backflip/NOUN",
                        "someone/PRON jumps/VERB:jump and/CCONJ flips/VERB:flip backwards/ADV",
                        "a/DET person/NOUN performs/VERB:perform a/DET back/ADJ flip/NOUN"),
                       _rep("a/DET person/NOUN does/VERB:do {n} backflips/NOUN:backflip",
                            "someone/PRON jumps/VERB:jump and/CCONJ flips/VERB:flip backwards/ADV {times}",
                            "a/DET person/NOUN performs/VERB:perform a/DET back/ADJ flip/NOUN {times}")),
    "cartwheel": Action(("a/DET person/NOUN does/VERB:do a/DET cartwheel/NOUN to/ADP the/DET left/NOUN",
                         "someone/PRON performs/VERB:perform a/DET cartwheel/NOUN moving/VERB:move to/ADP the/DET "
                         "left/NOUN",
                         "a/DET person/NOUN turns/VERB:turn a/DET cartwheel/NOUN"),
                        _rep("a/DET person/NOUN does/VERB:do {n} cartwheels/NOUN:cartwheel to/ADP the/DET left/NOUN",
                             "someone/PRON performs/VERB:perform a/DET cartwheel/NOUN to/ADP the/DET left/NOUN {times}",
                             "a/DET person/NOUN turns/VERB:turn cartwheels/NOUN:cartwheel {times}")),
    "jump": Action(("a/DET person/NOUN jumps/VERB:jump forward/ADV",
                    "someone/PRON leaps/VERB:leap forward/ADV with/ADP both/DET feet/NOUN:foot",
                    "a/DET person/NOUN does/VERB:do a/DET long/ADJ jump/NOUN"),
                   _rep("a/DET person/NOUN jumps/VERB:jump forward/ADV {times}",
                        "someone/PRON leaps/VERB:leap forward/ADV with/ADP both/DET feet/NOUN:foot {times}",
                        "a/DET person/NOUN does/VERB:do {n} long/ADJ jumps/NOUN:jump")),
    "roll": Action(("a/DET person/NOUN does/VERB:do a/DET forward/ADJ roll/NOUN",
                    "someone/PRON rolls/VERB:roll forward/ADV on/ADP the/DET ground/NOUN",
                    "a/DET person/NOUN tucks/VERB:tuck and/CCONJ rolls/VERB:roll forward/ADV"),
                   _rep("a/DET person/NOUN does/VERB:do {n} forward/ADJ rolls/NOUN:roll",
                        "someone/PRON rolls/VERB:roll forward/ADV on/ADP the/DET ground/NOUN {times}",
                        "a/DET person/NOUN tucks/VERB:tuck and/CCONJ rolls/VERB:roll forward/ADV {times}")),
    # the clip itself turns two full circles (counterclockwise seen from above) while drifting to the left
    "spin": Action(("a/DET person/NOUN spins/VERB:spin around/ADV twice/ADV counterclockwise/ADV",
                    "someone/PRON turns/VERB:turn two/NUM full/ADJ circles/NOUN:circle to/ADP the/DET left/NOUN",
                    "a/DET person/NOUN spins/VERB:spin twice/ADV while/SCONJ moving/VERB:move to/ADP the/DET "
                    "left/NOUN"),
                   lambda n: (f"a/DET person/NOUN spins/VERB:spin around/ADV {_count_words(2 * n)}/NUM times/NOUN:time "
                              "counterclockwise/ADV",
                              f"someone/PRON turns/VERB:turn {_count_words(2 * n)}/NUM full/ADJ circles/NOUN:circle "
                              "to/ADP the/DET left/NOUN")),
    "spinkick": Action(("a/DET person/NOUN spins/VERB:spin around/ADV and/CCONJ kicks/VERB:kick with/ADP the/DET "
                        "right/ADJ leg/NOUN",
                        "someone/PRON does/VERB:do a/DET spinning/VERB:spin kick/NOUN with/ADP the/DET right/ADJ "
                        "foot/NOUN",
                        "a/DET person/NOUN turns/VERB:turn around/ADV counterclockwise/ADV and/CCONJ kicks/VERB:kick "
                        "high/ADV"),
                       _rep("a/DET person/NOUN spins/VERB:spin around/ADV and/CCONJ kicks/VERB:kick with/ADP the/DET "
                            "right/ADJ leg/NOUN {times}",
                            "someone/PRON does/VERB:do {n} spinning/VERB:spin kicks/NOUN:kick with/ADP the/DET "
                            "right/ADJ foot/NOUN",
                            "a/DET person/NOUN turns/VERB:turn around/ADV counterclockwise/ADV and/CCONJ "
                            "kicks/VERB:kick "
                            "high/ADV {times}")),
    # not looping clips
    "kick": Action(("a/DET person/NOUN kicks/VERB:kick high/ADV with/ADP the/DET right/ADJ leg/NOUN",
                    "someone/PRON does/VERB:do a/DET high/ADJ kick/NOUN with/ADP the/DET right/ADJ foot/NOUN",
                    "a/DET person/NOUN kicks/VERB:kick with/ADP the/DET right/ADJ leg/NOUN and/CCONJ turns/VERB:turn "
                    "to/ADP the/DET left/NOUN")),
    "punch": Action(("a/DET person/NOUN steps/VERB:step forward/ADV and/CCONJ punches/VERB:punch with/ADP the/DET "
                     "right/ADJ hand/NOUN",
                     "someone/PRON throws/VERB:throw a/DET right/ADJ punch/NOUN",
                     "a/DET person/NOUN punches/VERB:punch forward/ADV with/ADP the/DET right/ADJ fist/NOUN")),
    "getup_faceup": Action(("a/DET person/NOUN gets/VERB:get up/ADP from/ADP lying/VERB:lie face/NOUN up/ADV",
                            "someone/PRON lying/VERB:lie on/ADP their/DET back/NOUN stands/VERB:stand up/ADP",
                            "a/DET person/NOUN gets/VERB:get up/ADP off/ADP the/DET floor/NOUN from/ADP their/DET "
                            "back/NOUN")),
    "getup_facedown": Action(("a/DET person/NOUN gets/VERB:get up/ADP from/ADP lying/VERB:lie face/NOUN down/ADV",
                              "someone/PRON lying/VERB:lie on/ADP their/DET stomach/NOUN stands/VERB:stand up/ADP",
                              "a/DET person/NOUN pushes/VERB:push up/ADP off/ADP the/DET floor/NOUN and/CCONJ "
                              "stands/VERB:stand up/ADP")),
}


def captions_for(action: str, repeats: int = 1, extra=None):
    """``[(caption text, [word/POS ...])]`` for a clip of ``action`` performed ``repeats`` times.

    ``extra``: captions given by the user (plain text, tokenised by prepare.convert_mocap.caption_tokens)
    replace the templates. An action without templates gets ``a person performs a <action> motion.``.
    """
    if extra:
        from prepare.convert_mocap import caption_tokens
        out = []
        for cap in extra:
            cap = " ".join(str(cap).replace("#", " ").split())
            out.append((cap, caption_tokens(cap).split()))
        return out
    spec = ACTIONS.get(action)
    if spec is None:
        words = [w for w in re.split(r"[^A-Za-z]+", action.lower()) if w] or ["unknown"]
        nouns = " ".join(w + "/NOUN" for w in words)
        templates = (f"a/DET person/NOUN performs/VERB:perform a/DET {nouns} motion/NOUN",)
        if repeats > 1:
            templates = (templates[0] + f" {_times_phrase(repeats)}",)
    elif repeats > 1 and spec.repeated is not None:
        templates = spec.repeated(repeats)
    else:
        templates = spec.once
    out = []
    for t in templates:
        text, tokens = realise(" ".join(t.split()))
        out.append((text.replace(" ,", ","), tokens))
    return out


def _line(text, tokens):
    return f"{text}#{' '.join(tokens)}#0.0#0.0"


# ============================================================================ conversion
def _save(out_dir: Path, name: str, joints: np.ndarray, lines, fix_yaw_flip: bool):
    from utils.io import atomic_save_npy, atomic_write_text

    data, *_ = process_file(joints, T2M, fix_yaw_flip=fix_yaw_flip)
    feats = data.astype(np.float32)
    if not np.isfinite(feats).all():
        raise DeepMimicError(f"{name}: features contain NaN/Inf (degenerate frames?)")
    new_joints = np.asarray(recover_from_ric(feats, T2M.joints_num), dtype=np.float32)
    atomic_save_npy(out_dir / "new_joint_vecs" / f"{name}.npy", feats)
    atomic_save_npy(out_dir / "new_joints" / f"{name}.npy", new_joints)
    atomic_write_text(out_dir / "texts" / f"{name}.txt", "\n".join(lines) + "\n")
    return int(feats.shape[0])


def convert_clip(path, out_dir, model: HumanoidModel | None = None, name: str | None = None,
                 prefix: str = DEFAULT_PREFIX, mirror: bool = True, loop: bool = True, hold_short: bool = False,
                 blend_s: float = DEFAULT_BLEND_S, captions=None, fix_yaw_flip: bool = True, log=print) -> dict:
    """Convert one DeepMimic file into ``out_dir``; returns a report dict (paths, frame counts, captions).

    ``captions``: caption strings replacing the action's templates. ``fix_yaw_flip``: passed to
    utils.motion_process.process_file (True, as make_synthetic_dataset uses; for the shipped clips the
    features are the same either way). ``log``: callable for messages (None: silent).
    """
    log = log or (lambda *a, **k: None)
    model = model or load_humanoid()
    clip = load_clip(path)
    spec = T2M
    name = name or f"{prefix}{clip.action}"
    if not name or any(c.isspace() for c in name) or "/" in name or "\\" in name:
        raise ValueError(f"invalid clip id {name!r}")
    min_frames = spec.min_motion_len + 1  # features keep T - 1 frames
    cycles = loop_cycles(clip, min_frames, spec.fps) if loop else 1
    n = _n_frames(cycles * clip.duration, spec.fps)
    if n > MAX_SAMPLED_FRAMES:
        raise DeepMimicError(f"{path}: the frame durations add up to {clip.duration:.0f} s ({n} frames at "
                             f"{spec.fps:g} fps, more than {MAX_SAMPLED_FRAMES}); check the durations (seconds)")
    hold_to = min_frames if (hold_short and n < min_frames) else 0
    joints, lift = clip_joints(clip, model, spec.fps, cycles, blend_s, hold_to)
    if clip.renormalised:
        log(f"{Path(path).name}: {clip.renormalised} quaternion(s) with a norm off by more than 1% were normalised")
    if abs(lift) > 0.05:
        log(f"{Path(path).name}: note: the lowest joint is {-lift:+.3f} m from DeepMimic's floor; lifted onto y = 0")
    caps = captions_for(clip.action, cycles, captions)
    lines = [_line(t, toks) for t, toks in caps]
    n_feat = _save(Path(out_dir), name, joints, lines, fix_yaw_flip)
    how = f", {cycles} cycles" if cycles > 1 else ""
    how += f", final pose held to {hold_to} frames" if hold_to else ""
    log(f"{Path(path).name}: {clip.num_frames} frames ({clip.duration:.2f} s, loop {'wrap' if clip.loop else 'none'})"
        f"{how} -> {len(joints)} frames @ {spec.fps:g} fps -> {name}")
    res = {
        "name": name, "source": str(path), "action": clip.action, "loop": clip.loop,
        "source_frames": clip.num_frames, "source_seconds": round(clip.duration, 4), "cycles": cycles,
        "held_frames": max(0, hold_to - n), "frames": int(len(joints)), "feature_frames": n_feat,
        "floor_lift_m": round(lift, 4), "captions": [t for t, _ in caps],
        "in_length_filter": spec.min_motion_len <= n_feat < MAX_JOINT_FRAMES,
    }
    if not res["in_length_filter"]:
        log(f"{Path(path).name}: warning: {n_feat} feature frames is outside the dataset filter "
            f"[{spec.min_motion_len}, {MAX_JOINT_FRAMES}): the loaders skip it"
            + ("" if clip.loop or hold_short else " (not a looping clip; --hold-short pads it)"))
    if mirror:
        mlines = [mirror_text(ln) for ln in lines]
        _save(Path(out_dir), "M" + name, mirror_joints(joints, spec), mlines, fix_yaw_flip)
        res["mirror"] = "M" + name
    return res


def pybullet_data_dir() -> Path:
    """The installed pybullet_data folder (``pip install pybullet==3.2.7``), without importing pybullet."""
    import importlib.util

    found = importlib.util.find_spec("pybullet_data")
    if found is None or not found.submodule_search_locations:
        raise DeepMimicError("pybullet_data is not installed: pip install pybullet==3.2.7 "
                             "(or pass the motion files and --urdf explicitly)")
    return Path(list(found.submodule_search_locations)[0])


def default_inputs() -> list:
    """The humanoid clips shipped in pybullet_data/data/motions (humanoid3d_*.txt), sorted."""
    return sorted(pybullet_data_dir().joinpath(*MOTIONS_RELPATH).glob("humanoid3d_*.txt"))


def _collect(inputs) -> list:
    files = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files.extend(sorted(p.glob("humanoid3d_*.txt")))
        else:
            files.append(p)
    return files


def _write_ids(out_dir: Path, split: str, new_ids: list):
    """``<out>/<split>.txt``: the ids already there whose features still exist, then the new ones (no repeats)."""
    from utils.io import atomic_write_text

    path = out_dir / f"{split}.txt"
    ids = []
    if path.is_file():
        ids = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        ids = [i for i in ids if (out_dir / "new_joint_vecs" / f"{i}.npy").is_file()]
    for i in new_ids:
        if i not in ids:
            ids.append(i)
    atomic_write_text(path, "\n".join(ids) + "\n")
    return ids


def _with_path(path, exc) -> str:
    """The error message, prefixed with the file unless it already starts with it."""
    msg = str(exc)
    return msg if msg.startswith(str(path)) else f"{path}: {msg}"


def convert_many(inputs, out_dir, urdf=None, stats: bool = True, progress: bool = False, **kwargs):
    """Convert several files (directories: their humanoid3d_*.txt); returns ``(results, failures, summary)``."""
    out_dir = Path(out_dir)
    model = load_humanoid(urdf)
    files = _collect(inputs)
    log = kwargs.pop("log", print)
    results, failures = [], []
    if kwargs.get("name") and len(files) > 1:
        raise ValueError("a clip name can only be given for a single input file")
    for path in files:
        try:
            results.append(convert_clip(path, out_dir, model, log=log, **kwargs))
        except (DeepMimicError, ValueError, OSError) as exc:
            failures.append((str(path), str(exc)))
            if log:
                log(f"FAILED {_with_path(path, exc)}")
    summary = {"humanoid_urdf": model.path, "humanoid_height_m": round(model.rest_height, 4), "scale": model.scale,
               "converted": len(results), "failed": len(failures)}
    if results:
        from utils.io import atomic_write_json

        ids = [i for r in results for i in ([r["name"], r["mirror"]] if "mirror" in r else [r["name"]])]
        all_ids = _write_ids(out_dir, "all", ids)
        _write_ids(out_dir, "test", ids)
        if stats:
            from prepare.compute_mean_std import compute
            compute(out_dir, split="all", progress=progress)
        report_path = out_dir / "deepmimic_report.json"
        previous = {}
        if report_path.is_file():
            try:
                previous = {c["name"]: c for c in json.loads(report_path.read_text(encoding="utf-8")).get("clips", [])}
            except (ValueError, AttributeError, TypeError, KeyError):
                previous = {}
        previous.update({r["name"]: r for r in results})
        clips = [previous[i] for i in all_ids if i in previous]
        atomic_write_json(report_path, {**summary, "clips": clips, "failures": [list(f) for f in failures]})
    return results, failures, summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m prepare.convert_deepmimic",
                                 description="Convert DeepMimic humanoid motion clips (pybullet_data) to HumanML3D "
                                             "features / joints / texts.",
                                 epilog=__doc__.split("\n\n", 2)[2],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="*", help="DeepMimic .txt files and/or folders (their humanoid3d_*.txt); "
                                              "default: every humanoid3d_*.txt in the installed pybullet_data")
    ap.add_argument("--out", required=True,
                    help="output dataset folder (new_joint_vecs/, new_joints/, texts/, all.txt, test.txt)")
    ap.add_argument("--urdf", default=None, help="humanoid URDF (default: pybullet_data/humanoid/humanoid.urdf)")
    ap.add_argument("--prefix", default=DEFAULT_PREFIX,
                    help=f"clip id prefix before the action name (default {DEFAULT_PREFIX!r})")
    ap.add_argument("--name", default=None, help="clip id (single input only; default: prefix + action name)")
    ap.add_argument("--caption", action="append", default=None,
                    help="caption instead of the action's templates (single input only; repeat for several lines)")
    ap.add_argument("--no-mirror", action="store_true", help="do not write the mirrored M<id> copies")
    ap.add_argument("--no-loop", action="store_true", help="do not repeat short looping ('wrap') clips")
    ap.add_argument("--hold-short", action="store_true",
                    help="pad short clips that do not loop by holding the final pose up to the minimum length")
    ap.add_argument("--blend", type=float, default=DEFAULT_BLEND_S,
                    help="seconds on either side of a loop seam over which the pose jump is spread "
                         f"(default {DEFAULT_BLEND_S})")
    ap.add_argument("--no-stats", action="store_true", help="do not write Mean.npy / Std.npy")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.blend < 0 or not math.isfinite(args.blend):
        ap.error("--blend must be a non-negative number of seconds")
    try:
        inputs = args.inputs or default_inputs()
    except DeepMimicError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    files = _collect(inputs)
    if not files:
        print("error: no DeepMimic motion files found (folders are searched for humanoid3d_*.txt)", file=sys.stderr)
        return 1
    if (args.name or args.caption) and len(files) > 1:
        ap.error("--name and --caption can only be used with a single input file")
    log = None if args.quiet else print
    try:
        results, failures, summary = convert_many(
            files, args.out, urdf=args.urdf, stats=not args.no_stats, log=log, name=args.name, prefix=args.prefix,
            mirror=not args.no_mirror, loop=not args.no_loop, hold_short=args.hold_short, blend_s=args.blend,
            captions=args.caption)
    except DeepMimicError as exc:  # the URDF
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"humanoid: {summary['humanoid_urdf']} (scale {summary['scale']:g}, "
          f"height {summary['humanoid_height_m']:.3f} m)")
    for r in results:
        flag = "" if r["in_length_filter"] else "  [outside the length filter: loaders skip it]"
        print(f"ok {r['name']}: {r['frames']} frames @ 20 fps, {r['feature_frames']} feature frames"
              f"{' (' + str(r['cycles']) + ' cycles)' if r['cycles'] > 1 else ''}{flag}")
    print(f"converted {len(results)} file(s) into {args.out}, {len(failures)} failed")
    for path, msg in failures:
        print(f"  failed: {_with_path(path, msg)}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
