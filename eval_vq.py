#!/usr/bin/env python
"""Test-split reconstruction evaluation of a motion VQ-VAE with the judge (the VQ-VAE row of the tables;
docs/evaluation.md §4).

    python eval_vq.py --vq-ckpt experiments/hml3d_vqvae/net_best_fid.pth --data-root dataset/HumanML3D \\
        --evaluator-dir checkpoints/t2m/Comp_v6_KLD005 --glove-dir glove \\
        --out-dir experiments --exp-name hml3d_eval_vqvae

Protocol (T2M-GPT's test-time tokenizer evaluation): ``--replications`` passes over the t2m ground-truth
loader of ``--split`` (batches of ``--batch-size`` 32, shuffled, drop_last, a fresh random caption and
4-multiple crop per item and pass, docs/evaluation.md §2.1); every crop goes through the VQ-VAE (encoded
and decoded at its own length, normalised with the VQ-VAE's own statistics) and the judge embeds the
crop and its reconstruction from the same batches. Per pass: R-precision top-1/2/3 and MM-Dist of the
captions against the reconstructions, FID of the reconstructions against the ground truth of the same
batches, Diversity of the reconstructions (the same index pairs as the real-motion row), and, beyond the
protocol, the joint-position error in mm (MPJPE: ``MPJPE_root_aligned_mm`` with the root joint of each frame
aligned, MoMask's convention and the tables' column; ``MPJPE_mm`` global, as train_vq.py's validation) and the
code perplexity/usage.
Reported as mean ± 1.96·std/√n beside a "Real motion" row (GT vs an independent GT pass, the same
function eval_mllm.py uses). ``--identity`` skips the VQ-VAE (reconstruction = input): FID ≈ 0 and the
matching metrics equal the real-motion row's, a check of the pipeline and the judge.

Writes ``eval_vq.json`` (atomically) and ``eval_vq.md`` to ``<out-dir>/<exp-name>/`` (``--out-dir`` alone: that
folder; neither: the checkpoint's folder); ``experiments/make_tables.py --vq`` reads the JSON.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
import utils.threads  # noqa: E402,F401  (before torch: OpenMP wait policy and thread count)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from options.common import add_data_args, add_run_args, fill_data_root  # noqa: E402

# the reconstruction metrics, in the order of the reports and tables
PROTOCOL_KEYS = ("R_precision_top1", "R_precision_top2", "R_precision_top3", "FID", "MM_Dist", "Diversity")
EXTRA_KEYS = ("MPJPE_mm", "MPJPE_root_aligned_mm", "code_perplexity", "code_usage")


# ---------------------------------------------------------------------------- options
def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="VQ-VAE reconstruction on the test split, scored by the judge "
                                            "(FID, R-precision, MM-Dist, Diversity, MPJPE; mean ± 95% CI)",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    run = add_run_args(p, exp_name=None, exp_help="report folder under --out-dir (default experiments)",
                       wandb=False, overwrite=False)
    for a in run._group_actions:
        if a.dest == "out_dir":
            a.default = None
            a.help = ("report root: the report goes to <out-dir>/<exp-name>/, or to <out-dir>/ without --exp-name; "
                      "neither: the checkpoint's folder")
    add_data_args(p, run)
    g = p.add_argument_group("evaluation")
    g.add_argument("--vq-ckpt", type=str, default=None,
                   help="VQ-VAE checkpoint (train_vq.py's net_best_fid.pth / net_last.pth or a released {'net': ...})")
    g.add_argument("--meta-dir", type=str, default=None,
                   help="the VQ-VAE's normalisation statistics (mean.npy/std.npy); default <checkpoint folder>/meta")
    g.add_argument("--evaluator-dir", type=str, required=True,
                   help="the judge: T2M evaluator (opt.txt or a folder holding one)")
    g.add_argument("--glove-dir", type=str, default=None,
                   help="word vectors our_vab_* of the judge (default <data-root>/glove)")
    g.add_argument("--split", type=str, default="test", help="split to evaluate (the tables: test)")
    g.add_argument("--replications", type=int, default=20, help="passes over the split (mean ± 95%% CI)")
    g.add_argument("--batch-size", type=int, default=32, help="R-precision batch (the protocol: 32)")
    g.add_argument("--diversity-times", type=int, default=300,
                   help="Diversity pairs (300; 100 when there are fewer samples, the T2M-GPT rule)")
    g.add_argument("--max-items", type=int, default=0, help="evaluate the first N items only (0 = all; quick checks)")
    g.add_argument("--identity", action="store_true",
                   help="sanity check: no VQ-VAE, the reconstruction is the input (FID ≈ 0, matching metrics equal "
                        "to the real-motion row's); --vq-ckpt is not needed")
    return p


def parse_args(argv=None):
    p = get_args_parser()
    args = fill_data_root(p.parse_args(argv))
    if not args.identity and not args.vq_ckpt:
        p.error("--vq-ckpt is required (or --identity for the no-reconstruction sanity check)")
    for flag in ("replications", "batch_size", "diversity_times"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag.replace('_', '-')} must be at least 1")
    if args.max_items < 0:
        p.error("--max-items must be 0 (all) or positive")
    if args.max_items and args.max_items < args.batch_size:
        p.error(f"--max-items {args.max_items} is below --batch-size {args.batch_size}: R-precision needs full batches")
    if args.glove_dir is None:
        args.glove_dir = str(Path(args.data_root) / "glove")
    return args


get_args = parse_args  # the name the other entry points use


# ---------------------------------------------------------------------------- evaluation
def replication_metrics(out: dict, batch_size: int, diversity_times: int, rng, scale_mm: float,
                        nb_code: int | None) -> dict:
    """The metrics of one pass (``EvaluatorValidator.embed_pass`` output) with the project's metric functions."""
    from utils.metrics import calculate_diversity, calculate_fid, diversity_times as div_times, matching_metrics
    texts, gts, recs = out["texts"], out["gts"], out["recs"]
    res = matching_metrics(texts, recs, batch_size)
    res.pop("n")
    res["FID"] = calculate_fid(gts, recs)
    res["Diversity"] = calculate_diversity(recs, min(diversity_times, div_times(len(recs))), rng)
    if out.get("frames"):
        res["MPJPE_mm"] = out["joint_error_sum"] / out["frames"] * scale_mm
        res["MPJPE_root_aligned_mm"] = out["joint_error_root_aligned_sum"] / out["frames"] * scale_mm
    codes = out.get("codes")
    if nb_code and codes is not None and codes.numel():
        counts = torch.bincount(codes.long(), minlength=nb_code).double()
        p = counts / counts.sum()
        res["code_perplexity"] = float(torch.exp(-(p * torch.log(p + 1e-10)).sum()))
        res["code_usage"] = float((counts > 0).double().mean())
    return res


def evaluate(args, wrapper, wv, vq, device) -> dict:
    """All replications of the reconstruction rows and the real-motion row."""
    from train_vq import EvaluatorValidator
    from utils.eval_t2m import build_eval_dataset, evaluate_real_motion
    from utils.metrics import aggregate_replications
    from utils.paramUtil import get_spec

    model, mean, std = vq if vq is not None else (None, np.zeros(wrapper.dim_pose), np.ones(wrapper.dim_pose))
    ds = build_eval_dataset(wrapper, args.data_root, wv, args.split, args.dataname, args.seed,
                            progress=not args.no_progress)
    if args.max_items:
        ds.items = ds.items[: args.max_items]
    if len(ds) < args.batch_size:
        raise SystemExit(f"{args.data_root} split {args.split!r} has {len(ds)} usable items, fewer than --batch-size "
                         f"{args.batch_size} (R-precision needs full batches); lower --batch-size")
    spec = get_spec(args.dataname)
    scale_mm = 1000.0 if spec.unit == "m" else 1.0
    ev = EvaluatorValidator(wrapper, None, None, args.split, args.dataname, mean, std, args.seed, device,
                            dataset=ds, batch_size=args.batch_size)
    reps = []
    bar = tqdm(range(args.replications), desc="VQ-VAE reconstruction", disable=args.no_progress, dynamic_ncols=True)
    for r in bar:
        # the seeds of utils.eval_t2m.evaluate_real_motion's first pass: the same crops, captions and batches
        out = ev.embed_pass(model, args.seed * 1000 + 2 * r, joints_num=spec.joints_num)
        rng = np.random.default_rng([args.seed, r])  # the real row's Diversity pairs
        res = replication_metrics(out, args.batch_size, args.diversity_times, rng, scale_mm,
                                  model.nb_code if model is not None else None)
        reps.append(res)
        bar.set_postfix(FID=f"{res['FID']:.3f}", top1=f"{res['R_precision_top1']:.3f}")
    real = evaluate_real_motion(wrapper, args.data_root, wv, args.split, args.replications, args.seed,
                                args.dataname, args.batch_size, dataset=ds)
    return {"reconstruction": aggregate_replications(reps), "real_motion": real, "items": len(ds),
            "evaluated_per_replication": (len(ds) // args.batch_size) * args.batch_size}


# ---------------------------------------------------------------------------- report
def markdown(res: dict, meta: dict) -> str:
    from utils.metrics import format_mean_ci
    from utils.tables import markdown_table
    cols = list(PROTOCOL_KEYS) + list(EXTRA_KEYS)
    heads = ["Top-1", "Top-2", "Top-3", "FID", "MM-Dist", "Diversity", "MPJPE global (mm)", "MPJPE root-aligned (mm)",
             "perplexity", "code usage"]
    name = "identity (no VQ-VAE, sanity check)" if meta.get("identity") else "VQ-VAE reconstruction"
    rows = [[label] + [format_mean_ci(block[c]["mean"], block[c]["ci"]) if c in block else "–" for c in cols]
            for label, block in (("Real motion", res["real_motion"]), (name, res["reconstruction"]))]
    ev = meta["evaluator"]
    ck = meta.get("checkpoint") or {}
    lines = ["# VQ-VAE reconstruction evaluation", "",
             f"checkpoint `{ck.get('path', '–')}`" + (f" (sha256 {ck['sha256'][:12]})" if ck.get("sha256") else "")
             + f", split `{meta['split']}`, {meta['replications']} replications x {res['evaluated_per_replication']} "
             f"of {res['items']} items, batch {meta['batch_size']}, {meta['device']}", "",
             markdown_table([""] + heads, rows), "",
             "FID: reconstructions against the ground truth of the same batches; Real motion: GT against an "
             "independent GT pass. Mean ± 1.96·std/√n over the replications.",
             f"evaluator (judge): `{ev['opt']}`, sha256 {ev['sha256'][:12]} (weights {ev['weights_sha256'][:12]})",
             f"wall time {meta['wall_seconds']} s"]
    return "\n".join(lines) + "\n"


def main(argv=None):
    from models.evaluator_wrapper import EvaluatorWrapper, sha256_file
    from utils.device import resolve_device, seed_everything
    from utils.io import atomic_write_json, atomic_write_text, check_writable, run_dir
    from utils.threads import apply_threads
    from utils.word_vectorizer import WordVectorizer

    args = parse_args(argv)
    apply_threads(args.threads)
    seed_everything(args.seed)
    device = resolve_device(args.device)
    # every input checked before anything slow, each error naming the file
    if args.vq_ckpt and not Path(args.vq_ckpt).is_file():
        raise SystemExit(f"--vq-ckpt {args.vq_ckpt}: checkpoint not found")
    if not Path(args.data_root).is_dir():
        raise SystemExit(f"--data-root {args.data_root}: dataset folder not found")
    if not (Path(args.data_root) / f"{args.split}.txt").is_file():
        raise SystemExit(f"--split {args.split}: split file not found: {Path(args.data_root) / (args.split + '.txt')}")
    if args.exp_name:
        out_dir = run_dir(args.out_dir or "experiments", args.exp_name)
    elif args.out_dir:
        out_dir = Path(args.out_dir)
    elif args.vq_ckpt:
        out_dir = Path(args.vq_ckpt).resolve().parent
    else:
        raise SystemExit("--identity without --vq-ckpt: give --out-dir (and --exp-name) for the report")
    wrapper = EvaluatorWrapper(args.evaluator_dir, device)  # FileNotFoundError naming opt.txt / finest.tar / meta
    wv = WordVectorizer(args.glove_dir)  # FileNotFoundError naming the our_vab_* file
    vq, ckpt_meta = None, None
    if not args.identity:
        from models.vqvae import load_vq_with_stats, vq_meta_dir
        vq = load_vq_with_stats(args.vq_ckpt, device, meta_dir=args.meta_dir)
        if vq[0].input_dim != wrapper.dim_pose:
            raise SystemExit(f"--vq-ckpt {args.vq_ckpt} reconstructs {vq[0].input_dim}-d features but the judge "
                             f"{wrapper.fingerprint['opt']} reads {wrapper.dim_pose}-d ones "
                             "(HumanML3D 263, KIT-ML 251)")
        meta_dir = Path(args.meta_dir) if args.meta_dir else vq_meta_dir(args.vq_ckpt)
        ckpt_meta = {"path": str(args.vq_ckpt), "resolved": str(Path(args.vq_ckpt).resolve()),
                     "sha256": sha256_file(args.vq_ckpt), "vq_config": vq[0].cfg.to_dict(),
                     "stats": str(meta_dir.resolve())}
    # the report folder, proven writable before the (slow) evaluation and only once the inputs loaded
    check_writable(out_dir, "--out-dir/--exp-name" if args.exp_name or args.out_dir else "the checkpoint's folder")
    t0 = time.time()
    res = evaluate(args, wrapper, wv, vq, device)
    meta = {"checkpoint": ckpt_meta, "identity": bool(args.identity), "split": args.split, "dataname": args.dataname,
            "data_root": str(args.data_root), "device": str(device) + (
                f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
            "evaluator": {"given": str(args.evaluator_dir), **wrapper.fingerprint}, "glove_dir": str(args.glove_dir),
            "replications": args.replications, "batch_size": args.batch_size, "seed": args.seed,
            "diversity_times": args.diversity_times, "max_items": args.max_items,
            "protocol": "T2M-GPT VQ-VAE evaluation: t2m GT loader (random caption, random 4-multiple crop), each crop "
                        "encoded and decoded at its own length; FID against the GT of the same batches; real-motion "
                        "row GT vs an independent GT pass",
            "wall_seconds": round(time.time() - t0, 1)}
    report = {"meta": meta, "results": res}
    atomic_write_json(out_dir / "eval_vq.json", report)
    md = markdown(res, meta)
    atomic_write_text(out_dir / "eval_vq.md", md)
    print(md)
    print(f"written to {out_dir / 'eval_vq.json'}", file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
