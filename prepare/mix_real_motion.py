#!/usr/bin/env python
"""Mix converted real-motion clips (e.g. prepare/convert_deepmimic.py's output) into a dataset's training split.

    python prepare/mix_real_motion.py --data-root data/synthetic_h3d --real data/deepmimic
    python prepare/mix_real_motion.py --data-root D --real R --split train --dry-run

For every id of ``<real>/all.txt`` (all ``<real>/new_joint_vecs/*.npy`` when there is none; mirrored M<id>
copies included as they are listed)::

    <real>/new_joint_vecs/<id>.npy, new_joints/<id>.npy, texts/<id>.txt  -> copied into <data-root> (atomic writes)
    <data-root>/<split>.txt (default train.txt)                          <- id appended
    <data-root>/train_val.txt (split train or val), <data-root>/all.txt  <- id appended, where the file exists
    <data-root>/Mean.npy, Std.npy   recomputed over all.txt (prepare/compute_mean_std.py; --no-stats keeps them)
    <data-root>/real_motion_mix.json   a record of every mix: source, split, ids added / skipped

Everything else is left as it is: the existing lines of the split files, the other clips, the word vectors
(caption words missing from <data-root>/glove read as 'unk' in the evaluator; the script lists them).
Checks before anything is written: the feature width matches the dataset's (263 t2m / 251 kit); every clip
has its texts file and finite features; an id that already exists in <data-root> with other content, or
that another split lists, stops the run. Clips outside the loaders' length filter ([40, 200) frames for
t2m) are not mixed (they would be dropped at load time) and are reported. Running the script twice adds
nothing the second time.
"""
from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python prepare/mix_real_motion.py` as well as `python -m prepare.mix_real_motion`
    sys.path.insert(0, str(ROOT))
from utils.paramUtil import spec_for_feature_dim  # noqa: E402

SPLITS = ("train", "val", "test")
LOADER_MAX_LEN = 200  # dataset.humanml3d.HumanML3DReader drops clips with T >= 200


class MixError(ValueError):
    """The real-motion folder cannot be mixed into the dataset (the message names the file)."""


def _read_ids(path: Path) -> list:
    return [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def _dataset_width(root: Path, split_ids: dict) -> int:
    mean = root / "Mean.npy"
    if mean.is_file():
        return int(np.load(mean).shape[-1])
    for ids in split_ids.values():
        for i in ids:
            p = root / "new_joint_vecs" / f"{i}.npy"
            if p.is_file():
                return int(np.load(p, mmap_mode="r").shape[-1])
    raise MixError(f"{root}: no Mean.npy and no readable clip to tell the feature width from")


def _same_file(a: Path, b: Path) -> bool:
    return a.is_file() and b.is_file() and a.read_bytes() == b.read_bytes()


def _append_ids(path: Path, ids: list):
    """Append ``ids`` to a split file, keeping its existing text byte for byte (atomic rewrite)."""
    from utils.io import atomic_write_text

    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    if old and not old.endswith("\n"):
        old += "\n"
    atomic_write_text(path, old + "".join(f"{i}\n" for i in ids))


def _vocab_words(root: Path):
    path = root / "glove" / "our_vab_words.pkl"
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as f:
            return set(pickle.load(f))
    except Exception:  # noqa: BLE001 - only used for an informational list
        return None


def plan_mix(data_root, real, split: str = "train") -> dict:
    """Validate and decide what to copy; changes nothing. Returns the plan (see :func:`mix`)."""
    root, real = Path(data_root), Path(real)
    if split not in SPLITS:
        raise MixError(f"split must be one of {SPLITS}, got {split!r}")
    for folder, what in ((root, "--data-root"), (real, "--real")):
        if not (folder / "new_joint_vecs").is_dir():
            raise MixError(f"{what} {folder}: no new_joint_vecs/ folder (not a HumanML3D-layout dataset)")
    split_file = root / f"{split}.txt"
    if not split_file.is_file():
        raise MixError(f"{split_file}: split file not found")
    split_ids = {s: _read_ids(root / f"{s}.txt") for s in SPLITS if (root / f"{s}.txt").is_file()}
    width = _dataset_width(root, split_ids)
    spec = spec_for_feature_dim(width)

    src_list = real / "all.txt"
    ids = _read_ids(src_list) if src_list.is_file() else sorted(p.stem for p in (real / "new_joint_vecs").glob("*.npy"))
    if not ids:
        raise MixError(f"{real}: no clips ({src_list if src_list.is_file() else real / 'new_joint_vecs'} is empty)")
    seen, add, present, skipped, words = set(), [], [], [], set()
    for cid in ids:
        if cid in seen:
            continue
        seen.add(cid)
        if any(c.isspace() for c in cid) or "/" in cid or "\\" in cid:
            raise MixError(f"{src_list}: invalid id {cid!r}")
        vec = real / "new_joint_vecs" / f"{cid}.npy"
        txt = real / "texts" / f"{cid}.txt"
        if not vec.is_file():
            raise MixError(f"{vec}: listed in {src_list.name} but missing")
        if not txt.is_file():
            raise MixError(f"{txt}: missing (every mixed clip needs its captions)")
        try:
            arr = np.load(vec, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - re-raised with the file name
            raise MixError(f"{vec}: cannot read: {exc}") from None
        if arr.ndim != 2 or arr.shape[1] != width:
            raise MixError(f"{vec}: shape {arr.shape}, the dataset {root} has {width}-d features ({spec.name})")
        if not np.isfinite(arr).all():
            raise MixError(f"{vec}: contains NaN/Inf")
        try:
            lines = txt.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise MixError(f"{txt}: not UTF-8 text (byte {exc.start})") from None
        if not any(ln.strip() for ln in lines):
            raise MixError(f"{txt}: no caption lines")
        T = arr.shape[0]
        if not spec.min_motion_len <= T < LOADER_MAX_LEN:
            skipped.append((cid, f"{T} frames, outside the loaders' length filter "
                                 f"[{spec.min_motion_len}, {LOADER_MAX_LEN})"))
            continue
        other = [s for s, lst in split_ids.items() if s != split and cid in lst]
        if other:
            raise MixError(f"{root / (other[0] + '.txt')}: already lists {cid}; mixing it into {split} "
                           f"would put it in two splits")
        dst_vec = root / "new_joint_vecs" / f"{cid}.npy"
        if dst_vec.exists():
            if _same_file(vec, dst_vec) and _same_file(txt, root / "texts" / f"{cid}.txt"):
                present.append(cid)  # mixed before (or an interrupted run): list it, copy nothing
                continue
            raise MixError(f"{dst_vec}: id {cid} already exists in the dataset with other content "
                           f"(convert with another --prefix, or remove it first)")
        add.append(cid)
    for cid in add + present:
        for ln in (real / "texts" / f"{cid}.txt").read_text(encoding="utf-8").splitlines():
            parts = ln.split("#")
            if len(parts) >= 2:
                words.update(t.rsplit("/", 1)[0] for t in parts[1].split() if "/" in t)
    vocab = _vocab_words(root)
    listed = set(split_ids[split])
    return {"data_root": str(root), "real": str(real), "split": split, "dataname": spec.name,
            "add": add, "already_present": present, "skipped": skipped,
            "append": [c for c in add + present if c not in listed],
            "oov_words": sorted(words - vocab) if vocab is not None else None}


def mix(data_root, real, split: str = "train", stats: bool = True, dry_run: bool = False,
        progress: bool = False) -> dict:
    """Copy the real clips into ``data_root`` and list them in ``split`` (see the module docstring).

    Returns the plan plus what was done: ``add`` (ids copied), ``already_present`` (identical clips found,
    not copied again), ``append`` (ids appended to the split files), ``skipped`` ((id, reason) pairs).
    """
    from utils.io import atomic_save_npy, atomic_write_json, atomic_write_text

    plan = plan_mix(data_root, real, split)
    if dry_run:
        return {**plan, "dry_run": True}
    root, src = Path(data_root), Path(real)
    for cid in plan["add"]:
        joints = src / "new_joints" / f"{cid}.npy"
        if joints.is_file() and (root / "new_joints").is_dir():
            atomic_save_npy(root / "new_joints" / f"{cid}.npy", np.load(joints, allow_pickle=False))
        atomic_write_text(root / "texts" / f"{cid}.txt", (src / "texts" / f"{cid}.txt").read_text(encoding="utf-8"))
        # the features last: a clip counts as present (and is never half-copied on a rerun) once they exist
        atomic_save_npy(root / "new_joint_vecs" / f"{cid}.npy", np.load(src / "new_joint_vecs" / f"{cid}.npy"))
    targets = [split] + (["train_val"] if split in ("train", "val") else []) + ["all"]
    for name in targets:
        path = root / f"{name}.txt"
        if name != split and not path.is_file():
            continue
        have = set(_read_ids(path)) if path.is_file() else set()
        new = [c for c in plan["add"] + plan["already_present"] if c not in have]
        if new:
            _append_ids(path, new)
    stats_info = None
    if stats and (plan["add"] or plan["append"]):
        from prepare.compute_mean_std import compute
        stats_info = compute(root, split="all", progress=progress)
    record_path = root / "real_motion_mix.json"
    if not (plan["add"] or plan["append"]):  # a rerun: nothing changed, nothing to record
        return {**plan, "dry_run": False, "stats": None}
    history = []
    if record_path.is_file():
        try:
            history = json.loads(record_path.read_text(encoding="utf-8"))
            history = history if isinstance(history, list) else [history]
        except ValueError:
            history = []
    entry = {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "source": str(src.resolve()), "split": split,
             "added": plan["add"], "already_present": plan["already_present"],
             "skipped": [list(s) for s in plan["skipped"]], "stats_recomputed": stats_info is not None}
    atomic_write_json(record_path, history + [entry])
    return {**plan, "dry_run": False, "stats": stats_info}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m prepare.mix_real_motion",
                                 description="Mix converted real-motion clips into a HumanML3D-layout dataset's split.",
                                 epilog=__doc__.split("\n\n", 2)[2],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", required=True, help="dataset to extend (e.g. data/synthetic_h3d)")
    ap.add_argument("--real", required=True,
                    help="converted real-motion folder (e.g. prepare/convert_deepmimic.py --out)")
    ap.add_argument("--split", default="train", choices=SPLITS, help="split that lists the new clips (default train)")
    ap.add_argument("--no-stats", action="store_true", help="keep Mean.npy / Std.npy as they are")
    ap.add_argument("--dry-run", action="store_true", help="check and report, change nothing")
    args = ap.parse_args(argv)
    try:
        res = mix(args.data_root, args.real, args.split, stats=not args.no_stats, dry_run=args.dry_run)
    except (ValueError, OSError) as exc:  # MixError, and unreadable / unknown-width files
        print(f"error: {exc}", file=sys.stderr)
        return 1
    verb = "would add" if res["dry_run"] else "added"
    print(f"{verb} {len(res['add'])} clip(s) to {args.data_root} ({args.split}); "
          f"{len(res['already_present'])} already present; {len(res['skipped'])} skipped")
    for cid, why in res["skipped"]:
        print(f"  skipped {cid}: {why}")
    if res["oov_words"]:
        print(f"  {len(res['oov_words'])} caption word(s) not in {args.data_root}/glove (read as 'unk' by the "
              f"evaluator): {', '.join(res['oov_words'][:20])}{' ...' if len(res['oov_words']) > 20 else ''}")
    if res.get("stats"):
        print(f"  Mean.npy / Std.npy recomputed over {res['stats']['clips']} clips")
    return 0


if __name__ == "__main__":
    sys.exit(main())
