#!/usr/bin/env python
"""Rebuild HumanML3D from AMASS with the ``smplx`` body models (docs/data-format.md §8.1, §8.4).

    python prepare/amass_to_humanml3d.py --amass-dir data/amass --body-model-dir data/body_models \\
        --index-csv HumanML3D/index.csv --texts-dir HumanML3D/texts --split-dir HumanML3D \\
        --out data/HumanML3D [--humanact12-dir HumanML3D/pose_data/humanact12] [--skip-existing]

Per row of ``index.csv`` (``source_path,start_frame,end_frame,new_name``)::

    AMASS .npz (poses, trans, betas, gender, mocap_framerate | mocap_frame_rate)
    -> every k-th frame, k = int(fps / 20)          (HumanML3D's rule, integer truncation kept)
    -> body-model joints with smplx (first 22, CPU, no grad, batched over frames)
    -> (x, y, z) -> (x, z, y)                      (AMASS Z-up -> Y-up)
    -> drop the dataset head (Eyes_Japan_Dataset / MPI_HDM05 3 s, TotalCapture / MPI_Limits 1 s,
       Transitions_mocap 0.5 s) -> [start_frame:end_frame] -> negate X
       (HumanAct12 rows: the shipped joints are taken whole, none of these three steps)
    -> utils.motion_process.process_file -> new_joint_vecs/<name>.npy (F-1, 263) float32
                                         -> new_joints/<name>.npy (F-1, 22, 3) = recover_from_ric
    -> the same for M<name> (utils.motion_process.mirror_joints: X negated, left/right swapped)
    -> texts/<name>.txt copied from --texts-dir; texts/M<name>.txt copied when it exists there,
       otherwise written from <name>.txt with the words left/right swapped
    [--split-dir]  -> train/val/test(/train_val/all).txt copied
    -> Mean.npy / Std.npy over every file of new_joint_vecs (utils.motion_process.mean_std)

Body models (not distributed with this project; each needs a registration and a licence):
``--body-model-dir`` is the folder that ``smplx.create(model_path, model_type=...)`` takes, i.e.
``<dir>/smplh/SMPLH_{MALE,FEMALE}.{pkl,npz}`` (SMPL+H, for the 156-wide AMASS "SMPL+H G"
poses, what HumanML3D used) and/or ``<dir>/smplx/SMPLX_{MALE,FEMALE,NEUTRAL}.npz`` (SMPL-X,
165-wide poses). The AMASS "extended SMPL+H" layout ``<dir>/smplh/<gender>/model.npz`` is
accepted too. See docs/data-preparation.md.

Only the 22 body joints are needed, and they do not depend on the pose blend shapes, the
skinning weights, the hand poses or the DMPLs: the joints are computed with smplx's own
building blocks (shape blend shapes -> J_regressor -> Rodrigues -> rigid transform chain), the
same operations as the joint output of a full ``model(...)`` forward pass (the test checks the
two agree), without skinning ~6900 vertices per frame.

Rows whose source is missing or unreadable are reported and skipped; the summary at the end
lists them (and ``<out>/amass_to_humanml3d_report.json`` keeps it). Exit status 1 when any row
failed. KIT-ML is released already processed (251-d features): there is nothing to rebuild;
check it with ``prepare/check_dataset.py DIR --dataname kit``.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import sys
import time
from collections import OrderedDict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import utils.threads  # noqa: E402,F401  (before torch: OpenMP wait policy and thread count)
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402
from prepare.convert_mocap import swap_left_right  # noqa: E402
from utils.io import atomic_save_npy, atomic_write_json, atomic_write_text  # noqa: E402
from utils.motion_process import mean_std, mirror_joints, process_file, recover_from_ric  # noqa: E402
from utils.paramUtil import T2M  # noqa: E402

__all__ = [
    "AmassError", "BodyModelError", "BodyJoints", "load_body_model", "read_amass", "amass_joints",
    "downsample_step", "z_up_to_y_up", "head_trim_frames", "read_index", "mirror_text_line",
    "convert", "main",
]

TARGET_FPS = 20
NUM_BODY_JOINTS = 22  # SMPL body joints, in SMPL order (the t2m skeleton)
# head dropped before cropping, per AMASS sub-dataset (seconds at 20 fps), docs/data-format.md §8.1 step 5
HEAD_TRIM_S = {"Eyes_Japan_Dataset": 3.0, "MPI_HDM05": 3.0, "TotalCapture": 1.0, "MPI_Limits": 1.0,
               "Transitions_mocap": 0.5}
# index.csv names the AMASS folders as they were in 2021; later AMASS releases renamed some.
AMASS_ALIASES = {"BioMotionLab_NTroje": "BMLrub", "DFaust_67": "DFaust", "MPI_HDM05": "HDM05",
                 "MPI_Limits": "PosePrior", "MPI_mosh": "MoSh", "SSM_synced": "SSM",
                 "Transitions_mocap": "Transitions", "TCD_handMocap": "TCDHands"}
POSE_WIDTHS = {156: "smplh", 165: "smplx"}
SPLIT_NAMES = ("train", "val", "test", "train_val", "all")
MODEL_SITES = {"smplh": "https://mano.is.tue.mpg.de (SMPL+H; 'Extended SMPL+H model' for AMASS)",
               "smplx": "https://smpl-x.is.tue.mpg.de (SMPL-X v1.1)"}


class AmassError(RuntimeError):
    """A source file or index row could not be converted (the message names the file)."""


class BodyModelError(RuntimeError):
    """A body model file is missing or unreadable (the message names the path smplx expects)."""


# ============================================================================ body model
class BodyJoints:
    """The first ``n`` joints of a SMPL-family body model for axis-angle poses.

    Holds the rest template, shape blend shapes, joint regressor rows and parents of the first
    ``n`` joints, taken from a model built by ``smplx.create``; :meth:`joints` runs smplx's
    ``blend_shapes`` / ``vertices2joints`` / ``batch_rodrigues`` / ``batch_rigid_transform``.
    """

    def __init__(self, model, source: str = "", n: int = NUM_BODY_JOINTS):
        import torch

        self.source = source
        self.n = n
        self.model_type = model.name()
        self.num_betas = int(model.shapedirs.shape[-1])
        parents = model.parents[:n].clone().long()
        if (parents[1:] < 0).any() or (parents[1:] >= torch.arange(1, n)).any():
            raise BodyModelError(f"{source}: kintree_table does not start with {n} topologically ordered joints")
        self.parents = parents
        with torch.no_grad():
            jr = model.J_regressor[:n].double()
            # regress the joints of the template and of each shape direction once (J is linear in the shape)
            self.j_template = jr @ model.v_template.double()                        # (n, 3)
            sd = model.shapedirs.double()                                            # (V, 3, B)
            self.j_shapedirs = torch.einsum("jv,vcb->jcb", jr, sd)                   # (n, 3, B)

    def rest_joints(self, betas=None):
        import torch
        from smplx.lbs import blend_shapes

        b = torch.zeros(1, self.num_betas, dtype=torch.float64)
        if betas is not None:
            betas = np.asarray(betas, dtype=np.float64).reshape(-1)[: self.num_betas]
            b[0, : len(betas)] = torch.from_numpy(betas)
        return self.j_template[None] + blend_shapes(b, self.j_shapedirs)           # (1, n, 3)

    def joints(self, poses, betas=None, trans=None, chunk: int = 4096) -> np.ndarray:
        """Axis-angle ``poses`` (T, >= 3n) [root first, SMPL order], ``betas``, ``trans`` (T, 3) ->
        world joints (T, n, 3) float64."""
        import torch
        from smplx.lbs import batch_rigid_transform, batch_rodrigues

        poses = np.asarray(poses, dtype=np.float64)
        T = poses.shape[0]
        rest = self.rest_joints(betas)
        out = np.empty((T, self.n, 3), dtype=np.float64)
        with torch.no_grad():
            for a in range(0, T, chunk):
                p = torch.from_numpy(np.ascontiguousarray(poses[a:a + chunk, : 3 * self.n]))
                b = p.shape[0]
                rot = batch_rodrigues(p.reshape(-1, 3)).reshape(b, self.n, 3, 3)
                posed, _ = batch_rigid_transform(rot, rest.expand(b, -1, -1), self.parents, dtype=torch.float64)
                out[a:a + b] = posed.numpy()
        if trans is not None:
            out += np.asarray(trans, dtype=np.float64)[:, None, :]
        return out


def model_candidates(body_model_dir, model_type: str, gender: str):
    """Paths tried for one body model, in order: smplx's layout (pkl, npz), then AMASS's."""
    d = Path(body_model_dir)
    up = f"{model_type.upper()}_{gender.upper()}"
    exts = ("npz", "pkl") if model_type == "smplx" else ("pkl", "npz")
    cands = [d / model_type / f"{up}.{e}" for e in exts]
    cands += [d / f"{up}.{e}" for e in exts]  # --body-model-dir pointing at the smplh/ folder itself
    if model_type == "smplh":  # AMASS's extended SMPL+H download: smplh/<gender>/model.npz
        cands.append(d / model_type / gender.lower() / "model.npz")
    return cands


def load_body_model(body_model_dir, model_type: str, gender: str) -> BodyJoints:
    """Load one body model with ``smplx`` (``BodyModelError`` naming the expected path when missing)."""
    import smplx

    if model_type not in MODEL_SITES:
        raise BodyModelError(f"unknown body model type {model_type!r} (expected smplh or smplx)")
    cands = model_candidates(body_model_dir, model_type, gender)
    path = next((p for p in cands if p.is_file()), None)
    if path is None:
        raise BodyModelError(
            f"{model_type.upper()} body model for gender '{gender}' not found: smplx expects "
            f"{cands[0]} (smplx.create('{body_model_dir}', model_type='{model_type}', gender='{gender}')); "
            f"also tried {', '.join(str(p) for p in cands[1:])}. The body models are licensed: register at "
            f"{MODEL_SITES[model_type]}, download them and place them there (see docs/data-preparation.md)")
    ext = path.suffix[1:]
    kwargs = dict(gender=gender, ext=ext, num_betas=16 if model_type == "smplx" else 10, use_pca=False,
                  flat_hand_mean=True, batch_size=1)
    try:
        if path.name == "model.npz":  # AMASS layout (SMPL+H): the file name carries no type, build the class
            from smplx.utils import Struct

            with np.load(path, allow_pickle=True) as z:
                arrays = {k: z[k] for k in z.files}
            # AMASS's extended SMPL+H files may lack the MANO PCA fields, which only the hand poses use
            for side in "lr":
                arrays.setdefault(f"hands_components{side}", np.eye(45))
                arrays.setdefault(f"hands_mean{side}", np.zeros(45))
            with contextlib.redirect_stdout(io.StringIO()):
                model = smplx.SMPLH(model_path=str(path), data_struct=Struct(**arrays), **kwargs)
        else:
            with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a note about 10-beta SMPL+H models
                model = smplx.create(str(path), model_type=model_type, **kwargs)
    except Exception as exc:  # noqa: BLE001 - re-raised with the file name
        raise BodyModelError(f"cannot load body model {path} with smplx: {type(exc).__name__}: {exc}") from exc
    return BodyJoints(model, source=str(path))


class ModelCache:
    def __init__(self, body_model_dir, gender_override=None):
        self.dir = body_model_dir
        self.gender_override = gender_override
        self.models = {}

    def get(self, model_type, gender):
        gender = (self.gender_override or gender).lower()
        if model_type == "smplh" and not self.gender_override and gender != "male":
            gender = "female"  # HumanML3D: male_bm if gender == 'male' else female_bm (SMPL+H has no neutral)
        key = (model_type, gender)
        if key not in self.models:
            try:
                self.models[key] = load_body_model(self.dir, model_type, gender)
            except BodyModelError as exc:
                self.models[key] = exc
        m = self.models[key]
        if isinstance(m, Exception):
            raise m
        return m


# ============================================================================ AMASS files
def _scalar_str(v) -> str:
    v = np.asarray(v)
    v = v.item() if v.shape == () else v.reshape(-1)[0]
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def read_amass(path) -> dict:
    """One AMASS sequence: poses (T, 156|165), trans (T, 3), betas, gender, fps, model_type."""
    path = Path(path)
    if not path.is_file():
        raise AmassError(f"AMASS file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except Exception as exc:  # noqa: BLE001
        raise AmassError(f"cannot read AMASS file {path}: {type(exc).__name__}: {exc}") from None
    fps_key = "mocap_framerate" if "mocap_framerate" in data else "mocap_frame_rate"
    missing = [k for k in ("poses", "trans", "betas", "gender") if k not in data]
    if fps_key not in data:
        missing.append("mocap_framerate (or mocap_frame_rate)")
    if missing:
        raise AmassError(f"{path}: missing key(s) {', '.join(missing)} (has: {', '.join(sorted(data))}); "
                         "expected an AMASS pose file (*_poses.npz / *_stageii.npz, not shape.npz)")
    poses = np.asarray(data["poses"], dtype=np.float64)
    trans = np.asarray(data["trans"], dtype=np.float64)
    if poses.ndim != 2 or poses.shape[1] not in POSE_WIDTHS:
        raise AmassError(f"{path}: 'poses' has shape {poses.shape}; expected (T, 156) SMPL+H or (T, 165) SMPL-X")
    if trans.shape != (poses.shape[0], 3):
        raise AmassError(f"{path}: 'trans' has shape {trans.shape}; expected ({poses.shape[0]}, 3)")
    fps = float(np.asarray(data[fps_key]).reshape(-1)[0])
    if not (np.isfinite(fps) and fps > 0):
        raise AmassError(f"{path}: bad frame rate {fps_key}={fps}")
    if not (np.isfinite(poses).all() and np.isfinite(trans).all()):
        raise AmassError(f"{path}: 'poses' or 'trans' contains NaN/Inf")
    return {"poses": poses, "trans": trans, "betas": np.asarray(data["betas"], dtype=np.float64).reshape(-1),
            "gender": _scalar_str(data["gender"]).strip().lower(), "fps": fps,
            "model_type": POSE_WIDTHS[poses.shape[1]]}


def downsample_step(fps: float, target: int = TARGET_FPS) -> int:
    """HumanML3D keeps every k-th frame, k = int(fps / 20) (59.94 fps -> 2, i.e. ~30 fps; kept as is)."""
    return max(1, int(fps / target))


def z_up_to_y_up(positions: np.ndarray) -> np.ndarray:
    """AMASS Z-up -> Y-up: right-multiply by [[1,0,0],[0,0,1],[0,1,0]] (swap Y and Z)."""
    return positions[..., [0, 2, 1]]


def amass_joints(seq: dict, models: ModelCache, model_type: str | None = None) -> np.ndarray:
    """20-fps, Y-up joints (F, 22, 3) of one AMASS sequence (HumanML3D's ``pose_data``, body joints)."""
    mt = model_type or seq["model_type"]
    k = downsample_step(seq["fps"])
    model = models.get(mt, seq["gender"])
    joints = model.joints(seq["poses"][::k], seq["betas"], seq["trans"][::k])
    return z_up_to_y_up(joints)


def head_trim_frames(source_path: str) -> int:
    for key, seconds in HEAD_TRIM_S.items():
        if key in source_path:
            return int(seconds * TARGET_FPS)
    return 0


# ============================================================================ index / texts
def read_index(path) -> list:
    """Rows of HumanML3D's index.csv as dicts (``line``, ``source``, ``start``, ``end``, ``name``);
    bad rows come back with an ``error``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"index file not found: {path}")
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        want = ["source_path", "start_frame", "end_frame", "new_name"]
        if header is None or [h.strip() for h in header] != want:
            raise ValueError(f"{path}, line 1: expected the header {','.join(want)}, got {header}")
        for lineno, rec in enumerate(reader, start=2):
            if not rec or not any(c.strip() for c in rec):
                continue
            row = {"line": lineno}
            if len(rec) != 4:
                row["error"] = f"{path}, line {lineno}: expected 4 fields, got {len(rec)}"
                rows.append(row)
                continue
            src, start, end, name = (c.strip() for c in rec)
            name = name[:-4] if name.endswith(".npy") else name
            row.update(source=src, name=name)
            try:
                row["start"], row["end"] = int(start), int(end)
            except ValueError:
                row["error"] = f"{path}, line {lineno}: start/end frame must be integers, got {start!r}, {end!r}"
            if not name or "/" in name or "\\" in name:
                row["error"] = f"{path}, line {lineno}: bad new_name {name!r}"
            rows.append(row)
    return rows


def source_candidates(source: str, amass_dir, humanact12_dir=None) -> tuple:
    """(kind, candidate paths) for an index ``source_path`` (``./pose_data/<dataset>/.../x_poses.npy``)."""
    rel = source.replace("\\", "/")
    for prefix in ("./", "pose_data/"):
        if rel.startswith(prefix):
            rel = rel[len(prefix):]
    if rel.startswith("humanact12/"):
        if humanact12_dir is None:
            return "humanact12", []
        h = Path(humanact12_dir)
        sub = rel[len("humanact12/"):]
        return "humanact12", [h / sub, h / rel, h.parent / rel]
    stem = rel[:-4] if rel.endswith(".npy") else rel
    first, _, rest = stem.partition("/")
    names = [first] + ([AMASS_ALIASES[first]] if first in AMASS_ALIASES else [])
    cands = []
    for top in names:
        base = Path(amass_dir) / top / rest
        cands.append(base.with_name(base.name + ".npz"))
        if base.name.endswith("_poses"):  # SMPL-X G releases name the files *_stageii.npz
            cands.append(base.with_name(base.name[: -len("_poses")] + "_stageii.npz"))
    return "amass", cands


def mirror_text_line(line: str) -> str:
    """A texts line of the mirrored clip: left <-> right swapped in the caption and the tokens."""
    return swap_left_right(line)


def _text_for(texts_dir, name: str):
    """(lines text, how) for clip ``name``; ``None`` when there is no texts file."""
    if texts_dir is None:
        return None, "no --texts-dir"
    d = Path(texts_dir)
    own = d / f"{name}.txt"
    if own.is_file():
        return own.read_text(encoding="utf-8"), "copied"
    if name.startswith("M") and (d / f"{name[1:]}.txt").is_file():
        src = (d / f"{name[1:]}.txt").read_text(encoding="utf-8")
        return "".join(mirror_text_line(ln) for ln in src.splitlines(keepends=True)), "mirrored"
    return None, f"texts file not found: {own}"


# ============================================================================ conversion
def _write_clip(out: Path, name: str, joints: np.ndarray, save_joints: bool) -> int:
    data, *_ = process_file(joints, T2M)
    feats = data.astype(np.float32)
    if not np.isfinite(feats).all():
        raise AmassError(f"{name}: features contain NaN/Inf (degenerate frames?)")
    atomic_save_npy(out / "new_joint_vecs" / f"{name}.npy", feats)
    joints_rec = np.asarray(recover_from_ric(feats, T2M.joints_num), dtype=np.float32)
    atomic_save_npy(out / "new_joints" / f"{name}.npy", joints_rec)
    if save_joints:
        atomic_save_npy(out / "joints" / f"{name}.npy", joints.astype(np.float32))
    return int(feats.shape[0])


class _SourceCache:
    """A few recent sources (index rows of one file are usually neighbours)."""

    def __init__(self, size=8):
        self.size = size
        self.items: OrderedDict = OrderedDict()

    def get(self, key, fn):
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        val = fn()
        self.items[key] = val
        if len(self.items) > self.size:
            self.items.popitem(last=False)
        return val


def convert(amass_dir, body_model_dir, index_csv, out, texts_dir=None, split_dir=None, humanact12_dir=None,
            model_type=None, gender=None, skip_existing=False, save_joints=False, limit=None,
            filter_splits=False, stats=True, progress=True, log=print) -> dict:
    """Run the whole pipeline; returns the summary dict (also written to the report file)."""
    t0 = time.time()
    out = Path(out)
    for sub in ("new_joint_vecs", "new_joints", "texts"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    rows = read_index(index_csv)
    if limit is not None:
        rows = rows[: int(limit)]
    models = ModelCache(body_model_dir, gender)
    cache = _SourceCache()
    failures, notes = [], []
    written, skipped_existing, humanact12_skipped, mirrored_texts = [], 0, 0, 0
    bar = tqdm(rows, desc="amass->humanml3d", unit="row", disable=not progress)
    say = (lambda m: tqdm.write(m)) if progress else (log or (lambda m: None))

    shown = set()

    def fail(row, msg):
        failures.append({"line": row.get("line"), "name": row.get("name"), "source": row.get("source"), "error": msg})
        where = f"{Path(index_csv).name}, line {row.get('line')} ({row.get('name')})"
        if msg in shown:  # the same body-model error for every row of one gender: print it once
            return
        shown.add(msg)
        say(f"FAILED {where}: {msg}")

    for row in bar:
        if progress:
            bar.set_postfix(ok=len(written), failed=len(failures), refresh=False)
        if "error" in row:
            fail(row, row["error"])
            continue
        name = row["name"]
        names = (name, "M" + name)
        if skip_existing and all((out / "new_joint_vecs" / f"{n}.npy").is_file() for n in names):
            skipped_existing += 1
            continue
        kind, cands = source_candidates(row["source"], amass_dir, humanact12_dir)
        if kind == "humanact12" and not cands:
            humanact12_skipped += 1
            continue
        path = next((p for p in cands if p.is_file()), None)
        if path is None:
            fail(row, f"source file not found: {cands[0]}" + (f" (also tried {', '.join(map(str, cands[1:]))})"
                                                              if len(cands) > 1 else ""))
            continue
        try:
            if kind == "humanact12":
                # HumanML3D takes HumanAct12 clips whole, as shipped: no head trim, no [start:end] crop and
                # no X negation (those apply to AMASS sources only; docs/data-format.md §8.1 step 5)
                pose = cache.get(str(path), lambda: np.load(path, allow_pickle=False).astype(np.float64))
                if pose.ndim != 3 or pose.shape[1] < NUM_BODY_JOINTS or pose.shape[2] != 3:
                    raise AmassError(f"{path}: expected joint positions (T, >=22, 3), got {pose.shape}")
                joints = pose[:, :NUM_BODY_JOINTS].copy()
            else:
                pose = cache.get(str(path), lambda: amass_joints(read_amass(path), models, model_type))
                pose = pose[head_trim_frames(row["source"]):]
                joints = pose[row["start"]:row["end"]].copy()
                joints[..., 0] *= -1.0
            if joints.shape[0] < 2:
                raise AmassError(f"{path}: crop [{row['start']}:{row['end']}] of {pose.shape[0]} frames "
                                 f"(20 fps, after the head trim) leaves {joints.shape[0]} frame(s)")
            n_feat = _write_clip(out, name, joints, save_joints)
            _write_clip(out, "M" + name, mirror_joints(joints, T2M), save_joints)
        except (AmassError, BodyModelError, ValueError, OSError) as exc:
            fail(row, str(exc))
            continue
        written.append((name, n_feat))
        for n in names:
            text, how = _text_for(texts_dir, n)
            if text is None:
                notes.append(f"{n}: {how}")
                continue
            atomic_write_text(out / "texts" / f"{n}.txt", text)
            mirrored_texts += how == "mirrored"

    produced = {p.stem for p in (out / "new_joint_vecs").glob("*.npy")}
    split_info = {}
    if split_dir is not None:
        for split in SPLIT_NAMES:
            src = Path(split_dir) / f"{split}.txt"
            if not src.is_file():
                continue
            ids = [ln.strip() for ln in src.read_text(encoding="utf-8").splitlines() if ln.strip()]
            missing = [i for i in ids if i not in produced]
            kept = [i for i in ids if i in produced] if filter_splits else ids
            atomic_write_text(out / f"{split}.txt", "\n".join(kept) + "\n")
            split_info[split] = {"ids": len(ids), "missing": len(missing), "written": len(kept)}
            if missing:
                notes.append(f"{split}.txt: {len(missing)} listed id(s) have no motion here "
                             f"(e.g. {', '.join(missing[:3])})"
                             + (" - dropped (--filter-splits)" if filter_splits else ""))

    stats_info = None
    if stats and produced:
        ids = sorted(produced)
        arrays = (np.load(out / "new_joint_vecs" / f"{i}.npy") for i in
                  tqdm(ids, desc="mean/std", disable=not progress, leave=False))
        mean, std, skipped_nan = mean_std(arrays, T2M.joints_num)
        atomic_save_npy(out / "Mean.npy", mean)
        atomic_save_npy(out / "Std.npy", std)
        stats_info = {"clips": len(ids), "skipped_nan": skipped_nan}

    summary = {
        "rows": len(rows), "converted": len(written), "clips_written": 2 * len(written),
        "failed": len(failures), "skipped_existing": skipped_existing,
        "skipped_humanact12": humanact12_skipped, "texts_mirrored": mirrored_texts,
        "splits": split_info, "mean_std": stats_info, "notes": notes, "failures": failures,
        "seconds": round(time.time() - t0, 1), "out": str(out),
    }
    atomic_write_json(out / "amass_to_humanml3d_report.json", summary)
    return summary


def _print_summary(s, index_csv, max_list=20):
    print(f"\n{s['rows']} index rows: {s['converted']} converted ({s['clips_written']} clips with the mirrors), "
          f"{s['failed']} failed, {s['skipped_existing']} already there (--skip-existing), "
          f"{s['skipped_humanact12']} HumanAct12 rows skipped, in {s['seconds']} s -> {s['out']}")
    if s["skipped_humanact12"]:
        print(f"  HumanAct12 rows need --humanact12-dir (HumanML3D's pose_data/humanact12.zip, unzipped); "
              f"{s['skipped_humanact12']} were skipped")
    if s["mean_std"]:
        ms = s["mean_std"]
        print(f"  Mean.npy / Std.npy over {ms['clips']} clips ({ms['skipped_nan']} with NaN skipped)")
    for note in s["notes"][:max_list]:
        print(f"  note: {note}")
    if len(s["notes"]) > max_list:
        print(f"  ... and {len(s['notes']) - max_list} more notes (see amass_to_humanml3d_report.json)")
    if s["failures"]:
        print(f"FAILED rows of {index_csv}:", file=sys.stderr)
        for f in s["failures"][:max_list]:
            print(f"  line {f['line']} ({f['name']}): {f['error']}", file=sys.stderr)
        if len(s["failures"]) > max_list:
            print(f"  ... and {len(s['failures']) - max_list} more (see amass_to_humanml3d_report.json)",
                  file=sys.stderr)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python prepare/amass_to_humanml3d.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--amass-dir", help="AMASS root (one folder per sub-dataset, as unpacked)")
    ap.add_argument("--body-model-dir", help="folder with smplh/SMPLH_{MALE,FEMALE}.pkl|npz and/or smplx/SMPLX_*.npz")
    ap.add_argument("--index-csv", help="HumanML3D's index.csv")
    ap.add_argument("--texts-dir", default=None, help="HumanML3D's texts/ folder (texts.zip unpacked)")
    ap.add_argument("--split-dir", default=None,
                    help="folder with HumanML3D's train/val/test(/train_val/all).txt to copy")
    ap.add_argument("--humanact12-dir", default=None, help="HumanML3D's pose_data/humanact12 (unzipped) for those rows")
    ap.add_argument("--out", help="output dataset folder")
    ap.add_argument("--dataname", default="t2m", help="t2m (HumanML3D, default). kit: see the message")
    ap.add_argument("--model-type", default="auto", choices=["auto", "smplh", "smplx"],
                    help="body model (auto: 156-wide poses -> smplh, 165-wide -> smplx)")
    ap.add_argument("--gender", default=None, choices=["male", "female", "neutral"],
                    help="use this body model for every file instead of each file's 'gender'")
    ap.add_argument("--skip-existing", action="store_true", help="skip rows whose two feature files exist (resume)")
    ap.add_argument("--save-joints", action="store_true",
                    help="also write joints/<name>.npy (cropped 20-fps input joints)")
    ap.add_argument("--filter-splits", action="store_true", help="drop split ids that were not produced")
    ap.add_argument("--no-stats", action="store_true", help="do not compute Mean.npy / Std.npy")
    ap.add_argument("--limit", type=int, default=None, help="first N index rows only (a trial run)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    if args.dataname.lower() in ("kit", "kit-ml", "kitml"):
        print("KIT-ML is distributed already processed (new_joint_vecs 251-d, 21 joints, 12.5 fps, texts, splits, "
              "Mean/Std): there is no raw-to-features step to run. Unpack it and validate it with\n"
              "    python prepare/check_dataset.py <KIT-ML folder> --dataname kit\n"
              "(see docs/data-preparation.md).", file=sys.stderr)
        return 2
    if args.dataname.lower() not in ("t2m", "humanml3d", "humanml"):
        ap.error(f"--dataname {args.dataname!r}: expected t2m (or kit)")
    for opt in ("amass_dir", "body_model_dir", "index_csv", "out"):
        if getattr(args, opt) is None:
            ap.error(f"--{opt.replace('_', '-')} is required")
    for opt in ("amass_dir", "body_model_dir", "texts_dir", "split_dir", "humanact12_dir"):
        v = getattr(args, opt)
        if v is not None and not Path(v).is_dir():
            ap.error(f"--{opt.replace('_', '-')} {v}: not a folder")
    try:
        summary = convert(args.amass_dir, args.body_model_dir, args.index_csv, args.out, texts_dir=args.texts_dir,
                          split_dir=args.split_dir, humanact12_dir=args.humanact12_dir,
                          model_type=None if args.model_type == "auto" else args.model_type, gender=args.gender,
                          skip_existing=args.skip_existing, save_joints=args.save_joints, limit=args.limit,
                          filter_splits=args.filter_splits, stats=not args.no_stats, progress=not args.no_progress)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _print_summary(summary, args.index_csv)
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
