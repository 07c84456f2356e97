#!/usr/bin/env python
"""Encode every clip of a split into VQ code sequences (JSONL for the CoT data engine).

    python prepare/tokenize_dataset.py --vq-ckpt experiments/vq/net_last.pth \\
        --data-root data/synthetic_h3d --split train --out experiments/vq/tokens_train.jsonl

One record per reader item (whole clips and sub-segment items; mirrored ``M`` ids are ordinary
ids of the split files, ``--add-mirrors`` also encodes mirrors missing from the list):

    {"id": "000123", "clip_id": "000123", "segment": null, "length": 120,
     "captions": ["a person walks forward.", ...], "tokens": [["a/DET", ...], ...],
     "motion_tokens": [12, 7, ...]}

Clips are cropped to a multiple of the unit length (4), normalised with the VQ run's
``meta/{mean,std}.npy`` and encoded in length-sorted, padded batches (padding-aware, so the codes
equal one-clip-at-a-time encoding). The output is written atomically.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
import utils.threads  # noqa: E402,F401  (before torch: OpenMP wait policy and thread count)

from dataset.humanml3d import HumanML3DReader, mirror_id  # noqa: E402
from models.vqvae import encode_motions, load_vq_with_stats  # noqa: E402
from utils.device import resolve_device  # noqa: E402
from utils.io import atomic_write_text  # noqa: E402


def tokenize_split(vq_ckpt, data_root, split="train", dataname="t2m", batch_size=64, device="cpu",
                   add_mirrors=False, meta_dir=None, progress=True):
    model, mean, std = load_vq_with_stats(vq_ckpt, device, meta_dir)
    reader = HumanML3DReader(data_root, split=split, dataname=dataname, progress=progress)
    items = list(reader.items)
    if add_mirrors:
        have = {it["clip_id"] for it in items}
        extra = sorted({mirror_id(c) for c in have} - have)
        extra = [e for e in extra if (Path(data_root) / "new_joint_vecs" / f"{e}.npy").is_file()]
        if extra:
            items += HumanML3DReader(data_root, split=split, dataname=dataname, ids=extra, progress=progress).items
    codes = encode_motions(model, [it["motion"] for it in items], mean, std, batch_size, device, progress)
    records = []
    for it, c in zip(items, codes):
        records.append({"id": it["name"], "clip_id": it["clip_id"], "segment": it.get("segment"),
                        "length": int(it["length"]), "captions": [c_["caption"] for c_ in it["captions"]],
                        "tokens": [c_["tokens"] for c_ in it["captions"]], "motion_tokens": c})
    return records, {"items": len(records), "reader": dict(reader.stats), "nb_code": model.nb_code}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vq-ckpt", required=True, help="VQ-VAE checkpoint (net_last.pth / net_best_*.pth / released)")
    ap.add_argument("--meta-dir", default=None, help="normalisation statistics (default <ckpt dir>/meta)")
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--dataname", default="t2m", choices=["t2m", "kit"])
    ap.add_argument("--split", default="train", help="split file name (train, val, test, all, ...)")
    ap.add_argument("--out", required=True, help="output JSONL")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--add-mirrors", action="store_true", help="also encode M-copies missing from the split list")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    records, stats = tokenize_split(args.vq_ckpt, args.data_root, args.split, args.dataname, args.batch_size,
                                    device, args.add_mirrors, args.meta_dir, not args.no_progress)
    atomic_write_text(args.out, "".join(json.dumps(r) + "\n" for r in records))
    print(json.dumps({"out": args.out, **stats}))


if __name__ == "__main__":
    main()
