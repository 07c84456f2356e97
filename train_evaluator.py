#!/usr/bin/env python
"""Train a T2M text–motion evaluator on any dataset in the HumanML3D layout (docs/evaluation.md §1.5).

    python train_evaluator.py --data-root dataset/HumanML3D --glove-dir glove --checkpoints-dir checkpoints
    python train_evaluator.py --data-root data/synthetic_h3d --glove-dir data/synthetic_h3d/glove \\
        --checkpoints-dir experiments/evaluator --small                     # the embedded default
    python train_evaluator.py --data-root dataset/HumanML3D --glove-dir glove --checkpoints-dir checkpoints/critic \\
        --seed 1 --val-split train --eval-split train                       # a critic for rewards and CoM

The critic (the evaluator inside the consistency reward and the Chain-of-Motion scorer) must not be
the judge that computes the metrics: another seed, trained and selected on the train split only.

Two stages, as the original: (1) a movement autoencoder (conv encoder/decoder on random windows,
L1 reconstruction + 0.001 sparsity + 0.001 smoothness on the latent) whose encoder is then
frozen; (2) the contrastive text/motion co-embedding (margin 10, negatives by rolling the motion
embeddings of the batch, Adam 1e-4, gradient-norm clip 0.5), keeping the epoch with the lowest
validation loss. The output is the official layout, so eval code reads it like the released one:

    <checkpoints>/<dataset>/text_mot_match/model/finest.tar   (movement/text/motion encoders)
    <checkpoints>/<dataset>/text_mot_match/model/latest.tar   (+ optimizer states, for --resume)
    <checkpoints>/<dataset>/text_mot_match/meta/{mean,std}.npy (root/contact std ÷ feat_bias)
    <checkpoints>/<dataset>/text_mot_match/opt.txt
    <checkpoints>/<dataset>/text_mot_match/metrics.jsonl
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
import utils.threads  # noqa: E402,F401  (before torch: OpenMP wait policy and thread count)

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from dataset.dataset_TM_eval import Text2MotionEvalDataset, get_t2m_eval_loader  # noqa: E402
from dataset.dataset_VQ import VQMotionDataset  # noqa: E402
from dataset.humanml3d import HumanML3DReader, load_mean_std  # noqa: E402
from models.evaluator import MovementConvDecoder, TextMotionEvaluator  # noqa: E402
from models.evaluator_wrapper import EvaluatorWrapper, write_opt_file  # noqa: E402
from options.option_evaluator import get_args  # noqa: E402
from utils.distributed import get_dist, setup_process  # noqa: E402
from utils.threads import adapt as adapt_threads  # noqa: E402
from utils.io import atomic_save_npy, atomic_torch_save, atomic_write_json, load_checkpoint, prepare_run_dir  # noqa: E402
from utils.metrics import matching_metrics  # noqa: E402
from utils.motion_process import apply_feat_bias  # noqa: E402
from utils.paramUtil import get_spec  # noqa: E402
from utils.run_logger import make_logger  # noqa: E402
from utils.word_vectorizer import WordVectorizer  # noqa: E402

def dims(args) -> dict:
    return {k: getattr(args, k) for k in ("dim_movement_enc_hidden", "dim_movement_latent", "dim_text_hidden",
                                          "dim_motion_hidden", "dim_coemb_hidden")}


def contrastive_loss(text_emb, motion_emb, margin: float, rng: np.random.Generator):
    """Positives: d^2; negatives (motions rolled by a random shift in [1, B-1]): max(0, margin - d)^2."""
    B = text_emb.shape[0]
    pos = F.pairwise_distance(text_emb, motion_emb).pow(2).mean()
    shift = int(rng.integers(1, B)) if B > 1 else 0
    neg_d = F.pairwise_distance(text_emb, motion_emb.roll(shift, dims=0))
    neg = torch.clamp(margin - neg_d, min=0).pow(2).mean()
    return pos, neg


class _MovementAE(torch.nn.Module):
    """Encoder + decoder as one module (one DDP wrapper for stage 1)."""

    def __init__(self, enc, dec):
        super().__init__()
        self.enc, self.dec = enc, dec

    def forward(self, x):
        z = self.enc(x)
        return z, self.dec(z)


def train_movement(model: TextMotionEvaluator, args, mean, std, device, out_dir: Path, logger):
    """Stage 1: the movement autoencoder (the decoder is discarded)."""
    dist = get_dist()
    path = out_dir / "movement_autoencoder.tar"
    if path.is_file():
        ckpt = load_checkpoint(path)
        model.movement_encoder.load_state_dict(ckpt["movement_encoder"])
        print(f"movement encoder loaded from {path}")
        return
    if args.movement_iters <= 0:
        return
    ds = VQMotionDataset(args.data_root, split="train", window_size=args.movement_window, mean=mean, std=std,
                         dataname=args.dataname, progress=not args.no_progress)
    dec = MovementConvDecoder(args.dim_movement_latent, args.dim_movement_enc_hidden, model.dim_pose - 4).to(device)
    enc = model.movement_encoder
    opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=args.movement_lr)
    enc.train()
    ae = dist.wrap(_MovementAE(enc, dec))  # DDP over processes (identity on one)
    seed = args.seed + 7919 * dist.rank
    bar = tqdm(range(args.movement_iters), desc="movement AE", disable=args.no_progress or not dist.is_main,
               dynamic_ncols=True)
    for it in bar:
        adapt_threads()  # between steps: as many CPU threads as other processes leave free
        x = torch.from_numpy(ds.batch_at(seed, it, args.movement_batch_size)).to(device)[..., :-4]
        z, rec = ae(x)
        l_rec = F.l1_loss(rec, x)
        l_sp = z.abs().mean()
        l_sm = F.l1_loss(z[:, 1:], z[:, :-1])
        loss = l_rec + args.lambda_sparsity * l_sp + args.lambda_smooth * l_sm
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (it + 1) % 200 == 0 or it + 1 == args.movement_iters:
            logger.log({"movement/recons": l_rec.item(), "movement/sparsity": l_sp.item(),
                        "movement/smooth": l_sm.item()}, step=it + 1)
            bar.set_postfix(rec=f"{l_rec.item():.4f}")
    if dist.is_main:
        atomic_torch_save({"movement_encoder": enc.state_dict(), "movement_decoder": dec.state_dict(),
                           "iters": args.movement_iters}, path)
    dist.barrier()


@torch.no_grad()
def validate(model, loader, args, device, rng) -> dict:
    model.eval()
    pos_sum, neg_sum, n, texts, motions = 0.0, 0.0, 0, [], []
    for word_embs, pos_ohot, _, sent_len, motion, m_len, _ in loader:
        t = model.encode_text(word_embs.to(device).float(), pos_ohot.to(device).float(), sent_len)
        m = model.encode_motion(motion.to(device).float(), m_len)
        pos, neg = contrastive_loss(t, m, args.negative_margin, rng)
        pos_sum += pos.item()
        neg_sum += neg.item()
        n += 1
        texts.append(t.cpu().numpy())
        motions.append(m.cpu().numpy())
    out = {"val/loss": (pos_sum + neg_sum) / max(n, 1), "val/pos": pos_sum / max(n, 1), "val/neg": neg_sum / max(n, 1)}
    if texts:  # R-precision among min(32, N) candidates (the validation split may be small)
        texts, motions = np.concatenate(texts), np.concatenate(motions)
        bs = min(args.batch_size, len(texts))  # top-k needs k candidates: a split of 2 texts reports top-1/2
        mm = matching_metrics(texts, motions, batch_size=bs, top_k=min(3, bs))
        out.update({f"val/{k}": v for k, v in mm.items() if k != "n"})
    return out


def main(argv=None):
    args = get_args(argv)
    run_dir = Path(args.checkpoints_dir) / args.dataname / "text_mot_match"
    model_dir = run_dir / "model"
    if args.resume and not (model_dir / "latest.tar").is_file() and not (run_dir / "movement_autoencoder.tar").is_file():
        raise SystemExit(f"--resume: nothing to resume in {run_dir} (drop --resume to start a new run)")
    dist, device = setup_process(args)
    spec = get_spec(args.dataname)
    # every input read before the run folder is touched and before the movement autoencoder trains
    wv = WordVectorizer(args.glove_dir)
    mean, std = load_mean_std(args.data_root, dim=spec.feature_dim)
    for split in sorted({"train", args.val_split}):
        if not (Path(args.data_root) / f"{split}.txt").is_file():
            raise SystemExit(f"--data-root {args.data_root}: split file {split}.txt not found")
    prepare_run_dir(run_dir, resume=args.resume, overwrite=args.overwrite, dist=dist)
    if dist.is_main:
        model_dir.mkdir(parents=True, exist_ok=True)
    dist.barrier()

    std = apply_feat_bias(std, args.feat_bias)
    if dist.is_main:
        atomic_save_npy(run_dir / "meta" / "mean.npy", mean.astype(np.float32))
        atomic_save_npy(run_dir / "meta" / "std.npy", std.astype(np.float32))
    opt_fields = {"name": "text_mot_match", "dataset_name": args.dataname,
                  "checkpoints_dir": str(Path(args.checkpoints_dir)), "unit_length": 4, "dim_word": 300,
                  "dim_pos_ohot": 15, **dims(args), "max_text_len": 20, "max_motion_length": 196,
                  "batch_size": args.batch_size, "lr": args.lr, "negative_margin": args.negative_margin,
                  "feat_bias": args.feat_bias, "data_root": args.data_root, "glove_dir": args.glove_dir,
                  "seed": args.seed}
    if dist.is_main:
        write_opt_file(run_dir / "opt.txt", opt_fields)

    model = TextMotionEvaluator(dim_pose=spec.feature_dim, **dims(args)).to(device)
    logger = make_logger(dist, run_dir, config=vars(args), use_wandb=args.wandb, run_name="evaluator")
    t0 = time.time()
    train_movement(model, args, mean, std, device, run_dir, logger)
    t_movement = time.time() - t0
    model.movement_encoder.eval()
    for p in model.movement_encoder.parameters():
        p.requires_grad_(False)

    readers = {split: HumanML3DReader(args.data_root, split, args.dataname, progress=not args.no_progress)
               for split in sorted({"train", args.val_split})}
    train_ds = Text2MotionEvalDataset(readers["train"], wv, mean, std, dataname=args.dataname, seed=args.seed)
    val_ds = Text2MotionEvalDataset(readers[args.val_split], wv, mean, std, dataname=args.dataname, seed=args.seed + 1)
    bs_val = min(args.batch_size, len(val_ds))
    opt_text = torch.optim.Adam(model.text_encoder.parameters(), lr=args.lr)
    opt_motion = torch.optim.Adam(model.motion_encoder.parameters(), lr=args.lr)
    start_epoch, best = 0, {"val/loss": float("inf")}
    rng = np.random.default_rng(args.seed)
    if args.resume and (model_dir / "latest.tar").is_file():
        ckpt = load_checkpoint(model_dir / "latest.tar")
        model.load_finest(ckpt, str(model_dir / "latest.tar"))
        opt_text.load_state_dict(ckpt["opt_text_encoder"])
        opt_motion.load_state_dict(ckpt["opt_motion_encoder"])
        start_epoch = int(ckpt["epoch"]) + 1
        best = {"val/loss": float(ckpt.get("best_val_loss", float("inf")))}
        rng = np.random.default_rng([args.seed, start_epoch])
        torch.set_rng_state(ckpt["torch_rng"])
        print(f"resumed from {model_dir / 'latest.tar'} at epoch {start_epoch}")

    it = 0
    # multi-process: one DDP wrapper per trained encoder (the movement encoder is frozen here)
    text_fwd, motion_fwd = dist.wrap(model.text_encoder), dist.wrap(model.motion_encoder)
    pin = args.pin_memory and device.type == "cuda"
    bar = tqdm(range(start_epoch, args.max_epoch), desc="text-motion match", disable=args.no_progress or not dist.is_main,
               dynamic_ncols=True)
    for epoch in bar:
        model.text_encoder.train()
        model.motion_encoder.train()
        loader = get_t2m_eval_loader(train_ds, batch_size=args.batch_size, seed=args.seed * 1000 + epoch,
                                     num_workers=args.num_workers, shard=(dist.rank, dist.world_size), pin_memory=pin)
        sums = {"pos": 0.0, "neg": 0.0, "n": 0}
        for word_embs, pos_ohot, _, sent_len, motion, m_len, _ in loader:
            adapt_threads()
            motion = motion.to(device, non_blocking=True).float()
            t = text_fwd(word_embs.to(device).float(), pos_ohot.to(device).float(), sent_len)
            with torch.no_grad():
                movements = model.movement_encoder(motion[..., :-4])
            m = motion_fwd(movements, torch.as_tensor(m_len).to("cpu", torch.int64) // model.unit_length)
            pos, neg = contrastive_loss(t, m, args.negative_margin, rng)
            loss = pos + neg
            opt_text.zero_grad(set_to_none=True)
            opt_motion.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.text_encoder.parameters(), args.grad_clip)
            torch.nn.utils.clip_grad_norm_(model.motion_encoder.parameters(), args.grad_clip)
            opt_text.step()
            opt_motion.step()
            sums["pos"] += pos.item()
            sums["neg"] += neg.item()
            sums["n"] += 1
            it += 1
        train_stats = dist.mean_dict({"train/pos": sums["pos"] / max(sums["n"], 1),
                                      "train/neg": sums["neg"] / max(sums["n"], 1)})
        if not dist.is_main:  # rank 0 validates and writes; the others wait for the next epoch
            dist.barrier()
            continue
        val_loader = get_t2m_eval_loader(val_ds, batch_size=bs_val, seed=args.seed + epoch)
        metrics = validate(model, val_loader, args, device, np.random.default_rng([args.seed, epoch]))
        metrics.update({**train_stats, "epoch": epoch})
        logger.log(metrics, step=epoch + 1)
        state = {**model.finest_dict(), "opt_text_encoder": opt_text.state_dict(),
                 "opt_motion_encoder": opt_motion.state_dict(), "epoch": epoch, "iter": it}
        if metrics["val/loss"] < best["val/loss"]:
            best = {"val/loss": metrics["val/loss"], "epoch": epoch,
                    **{k: v for k, v in metrics.items() if k.startswith("val/R_")}}
            atomic_torch_save(state, model_dir / "finest.tar")
        atomic_torch_save({**state, "best_val_loss": best["val/loss"], "torch_rng": torch.get_rng_state()},
                          model_dir / "latest.tar")
        bar.set_postfix(val_loss=f"{metrics['val/loss']:.3f}", top1=f"{metrics.get('val/R_precision_top1', 0):.3f}")
        dist.barrier()
    train_time = time.time() - t0
    if dist.enabled:
        sums = dist.weights_checksums(list(model.parameters()))
        if not dist.is_main:
            return {"rank": dist.rank, "checksums": sums}
        atomic_write_json(run_dir / "distributed.json", {**dist.describe(), "checksums": sums,
                                                         "in_sync": len(set(sums)) == 1})

    # real-motion R-precision of the finest model on the evaluation split
    report = {"train_seconds": round(train_time, 1), "movement_seconds": round(t_movement, 1), "best": best}
    if (model_dir / "finest.tar").is_file():
        from utils.eval_t2m import evaluate_real_motion
        wrapper = EvaluatorWrapper(run_dir / "opt.txt", device=device)
        try:
            res = evaluate_real_motion(wrapper, args.data_root, wv, split=args.eval_split, replications=3,
                                       seed=args.seed, dataname=args.dataname)
        except ValueError as exc:  # e.g. a split smaller than one batch of 32
            report["real_motion"] = {"error": str(exc)}
            print(f"real-motion evaluation on {args.eval_split} skipped: {exc}")
        else:
            report["real_motion"] = res
            logger.log({f"{args.eval_split}/{k}": v["mean"] for k, v in res.items()})
            print(f"real motion on {args.eval_split} (3 replications): "
                  + ", ".join(f"{k} {v['mean']:.3f}" for k, v in res.items()))
    atomic_write_json(run_dir / "train_report.json", report)
    logger.close()
    return report


if __name__ == "__main__":
    main()
