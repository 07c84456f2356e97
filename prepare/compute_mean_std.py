#!/usr/bin/env python
"""Mean/Std of a HumanML3D-layout dataset (docs/data-format.md §7).

    python prepare/compute_mean_std.py --data-root data/my_mocap                 # Mean.npy, Std.npy
    python prepare/compute_mean_std.py --data-root D --evaluator-style --out D/meta  # mean.npy, std.npy (÷25)

Every frame of every ``new_joint_vecs`` file listed in the split file (default ``all.txt``, or
all files when there is none) is used; files containing NaN are skipped and counted. The std is
replaced by its average within each of the 7 feature groups. ``--evaluator-style`` also divides
the root and foot-contact std by 25, as the official evaluator/VQ meta statistics do.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from utils.io import atomic_save_npy  # noqa: E402
from utils.motion_process import mean_std  # noqa: E402
from utils.paramUtil import spec_for_feature_dim  # noqa: E402


def compute(data_root, split="all", evaluator_style=False, out=None, progress=True):
    root = Path(data_root)
    vec_dir = root / "new_joint_vecs"
    if not vec_dir.is_dir():
        raise FileNotFoundError(f"no new_joint_vecs/ folder in {root}")
    split_file = root / f"{split}.txt"
    if split_file.is_file():
        ids = [ln.strip() for ln in split_file.read_text().splitlines() if ln.strip()]
    else:
        ids = sorted(p.stem for p in vec_dir.glob("*.npy"))
    if not ids:
        raise ValueError(f"no clips found in {split_file if split_file.is_file() else vec_dir}")

    def arrays():
        for i in tqdm(ids, desc="mean/std", disable=not progress):
            path = vec_dir / f"{i}.npy"
            if not path.is_file():
                raise FileNotFoundError(f"motion file listed in {split_file.name} not found: {path}")
            yield np.load(path)

    first = np.load(vec_dir / f"{ids[0]}.npy")
    spec = spec_for_feature_dim(first.shape[-1])
    mean, std, skipped = mean_std(arrays(), spec.joints_num, feat_bias=25.0 if evaluator_style else 1.0)
    out = Path(out) if out else root
    out.mkdir(parents=True, exist_ok=True)
    names = ("mean.npy", "std.npy") if evaluator_style else ("Mean.npy", "Std.npy")
    atomic_save_npy(out / names[0], mean)
    atomic_save_npy(out / names[1], std)
    return {"clips": len(ids), "skipped_nan": skipped, "out": str(out), "files": list(names)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--split", default="all", help="split file name without .txt (default all)")
    ap.add_argument("--evaluator-style", action="store_true", help="root/contact std ÷25, lower-case meta names")
    ap.add_argument("--out", default=None, help="output folder (default: the data root)")
    args = ap.parse_args(argv)
    print(compute(args.data_root, args.split, args.evaluator_style, args.out))


if __name__ == "__main__":
    main()
