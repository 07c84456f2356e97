"""BVH (Biovision hierarchy) reading, forward kinematics and writing.

Reader
    :func:`read_bvh` parses the HIERARCHY (ROOT / JOINT / End Site, OFFSET, CHANNELS in any
    order, with or without position channels on any joint) and the MOTION section (Frames,
    Frame Time, one frame per line). Malformed input raises :class:`BvhError` whose message
    starts with ``<file>:<line>:``. :meth:`BvhMotion.positions` runs forward kinematics and
    returns global joint positions (F, J, 3), optionally with the End Sites appended.

    Conventions: a joint's local transform is ``T(translation) * R`` where the rotation is
    the product of the elementary rotations in channel order (``Zrotation Xrotation
    Yrotation`` means ``R = Rz @ Rx @ Ry``, i.e. intrinsic Euler ``'ZXY'`` in scipy's
    notation) and the translation is the OFFSET, with every component that has a position
    channel replaced by that channel's value (``position_mode='replace'``, what most
    exporters and Blender assume; ``'add'`` adds the channel values to the OFFSET instead).

Writer
    :func:`write_bvh` exports a joint-position motion (t2m 22 joints or kit 21 joints) as a
    rotational BVH: the kinematic tree of :mod:`utils.paramUtil` with proper nesting, a
    T-pose-like rest pose (bone lengths measured on the clip), a 6-channel root and
    3-channel joints. Single-child joints get the minimal swing rotation (relative to the
    parent frame) that points their bone at the child; joints with several children (the
    pelvis and the upper spine / neck base) get a full frame built from two vectors (up =
    towards the spine/neck child, across = left child - right child), and their children's
    OFFSETs are the frame-0 geometry expressed in that frame, so a rigid pelvis / shoulder
    girdle is reproduced exactly. ``read_bvh(write_bvh(J)).positions()`` gives back ``J``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from .paramUtil import get_spec

__all__ = [
    "BvhError", "BvhMotion", "read_bvh", "bvh_positions", "forward_kinematics",
    "joints_to_bvh_rotations", "write_bvh", "WRITER_FRAME_DEFS", "MIN_FRAME_TIME", "MAX_FRAME_TIME",
]


class BvhError(ValueError):
    """Malformed BVH input; the message names the file and the line."""


# Plausible 'Frame Time' range (seconds): 1 fps .. 10 kHz. Anything outside is a broken header (e.g.
# 'Frame Time: 100' would make a 20 fps resample of a few hundred frames ~10^6 frames long).
MIN_FRAME_TIME = 1e-4
MAX_FRAME_TIME = 1.0


_ROT_CHANNELS = {"xrotation": "X", "yrotation": "Y", "zrotation": "Z"}
_POS_CHANNELS = {"xposition": 0, "yposition": 1, "zposition": 2}


@dataclass
class BvhMotion:
    """Parsed BVH file.

    ``names``/``parents``/``offsets``/``channels`` describe the joints in file (depth-first)
    order; ``end_sites`` is a list of ``(name, parent_index, offset)`` where the name is
    ``<Joint>_end`` (``<Joint>_end2``... if one joint has several End Sites). ``motion`` is
    the (frames, total_channels) float64 array, ``channel_start[j]`` the first column of
    joint j.
    """

    path: str
    names: list
    parents: list
    offsets: np.ndarray
    channels: list
    channel_start: list
    end_sites: list
    frame_time: float
    motion: np.ndarray
    position_mode: str = "replace"
    _lines: dict = field(default_factory=dict, repr=False)
    frame_time_line: int = 0  # line of 'Frame Time:' in the file (0: unknown)

    # ------------------------------------------------------------------ basic properties
    @property
    def num_frames(self) -> int:
        return int(self.motion.shape[0])

    @property
    def num_joints(self) -> int:
        return len(self.names)

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    @property
    def end_site_names(self) -> list:
        return [e[0] for e in self.end_sites]

    def all_names(self, include_end_sites: bool = True) -> list:
        return list(self.names) + (self.end_site_names if include_end_sites else [])

    def index(self, name: str) -> int:
        """Index of a joint (or End Site, counted after the joints) in :meth:`positions`."""
        names = self.all_names(True)
        if name not in names:
            raise KeyError(f"{self.path}: no joint or End Site named {name!r}; available: {', '.join(names)}")
        return names.index(name)

    def channel_values(self, joint: str | int) -> np.ndarray:
        """(F, n_channels) raw channel values of one joint."""
        j = joint if isinstance(joint, int) else self.names.index(joint)
        s = self.channel_start[j]
        return self.motion[:, s:s + len(self.channels[j])]

    # ------------------------------------------------------------------ kinematics
    def local_transforms(self, frames=None):
        """Per joint local rotation matrices (F, J, 3, 3) and translations (F, J, 3)."""
        motion = self.motion if frames is None else self.motion[frames]
        F, J = motion.shape[0], self.num_joints
        rots = np.broadcast_to(np.eye(3), (F, J, 3, 3)).copy()
        trans = np.broadcast_to(self.offsets, (F, J, 3)).copy()
        for j in range(J):
            chans = self.channels[j]
            if not chans:
                continue
            s = self.channel_start[j]
            vals = motion[:, s:s + len(chans)]
            seq, cols = "", []
            for k, ch in enumerate(chans):
                low = ch.lower()
                if low in _ROT_CHANNELS:
                    seq += _ROT_CHANNELS[low]
                    cols.append(k)
                else:
                    axis = _POS_CHANNELS[low]
                    if self.position_mode == "add":
                        trans[:, j, axis] = self.offsets[j, axis] + vals[:, k]
                    else:
                        trans[:, j, axis] = vals[:, k]
            if seq:
                rots[:, j] = _euler_to_matrix(seq, vals[:, cols])
        return rots, trans

    def global_transforms(self, frames=None):
        """Global rotation matrices (F, J, 3, 3) and positions (F, J, 3) of the joints."""
        rots, trans = self.local_transforms(frames)
        return _fk_matrices(self.parents, rots, trans)

    def positions(self, include_end_sites: bool = False, frames=None) -> np.ndarray:
        """Global positions (F, J[+E], 3) by forward kinematics (in the file's units)."""
        grot, gpos = self.global_transforms(frames)
        if not include_end_sites or not self.end_sites:
            return gpos
        ends = [gpos[:, p] + grot[:, p] @ off for _, p, off in self.end_sites]
        return np.concatenate([gpos, np.stack(ends, axis=1)], axis=1)

    def rest_positions(self, include_end_sites: bool = False) -> np.ndarray:
        """Positions (J[+E], 3) of the rest pose (all channels zero, OFFSETs only)."""
        J = self.num_joints
        pos = np.zeros((J, 3))
        for j in range(J):
            p = self.parents[j]
            pos[j] = self.offsets[j] + (pos[p] if p >= 0 else 0.0)
        if include_end_sites and self.end_sites:
            pos = np.concatenate([pos, np.stack([pos[p] + off for _, p, off in self.end_sites])], axis=0)
        return pos


def _euler_to_matrix(seq: str, angles_deg: np.ndarray) -> np.ndarray:
    """Matrices for intrinsic rotations about ``seq`` axes (product in channel order)."""
    # scipy's from_euler accepts 1..3 axes with no two consecutive equal; fall back to an
    # explicit product for unusual channel lists.
    ok = 1 <= len(seq) <= 3 and all(a != b for a, b in zip(seq[:-1], seq[1:]))
    if ok:
        return Rotation.from_euler(seq, angles_deg, degrees=True).as_matrix()
    out = np.broadcast_to(np.eye(3), (angles_deg.shape[0], 3, 3)).copy()
    for k, axis in enumerate(seq):
        out = out @ Rotation.from_euler(axis, angles_deg[:, k], degrees=True).as_matrix()
    return out


def _fk_matrices(parents, rots, trans):
    F, J = rots.shape[:2]
    grot = np.empty_like(rots)
    gpos = np.empty((F, J, 3))
    for j in range(J):
        p = parents[j]
        if p < 0:
            grot[:, j] = rots[:, j]
            gpos[:, j] = trans[:, j]
        else:
            grot[:, j] = grot[:, p] @ rots[:, j]
            gpos[:, j] = gpos[:, p] + (grot[:, p] @ trans[:, j, :, None])[..., 0]
    return grot, gpos


def forward_kinematics(parents: Sequence[int], offsets: np.ndarray, rotations: np.ndarray,
                       root_positions: np.ndarray) -> np.ndarray:
    """Generic FK: local rotation matrices (F, J, 3, 3) + offsets (J, 3) + root (F, 3) -> (F, J, 3).

    Parents must precede their children in the joint order.
    """
    rotations = np.asarray(rotations, dtype=np.float64)
    F, J = rotations.shape[:2]
    trans = np.broadcast_to(np.asarray(offsets, dtype=np.float64), (F, J, 3)).copy()
    root = [j for j in range(J) if parents[j] < 0]
    for r in root:
        trans[:, r] = root_positions
    _, gpos = _fk_matrices(list(parents), rotations, trans)
    return gpos


# ============================================================================ reader
class _Tokens:
    """Token stream over a text, keeping line numbers."""

    def __init__(self, path: str, text: str):
        self.path = path
        self.lines = text.splitlines()
        self.toks = []  # (token, line_no)
        self.pos = 0
        self.motion_line = None
        for ln, line in enumerate(self.lines, start=1):
            parts = line.split()
            if parts and parts[0].upper() == "MOTION":
                self.toks.append(("MOTION", ln))
                self.motion_line = ln
                break
            for part in parts:
                # tolerate "{" / "}" glued to names ("Hips{")
                while part:
                    if part[0] in "{}":
                        self.toks.append((part[0], ln))
                        part = part[1:]
                        continue
                    cut = min([i for i in (part.find("{"), part.find("}")) if i >= 0], default=-1)
                    if cut > 0:
                        self.toks.append((part[:cut], ln))
                        part = part[cut:]
                    else:
                        self.toks.append((part, ln))
                        part = ""

    def error(self, msg, line=None) -> BvhError:
        if line is None:
            line = self.toks[self.pos][1] if self.pos < len(self.toks) else (len(self.lines) or 1)
        return BvhError(f"{self.path}:{line}: {msg}")

    def peek(self):
        return self.toks[self.pos] if self.pos < len(self.toks) else (None, len(self.lines))

    def next(self, what: str):
        if self.pos >= len(self.toks):
            raise self.error(f"unexpected end of hierarchy, expected {what}", len(self.lines) or 1)
        tok = self.toks[self.pos]
        self.pos += 1
        return tok

    def expect(self, value: str):
        tok, ln = self.next(repr(value))
        if tok.upper() != value.upper():
            raise self.error(f"expected {value!r}, found {tok!r}", ln)
        return ln

    def rest_of_line(self, ln):
        """All following tokens on line ``ln`` except braces (a joint name may contain spaces)."""
        parts = []
        while self.pos < len(self.toks) and self.toks[self.pos][1] == ln and self.toks[self.pos][0] not in "{}":
            parts.append(self.toks[self.pos][0])
            self.pos += 1
        return " ".join(parts)

    def number(self, what: str):
        tok, ln = self.next(what)
        try:
            return float(tok), ln
        except ValueError:
            raise self.error(f"expected a number for {what}, found {tok!r}", ln) from None


def read_bvh(path, position_mode: str = "replace") -> BvhMotion:
    """Parse a BVH file (see module docstring). Raises :class:`BvhError` on malformed input."""
    path = str(path)
    if position_mode not in ("replace", "add"):
        raise ValueError("position_mode must be 'replace' or 'add'")
    with open(path, "r", encoding="utf-8-sig", errors="replace") as fh:
        text = fh.read()
    return parse_bvh(text, path, position_mode)


def parse_bvh(text: str, path: str = "<string>", position_mode: str = "replace") -> BvhMotion:
    """Parse BVH text; ``path`` is only used in error messages."""
    tk = _Tokens(path, text)
    names, parents, offsets, channels, chan_start, end_sites, lines = [], [], [], [], [], [], {}
    n_chan = 0

    tok, ln = tk.next("'HIERARCHY'")
    if tok.upper() != "HIERARCHY":
        raise tk.error(f"file must start with 'HIERARCHY', found {tok!r}", ln)
    tok, ln = tk.peek()
    if tok is None or tok.upper() != "ROOT":
        raise tk.error(f"expected 'ROOT', found {tok!r}" if tok else "expected 'ROOT' after 'HIERARCHY'", ln)

    def parse_joint(parent: int):
        nonlocal n_chan
        kw, ln = tk.next("'JOINT' or 'End Site'")
        kwu = kw.upper()
        if kwu == "END":
            site_ln = ln
            word, ln2 = tk.next("'Site'")
            if word.upper() != "SITE":
                raise tk.error(f"expected 'End Site', found 'End {word}'", ln2)
            tk.expect("{")
            kw2, ln3 = tk.next("'OFFSET'")
            if kw2.upper() != "OFFSET":
                raise tk.error(f"expected 'OFFSET' in End Site, found {kw2!r}", ln3)
            off = [tk.number("End Site OFFSET")[0] for _ in range(3)]
            tk.expect("}")
            if parent < 0:
                raise tk.error("End Site outside a joint", site_ln)
            base = f"{names[parent]}_end"
            taken = {e[0] for e in end_sites}
            name, k = base, 2
            while name in taken:
                name, k = f"{base}{k}", k + 1
            end_sites.append((name, parent, np.array(off, dtype=np.float64)))
            return
        if kwu not in ("ROOT", "JOINT"):
            raise tk.error(f"expected 'JOINT', 'End Site' or '}}', found {kw!r}", ln)
        if kwu == "ROOT" and parent >= 0:
            raise tk.error("'ROOT' inside another joint", ln)
        name = tk.rest_of_line(ln)
        if not name:
            raise tk.error(f"{kw} without a name", ln)
        if name in names:
            raise tk.error(f"duplicate joint name {name!r}", ln)
        idx = len(names)
        names.append(name)
        parents.append(parent)
        lines[name] = ln
        offsets.append(np.zeros(3))
        channels.append([])
        chan_start.append(n_chan)
        tk.expect("{")
        seen_offset = False
        while True:
            tok, ln = tk.peek()
            if tok is None:
                raise tk.error(f"unexpected end of hierarchy inside joint {name!r} (missing '}}')", ln)
            up = tok.upper()
            if up == "OFFSET":
                tk.next("OFFSET")
                offsets[idx] = np.array([tk.number(f"OFFSET of {name!r}")[0] for _ in range(3)])
                seen_offset = True
            elif up == "CHANNELS":
                tk.next("CHANNELS")
                cnt_tok, cln = tk.next("channel count")
                try:
                    cnt = int(cnt_tok)
                except ValueError:
                    raise tk.error(f"expected the channel count after CHANNELS, found {cnt_tok!r}", cln) from None
                if cnt < 0:
                    raise tk.error(f"negative channel count {cnt}", cln)
                chans = []
                for _ in range(cnt):
                    ch, chl = tk.next("channel name")
                    if ch.lower() not in _ROT_CHANNELS and ch.lower() not in _POS_CHANNELS:
                        raise tk.error(f"unknown channel {ch!r} of joint {name!r} (CHANNELS says {cnt})", chl)
                    chans.append(ch)
                if len({c.lower() for c in chans if c.lower() in _POS_CHANNELS}) != sum(c.lower() in _POS_CHANNELS for c in chans):
                    raise tk.error(f"repeated position channel in joint {name!r}", cln)
                channels[idx] = chans
                n_chan += cnt
            elif up in ("JOINT", "END"):
                parse_joint(idx)
            elif up == "}":
                tk.next("}")
                break
            elif up == "MOTION":
                raise tk.error(f"'MOTION' reached inside joint {name!r}: missing '}}'", ln)
            else:
                raise tk.error(f"unexpected {tok!r} in joint {name!r}", ln)
        if not seen_offset:
            raise tk.error(f"joint {name!r} has no OFFSET", lines[name])

    parse_joint(-1)
    tok, ln = tk.peek()
    if tok is None:
        raise tk.error("missing 'MOTION' section", ln)
    if tok.upper() != "MOTION":
        raise tk.error(f"expected 'MOTION' after the hierarchy, found {tok!r} (only one ROOT is supported)", ln)

    # ---------------------------------------------------------------- MOTION
    all_lines = tk.lines
    i = tk.motion_line  # 0-based index of the line after MOTION

    def next_content(i):
        while i < len(all_lines) and not all_lines[i].strip():
            i += 1
        return i

    i = next_content(i)
    if i >= len(all_lines):
        raise BvhError(f"{path}:{len(all_lines)}: missing 'Frames:' line after MOTION")
    parts = all_lines[i].replace(":", " : ").split()
    if len(parts) < 3 or parts[0].lower() != "frames" or parts[1] != ":":
        raise BvhError(f"{path}:{i + 1}: expected 'Frames: <count>', found {all_lines[i].strip()!r}")
    try:
        n_frames = int(parts[2])
    except ValueError:
        raise BvhError(f"{path}:{i + 1}: bad frame count {parts[2]!r}") from None
    if n_frames < 0:
        raise BvhError(f"{path}:{i + 1}: negative frame count {n_frames}")
    i = next_content(i + 1)
    if i >= len(all_lines):
        raise BvhError(f"{path}:{len(all_lines)}: missing 'Frame Time:' line")
    low = all_lines[i].strip()
    if not low.lower().startswith("frame time"):
        raise BvhError(f"{path}:{i + 1}: expected 'Frame Time: <seconds>', found {low!r}")
    try:
        frame_time = float(low.split(":", 1)[1]) if ":" in low else float(low.split()[2])
    except (ValueError, IndexError):
        raise BvhError(f"{path}:{i + 1}: bad frame time in {low!r}") from None
    if not frame_time > 0:
        raise BvhError(f"{path}:{i + 1}: frame time must be positive, got {frame_time}")
    if not MIN_FRAME_TIME <= frame_time <= MAX_FRAME_TIME:
        bound = (f"more than {MAX_FRAME_TIME:g} s" if frame_time > MAX_FRAME_TIME
                 else f"less than {MIN_FRAME_TIME:g} s")
        raise BvhError(f"{path}:{i + 1}: 'Frame Time: {frame_time:g}' is {bound} per frame "
                       f"({1.0 / frame_time:.4g} fps); expected a frame time in seconds between "
                       f"{MIN_FRAME_TIME:g} and {MAX_FRAME_TIME:g}")
    frame_time_line = i + 1

    # never allocate more rows than the file has lines (a bogus 'Frames:' count fails below, not here)
    data = np.empty((min(n_frames, max(len(all_lines) - i - 1, 0)), n_chan), dtype=np.float64)
    f = 0
    i += 1
    while i < len(all_lines) and f < n_frames:
        line = all_lines[i]
        i += 1
        if not line.strip():
            continue
        vals = line.split()
        if len(vals) != n_chan:
            raise BvhError(f"{path}:{i}: frame {f} has {len(vals)} values, the hierarchy declares {n_chan} channels")
        try:
            data[f] = [float(v) for v in vals]
        except ValueError:
            bad = next(v for v in vals if not _is_float(v))
            raise BvhError(f"{path}:{i}: non-numeric value {bad!r} in frame {f}") from None
        f += 1
    if f < n_frames:
        raise BvhError(f"{path}:{len(all_lines)}: file ends after {f} frames, 'Frames:' declares {n_frames}")
    extra = [k + 1 for k in range(i, len(all_lines)) if all_lines[k].strip()]
    if extra:
        warnings.warn(f"{path}:{extra[0]}: {len(extra)} line(s) after the {n_frames} declared frames ignored")
    if not np.isfinite(data).all():
        r = int(np.argwhere(~np.isfinite(data))[0, 0])
        raise BvhError(f"{path}: frame {r} contains NaN/Inf")

    return BvhMotion(path=path, names=names, parents=parents, offsets=np.array(offsets).reshape(-1, 3),
                     channels=channels, channel_start=chan_start, end_sites=end_sites,
                     frame_time=frame_time, motion=data, position_mode=position_mode, _lines=lines,
                     frame_time_line=frame_time_line)


def _is_float(v):
    try:
        float(v)
        return True
    except ValueError:
        return False


def bvh_positions(path, include_end_sites: bool = False):
    """Convenience: ``(positions (F, J, 3), names, fps)`` of a BVH file."""
    bvh = read_bvh(path)
    return bvh.positions(include_end_sites), bvh.all_names(include_end_sites), bvh.fps


# ============================================================================ writer
# For joints with several children: (up child, left child, right child) used to build the frame.
WRITER_FRAME_DEFS = {
    "t2m": {0: (3, 1, 2), 9: (12, 13, 14)},
    "kit": {0: (1, 16, 11), 3: (4, 8, 5)},
}


def _rest_dirs(spec, rest_pose: str) -> np.ndarray:
    dirs = np.asarray(spec.raw_offsets, dtype=np.float64).copy()
    if rest_pose == "raw":
        return dirs
    if rest_pose != "tpose":
        raise ValueError("rest_pose must be 'tpose' or 'raw'")
    if spec.name == "t2m":
        dirs[15] = (0, 1, 0)  # head above the neck (raw offset points forward)
        for j in (16, 18, 20):
            dirs[j] = (1, 0, 0)  # left arm horizontal (+X is the person's left)
        for j in (17, 19, 21):
            dirs[j] = (-1, 0, 0)
    elif spec.name == "kit":
        for j in (6, 7):
            dirs[j] = dirs[5]  # right arm along the right shoulder direction
        for j in (9, 10):
            dirs[j] = dirs[8]
    return dirs


def _unit(v, eps=1e-12):
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, eps)


def _frame(up, across):
    """Rotation matrices with columns (across', up, across' x up), across orthogonalised."""
    u = _unit(up)
    a = across - (across * u).sum(-1, keepdims=True) * u
    a = _unit(a)
    return np.stack([a, u, np.cross(a, u)], axis=-1)


def _swing(a, b):
    """Minimal rotation matrices taking unit vectors a onto b (..., 3) (robust at 180 deg)."""
    a = _unit(a)
    b = _unit(b)
    a = np.broadcast_to(a, b.shape)
    axis = np.cross(a, b)
    s = np.linalg.norm(axis, axis=-1)
    c = (a * b).sum(-1)
    # antiparallel: rotate 180 degrees about any axis perpendicular to a
    anti = (s < 1e-8) & (c < 0)
    if anti.any():
        aa = a[anti]
        helper = np.where(np.abs(aa[:, :1]) < 0.9, np.array([[1.0, 0, 0]]), np.array([[0, 1.0, 0]]))
        perp = _unit(np.cross(aa, helper))
        axis = axis.copy()
        axis[anti] = perp
        s = s.copy()
        s[anti] = 1.0
    angle = np.arctan2(s, c)
    rotvec = _unit(axis) * angle[..., None]
    rotvec[(s < 1e-12) & ~anti] = 0.0
    return Rotation.from_rotvec(rotvec.reshape(-1, 3)).as_matrix().reshape(b.shape[:-1] + (3, 3))


def joints_to_bvh_rotations(joints: np.ndarray, dataname: str = "t2m", rest_pose: str = "tpose",
                            frame_defs: dict | None = None):
    """Joint positions (F, J, 3) -> (local rotations (F, J, 3, 3), offsets (J, 3), end-site offsets).

    ``offsets[j]`` is joint j's rest offset from its parent (in the parent frame), chosen so
    that FK with the returned local rotations and the root positions ``joints[:, 0]``
    reproduces ``joints`` (exactly when bone lengths are constant and the multi-child groups
    are rigid). ``end-site offsets`` maps each leaf joint to its End Site offset.
    """
    spec = get_spec(dataname)
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (spec.joints_num, 3):
        raise ValueError(f"joints must have shape (frames, {spec.joints_num}, 3) for {spec.name}, got {joints.shape}")
    if not np.isfinite(joints).all():
        raise ValueError("joints contain NaN or Inf")
    F, J = joints.shape[:2]
    parents = list(spec.parents)
    children = {j: [c for c in range(J) if parents[c] == j] for j in range(J)}
    fdefs = WRITER_FRAME_DEFS.get(spec.name, {}) if frame_defs is None else frame_defs
    dirs = _rest_dirs(spec, rest_pose)
    bone_len = np.zeros(J)
    for c in range(1, J):
        bone_len[c] = np.linalg.norm(joints[:, c] - joints[:, parents[c]], axis=-1).mean()

    offsets = np.zeros((J, 3))
    G = np.zeros((F, J, 3, 3))
    L = np.zeros((F, J, 3, 3))
    order = [0]
    for j in order:  # breadth-first: parents before children
        order.extend(children[j])
    for j in order:
        p = parents[j]
        Gp = G[:, p] if p >= 0 else np.broadcast_to(np.eye(3), (F, 3, 3))
        kids = children[j]
        if len(kids) == 0:
            G[:, j] = Gp  # leaf: no rotation information
        elif len(kids) == 1:
            c = kids[0]
            d = joints[:, c] - joints[:, j]
            d_local = (np.swapaxes(Gp, -1, -2) @ d[..., None])[..., 0]
            G[:, j] = Gp @ _swing(dirs[c], d_local)
            offsets[c] = _unit(dirs[c]) * bone_len[c]
        else:
            if j not in fdefs:
                raise ValueError(f"joint {j} has {len(kids)} children but no frame definition (up, left, right)")
            up_c, left_c, right_c = fdefs[j]
            frame = _frame(joints[:, up_c] - joints[:, j], joints[:, left_c] - joints[:, right_c])
            rest = _frame(dirs[up_c], dirs[left_c] - dirs[right_c])
            G[:, j] = frame @ rest.T
            for c in kids:
                offsets[c] = G[0, j].T @ (joints[0, c] - joints[0, j])
        L[:, j] = np.swapaxes(Gp, -1, -2) @ G[:, j]
    ends = {}
    for j in range(J):
        if not children[j]:
            ends[j] = _unit(dirs[j]) * 0.5 * bone_len[j] if bone_len[j] > 0 else np.zeros(3)
    return L, offsets, ends


def _fmt(x, prec):
    s = f"{x:.{prec}f}"
    return "0." + "0" * prec if s.lstrip("-").strip("0.") == "" else s


def write_bvh(path, joints: np.ndarray, dataname: str = "t2m", fps: float | None = None, scale: float = 1.0,
              names: Sequence[str] | None = None, euler_order: str = "ZXY", rest_pose: str = "tpose",
              precision: int = 6) -> str:
    """Export joint positions (F, J, 3) as a rotational BVH file and return the path.

    ``dataname`` picks the skeleton (t2m: 22 joints in metres, kit: 21 joints in mm);
    ``fps`` defaults to the dataset rate (20 / 12.5); ``scale`` multiplies all lengths
    (e.g. 100 to write centimetres); ``euler_order`` is the rotation channel order (intrinsic,
    ``'ZXY'`` -> ``Zrotation Xrotation Yrotation``); ``rest_pose`` 'tpose' (arms out, head up)
    or 'raw' (the paramUtil raw-offset directions).
    """
    spec = get_spec(dataname)
    fps = spec.fps if fps is None else float(fps)
    order = euler_order.upper()
    if sorted(order) != ["X", "Y", "Z"]:
        raise ValueError(f"euler_order must be a permutation of 'XYZ', got {euler_order!r}")
    joints = np.asarray(joints, dtype=np.float64)
    names = list(spec.joint_names if names is None else names)
    if len(names) != spec.joints_num or any((not n) or any(ch.isspace() for ch in n) for n in names):
        raise ValueError("names must be one non-empty, whitespace-free name per joint")
    L, offsets, ends = joints_to_bvh_rotations(joints, spec.name, rest_pose)
    F, J = joints.shape[:2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gimbal-lock warnings: the angles still compose to L
        eul = Rotation.from_matrix(L.reshape(-1, 3, 3)).as_euler(order, degrees=True).reshape(F, J, 3)
    eul = np.unwrap(eul, period=360.0, axis=0)
    parents = spec.parents
    children = {j: [c for c in range(J) if parents[c] == j] for j in range(J)}
    rot_names = " ".join(f"{a}rotation" for a in order)
    out = ["HIERARCHY"]
    dfs = []

    def emit(j, depth):
        ind = "  " * depth
        kw = "ROOT" if parents[j] < 0 else "JOINT"
        out.append(f"{ind}{kw} {names[j]}")
        out.append(f"{ind}{{")
        off = offsets[j] * scale
        out.append(f"{ind}  OFFSET {' '.join(_fmt(v, precision) for v in off)}")
        if parents[j] < 0:
            out.append(f"{ind}  CHANNELS 6 Xposition Yposition Zposition {rot_names}")
        else:
            out.append(f"{ind}  CHANNELS 3 {rot_names}")
        dfs.append(j)
        for c in children[j]:
            emit(c, depth + 1)
        if not children[j]:
            e = ends[j] * scale
            out.append(f"{ind}  End Site")
            out.append(f"{ind}  {{")
            out.append(f"{ind}    OFFSET {' '.join(_fmt(v, precision) for v in e)}")
            out.append(f"{ind}  }}")
        out.append(f"{ind}}}")

    emit(0, 0)
    out.append("MOTION")
    out.append(f"Frames: {F}")
    out.append(f"Frame Time: {1.0 / fps:.8f}")
    cols = [joints[:, 0] * scale]
    for j in dfs:
        cols.append(eul[:, j])
    table = np.concatenate(cols, axis=1)
    fmt = f"%.{precision}f"
    body = "\n".join(" ".join(fmt % v for v in row) for row in table)
    path = str(path)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(out) + "\n" + body + ("\n" if F else ""))
    return path
