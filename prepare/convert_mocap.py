"""Convert BVH motion capture into the HumanML3D format (new_joint_vecs / new_joints / texts).

Pipeline per file::

    read BVH -> forward kinematics (joints + End Sites) -> metres (--scale) -> Y-up (--up)
    -> map onto the 22 t2m joints (--mapping JSON) -> resample to 20 fps (linear in time)
    -> utils.motion_process.process_file -> <out>/new_joint_vecs/<name>.npy (float32 features)
                                         -> <out>/new_joints/<name>.npy (recover_from_ric of them)
    [--caption]      -> <out>/texts/<name>.txt   ("caption#word/POS ...#0.0#0.0")
    [--also-mirror]  -> the same for M<name> (utils.motion_process.mirror_joints, left/right
                        swapped in the caption)

Mapping JSON: one entry per t2m joint name (utils.paramUtil.t2m_joint_names). A value is a
BVH joint name, ``"<Joint>_end"`` for the End Site of that joint, or
``{"lerp": ["A", "B"], "t": 0.3}`` for the point A + t (B - A). Keys starting with ``_``
are comments. See prepare/mappings/mocapbank.json.

Units (--scale auto): the size of the BVH rest pose (largest bounding-box side, End Sites
included) is taken as the body height in file units: below 10 -> metres, below 500 ->
centimetres, otherwise millimetres. Pass a number (multiplier to metres) or m / cm / mm /
inch to override. Axis (--up z): (x, y, z) -> (-x, z, y), the HumanML3D Y/Z swap plus the X
negation that makes it a proper rotation.

CLI::

    python -m prepare.convert_mocap clip.bvh [more.bvh | a_dir ...] --mapping prepare/mappings/mocapbank.json \
        --out dataset/MyMocap [--name NAME] [--caption "a person ..."] [--also-mirror] [--scale auto] [--up y]

The exit status is 1 when any file failed (the others are still converted).
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Iterable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python prepare/convert_mocap.py` as well as `python -m prepare.convert_mocap`
    sys.path.insert(0, str(ROOT))
from utils.bvh import BvhError, read_bvh  # noqa: E402
from utils.motion_process import mirror_joints, process_file, recover_from_ric  # noqa: E402
from utils.paramUtil import get_spec  # noqa: E402

__all__ = [
    "MappingError", "ConversionError", "load_mapping", "resolve_mapping", "apply_mapping",
    "guess_scale", "parse_scale", "to_y_up", "resample", "resampled_length", "caption_line", "swap_left_right",
    "convert_bvh", "convert_many", "main",
]

UNIT_SCALES = {"m": 1.0, "cm": 0.01, "mm": 0.001, "inch": 0.0254, "in": 0.0254}
# Longest clip written (target frames, 1 hour at 20 fps): a longer resample is a broken 'Frame Time'
# or a clip to split, and would need gigabytes of memory.
MAX_RESAMPLED_FRAMES = 72_000


class MappingError(ValueError):
    """Invalid joint mapping (the message names the mapping file and the offending key)."""


class ConversionError(RuntimeError):
    """A BVH file could not be converted."""


# ============================================================================ mapping
def load_mapping(mapping):
    """Return ``(dict, label)`` from a dict or a path to a JSON file."""
    if isinstance(mapping, dict):
        return dict(mapping), "<mapping dict>"
    path = Path(mapping)
    label = str(path)
    if not path.is_file():
        raise MappingError(f"mapping file {label} not found")
    try:
        with open(path, "r", encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise MappingError(f"mapping file {label}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise MappingError(f"mapping file {label}: top level must be a JSON object of joint name -> source")
    return data, label


def resolve_mapping(mapping, available: list, dataname: str = "t2m", label: str = "<mapping dict>"):
    """Validate a mapping against the BVH names; returns one (i0, i1, t) triple per target joint.

    The target joint j is ``P[i0] + t * (P[i1] - P[i0])`` (``i1 = i0, t = 0`` for a plain joint).
    """
    spec = get_spec(dataname)
    targets = list(spec.joint_names)
    names = {n: i for i, n in enumerate(available)}
    avail_txt = ", ".join(available)

    def lookup(key, src):
        if not isinstance(src, str):
            raise MappingError(f"mapping file {label}: key {key!r}: source joint names must be strings, got {src!r}")
        if src not in names:
            raise MappingError(f"mapping file {label}: key {key!r} refers to unknown BVH joint {src!r} "
                               f"(available: {avail_txt})")
        return names[src]

    plan = {}
    for key, src in mapping.items():
        if isinstance(key, str) and key.startswith("_"):
            continue
        if key not in targets:
            raise MappingError(f"mapping file {label}: unknown key {key!r}: not a {spec.name} joint name "
                               f"(expected: {', '.join(targets)})")
        if isinstance(src, str):
            i = lookup(key, src)
            plan[key] = (i, i, 0.0)
        elif isinstance(src, dict):
            extra = set(src) - {"lerp", "t"}
            if extra or "lerp" not in src:
                raise MappingError(f"mapping file {label}: key {key!r}: expected {{\"lerp\": [A, B], \"t\": 0.5}}, "
                                   f"got {json.dumps(src)}")
            pair = src["lerp"]
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise MappingError(f"mapping file {label}: key {key!r}: 'lerp' needs exactly two joint names")
            t = src.get("t", 0.5)
            if not isinstance(t, (int, float)) or isinstance(t, bool) or not math.isfinite(t):
                raise MappingError(f"mapping file {label}: key {key!r}: 't' must be a number, got {t!r}")
            plan[key] = (lookup(key, pair[0]), lookup(key, pair[1]), float(t))
        else:
            raise MappingError(f"mapping file {label}: key {key!r}: value must be a joint name or a lerp object, "
                               f"got {json.dumps(src)}")
    missing = [t for t in targets if t not in plan]
    if missing:
        raise MappingError(f"mapping file {label}: missing {spec.name} joints: {', '.join(missing)}")
    return [plan[t] for t in targets]


def apply_mapping(positions: np.ndarray, plan) -> np.ndarray:
    """Source positions (F, N, 3) -> target joints (F, J, 3) following :func:`resolve_mapping`."""
    i0 = np.array([p[0] for p in plan])
    i1 = np.array([p[1] for p in plan])
    t = np.array([p[2] for p in plan])[None, :, None]
    a = positions[:, i0]
    b = positions[:, i1]
    return a + t * (b - a)


# ============================================================================ units / axes / time
def parse_scale(value):
    """'auto' -> None; a unit name or a number -> multiplier to metres."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        v = float(value)
    else:
        s = str(value).strip().lower()
        if s == "auto":
            return None
        if s in UNIT_SCALES:
            return UNIT_SCALES[s]
        try:
            v = float(s)
        except ValueError:
            raise ValueError(f"--scale must be 'auto', one of {sorted(UNIT_SCALES)} or a number, got {value!r}") from None
    if not (v > 0 and math.isfinite(v)):
        raise ValueError(f"scale must be a positive number, got {value!r}")
    return v


def guess_scale(bvh) -> tuple:
    """(scale to metres, unit name, height in file units) from the rest-pose size."""
    rest = bvh.rest_positions(include_end_sites=True)
    height = float(np.ptp(rest, axis=0).max()) if len(rest) > 1 else 0.0
    if height <= 0:  # degenerate rest pose: fall back to the first frame
        pos0 = bvh.positions(include_end_sites=True, frames=slice(0, 1))[0]
        height = float(np.ptp(pos0, axis=0).max())
    if height < 10:
        return 1.0, "m", height
    if height < 500:
        return 0.01, "cm", height
    return 0.001, "mm", height


def to_y_up(positions: np.ndarray, up: str = "y") -> np.ndarray:
    """Convert (..., 3) positions to the Y-up convention."""
    up = up.lower()
    if up == "y":
        return positions
    if up == "z":
        out = np.empty_like(positions)
        out[..., 0] = -positions[..., 0]
        out[..., 1] = positions[..., 2]
        out[..., 2] = positions[..., 1]
        return out
    raise ValueError(f"up axis must be 'y' or 'z', got {up!r}")


def resampled_length(num_frames: int, src_fps: float, tgt_fps: float) -> int:
    """Frames :func:`resample` returns for a clip of ``num_frames`` frames."""
    if num_frames < 2 or abs(src_fps - tgt_fps) < 1e-9:
        return int(num_frames)
    duration = (num_frames - 1) / src_fps
    return int(math.floor(duration * tgt_fps + 1e-6)) + 1


def resample(positions: np.ndarray, src_fps: float, tgt_fps: float) -> np.ndarray:
    """Linear interpolation in time from ``src_fps`` to ``tgt_fps`` over the clip's duration."""
    F = positions.shape[0]
    if F < 2 or abs(src_fps - tgt_fps) < 1e-9:
        return positions.copy()
    n = resampled_length(F, src_fps, tgt_fps)
    src_t = np.arange(n) / tgt_fps * src_fps  # fractional source frame index
    i0 = np.clip(np.floor(src_t).astype(int), 0, F - 1)
    i1 = np.clip(i0 + 1, 0, F - 1)
    w = (src_t - i0)[:, None, None]
    return positions[i0] * (1 - w) + positions[i1] * w


# ============================================================================ text
_LR = {"left": "right", "right": "left", "Left": "Right", "Right": "Left", "LEFT": "RIGHT", "RIGHT": "LEFT"}
_SPACY = None


def swap_left_right(text: str) -> str:
    """Swap the words left/right (as HumanML3D does for the mirrored M-captions)."""
    return re.sub(r"\b(left|right|Left|Right|LEFT|RIGHT)\b", lambda m: _LR[m.group(1)], text)


def _spacy_nlp():
    global _SPACY
    if _SPACY is None:
        try:
            import spacy  # noqa: WPS433

            _SPACY = spacy.load("en_core_web_sm")
        except Exception:  # spaCy or the model missing
            _SPACY = False
    return _SPACY


def caption_tokens(caption: str) -> str:
    """``word/POS`` tokens of a caption.

    With spaCy + en_core_web_sm installed this follows docs/evaluation.md §1.2
    (lemmas for NOUN/VERB except 'left', alphabetic tokens only). Otherwise every lower-case
    alphabetic word is emitted as-is and tagged ``OTHER`` (the loader still assigns the VIP
    classes from the word itself; only the NOUN/VERB/... classes and lemmas are lost).
    """
    text = caption.replace("-", "")
    nlp = _spacy_nlp()
    if nlp:
        out = []
        for tok in nlp(text):
            word = tok.text
            if not word.isalpha():
                continue
            if tok.pos_ in ("NOUN", "VERB") and word.lower() != "left":
                out.append(f"{tok.lemma_.lower()}/{tok.pos_}")
            else:
                out.append(f"{word.lower()}/{tok.pos_}")
        return " ".join(out)
    words = []
    for raw in text.lower().split():
        raw = raw.strip(".,;:!?\"()[]{}")
        raw = raw.split("'")[0]  # person's -> person, don't -> don
        if raw.isalpha():
            words.append(f"{raw}/OTHER")
    return " ".join(words)


def caption_line(caption: str) -> str:
    """One ``texts/<name>.txt`` line: ``caption#tokens#0.0#0.0``."""
    cap = " ".join(caption.replace("#", " ").split())
    return f"{cap}#{caption_tokens(cap)}#0.0#0.0"


# ============================================================================ conversion
def _save_clip(out_dir: Path, name: str, joints: np.ndarray, spec, captions):
    data, *_ = process_file(joints, spec)
    feats = data.astype(np.float32)
    if not np.isfinite(feats).all():
        raise ConversionError(f"{name}: features contain NaN/Inf (degenerate skeleton or frames?)")
    new_joints = np.asarray(recover_from_ric(feats, spec.joints_num), dtype=np.float32)
    vec_path = out_dir / "new_joint_vecs" / f"{name}.npy"
    jnt_path = out_dir / "new_joints" / f"{name}.npy"
    vec_path.parent.mkdir(parents=True, exist_ok=True)
    jnt_path.parent.mkdir(parents=True, exist_ok=True)
    np.save(vec_path, feats)
    np.save(jnt_path, new_joints)
    paths = {"features": str(vec_path), "joints": str(jnt_path)}
    if captions:
        txt_path = out_dir / "texts" / f"{name}.txt"
        txt_path.parent.mkdir(parents=True, exist_ok=True)
        txt_path.write_text("\n".join(caption_line(c) for c in captions) + "\n", encoding="utf-8")
        paths["text"] = str(txt_path)
    return paths, feats.shape[0]


def convert_bvh(bvh_path, mapping, out_dir, name: str | None = None, scale="auto", up: str = "y",
                target_fps: float | None = None, caption=None, also_mirror: bool = False,
                dataname: str = "t2m", log=print) -> dict:
    """Convert one BVH file; returns a dict of output paths and statistics.

    ``mapping``: dict or JSON path (see module docstring). ``scale``: 'auto', a unit name
    (m, cm, mm, inch) or a multiplier to metres. ``up``: 'y' or 'z'. ``target_fps`` defaults
    to the dataset rate (20 for t2m). ``caption``: a string or a list of strings. ``log``:
    callable for progress messages (None for silence).
    """
    log = log or (lambda *a, **k: None)
    spec = get_spec(dataname)
    bvh_path = Path(bvh_path)
    out_dir = Path(out_dir)
    name = name or bvh_path.stem
    if not name or "/" in name or "\\" in name:
        raise ValueError(f"invalid clip name {name!r}")
    mapping_dict, label = load_mapping(mapping)

    bvh = read_bvh(bvh_path)
    names = bvh.all_names(include_end_sites=True)
    plan = resolve_mapping(mapping_dict, names, spec.name, label)
    if bvh.num_frames < 2:
        raise ConversionError(f"{bvh_path}: needs at least 2 frames, has {bvh.num_frames}")

    user_scale = parse_scale(scale)
    if user_scale is None:
        scale_v, unit, height = guess_scale(bvh)
        how = f"auto: rest-pose size {height:.4g} file units -> {unit}"
    else:
        scale_v, unit, height = user_scale, "user", None
        how = "given"
    log(f"{bvh_path.name}: scale {scale_v:g} to metres ({how}), up axis {up}")

    pos = bvh.positions(include_end_sites=True) * scale_v
    pos = to_y_up(pos, up)
    joints = apply_mapping(pos, plan)
    body_h = float(np.ptp(joints[0, :, 1]))
    if not 0.5 <= body_h <= 2.5:
        log(f"{bvh_path.name}: warning: frame-0 body height is {body_h:.3f} m after scaling; check --scale/--up")

    src_fps = bvh.fps
    tgt_fps = spec.fps if target_fps is None else float(target_fps)
    n_target = resampled_length(bvh.num_frames, src_fps, tgt_fps)
    if n_target > MAX_RESAMPLED_FRAMES:
        raise BvhError(f"{bvh_path}:{bvh.frame_time_line}: {bvh.num_frames} frames at 'Frame Time: "
                       f"{bvh.frame_time:g}' last {(bvh.num_frames - 1) * bvh.frame_time:.0f} s, i.e. {n_target} "
                       f"frames at {tgt_fps:g} fps, more than the limit of {MAX_RESAMPLED_FRAMES} frames "
                       f"(1 hour at 20 fps); check the frame time or split the clip")
    joints_t = resample(joints, src_fps, tgt_fps)
    if joints_t.shape[0] < 2:
        raise ConversionError(f"{bvh_path}: clip too short after resampling ({joints_t.shape[0]} frames)")
    log(f"{bvh_path.name}: {bvh.num_frames} frames @ {src_fps:.4g} fps -> {joints_t.shape[0]} frames @ {tgt_fps:g} fps")
    if spec.unit == "mm":
        joints_t = joints_t * 1000.0

    captions = [caption] if isinstance(caption, str) else list(caption or [])
    paths, n_feat = _save_clip(out_dir, name, joints_t, spec, captions)
    result = {
        "name": name, "source": str(bvh_path), **paths,
        "source_frames": bvh.num_frames, "source_fps": src_fps, "target_frames": int(joints_t.shape[0]),
        "target_fps": tgt_fps, "feature_frames": int(n_feat), "scale": scale_v, "unit": unit,
        "height_file_units": height, "up": up,
        "in_length_filter": spec.min_motion_len <= n_feat < 200,
    }
    if not result["in_length_filter"]:
        log(f"{bvh_path.name}: note: {n_feat} feature frames is outside the dataset filter "
            f"[{spec.min_motion_len}, 200); loaders will skip or crop it")
    if also_mirror:
        m_paths, _ = _save_clip(out_dir, "M" + name, mirror_joints(joints_t, spec), spec,
                                [swap_left_right(c) for c in captions])
        result["mirror"] = {"name": "M" + name, **m_paths}
    return result


def _collect_inputs(inputs: Iterable) -> list:
    files = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() == ".bvh")
            files.extend((q, q.relative_to(p)) for q in found)
        else:
            files.append((p, Path(p.name)))
    stems = [f[1].stem for f in files]
    out = []
    for (path, rel), stem in zip(files, stems):
        if stems.count(stem) > 1:  # same file name in different folders: use the relative path
            stem = "_".join(rel.with_suffix("").parts)
        out.append((path, stem))
    return out


def convert_many(inputs, mapping, out_dir, progress: bool = True, **kwargs):
    """Convert several BVH files and/or directories (searched recursively for *.bvh).

    Keeps going after a failure; returns ``(results, failures)`` where failures is a list
    of ``(path, error message)``.
    """
    items = _collect_inputs(inputs)
    mapping_dict, label = load_mapping(mapping)  # fail early on a bad mapping file
    results, failures = [], []
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    bar = tqdm(items, desc="convert", unit="file", disable=not progress) if tqdm else items
    log = (lambda msg: tqdm.write(msg)) if (tqdm and progress) else print
    for path, stem in bar:
        try:
            if not path.is_file():
                raise ConversionError(f"{path}: no such file")
            res = convert_bvh(path, mapping_dict, out_dir, name=kwargs.get("name") or stem,
                              log=log if kwargs.get("verbose", True) else None,
                              **{k: v for k, v in kwargs.items() if k not in ("name", "verbose")})
            results.append(res)
        except MappingError as exc:
            msg = str(exc).replace("<mapping dict>", label)
            failures.append((str(path), msg))
            log(f"FAILED {path}: {msg}")
        except (BvhError, ConversionError, ValueError, OSError) as exc:
            failures.append((str(path), str(exc)))
            log(f"FAILED {path}: {exc}")
        except MemoryError as exc:  # one oversized clip must not abort the whole batch
            msg = f"{path}: out of memory while converting ({exc or 'MemoryError'})"
            failures.append((str(path), msg))
            log(f"FAILED {msg}")
        if tqdm and progress:
            bar.set_postfix(ok=len(results), failed=len(failures))
    return results, failures


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m prepare.convert_mocap",
                                 description="Convert BVH mocap to HumanML3D features/joints.",
                                 epilog=__doc__.split("CLI::")[0].split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+", help="BVH files and/or directories (searched recursively)")
    ap.add_argument("--mapping", required=True, help="JSON joint mapping (e.g. prepare/mappings/mocapbank.json)")
    ap.add_argument("--out", required=True, help="output dataset folder (new_joint_vecs/, new_joints/, texts/)")
    ap.add_argument("--name", default=None, help="clip name (single input only; default: file stem)")
    ap.add_argument("--scale", default="auto", help="'auto', m, cm, mm, inch or a multiplier to metres")
    ap.add_argument("--up", default="y", choices=["y", "z"], help="up axis of the BVH (default y)")
    ap.add_argument("--fps", type=float, default=None, help="target fps (default: 20 for t2m, 12.5 for kit)")
    ap.add_argument("--dataset", default="t2m", choices=["t2m", "kit"],
                    help="target format: t2m (22 joints, metres; default) or kit (21 joints, mm)")
    ap.add_argument("--caption", action="append", default=None,
                    help="caption for texts/<name>.txt (repeat for several lines)")
    ap.add_argument("--also-mirror", action="store_true", help="also write the mirrored M<name> clip")
    ap.add_argument("--quiet", action="store_true", help="no per-file messages / progress bar")
    args = ap.parse_args(argv)
    try:
        scale = args.scale if parse_scale(args.scale) is None else parse_scale(args.scale)
    except ValueError as exc:
        ap.error(str(exc))
    items = _collect_inputs(args.inputs)
    if not items:
        print("error: no .bvh files found", file=sys.stderr)
        return 1
    if args.name and len(items) > 1:
        ap.error("--name can only be used with a single input file")
    try:
        results, failures = convert_many(args.inputs, args.mapping, args.out, progress=not args.quiet,
                                         name=args.name, scale=scale, up=args.up, target_fps=args.fps,
                                         caption=args.caption, also_mirror=args.also_mirror,
                                         dataname=args.dataset, verbose=not args.quiet)
    except MappingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for r in results:
        if not args.quiet:
            print(f"ok {r['source']} -> {r['features']} ({r['feature_frames']} feature frames)")
    print(f"converted {len(results)} file(s), {len(failures)} failed")
    for path, msg in failures:
        print(f"  failed: {path}: {msg}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
