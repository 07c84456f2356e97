#!/usr/bin/env python
"""Build the embedded synthetic dataset in the exact HumanML3D (or KIT-ML) folder layout.

    python prepare/make_synthetic_dataset.py --out data/synthetic_h3d [--num-motions 800] [--seed 0]
    python prepare/make_synthetic_dataset.py --out data/synthetic_kit --format kit

Motions are generated procedurally on the real t2m skeleton at 20 fps (21 parametrised actions
and "A then B" compositions), processed by the same feature extraction as HumanML3D
(``utils.motion_process.process_file``) and mirrored (``M`` copies with left/right swapped in the
text). Output:

    <out>/new_joints/<id>.npy        (T, 22, 3) recovered joints (T, 21, 3) for kit, in mm
    <out>/new_joint_vecs/<id>.npy    (T, 263) features ((T, 251) for kit)
    <out>/texts/<id>.txt             caption#word/POS ...#start#end lines
    <out>/{train,val,test,train_val,all}.txt
    <out>/Mean.npy, <out>/Std.npy    dataset statistics (group-averaged std, docs/data-format.md §7.1)
    <out>/glove/our_vab_{data.npy,words.pkl,idx.pkl}   word vectors in the official format
    <out>/synthetic_meta.json        generation parameters per motion (actions, side, speed...)

The word vectors are a stand-in for GloVe: fixed random 300-d vectors (seeded), where words of
one synonym group share a base direction, so the real and the embedded paths read the same files.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from prepare.synthetic.actions import FPS, concat, sample_action  # noqa: E402
from prepare.synthetic.body import ground  # noqa: E402
from prepare.synthetic.captions import describe, mirror_text  # noqa: E402
from utils.motion_process import mean_std, mirror_joints, process_file, recover_from_ric  # noqa: E402
from utils.paramUtil import KIT, T2M  # noqa: E402

MAX_JOINT_FRAMES = 197  # features keep T-1 frames, and the evaluator crops to <= 196
BLEND = 10

# Words that share a base vector in the stand-in word embedding (synonyms / paraphrases).
SYNONYMS = [
    ["person", "man", "woman", "someone", "figure", "human"],
    ["walk", "stroll", "step"], ["run", "jog"], ["jump", "leap", "hop"], ["turn", "rotate", "spin", "veer", "curve"],
    ["kick"], ["wave"], ["punch", "box", "fist"], ["throw", "pitch", "ball"], ["clap", "applaud"],
    ["squat", "crouch"], ["sit", "seat", "seated", "chair"], ["stand", "rise", "get"], ["bow", "bend", "lean", "waist"],
    ["crawl", "four", "fours", "floor"], ["dance", "sway", "happily"], ["march"], ["stretch", "spread", "wide"],
    ["raise", "lift", "overhead"], ["lunge"], ["slowly", "slow", "pace"], ["quickly", "fast"],
    ["left"], ["right"], ["forward", "ahead", "straight"], ["backward", "backwards", "back"],
    ["clockwise"], ["counterclockwise"], ["circle", "around"], ["once"], ["twice", "two"], ["three"], ["four"],
    ["hand", "arm"], ["leg", "foot", "feet", "knee"], ["head"], ["sideways", "side", "shuffle"],
]


def _kit_from_t2m(joints_m: np.ndarray) -> np.ndarray:
    """Map t2m joints (T, 22, 3) in metres @20fps onto the 21 KIT joints in mm @12.5fps."""
    j = joints_m
    lerp = lambda a, b, t: j[:, a] * (1 - t) + j[:, b] * t  # noqa: E731
    kit = np.stack([
        j[:, 0], j[:, 3], j[:, 9], j[:, 12], j[:, 15],
        j[:, 17], j[:, 19], j[:, 21], j[:, 16], j[:, 18], j[:, 20],
        j[:, 2], j[:, 5], j[:, 8], lerp(8, 11, 0.55), j[:, 11],
        j[:, 1], j[:, 4], j[:, 7], lerp(7, 10, 0.55), j[:, 10],
    ], axis=1) * 1000.0
    t_src = np.arange(len(kit)) / FPS
    t_dst = np.arange(0, t_src[-1] + 1e-9, 1.0 / KIT.fps)
    flat = kit.reshape(len(kit), -1)
    out = np.stack([np.interp(t_dst, t_src, flat[:, k]) for k in range(flat.shape[1])], axis=1)
    return out.reshape(len(t_dst), 21, 3)


def generate_motion(rng, compose_prob=0.3):
    """One motion: (world joints (T, 22, 3), facts list, segment frame bounds or None)."""
    for _ in range(50):
        clip, f1 = sample_action(rng)
        if clip.T > MAX_JOINT_FRAMES:
            continue
        if rng.random() < compose_prob and clip.T <= MAX_JOINT_FRAMES - 50:
            for _ in range(20):
                clip2, f2 = sample_action(rng, exclude=(f1["action"],))
                if clip.T + clip2.T - BLEND <= MAX_JOINT_FRAMES:
                    both = concat(clip, clip2, BLEND)
                    split = clip.T - BLEND // 2
                    return ground(both), [f1, f2], (split, both.T)
        if clip.T >= 41:
            return ground(clip), [f1], None
    raise RuntimeError("could not sample a motion within the length limits")


def _random_placement(joints, rng):
    """Random heading and start position (the processing canonicalises them away again)."""
    from prepare.synthetic.body import ry
    R = ry(np.array(rng.uniform(-np.pi, np.pi)))
    out = joints @ R.T
    out[..., [0, 2]] += rng.uniform(-2, 2, size=2)
    return out


def _text_lines(whole, segments, seg_bounds, fps):
    lines = [f"{text}#{' '.join(tokens)}#0.0#0.0" for text, tokens in whole]
    if seg_bounds is not None:
        split, total = seg_bounds
        bounds = [(0.0, split / fps), (split / fps, (total - 1) / fps)]
        for (text, tokens), (s, e) in zip(segments, bounds):
            lines.append(f"{text}#{' '.join(tokens)}#{s:.2f}#{e:.2f}")
    return lines


def _write_vocab(out_dir: Path, words, seed: int, dim: int = 300):
    rng = np.random.default_rng(seed + 7919)
    words = ["sos", "eos", "unk"] + sorted(w for w in set(words) if w not in ("sos", "eos", "unk"))
    base = {}
    for group in SYNONYMS:
        v = rng.standard_normal(dim)
        for w in group:
            base.setdefault(w, v)
    vecs = np.zeros((len(words), dim), dtype=np.float32)
    for i, w in enumerate(words):
        own = rng.standard_normal(dim)
        vecs[i] = (0.8 * base[w] + 0.6 * own) if w in base else own
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    vecs *= 5.0  # GloVe-300 vectors have norms around 5-7
    out_dir.mkdir(parents=True, exist_ok=True)
    np.save(out_dir / "our_vab_data.npy", vecs)
    with open(out_dir / "our_vab_words.pkl", "wb") as f:
        pickle.dump(words, f)
    with open(out_dir / "our_vab_idx.pkl", "wb") as f:
        pickle.dump({w: i for i, w in enumerate(words)}, f)
    return len(words)


def build_dataset(out: str | os.PathLike, num_motions: int = 800, seed: int = 0, fmt: str = "t2m",
                  overwrite: bool = False, progress: bool = True, split_fracs=(0.8, 0.05, 0.15)) -> dict:
    """Generate the dataset into ``out`` (written to a temporary folder, then renamed)."""
    out = Path(out)
    if fmt not in ("t2m", "kit"):
        raise ValueError(f"--format must be 't2m' or 'kit', got {fmt!r}")
    if num_motions < 3:
        raise ValueError("--num-motions must be at least 3 (one per split)")
    if out.exists():
        if not overwrite:
            raise FileExistsError(f"{out} exists; pass --overwrite to rebuild it")
    spec = T2M if fmt == "t2m" else KIT
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    for sub in ("new_joints", "new_joint_vecs", "texts"):
        (tmp / sub).mkdir(parents=True)

    t0 = time.time()
    rng = np.random.default_rng(seed)
    names, meta, feats, vocab = [], {}, [], set()
    n_captions = 0
    width = max(6, len(str(num_motions - 1)))
    for i in tqdm(range(num_motions), desc=f"synthetic {fmt}", disable=not progress, unit="motion"):
        name = f"{i:0{width}d}"
        joints, facts, seg = generate_motion(rng)
        joints = _random_placement(joints, rng)
        whole, segments = describe(facts, rng, int(rng.integers(3, 5)))
        lines = _text_lines(whole, segments, seg, FPS)
        if fmt == "kit":
            joints = _kit_from_t2m(joints)
            lines = [f"{text}#{' '.join(tokens)}#0.0#0.0" for text, tokens in whole]  # KIT has no segments
        for mirrored in (False, True):
            nm = ("M" if mirrored else "") + name
            j = mirror_joints(joints, spec) if mirrored else joints
            data, *_ = process_file(j, spec, fix_yaw_flip=True)
            data = data.astype(np.float32)
            np.save(tmp / "new_joint_vecs" / f"{nm}.npy", data)
            np.save(tmp / "new_joints" / f"{nm}.npy", recover_from_ric(data, spec.joints_num).astype(np.float32))
            text_lines = [mirror_text(ln) for ln in lines] if mirrored else lines
            (tmp / "texts" / f"{nm}.txt").write_text("\n".join(text_lines) + "\n")
            for ln in text_lines:
                vocab.update(tok.rsplit("/", 1)[0] for tok in ln.split("#")[1].split())
            n_captions += len(text_lines)
            feats.append(data)
        names.append(name)
        meta[name] = {"actions": [{k: (v if not isinstance(v, np.generic) else v.item()) for k, v in f.items()} for f in facts],
                      "frames": int(len(feats[-1])), "segment_split_frame": None if seg is None else int(seg[0])}

    # splits by base id; mirrored copies stay with their original (as in HumanML3D)
    order = np.random.default_rng(seed + 1).permutation(len(names))
    n_train = max(1, int(round(split_fracs[0] * len(names))))
    n_val = max(1, int(round(split_fracs[1] * len(names))))
    n_train = min(n_train, len(names) - n_val - 1)
    parts = {"train": order[:n_train], "val": order[n_train:n_train + n_val], "test": order[n_train + n_val:]}
    split_ids = {}
    for split, idx in parts.items():
        ids = []
        for k in sorted(idx):
            ids += [names[k], "M" + names[k]]
        split_ids[split] = ids
        (tmp / f"{split}.txt").write_text("\n".join(ids) + "\n")
    (tmp / "train_val.txt").write_text("\n".join(split_ids["train"] + split_ids["val"]) + "\n")
    all_ids = [n for name in names for n in (name, "M" + name)]
    (tmp / "all.txt").write_text("\n".join(all_ids) + "\n")

    mean, std, _ = mean_std(feats, spec.joints_num)
    np.save(tmp / "Mean.npy", mean)
    np.save(tmp / "Std.npy", std)
    vocab_size = _write_vocab(tmp / "glove", vocab, seed)
    info = {"format": fmt, "seed": seed, "num_motions": len(names), "num_clips": len(all_ids),
            "num_captions": n_captions, "vocab_size": vocab_size, "fps": spec.fps,
            "splits": {k: len(v) for k, v in split_ids.items()},
            "total_frames": int(sum(len(f) for f in feats))}
    (tmp / "synthetic_meta.json").write_text(json.dumps({"info": info, "motions": meta}, indent=1))
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, out)
    info["seconds"] = round(time.time() - t0, 2)
    info["path"] = str(out)
    return info


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output dataset folder")
    ap.add_argument("--num-motions", type=int, default=800, help="base motions (mirrors double the clips)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--format", choices=["t2m", "kit"], default="t2m", help="HumanML3D (t2m) or KIT-ML layout")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    try:
        info = build_dataset(args.out, args.num_motions, args.seed, args.format, args.overwrite, not args.no_progress)
    except (FileExistsError, ValueError) as e:
        ap.error(str(e))
    print(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
