#!/usr/bin/env python
"""VQ-VAE encode/decode throughput: padded batches vs one clip at a time (same run, same clips).

    python bench/bench_vq.py                         # embedded-default width (128), CPU
    python bench/bench_vq.py --width 512 --device cuda --clips 512

Clips get HumanML3D-like lengths (40..196 frames, multiples of 4). Prints frames/s for both
paths and their ratio, checks that both give identical codes, and writes the numbers as JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from models.vqvae import HumanVQVAE, VQConfig  # noqa: E402
from utils.device import resolve_device  # noqa: E402


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def run(width=128, nb_code=512, clips=128, batch_size=64, device="cpu", seed=0, repeats=2):
    device = resolve_device(device)
    torch.manual_seed(seed)
    model = HumanVQVAE(VQConfig(nb_code=nb_code, code_dim=width, output_emb_width=width, width=width)).to(device).eval()
    with torch.no_grad():
        model.vqvae.quantizer.codebook.normal_()
    rng = np.random.default_rng(seed)
    lengths = rng.integers(10, 50, size=clips) * 4
    motions = [torch.randn(int(n), 263) for n in lengths]
    frames = int(lengths.sum())

    def batched():
        codes = []
        order = np.argsort(-lengths)
        for s in range(0, clips, batch_size):
            idx = order[s:s + batch_size]
            L = torch.as_tensor(lengths[idx], device=device)
            x = torch.zeros(len(idx), int(L.max()), 263, device=device)
            for r, i in enumerate(idx):
                x[r, :lengths[i]] = motions[i].to(device)
            c = model.encode(x, L)
            model.decode(c, L // 4)
            codes += [(int(i), c[r, : lengths[i] // 4].cpu()) for r, i in enumerate(idx)]
        return dict(codes)

    def single():
        codes = {}
        for i, m in enumerate(motions):
            c = model.encode(m[None].to(device))
            model.decode(c)
            codes[i] = c[0].cpu()
        return codes

    results = {}
    with torch.inference_mode():
        batched(), single()  # warm-up
        for name, fn in (("batched", batched), ("one_clip_at_a_time", single)):
            best = float("inf")
            for _ in range(repeats):
                _sync(device)
                t0 = time.perf_counter()
                out = fn()
                _sync(device)
                best = min(best, time.perf_counter() - t0)
            results[name] = {"seconds": best, "frames_per_s": frames / best}
            results[name + "_codes"] = out
    same = all(torch.equal(results["batched_codes"][i], results["one_clip_at_a_time_codes"][i]) for i in range(clips))
    report = {
        "device": str(device), "width": width, "clips": clips, "frames": frames, "batch_size": batch_size,
        "batched_frames_per_s": round(results["batched"]["frames_per_s"]),
        "single_frames_per_s": round(results["one_clip_at_a_time"]["frames_per_s"]),
        "speedup": round(results["one_clip_at_a_time"]["seconds"] / results["batched"]["seconds"], 2),
        "identical_codes": same, "torch_threads": torch.get_num_threads(),
    }
    return report


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--nb-code", type=int, default=512)
    ap.add_argument("--clips", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default="experiments/bench/bench_vq.json")
    args = ap.parse_args(argv)
    rep = run(args.width, args.nb_code, args.clips, args.batch_size, args.device)
    print(f"encode+decode, {rep['clips']} clips / {rep['frames']} frames, width {rep['width']}, {rep['device']}:")
    print(f"  batched (B={rep['batch_size']}):   {rep['batched_frames_per_s']:>9,} frames/s")
    print(f"  one clip at a time: {rep['single_frames_per_s']:>9,} frames/s")
    print(f"  speed-up: {rep['speedup']}x  (identical codes: {rep['identical_codes']})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rep, indent=1))


if __name__ == "__main__":
    main()
