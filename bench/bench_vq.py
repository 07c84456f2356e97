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

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
import utils.threads  # noqa: E402,F401  (before torch: OpenMP wait policy and thread count)

import numpy as np
import torch

from models.vqvae import HumanVQVAE, VQConfig  # noqa: E402
from bench.mfu import _sync  # noqa: E402
from utils.device import resolve_device  # noqa: E402


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

    order = np.argsort(-lengths)
    batches = []
    for s in range(0, clips, batch_size):
        idx = order[s:s + batch_size]
        L = torch.as_tensor(lengths[idx], device=device)
        x = torch.zeros(len(idx), int(L.max()), 263, device=device)
        for r, i in enumerate(idx):
            x[r, :lengths[i]] = motions[i].to(device)
        batches.append((idx, x, L))
    singles = [m[None].to(device) for m in motions]

    def batched_encode():
        return [(idx, model.encode(x, L), L) for idx, x, L in batches]

    def batched_decode(enc):
        for _, c, L in enc:
            model.decode(c, L // 4)

    def single_encode():
        return [model.encode(m) for m in singles]

    def single_decode(enc):
        for c in enc:
            model.decode(c)

    def timed(fn, *a):
        best, out = float("inf"), None
        for _ in range(repeats):
            _sync(device)
            t0 = time.perf_counter()
            out = fn(*a)
            _sync(device)
            best = min(best, time.perf_counter() - t0)
        return best, out

    with torch.inference_mode():
        single_decode(single_encode())  # warm-up
        batched_decode(batched_encode())
        t_be, enc_b = timed(batched_encode)
        t_bd, _ = timed(batched_decode, enc_b)
        t_se, enc_s = timed(single_encode)
        t_sd, _ = timed(single_decode, enc_s)
    codes_b = {int(i): c[r, : lengths[i] // 4].cpu() for idx, c, _ in enc_b for r, i in enumerate(idx)}
    results = {"batched_codes": codes_b, "one_clip_at_a_time_codes": {i: c[0].cpu() for i, c in enumerate(enc_s)},
               "batched": {"seconds": t_be + t_bd}, "one_clip_at_a_time": {"seconds": t_se + t_sd}}
    for k in ("batched", "one_clip_at_a_time"):
        results[k]["frames_per_s"] = frames / results[k]["seconds"]
    results["detail"] = {"encode_batched_fps": frames / t_be, "decode_batched_fps": frames / t_bd,
                         "encode_single_fps": frames / t_se, "decode_single_fps": frames / t_sd}
    same = all(torch.equal(results["batched_codes"][i], results["one_clip_at_a_time_codes"][i]) for i in range(clips))
    report = {
        "device": str(device), "width": width, "clips": clips, "frames": frames, "batch_size": batch_size,
        "batched_frames_per_s": round(results["batched"]["frames_per_s"]),
        "single_frames_per_s": round(results["one_clip_at_a_time"]["frames_per_s"]),
        "speedup": round(results["one_clip_at_a_time"]["seconds"] / results["batched"]["seconds"], 2),
        "identical_codes": same, "torch_threads": torch.get_num_threads(),
        **{k: round(v) for k, v in results["detail"].items()},
        "encode_speedup": round(results["detail"]["encode_batched_fps"] / results["detail"]["encode_single_fps"], 2),
        "decode_speedup": round(results["detail"]["decode_batched_fps"] / results["detail"]["decode_single_fps"], 2),
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
    print(f"  encode: {rep['encode_batched_fps']:,} vs {rep['encode_single_fps']:,} frames/s ({rep['encode_speedup']}x); "
          f"decode: {rep['decode_batched_fps']:,} vs {rep['decode_single_fps']:,} frames/s ({rep['decode_speedup']}x)")
    print(f"  speed-up (encode+decode): {rep['speedup']}x  (identical codes: {rep['identical_codes']})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rep, indent=1))


if __name__ == "__main__":
    main()
