"""Shaded body-mesh animations of HumanML3D (t2m, 22-joint) motions, on the CPU with numpy only.

Pipeline (each step is a function of this module, usable on its own):

1. **Joints.** Features (T, 263) -> joints (T, 22, 3) with ``recover_from_ric`` (or joints given directly).
2. **Rotations (retargeting IK).** :func:`retarget` turns joint positions into one world rotation per
   joint of the body's own 22-joint SMPL tree, aligned to *that body's rest pose* (the mannequin's SMPL-X
   rest skeleton, or the rest joints of a SMPL-family model): joints with several children (pelvis,
   upper spine) take the least-squares rotation (Kabsch) of their child offsets; every other joint the
   smallest rotation, relative to its parent, that turns its rest bone onto the target bone (the project's
   ``utils.skeleton`` IK uses the same swing rotations (``qbetween``) but measures them from the
   axis-aligned t2m raw offsets in world space, which would twist thighs against the pelvis as soon as
   the body turns: fine for FK of the stick skeleton, visibly wrong on a skinned mesh); thighs and upper
   arms get the twist about their bone that lets the knee / elbow reach the lower bone by bending about
   its hinge axis the natural way (blended in from 10 to 30 degrees of bend: a straight limb defines no
   plane), and knees / elbows bend about that hinge before a residual swing, so poses whose knees and
   elbows are pure hinges are recovered exactly. Leaf joints (feet, head, wrists) keep their parent's
   rotation: 22 joint positions say nothing about their twist. Positions are forward kinematics of
   the body's own bone lengths from the target root, so the mesh is never stretched.
3. **Skinning.** :class:`MannequinRig`: the ``mannequin-x`` package's wooden mannequin (24,256
   vertices, 48,396 triangles, linear-blend skinning on the SMPL-X 54-joint tree; its first 22 joints
   are SMPL's, in SMPL order). The rest mesh comes from the package (``Mannequin.vertices`` of its rest
   pose, neutral shape, relaxed hands); the skin weights from its asset (the 4 strongest influences per
   vertex and the rigid parts, as the package binds them) with hand and finger joints folded into the
   wrists, which is exact for the fixed relaxed hands. Linear blend skinning is one (V, 22) x (22, 12)
   matrix product per frame. :class:`SMPLBody`: a SMPL / SMPL+H / SMPL-X model file through ``smplx``
   (``--body-model smplx --body-model-dir DIR``), same IK and renderer.
4. **Floor.** The mesh keeps the data's heights (a floating or sinking generated motion stays visibly
   so): one constant vertical offset per clip, ``median_t(lowest target joint - lowest FK joint)`` plus
   the body's rest height of its lowest joint above its soles, because HumanML3D puts the *lowest
   joint* (not the sole) on y = 0.
5. **Rasteriser.** A numpy z-buffer rasteriser: back faces culled, triangles bucketed by the size of
   their pixel bounding box and tested at pixel centres with edge functions, nearest fragment per pixel
   by a sort; Gouraud (per-vertex Lambert + ambient + camera fill) shading; a checkerboard floor traced
   per pixel; a soft shadow splatted from the vertices projected along the light; perspective camera
   following the (smoothed) root. No anti-aliasing beyond ``supersample`` (off by default: speed).
6. **Output.** ``.mp4`` (H.264 through an ``ffmpeg`` executable: on PATH, ``$IMAGEIO_FFMPEG_EXE`` or the
   ``imageio-ffmpeg`` package), ``.gif`` (Pillow, one global palette), ``.png`` (one frame) or ``.npy``
   (the frames). An ``.mp4`` without ffmpeg falls back to a ``.gif`` beside it (the returned path says
   which was written).

Speed (measured on one core of the 2-core CI machine, mannequin, 480x480): a 10-second clip (200 frames)
in ~8 s: IK ~5 ms, skinning ~0.5 s, rasterising + shading ~7 s (~37 ms a frame), GIF ~0.4 s; 256x256
in ~4 s. A SMPL-X body (10k vertices) costs about the same. Nothing is decimated: every triangle is
rasterised.

CLI::

    python -m utils.mesh_render features.npy out.mp4 [--joints] [--fps 20] [--size 480]
        [--body-model mannequin|smpl|smplh|smplx --body-model-dir DIR --gender neutral] [--title TEXT]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["MannequinRig", "SMPLBody", "SMPL_PARENTS", "Camera", "MeshRenderError", "retarget", "skin_lbs",
           "render_frames", "pose_body", "render_mesh", "render_mesh_features", "write_video", "find_ffmpeg",
           "load_body", "floor_shift", "main"]

#: SMPL's first 22 joints (= the t2m skeleton of HumanML3D, same order)
SMPL_PARENTS = np.array([-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19])
N_JOINTS = 22
#: the one child that orients each single-child joint
_CHILD = {3: 6, 6: 9, 1: 4, 2: 5, 4: 7, 5: 8, 7: 10, 8: 11, 12: 15, 13: 16, 14: 17, 16: 18, 17: 19,
          18: 20, 19: 21}
_MULTI = {0: (1, 2, 3), 9: (12, 13, 14)}
_LEAVES = (10, 11, 15, 20, 21)
#: hinge axis (rest frame) of the next joint of a limb, and its grandchild: knees flex about +x, the left
#: elbow (arm along +x in the T-pose) about -y, the right one about +y
_HINGE = {1: (4, 7, np.array([1.0, 0.0, 0.0])), 2: (5, 8, np.array([1.0, 0.0, 0.0])),
          16: (18, 20, np.array([0.0, -1.0, 0.0])), 17: (19, 21, np.array([0.0, 1.0, 0.0]))}

WOOD = np.array([0.80, 0.62, 0.42])
WOOD_DARK = np.array([0.58, 0.41, 0.25])
SKIN = np.array([0.72, 0.74, 0.80])


class MeshRenderError(RuntimeError):
    """A body model or input that cannot be rendered (the message says what to do)."""


# ============================================================================ rotations
def _normalize(v, eps=1e-9):
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, eps)


def _skew(v):
    z = np.zeros(v.shape[:-1])
    return np.stack([np.stack([z, -v[..., 2], v[..., 1]], -1),
                     np.stack([v[..., 2], z, -v[..., 0]], -1),
                     np.stack([-v[..., 1], v[..., 0], z], -1)], -2)


def rotation_between(a, b):
    """Smallest rotation matrices (..., 3, 3) turning directions ``a`` onto ``b`` (antiparallel: 180 deg
    about an axis perpendicular to ``a``)."""
    a, b = np.broadcast_arrays(_normalize(np.asarray(a, float)), _normalize(np.asarray(b, float)))
    v = np.cross(a, b)
    c = (a * b).sum(-1)
    K = _skew(v)
    eye = np.broadcast_to(np.eye(3), K.shape)
    R = eye + K + (K @ K) / np.maximum(1.0 + c, 1e-9)[..., None, None]
    anti = c < -1.0 + 1e-6
    if np.any(anti):
        aa = a[anti]
        helper = np.where(np.abs(aa[:, :1]) < 0.9, np.array([[1.0, 0, 0]]), np.array([[0, 1.0, 0]]))
        axis = _normalize(np.cross(aa, helper))
        R[anti] = 2.0 * axis[:, :, None] * axis[:, None, :] - np.eye(3)
    return R


def axis_angle_matrix(axis, angle):
    """Rodrigues: rotation matrices for unit ``axis`` (..., 3) and ``angle`` (...)."""
    K = _skew(_normalize(np.asarray(axis, float)))
    s, c = np.sin(angle)[..., None, None], np.cos(angle)[..., None, None]
    return np.eye(3) + s * K + (1.0 - c) * (K @ K)


def matrix_to_axis_angle(R):
    """Rotation matrices (..., 3, 3) -> axis-angle vectors (..., 3) (via scipy, robust near pi)."""
    from scipy.spatial.transform import Rotation
    shp = R.shape[:-2]
    return Rotation.from_matrix(R.reshape(-1, 3, 3)).as_rotvec().reshape(*shp, 3)


def kabsch(src, dst):
    """Rotations R (T, 3, 3) minimising sum |R src_i - dst_i|^2 for src (K, 3), dst (T, K, 3)."""
    H = np.einsum("ki,tkj->tij", src, dst)
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(np.swapaxes(Vt, -1, -2) @ np.swapaxes(U, -1, -2)))
    D = np.zeros_like(H)
    D[:, 0, 0] = 1.0
    D[:, 1, 1] = 1.0
    D[:, 2, 2] = d
    return np.swapaxes(Vt, -1, -2) @ D @ np.swapaxes(U, -1, -2)


def _smoothstep(x, lo, hi):
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _hinge_twist(Gs, P, J0, j, c, g, axis):
    """Twist the swing rotations ``Gs`` (T, 3, 3) of joint ``j`` about its bone so that the next joint ``c``
    can reach its target bone (c -> g) by a rotation about its hinge ``axis`` (rest frame) alone, bending
    the natural way (positive angle). Exact for hinge-only knees / elbows; blended in between 10 and 30
    degrees of bend (a straight limb defines no plane) and clamped where no exact twist exists."""
    b = _normalize(P[:, c] - P[:, j])
    d2 = _normalize(P[:, g] - P[:, c])
    d2_rest = _normalize(J0[g] - J0[c])
    c0 = float(axis @ d2_rest)
    h = np.einsum("tij,j->ti", Gs, axis)
    hb = (h * b).sum(-1, keepdims=True)
    h_perp = h - hb * b
    A = (h_perp * d2).sum(-1)
    B = (np.cross(b, h_perp) * d2).sum(-1)
    C = c0 - hb[:, 0] * (b * d2).sum(-1)
    phi = np.arctan2(B, A)
    delta = np.arccos(np.clip(C / np.maximum(np.hypot(A, B), 1e-9), -1.0, 1.0))
    best, best_bend = np.zeros(len(b)), np.full(len(b), -np.inf)
    r_perp = d2_rest - c0 * axis
    for psi in (phi + delta, phi - delta):
        Gc = axis_angle_matrix(b, psi) @ Gs
        s_loc = np.einsum("tji,tj->ti", Gc, d2)                   # target lower bone in j's frame
        s_perp = s_loc - (s_loc @ axis)[:, None] * axis
        bend = np.arctan2(np.cross(r_perp, s_perp) @ axis, s_perp @ r_perp)
        take = bend > best_bend
        best[take], best_bend[take] = psi[take], bend[take]
    best = np.arctan2(np.sin(best), np.cos(best))
    straight = np.arccos(np.clip((b * d2).sum(-1), -1.0, 1.0))
    w = _smoothstep(straight, np.radians(10.0), np.radians(30.0))
    return axis_angle_matrix(b, w * best) @ Gs


def retarget(joints, rest_joints, parents=SMPL_PARENTS, hinge_twist: bool = True):
    """Target joint positions (T, 22, 3) -> (world rotations (T, 22, 3, 3), FK joint positions (T, 22, 3))
    of a body whose rest joints are ``rest_joints`` (22, 3) (identity rotations = rest pose). The module
    docstring describes the rules; the root position is the target root."""
    P = np.asarray(joints, dtype=np.float64)
    if P.ndim != 3 or P.shape[1:] != (N_JOINTS, 3):
        raise ValueError(f"joints must have shape (frames, 22, 3) (t2m / SMPL order), got {P.shape}")
    J0 = np.asarray(rest_joints, dtype=np.float64)[:N_JOINTS]
    T = len(P)
    G = np.zeros((T, N_JOINTS, 3, 3))
    for j in range(N_JOINTS):
        p = parents[j]
        if j in _MULTI:
            kids = list(_MULTI[j])
            G[:, j] = kabsch(J0[kids] - J0[j], P[:, kids] - P[:, j:j + 1])
        elif j in _CHILD:
            c = _CHILD[j]
            base = G[:, p]
            if hinge_twist and p in _HINGE:  # knee / elbow: bend about the hinge first, then the residual swing
                axis = _HINGE[p][2]
                r = J0[c] - J0[j]
                r_perp = r - (r @ axis) * axis
                s_loc = np.einsum("tji,tj->ti", base, P[:, c] - P[:, j])
                s_perp = s_loc - (s_loc @ axis)[:, None] * axis
                theta = np.arctan2(np.cross(r_perp, s_perp) @ axis, s_perp @ r_perp)
                base = base @ axis_angle_matrix(np.broadcast_to(axis, (T, 3)), theta)
            cur = np.einsum("tij,j->ti", base, J0[c] - J0[j])
            G[:, j] = rotation_between(cur, P[:, c] - P[:, j]) @ base
            if hinge_twist and j in _HINGE:
                G[:, j] = _hinge_twist(G[:, j], P, J0, j, *_HINGE[j])
        else:  # leaves
            G[:, j] = G[:, p]
    pos = np.zeros((T, N_JOINTS, 3))
    pos[:, 0] = P[:, 0]
    for j in range(1, N_JOINTS):
        p = parents[j]
        pos[:, j] = pos[:, p] + np.einsum("tij,j->ti", G[:, p], J0[j] - J0[p])
    return G, pos


def local_rotations(G, parents=SMPL_PARENTS):
    """World rotations (T, J, 3, 3) -> local rotations relative to the parent (root: its world rotation)."""
    L = G.copy()
    for j in range(1, G.shape[1]):
        L[:, j] = np.swapaxes(G[:, parents[j]], -1, -2) @ G[:, j]
    return L


# ============================================================================ bodies
def skin_lbs(rest_vertices, rest_joints, weights, G, pos):
    """Linear blend skinning: dense ``weights`` (V, J), world rotations ``G`` (T, J, 3, 3), joint
    positions ``pos`` (T, J, 3) -> vertices (T, V, 3) float32 (v = sum_j w_j (G_j (v0 - J0_j) + pos_j))."""
    T, J = G.shape[:2]
    A = np.empty((T, J, 3, 4), dtype=np.float32)
    A[..., :3] = G
    A[..., 3] = pos - np.einsum("tjab,jb->tja", G, rest_joints[:J])
    M = (weights.astype(np.float32) @ A.reshape(T, J, 12).transpose(1, 0, 2).reshape(J, T * 12))
    M = M.reshape(-1, T, 3, 4).transpose(1, 0, 2, 3)                            # (T, V, 3, 4)
    v0 = rest_vertices.astype(np.float32)
    out = np.einsum("tvab,vb->tva", M[..., :3], v0, optimize=True) + M[..., 3]
    return out.astype(np.float32)


class MannequinRig:
    """The wooden mannequin of ``mannequin-x`` as a 22-joint LBS rig (module docstring, step 3)."""

    name = "mannequin"

    def __init__(self, flat_hands: bool = False):
        try:
            from importlib.resources import files

            from mannequin import Mannequin
        except ImportError as exc:  # pragma: no cover - listed in requirements.txt
            raise MeshRenderError("the mesh renderer needs the 'mannequin-x' package "
                                  "(pip install mannequin-x==0.3.0)") from exc
        m = Mannequin("wooden", flat_hand_mean=flat_hands)
        rest = m.rest_pose(dtype=np.float64)
        self.vertices = np.asarray(m.vertices(rest), dtype=np.float32)          # (V, 3), relaxed hands
        self.all_rest_joints = np.asarray(m.joint_transforms(rest)[:, :3, 3], dtype=np.float64)
        self.rest_joints = self.all_rest_joints[:N_JOINTS].copy()
        self.faces = np.asarray(m.faces, dtype=np.int64)
        names = list(m.joint_names)
        self.joint_names = names
        self.all_parents = np.asarray(m.parents)
        if not np.array_equal(self.all_parents[:N_JOINTS], SMPL_PARENTS):
            raise MeshRenderError("mannequin-x: the first 22 joints are not SMPL's tree (package version changed?)")
        with (files("mannequin") / "assets" / "wooden.npz").open("rb") as fh, np.load(fh) as z:
            idx = z["skin_joint_indices"].astype(np.int64)
            w = z["skin_weights"].astype(np.float64)
            rigid = z["skin_rigid_joint_indices"].astype(np.int64)
            part_names = [str(s) for s in z["skin_part_names"]]
            face_starts, face_counts = z["skin_part_face_starts"], z["skin_part_face_counts"]
        # as the package binds them: the 4 strongest influences, renormalised; rigid parts follow one joint
        strongest = np.argsort(w, axis=1)[:, -4:]
        idx = np.take_along_axis(idx, strongest, 1)
        w = np.take_along_axis(w, strongest, 1)
        w /= w.sum(1, keepdims=True)
        r = rigid >= 0
        idx[r] = rigid[r, None]
        w[r] = 0.0
        w[r, 0] = 1.0
        # fold the hand and finger joints into their first ancestor among the 22 body joints
        fold = np.arange(len(names))
        for j in range(N_JOINTS, len(names)):
            a = j
            while a >= N_JOINTS:
                a = self.all_parents[a]
            fold[j] = a
        self.skin_index, self.skin_weight = fold[idx], w
        dense = np.zeros((len(self.vertices), N_JOINTS))
        np.add.at(dense, (np.repeat(np.arange(len(idx)), idx.shape[1]), self.skin_index.ravel()), w.ravel())
        self.weights = dense                                                       # (V, 22), rows sum to 1
        # colours: joint balls darker than the limbs
        col = np.tile(WOOD, (len(self.faces), 1))
        for n, s, c in zip(part_names, face_starts, face_counts):
            if n.startswith("joint_"):
                col[s:s + c] = WOOD_DARK
        self.face_colors = col
        self.vertex_colors = None

    def pose(self, G, pos):
        return skin_lbs(self.vertices, self.rest_joints, self.weights, G, pos)


class SMPLBody:
    """A SMPL / SMPL+H / SMPL-X body model file, posed through ``smplx`` (neutral shape, flat hands).

    ``body_model_dir`` is the folder ``smplx.create`` takes (``DIR/smplx/SMPLX_NEUTRAL.npz``,
    ``DIR/smpl/SMPL_NEUTRAL.pkl``, ...), or a model file itself."""

    def __init__(self, body_model_dir, model_type: str = "smplx", gender: str = "neutral", device: str = "cpu"):
        import contextlib
        import io

        import torch
        try:
            import smplx
        except ImportError as exc:  # pragma: no cover
            raise MeshRenderError("--body-model smpl/smplh/smplx needs the 'smplx' package") from exc
        if model_type not in ("smpl", "smplh", "smplx"):
            raise MeshRenderError(f"unknown body model type {model_type!r} (expected smpl, smplh or smplx)")
        path = self._find(body_model_dir, model_type, gender)
        kw = dict(gender=gender, ext=path.suffix[1:], num_betas=10, batch_size=1)
        if model_type in ("smplh", "smplx"):
            kw.update(use_pca=False, flat_hand_mean=True)
        if model_type != "smplx":  # only joints 0-21 are read: the extra keypoint vertices (fixed ids that a
            from smplx.vertex_ids import vertex_ids  # trimmed or test model may not have) all point at vertex 0
            kw["vertex_ids"] = {k: 0 for k in vertex_ids["smplh"]}
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                model = smplx.create(str(path), model_type=model_type, **kw)
        except Exception as exc:  # noqa: BLE001 - re-raised with the file name
            raise MeshRenderError(f"cannot load body model {path} with smplx: {type(exc).__name__}: {exc}") from exc
        model.eval()
        self.model, self.model_type, self.path, self.device = model, model_type, str(path), device
        self.name = model_type
        parents = model.parents[:N_JOINTS].cpu().numpy()
        if not np.array_equal(parents, SMPL_PARENTS):
            raise MeshRenderError(f"{path}: the first 22 joints are not SMPL's body tree")
        with torch.no_grad():
            out = self._forward(np.zeros((1, N_JOINTS, 3, 3)) + np.eye(3), np.zeros((1, 3)))
        self.vertices = out[0][0]
        self.rest_joints = out[1][0].astype(np.float64)
        self.faces = np.asarray(model.faces, dtype=np.int64)
        self.face_colors = np.tile(SKIN, (len(self.faces), 1))

    @staticmethod
    def _find(body_model_dir, model_type, gender) -> Path:
        d = Path(body_model_dir)
        if d.is_file():
            return d
        up = f"{model_type.upper()}_{gender.upper()}"
        exts = ("npz", "pkl") if model_type == "smplx" else ("pkl", "npz")
        cands = [d / model_type / f"{up}.{e}" for e in exts] + [d / f"{up}.{e}" for e in exts]
        if model_type == "smplh":  # AMASS's extended SMPL+H: smplh/<gender>/model.npz
            cands.append(d / model_type / gender.lower() / "model.npz")
        for c in cands:
            if c.is_file():
                return c
        raise MeshRenderError(f"{model_type.upper()} body model ({gender}) not found: looked for "
                              f"{', '.join(str(c) for c in cands)}. The body models are licensed: download "
                              "them from the SMPL / SMPL-X websites (see docs/data-preparation.md), or render "
                              "with the bundled mannequin (--body-model mannequin)")

    def _forward(self, G, transl, chunk: int = 64):
        import torch
        L = local_rotations(np.asarray(G, dtype=np.float64))
        T = len(L)
        n_body = 23 if self.model_type == "smpl" else 21
        verts, joints = [], []
        for a in range(0, T, chunk):
            loc = L[a:a + chunk]
            b = len(loc)
            aa = matrix_to_axis_angle(loc).astype(np.float32)                # (b, 22, 3)
            body = np.zeros((b, n_body, 3), np.float32)
            body[:, :21] = aa[:, 1:22]
            kw = dict(global_orient=torch.from_numpy(aa[:, 0]), body_pose=torch.from_numpy(body.reshape(b, -1)),
                      transl=torch.from_numpy(np.asarray(transl[a:a + chunk], np.float32)),
                      betas=torch.zeros(b, self.model.num_betas))
            if self.model_type in ("smplh", "smplx"):
                nh = self.model.left_hand_pose.shape[-1]
                kw.update(left_hand_pose=torch.zeros(b, nh), right_hand_pose=torch.zeros(b, nh))
            if self.model_type == "smplx":
                kw.update(jaw_pose=torch.zeros(b, 3), leye_pose=torch.zeros(b, 3), reye_pose=torch.zeros(b, 3),
                          expression=torch.zeros(b, self.model.num_expression_coeffs))
            with torch.no_grad():
                out = self.model(**kw)
            verts.append(out.vertices.cpu().numpy().astype(np.float32))
            joints.append(out.joints[:, :N_JOINTS].cpu().numpy())
        return np.concatenate(verts), np.concatenate(joints)

    def pose(self, G, pos):
        # smplx rotates about the pelvis rest joint: transl puts the pelvis on the target root
        transl = pos[:, 0] - self.rest_joints[0]
        return self._forward(G, transl)[0]


def load_body(body_model: str = "mannequin", body_model_dir=None, gender: str = "neutral"):
    """The body to render: 'mannequin' (bundled) or 'smpl' / 'smplh' / 'smplx' (needs ``body_model_dir``)."""
    if body_model in (None, "mannequin"):
        return _cached_mannequin()
    if body_model_dir is None:
        raise MeshRenderError(f"--body-model {body_model} needs --body-model-dir (the folder with the "
                              f"{body_model.upper()} model files)")
    return SMPLBody(body_model_dir, body_model, gender)


_MANNEQUIN = None


def _cached_mannequin():
    global _MANNEQUIN
    if _MANNEQUIN is None:
        _MANNEQUIN = MannequinRig()
    return _MANNEQUIN


def floor_shift(body, target_joints, fk_joints) -> float:
    """The constant height added to the posed body (module docstring, step 4)."""
    lowest_target = target_joints[..., 1].min(-1)
    lowest_fk = fk_joints[..., 1].min(-1)
    sole_gap = body.rest_joints[:, 1].min() - float(body.vertices[:, 1].min())  # lowest joint above the soles
    return float(np.median(lowest_target - lowest_fk) + sole_gap)


def pose_body(joints, body=None, timings: dict | None = None):
    """Joints (T, 22, 3) -> (posed vertices (T, V, 3) float32, the body's joints (T, 22, 3)), on the floor
    (steps 2-4 of the module docstring)."""
    body = body or _cached_mannequin()
    joints = np.asarray(joints, dtype=np.float64)
    t0 = time.time()
    G, fk = retarget(joints, body.rest_joints)
    t1 = time.time()
    verts = body.pose(G, fk)
    shift = floor_shift(body, joints, fk)
    verts[..., 1] += shift
    fk[..., 1] += shift
    if timings is not None:
        timings.update(ik_s=t1 - t0, skin_s=time.time() - t1)
    return verts, fk


# ============================================================================ camera + rasteriser
@dataclass
class Camera:
    """Perspective camera looking at ``target`` from ``distance`` m, ``azimuth`` deg about +Y from +Z
    (the direction HumanML3D motions face at the start), ``elevation`` deg."""

    width: int = 480
    height: int = 480
    fov: float = 38.0
    distance: float = 4.2
    azimuth: float = 35.0
    elevation: float = 14.0

    def basis(self):
        az, el = np.radians(self.azimuth), np.radians(self.elevation)
        back = np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])  # target -> camera
        fwd = -back
        right = _normalize(np.cross(fwd, [0.0, 1.0, 0.0]))
        up = np.cross(right, fwd)
        return back * self.distance, np.stack([right, up, fwd])           # offset, rows: camera axes

    @property
    def focal(self):
        return 0.5 * self.height / np.tan(np.radians(self.fov) / 2)


def _project(points, eye, R, cam: Camera):
    pc = (points - eye) @ R.T
    z = pc[..., 2]
    zs = np.maximum(z, 1e-6)
    x = cam.focal * pc[..., 0] / zs + 0.5 * cam.width
    y = -cam.focal * pc[..., 1] / zs + 0.5 * cam.height
    return x, y, z


def _vertex_normals(verts, faces):
    v0, v1, v2 = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    fn = np.cross(v1 - v0, v2 - v0)
    n = np.zeros_like(verts)
    for k in range(3):
        for c in range(3):
            n[:, c] += np.bincount(faces[:, k], weights=fn[:, c], minlength=len(verts))
    return _normalize(n), fn


def _min3(a):  # (n, 3) -> (n,): faster than a.min(1)
    return np.minimum(np.minimum(a[:, 0], a[:, 1]), a[:, 2])


def _max3(a):
    return np.maximum(np.maximum(a[:, 0], a[:, 1]), a[:, 2])


def rasterize(x, y, z, faces, width, height):
    """Visible triangle per pixel. Screen vertices ``x, y`` (pixels), camera depth ``z`` -> (pixel index,
    face index, barycentrics (n, 3)) of the nearest fragment of each covered pixel. Triangles must be
    counter-clockwise on screen to be front facing (others are culled)."""
    fx, fy, fz = x[faces], y[faces], z[faces]                                # (F, 3)
    area = (fx[:, 1] - fx[:, 0]) * (fy[:, 2] - fy[:, 0]) - (fx[:, 2] - fx[:, 0]) * (fy[:, 1] - fy[:, 0])
    keep = (area < 0) & (_min3(fz) > 0.05)                                   # y points down: CCW = negative
    x0 = np.ceil(_min3(fx) - 0.5).astype(np.int64)
    x1 = np.floor(_max3(fx) - 0.5).astype(np.int64)
    y0 = np.ceil(_min3(fy) - 0.5).astype(np.int64)
    y1 = np.floor(_max3(fy) - 0.5).astype(np.int64)
    x0, y0 = np.maximum(x0, 0), np.maximum(y0, 0)
    x1, y1 = np.minimum(x1, width - 1), np.minimum(y1, height - 1)
    keep &= (x1 >= x0) & (y1 >= y0)
    fid = np.nonzero(keep)[0]
    size = np.maximum(x1 - x0, y1 - y0)[fid] + 1
    pix_l, dep_l, face_l, bary_l = [], [], [], []
    lo = 0
    for hi in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128, 256, 512, 1024, 4096):
        sel = fid[(size > lo) & (size <= hi)]
        lo = hi
        if len(sel) == 0:
            continue
        o = np.arange(hi)
        ox = np.tile(o, hi)
        oy = np.repeat(o, hi)
        px = x0[sel, None] + ox[None]
        py = y0[sel, None] + oy[None]
        inb = (px <= x1[sel, None]) & (py <= y1[sel, None])
        cx, cy = px + 0.5, py + 0.5
        ax, ay = fx[sel], fy[sel]
        # edge functions (barycentric numerators), normalised by the (negative) area
        inv = 1.0 / area[sel, None]
        w0 = ((ax[:, 2:3] - ax[:, 1:2]) * (cy - ay[:, 1:2]) - (ay[:, 2:3] - ay[:, 1:2]) * (cx - ax[:, 1:2])) * inv
        w1 = ((ax[:, 0:1] - ax[:, 2:3]) * (cy - ay[:, 2:3]) - (ay[:, 0:1] - ay[:, 2:3]) * (cx - ax[:, 2:3])) * inv
        w2 = 1.0 - w0 - w1
        inside = inb & (w0 >= -1e-7) & (w1 >= -1e-7) & (w2 >= -1e-7)
        r, c = np.nonzero(inside)
        if len(r) == 0:
            continue
        f = sel[r]
        b = np.stack([w0[r, c], w1[r, c], w2[r, c]], 1)
        d = np.einsum("ij,ij->i", b, fz[f])
        pix_l.append(py[r, c] * width + px[r, c])
        dep_l.append(d)
        face_l.append(f)
        bary_l.append(b)
    if not pix_l:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3))
    pix, dep = np.concatenate(pix_l), np.concatenate(dep_l)
    face, bary = np.concatenate(face_l), np.concatenate(bary_l)
    order = np.lexsort((dep, pix))                                             # by pixel, nearest first
    pix_s = pix[order]
    first = np.ones(len(pix_s), bool)
    first[1:] = pix_s[1:] != pix_s[:-1]
    win = order[first]
    return pix[win], face[win], bary[win]


class _Scene:
    """Per-clip constants of the renderer: camera rays on the floor, background, light."""

    def __init__(self, cam: Camera, light=(0.45, 1.0, 0.55), tile: float = 0.5):
        self.cam = cam
        self.offset, self.R = cam.basis()
        W, H = cam.width, cam.height
        xs = (np.arange(W) + 0.5 - 0.5 * W) / cam.focal
        ys = -(np.arange(H) + 0.5 - 0.5 * H) / cam.focal
        X, Y = np.meshgrid(xs, ys)
        dirs = _normalize(np.stack([X, Y, np.ones_like(X)], -1) @ self.R)       # world ray directions
        self.dirs = dirs.reshape(-1, 3)
        self.light = _normalize(np.asarray(light, float))
        self.tile = tile
        top, bottom = np.array([0.80, 0.86, 0.93]), np.array([0.96, 0.96, 0.95])
        t = np.linspace(0, 1, H)[:, None, None]
        self.sky = np.broadcast_to(top * (1 - t) + bottom * t, (H, W, 3)).reshape(-1, 3).astype(np.float32)

    def background(self, eye):
        """Sky + checkerboard floor (y = 0) for a camera at ``eye`` (same height and orientation every
        frame, so the ray hits are precomputed relative to the camera); returns (colours (H*W, 3), floor mask)."""
        if getattr(self, "_eye_y", None) != float(eye[1]):
            self._eye_y = float(eye[1])
            d = self.dirs
            hit = d[:, 1] < -1e-4
            t = -eye[1] / d[hit, 1]
            self._hit, self._rel = hit, (t[:, None] * d[hit])[:, [0, 2]]
            fog = np.clip((t - 6.0) / 14.0, 0.0, 1.0)[:, None]
            sky = self.sky[hit]
            self._tiles = [(np.array([0.78, 0.79, 0.80]) * (1 - fog) + sky * fog).astype(np.float32),
                           (np.array([0.62, 0.64, 0.66]) * (1 - fog) + sky * fog).astype(np.float32)]
        pts = self._rel + eye[[0, 2]]
        check = (np.floor(pts[:, 0] / self.tile) + np.floor(pts[:, 1] / self.tile)).astype(np.int64) & 1
        col = self.sky.copy()
        col[self._hit] = np.where(check[:, None] == 1, self._tiles[1], self._tiles[0])
        return col, self._hit

    def shadow(self, verts, eye, stride: int = 1):
        """Soft shadow mask (H*W,) from the vertices projected along the light onto y = 0."""
        cam = self.cam
        v = verts[::stride]
        above = v[:, 1] > -0.05
        v = v[above]
        p = v - (v[:, 1:2] / self.light[1]) * self.light
        x, y, z = _project(p, eye, self.R, cam)
        ok = (z > 0.05) & (x >= 0) & (x < cam.width) & (y >= 0) & (y < cam.height)
        m = np.zeros((cam.height + 2, cam.width + 2), np.float32)
        m[y[ok].astype(np.int64) + 1, x[ok].astype(np.int64) + 1] = 1.0
        # close the gaps between splatted vertices (3x3 max), then soften (3x3 mean)
        d = m.copy()
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if dy or dx:
                    np.maximum(d[1:-1, 1:-1], m[1 + dy:m.shape[0] - 1 + dy, 1 + dx:m.shape[1] - 1 + dx],
                               out=d[1:-1, 1:-1])
        s = np.zeros_like(d)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                s[1:-1, 1:-1] += d[1 + dy:d.shape[0] - 1 + dy, 1 + dx:d.shape[1] - 1 + dx]
        return (s[1:-1, 1:-1] / 9.0).reshape(-1)


def _shade_frame(scene: _Scene, verts, faces, face_colors, eye, shadow: bool = True):
    cam = scene.cam
    col, floor = scene.background(eye)
    if shadow:
        sh = scene.shadow(verts, eye)
        col[floor] *= (1.0 - 0.42 * sh[floor])[:, None]
    x, y, z = _project(verts, eye, scene.R, cam)
    pix, face, bary = rasterize(x, y, z, faces, cam.width, cam.height)
    if len(pix):
        n, _ = _vertex_normals(verts, faces)
        view = _normalize(eye - verts)
        lam = np.clip(n @ scene.light, 0.0, None)
        fill = np.clip((n * view).sum(1), 0.0, None)
        inten = 0.30 + 0.62 * lam + 0.22 * fill                                  # (V,)
        vi = faces[face]                                                          # (n, 3)
        shade = (bary * inten[vi]).sum(1)
        col[pix] = np.clip(face_colors[face] * shade[:, None], 0.0, 1.0)
    return col.reshape(cam.height, cam.width, 3), pix


def _title_overlay(frames, title):
    if not title:
        return frames
    from PIL import Image, ImageDraw
    from .plot_script import wrap_title
    text = wrap_title(title, words_per_line=8, max_lines=2)
    H, W = frames.shape[1:3]
    layer = Image.new("L", (W, H), 0)
    ImageDraw.Draw(layer).multiline_text((8, 6), text, fill=255, spacing=2)
    a = (np.asarray(layer, np.float32) / 255.0)[None, ..., None]
    return (frames * (1 - a) + 25 * a).astype(np.uint8)


def render_frames(joints, body=None, size=(480, 480), camera: Camera | None = None, shadow: bool = True,
                  supersample: int = 1, progress: bool = False, timings: dict | None = None, title: str = "",
                  follow: bool = True, return_masks: bool = False, fps: float = 20.0):
    """Joints (T, 22, 3) in metres -> RGB frames (T, H, W, 3) uint8 of ``body`` (default: the mannequin).

    ``follow``: the camera follows the root (smoothed over ~0.5 s at ``fps``); else it stays on the clip's
    mean root.
    ``return_masks``: also return the body's silhouettes (T, H, W) bool."""
    t0 = time.time()
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (N_JOINTS, 3):
        raise ValueError(f"the mesh renderer takes t2m joints (frames, 22, 3), got {joints.shape}")
    if len(joints) == 0:
        raise ValueError("empty motion (0 frames)")
    if not np.isfinite(joints).all():
        raise ValueError("joints contain NaN or Inf")
    body = body or _cached_mannequin()
    W, H = int(size[0]), int(size[1])
    ss = max(1, int(supersample))
    cam = camera or Camera()
    cam = Camera(W * ss, H * ss, cam.fov, cam.distance, cam.azimuth, cam.elevation)
    timing = {}
    verts, _ = pose_body(joints, body, timing)
    t1, t2 = t0 + timing["ik_s"], time.time()
    # the camera follows the root (smoothed over ~0.5 s), at a fixed height
    from scipy.ndimage import gaussian_filter1d
    root = joints[:, 0, [0, 2]]
    if not follow:
        root = np.broadcast_to(root.mean(0), root.shape)
    elif len(root) > 1:
        root = gaussian_filter1d(root, sigma=0.5 * fps, axis=0, mode="nearest")
    scene = _Scene(cam)
    look_h = 0.85
    frames = np.empty((len(joints), H, W, 3), np.uint8)
    masks = np.zeros((len(joints), H, W), bool) if return_masks else None
    it = range(len(joints))
    if progress:
        try:
            from tqdm import tqdm
            it = tqdm(it, desc="render mesh", unit="frame")
        except ImportError:  # pragma: no cover
            pass
    for i in it:
        target = np.array([root[i, 0], look_h, root[i, 1]])
        eye = target + scene.offset
        img, pix = _shade_frame(scene, verts[i], body.faces, body.face_colors, eye, shadow)
        if ss > 1:
            img = img.reshape(H, ss, W, ss, 3).mean((1, 3))
        if return_masks:
            m = np.zeros(cam.width * cam.height, bool)
            m[pix] = True
            masks[i] = m.reshape(H, ss, W, ss).any((1, 3))
        frames[i] = (img * 255.0 + 0.5).astype(np.uint8)
    frames = _title_overlay(frames, title)
    if timings is not None:
        timings.update(ik_s=t1 - t0, skin_s=t2 - t1, raster_s=time.time() - t2, frames=len(joints))
    return (frames, masks) if return_masks else frames


# ============================================================================ output
def find_ffmpeg():
    """An ffmpeg executable: PATH, ``$IMAGEIO_FFMPEG_EXE``, or the ``imageio-ffmpeg`` package; else None."""
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    env = os.environ.get("IMAGEIO_FFMPEG_EXE")
    if env and Path(env).is_file():
        return env
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # noqa: BLE001 - not installed / no binary
        return None


def _write_gif(path: Path, frames, fps: float):
    from PIL import Image
    T = len(frames)
    sample = frames[np.linspace(0, T - 1, min(T, 6)).astype(int)]
    pal = Image.fromarray(np.concatenate(list(sample), 0)).quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    ims = [Image.fromarray(f).quantize(palette=pal, dither=Image.Dither.NONE) for f in frames]
    ims[0].save(path, save_all=True, append_images=ims[1:], duration=int(round(1000.0 / fps)), loop=0,
                optimize=False, disposal=1)


def _write_mp4(path: Path, frames, fps: float, exe: str):
    T, H, W, _ = frames.shape
    if H % 2 or W % 2:  # yuv420p needs even sides
        frames = np.pad(frames, ((0, 0), (0, H % 2), (0, W % 2), (0, 0)), mode="edge")
        H, W = frames.shape[1:3]
    cmd = [exe, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{W}x{H}",
           "-r", f"{fps:g}", "-i", "-", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "20",
           "-movflags", "+faststart", str(path)]
    proc = subprocess.run(cmd, input=np.ascontiguousarray(frames).tobytes(), capture_output=True)
    if proc.returncode != 0:
        raise MeshRenderError(f"ffmpeg failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-400:]}")


def write_video(path, frames, fps: float = 20.0) -> Path:
    """Write RGB ``frames`` (T, H, W, 3) uint8 to ``path`` (.mp4 / .gif / .png / .npy) through a temporary
    file renamed into place. ``.mp4`` without ffmpeg writes ``<stem>.gif`` instead (a message says so);
    returns the path written."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in (".mp4", ".gif", ".png", ".npy"):
        raise ValueError(f"unsupported output extension {ext!r} for {path}: use .mp4, .gif, .png or .npy")
    exe = find_ffmpeg() if ext == ".mp4" else None
    if ext == ".mp4" and exe is None:
        print(f"[mesh_render] no ffmpeg executable (PATH, $IMAGEIO_FFMPEG_EXE or pip install imageio-ffmpeg): "
              f"writing {path.with_suffix('.gif').name} instead of {path.name}", file=sys.stderr)
        path, ext = path.with_suffix(".gif"), ".gif"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{ext}")
    try:
        if ext == ".gif":
            _write_gif(tmp, frames, fps)
        elif ext == ".mp4":
            _write_mp4(tmp, frames, fps, exe)
        elif ext == ".png":
            from PIL import Image
            Image.fromarray(frames[0]).save(tmp)
        else:
            with open(tmp, "wb") as f:
                np.save(f, frames)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def render_mesh(path, joints, fps: float = 20.0, body_model: str = "mannequin", body_model_dir=None,
                gender: str = "neutral", size=(480, 480), title: str = "", stride: int = 1, max_frames=None,
                camera: Camera | None = None, supersample: int = 1, progress: bool = False,
                timings: dict | None = None, body=None) -> Path:
    """Render joints (T, 22, 3) to ``path`` (see :func:`write_video`); returns the path written.
    ``stride`` keeps every n-th frame (fps divided accordingly), ``max_frames`` caps the frames written."""
    joints = np.asarray(joints)
    stride = max(1, int(stride))
    idx = np.arange(0, len(joints), stride)
    if max_frames is not None:
        idx = idx[: max(1, int(max_frames))]
    body = body or load_body(body_model, body_model_dir, gender)
    t = {} if timings is None else timings
    frames = render_frames(joints[idx], body, size=size, camera=camera, supersample=supersample,
                           progress=progress, timings=t, title=title, fps=fps / stride)
    t0 = time.time()
    out = write_video(path, frames, fps / stride)
    t["encode_s"] = time.time() - t0
    return out


def render_mesh_features(path, features, **kwargs) -> Path:
    """Features (T, 263) -> joints (``recover_from_ric``) -> :func:`render_mesh`."""
    from .motion_process import recover_from_ric
    if hasattr(features, "detach"):
        features = features.detach().cpu().numpy()
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or features.shape[1] != 263:
        raise ValueError(f"the mesh renderer takes t2m features (frames, 263), got {features.shape}")
    return render_mesh(path, recover_from_ric(features, N_JOINTS), **kwargs)


# ============================================================================ CLI
def _load_input(path, as_joints: bool):
    arr = np.load(path)
    if hasattr(arr, "files"):
        arr = arr[arr.files[0]]
    arr = np.asarray(arr)
    if arr.ndim in (3, 4) and arr.shape[0] == 1 and (arr.ndim == 4 or arr.shape[-1] != 3):
        arr = arr[0]
    if arr.ndim == 2 and arr.shape[1] == 66:
        arr = arr.reshape(len(arr), 22, 3)
    if as_joints or arr.ndim == 3:
        if arr.ndim != 3 or arr.shape[1:] != (22, 3):
            raise ValueError(f"{path}: expected joints (T, 22, 3), got {arr.shape}")
        return "joints", arr
    if arr.ndim == 2 and arr.shape[1] == 263:
        from .motion_process import recover_from_ric
        return "features", recover_from_ric(arr.astype(np.float32), N_JOINTS)
    raise ValueError(f"{path}: array of shape {arr.shape} is neither t2m features (T, 263) nor joints (T, 22, 3)")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m utils.mesh_render", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", help=".npy with t2m features (T, 263) or joints (T, 22, 3)")
    ap.add_argument("output", help=".mp4 (needs ffmpeg; else a .gif is written), .gif, .png (first frame) or .npy")
    ap.add_argument("--joints", action="store_true", help="the input holds joints (T, 22, 3), not features")
    ap.add_argument("--fps", type=float, default=20.0)
    ap.add_argument("--size", type=int, nargs="+", default=[480], metavar="PX", help="width [height] in pixels")
    ap.add_argument("--body-model", default="mannequin", choices=["mannequin", "smpl", "smplh", "smplx"])
    ap.add_argument("--body-model-dir", default=None, help="folder with the SMPL-family model files")
    ap.add_argument("--gender", default="neutral")
    ap.add_argument("--title", default="")
    ap.add_argument("--stride", type=int, default=1)
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--supersample", type=int, default=1, help="render at n x the size and average (anti-aliasing)")
    args = ap.parse_args(argv)
    size = (args.size[0], args.size[-1])
    try:
        kind, joints = _load_input(args.input, args.joints)
        timings = {}
        t0 = time.time()
        out = render_mesh(args.output, joints, fps=args.fps, body_model=args.body_model,
                          body_model_dir=args.body_model_dir, gender=args.gender, size=size, title=args.title,
                          stride=args.stride, max_frames=args.max_frames, supersample=args.supersample,
                          progress=True, timings=timings)
    except (ValueError, MeshRenderError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({kind}, {timings.get('frames')} frames, {time.time() - t0:.1f} s: IK {timings['ik_s']:.2f}, "
          f"skinning {timings['skin_s']:.2f}, rasterising {timings['raster_s']:.1f}, "
          f"encoding {timings['encode_s']:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
