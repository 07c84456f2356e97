#!/usr/bin/env python
"""Train the motion VQ-VAE tokenizer (T2M-GPT recipe, docs/method.md §2.3).

    python train_vq.py --data-root dataset/HumanML3D --exp-name VQVAE            # the published recipe
    python train_vq.py --data-root data/synthetic_h3d --exp-name vq_tiny \\
        --width 128 --code-dim 128 --output-emb-width 128 --batch-size 64 --total-iter 3000 \\
        --warm-up-iter 200 --lr-scheduler 2500 --eval-iter 500              # the embedded default

Writes to ``<out-dir>/<exp-name>/``: ``net_last.pth`` (resumable: optimizer, schedule,
iteration, RNG, EMA statistics), ``net_best_mpjpe.pth``, ``meta/{mean,std}.npy`` (the
normalisation the model was trained with), ``config.json``, ``metrics.jsonl``; with
``--evaluator-dir`` also FID / R-precision of the reconstructions and ``net_best_fid.pth``. Every
checkpoint holds ``{'net': state_dict, 'config': {...}}`` and is written atomically.
"""
from __future__ import annotations

import math
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

from dataset.dataset_VQ import VQMotionDataset  # noqa: E402
from dataset.humanml3d import HumanML3DReader, load_mean_std  # noqa: E402
from models.vqvae import HumanVQVAE, VQConfig, check_config, infer_config  # noqa: E402
from options.option_vq import get_args  # noqa: E402
from utils.distributed import setup_process  # noqa: E402
from utils.threads import adapt as adapt_threads  # noqa: E402
from utils.io import atomic_save_npy, atomic_torch_save, atomic_write_json, load_checkpoint, prepare_run_dir, run_dir  # noqa: E402
from utils.motion_process import apply_feat_bias, recover_from_ric  # noqa: E402
from utils.paramUtil import get_spec  # noqa: E402
from utils.run_logger import make_logger  # noqa: E402


# ---------------------------------------------------------------------------- losses
def recons_loss_fn(name: str):
    return {"l1": F.l1_loss, "l2": F.mse_loss, "l1_smooth": F.smooth_l1_loss}[name]


def ric_slice(joints_num: int) -> slice:
    """The T2M-GPT 'velocity' loss acts on dims 4 : 4 + (J-1)*3, the RIC joint positions."""
    return slice(4, 4 + (joints_num - 1) * 3)


def lr_lambda_factory(warm_up_iter: int, milestones, gamma: float):
    """lr factor at iteration ``it`` (0-based): linear warm-up, then a step decay at each milestone."""
    milestones = sorted(milestones)

    def f(it: int) -> float:
        if it < warm_up_iter:
            return (it + 1) / (warm_up_iter + 1)
        return gamma ** sum(it >= m for m in milestones)
    return f


# ---------------------------------------------------------------------------- validation
def joint_errors(x_raw: torch.Tensor, rec_raw: torch.Tensor, mask: torch.Tensor, joints_num: int):
    """Reconstruction error in joint space over the frames where ``mask`` (B, T) is 1: (sum over frames of
    the mean joint distance, the same root-aligned, number of frames), in the data's unit. Both inputs are
    raw (de-normalised) features; the joints come from ``recover_from_ric`` of each."""
    j_gt = recover_from_ric(x_raw, joints_num)
    j_rec = recover_from_ric(rec_raw, joints_num)
    per_frame = (j_gt - j_rec).norm(dim=-1).mean(-1)  # mean over joints
    rel = (j_gt - j_gt[..., :1, :]) - (j_rec - j_rec[..., :1, :])  # root-aligned
    return (float((per_frame * mask).sum()), float((rel.norm(dim=-1).mean(-1) * mask).sum()), int(mask.sum()))


class Validator:
    """Reconstruction on full validation clips (cropped to a multiple of the unit length, ≤196)."""

    def __init__(self, reader: HumanML3DReader, mean, std, spec, unit_length: int, batch_size: int,
                 max_clips: int = 0, device="cpu"):
        items = reader.items if not max_clips else reader.items[:max_clips]
        self.motions = []
        for it in items:
            T = min(it["length"], 196)
            T -= T % unit_length
            if T >= unit_length:
                self.motions.append(it["motion"][:T])
        if not self.motions:
            raise ValueError(f"no validation clip in {reader.root}")
        order = np.argsort([-len(m) for m in self.motions])  # similar lengths in one batch
        self.motions = [self.motions[i] for i in order]
        self.mean = torch.as_tensor(mean, dtype=torch.float32, device=device)
        self.std = torch.as_tensor(std, dtype=torch.float32, device=device)
        self.spec, self.bs, self.device = spec, batch_size, device
        self.scale_mm = 1000.0 if spec.unit == "m" else 1.0

    @torch.no_grad()
    def __call__(self, model: HumanVQVAE) -> dict:
        was_training = model.training
        model.eval()
        err_sum, rel_sum, n_frames, codes_all = 0.0, 0.0, 0, []
        feat_err = 0.0
        for s in range(0, len(self.motions), self.bs):
            chunk = self.motions[s:s + self.bs]
            lengths = torch.tensor([len(m) for m in chunk], device=self.device)
            Tm = int(lengths.max())
            x = torch.zeros(len(chunk), Tm, chunk[0].shape[1], device=self.device)
            for i, m in enumerate(chunk):
                x[i, :len(m)] = torch.from_numpy(m).to(self.device)
            xn = (x - self.mean) / self.std
            codes = model.encode(xn, lengths)
            rec = model.decode(codes, lengths // model.unit_length) * self.std + self.mean
            mask = (torch.arange(Tm, device=self.device)[None] < lengths[:, None]).float()
            e, r, n = joint_errors(x, rec, mask, self.spec.joints_num)
            err_sum, rel_sum, n_frames = err_sum + e, rel_sum + r, n_frames + n
            feat_err += float((((xn - (rec - self.mean) / self.std) ** 2).mean(-1) * mask).sum())
            codes_all.append(codes[codes >= 0])
        codes_all = torch.cat(codes_all)
        counts = torch.bincount(codes_all, minlength=model.nb_code).float()
        p = counts / counts.sum()
        perplexity = float(torch.exp(-(p * torch.log(p + 1e-10)).sum()))
        if was_training:
            model.train()
        return {"val/mpjpe_mm": err_sum / n_frames * self.scale_mm,
                "val/mpjpe_root_aligned_mm": rel_sum / n_frames * self.scale_mm, "val/feature_mse": feat_err / n_frames,
                "val/perplexity": perplexity, "val/code_usage": float((counts > 0).float().mean()),
                "val/clips": len(self.motions)}


class EvaluatorValidator:
    """FID / R-precision / MM-Dist of VQ reconstructions in the evaluator's space (T2M-GPT
    ``evaluation_vqvae``): GT items of the t2m evaluation protocol, each clip encoded and decoded
    at its own cropped length, GT and reconstruction embedded from the same batches. ``embed_pass``
    is one such pass (eval_vq.py repeats it over seeded replications on the test split)."""

    def __init__(self, wrapper, data_root, glove_dir, split, dataname, vq_mean, vq_std, seed, device,
                 dataset=None, batch_size: int = 32):
        from utils.eval_t2m import build_eval_dataset
        from utils.word_vectorizer import WordVectorizer
        self.wrapper = wrapper
        self.ds = dataset if dataset is not None else build_eval_dataset(
            wrapper, data_root, WordVectorizer(glove_dir), split, dataname, seed)
        self.vq_mean = torch.as_tensor(vq_mean, dtype=torch.float32, device=device)
        self.vq_std = torch.as_tensor(vq_std, dtype=torch.float32, device=device)
        self.seed, self.device, self.batch_size = seed, device, batch_size

    @torch.no_grad()
    def embed_pass(self, model: HumanVQVAE | None, seed, joints_num: int | None = None, progress=None) -> dict:
        """One pass over the GT loader seeded with ``seed`` (order, captions, crops): text, GT-motion and
        reconstruction embeddings as numpy arrays, rows matched. ``model=None`` reconstructs nothing (the
        reconstruction is the input: a sanity check). With ``joints_num`` also the joint errors
        (:func:`joint_errors` sums, frames) and the codes used. A crop that is not a multiple of the VQ unit
        length is reconstructed (and embedded) at the largest multiple that fits."""
        from dataset.dataset_TM_eval import get_t2m_eval_loader
        w = self.wrapper
        texts, gts, recs, codes_all = [], [], [], []
        err = rel = 0.0
        frames = 0
        loader = get_t2m_eval_loader(self.ds, batch_size=self.batch_size, seed=seed)
        for word_embs, pos_ohot, _, sent_len, motion, m_len, _ in (progress(loader) if progress else loader):
            motion, m_len = motion.to(self.device).float(), m_len.to(self.device)
            raw = motion * w._std_t + w._mean_t
            if model is None:
                rec, r_len = raw, m_len
            else:
                unit = model.unit_length
                r_len = m_len - m_len % unit
                T = motion.shape[1] - motion.shape[1] % unit
                codes = model.encode((raw[:, :T] - self.vq_mean) / self.vq_std, r_len)
                out = model.decode(codes, r_len // unit) * self.vq_std + self.vq_mean
                rec = out if out.shape[1] == raw.shape[1] else torch.cat(
                    [out, raw.new_zeros(raw.shape[0], raw.shape[1] - out.shape[1], raw.shape[2])], 1)
                codes_all.append(codes[codes >= 0].cpu())
            mask = (torch.arange(motion.shape[1], device=self.device)[None] < r_len[:, None]).float()
            rec_n = w.normalize(rec) * mask[..., None]
            t, m = w.get_co_embeddings(word_embs, pos_ohot, sent_len, motion, m_len)
            texts.append(t.cpu().numpy())
            gts.append(m.cpu().numpy())
            recs.append(w.get_motion_embeddings(rec_n, r_len).cpu().numpy())
            if joints_num:
                e, r, n = joint_errors(raw, rec, mask, joints_num)
                err, rel, frames = err + e, rel + r, frames + n
        if not texts:
            raise ValueError(f"the evaluation split has fewer than {self.batch_size} items (one full batch)")
        out = {"texts": np.concatenate(texts), "gts": np.concatenate(gts), "recs": np.concatenate(recs)}
        if joints_num:
            out.update({"joint_error_sum": err, "joint_error_root_aligned_sum": rel, "frames": frames,
                        "codes": torch.cat(codes_all) if codes_all else torch.zeros(0, dtype=torch.long)})
        return out

    @torch.no_grad()
    def __call__(self, model: HumanVQVAE) -> dict:
        from utils.metrics import calculate_fid, matching_metrics
        was_training = model.training
        model.eval()
        out = self.embed_pass(model, self.seed)
        if was_training:
            model.train()
        texts, gts, recs = out["texts"], out["gts"], out["recs"]
        mm = matching_metrics(texts, recs)
        return {"val/fid": calculate_fid(gts, recs), "val/top1": mm["R_precision_top1"],
                "val/top3": mm["R_precision_top3"], "val/mm_dist": mm["MM_Dist"],
                "val/top1_real": matching_metrics(texts, gts)["R_precision_top1"]}


# ---------------------------------------------------------------------------- checkpoints
def save_checkpoint(path, model, cfg, optimizer=None, scheduler=None, it=None, best=None, args=None):
    ckpt = {"net": model.state_dict(), "config": cfg.to_dict()}
    if optimizer is not None:
        ckpt.update({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "iter": int(it),
                     "torch_rng": torch.get_rng_state(), "quantizer_state": model.vqvae.quantizer.extra_state_dict(),
                     "best": dict(best or {})})
        if torch.cuda.is_available():
            ckpt["cuda_rng"] = torch.cuda.get_rng_state_all()
    if args is not None:
        ckpt["args"] = {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool, list, type(None)))}
    atomic_torch_save(ckpt, path)


def batches(ds: VQMotionDataset, args, it_start: int, rank: int = 0, pin_memory: bool = False):
    """Batch ``it`` is a pure function of (seed, rank, it): a resumed run sees exactly the batches an
    uninterrupted run would (rank 0 draws what a single process draws; other ranks use offset seeds).
    A background thread prepares the next batch while the model trains."""
    from concurrent.futures import ThreadPoolExecutor

    seed = args.seed + 7919 * rank

    def make(it):
        b = torch.from_numpy(ds.batch_at(seed, it, args.batch_size))
        return b.pin_memory() if pin_memory else b

    with ThreadPoolExecutor(max_workers=1) as pool:
        nxt = pool.submit(make, it_start)
        for it in range(it_start, args.total_iter):
            adapt_threads()  # between steps: as many CPU threads as other processes leave free
            batch = nxt.result()
            if it + 1 < args.total_iter:
                nxt = pool.submit(make, it + 1)
            yield it, batch


def main(argv=None):
    args = get_args(argv)
    exp_dir = run_dir(args.out_dir, args.exp_name)
    if args.resume_pth and not Path(args.resume_pth).is_file():
        raise SystemExit(f"--resume-pth {args.resume_pth}: no such checkpoint")
    dist, device = setup_process(args)
    spec = get_spec(args.dataname)
    prepare_run_dir(exp_dir, resume=bool(args.resume_pth), overwrite=args.overwrite, dist=dist)
    dist.barrier()

    # normalisation statistics
    if args.meta_dir:
        mean, std = load_mean_std(args.meta_dir, dim=spec.feature_dim)
    else:
        mean, std = load_mean_std(args.data_root, dim=spec.feature_dim)
        std = apply_feat_bias(std, args.feat_bias)
    if dist.is_main:
        atomic_save_npy(exp_dir / "meta" / "mean.npy", mean.astype(np.float32))
        atomic_save_npy(exp_dir / "meta" / "std.npy", std.astype(np.float32))

    cfg = VQConfig.from_args(args, input_dim=spec.feature_dim)
    model = HumanVQVAE(cfg).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda_factory(args.warm_up_iter, args.lr_scheduler, args.gamma))
    start_it, best = 0, {}

    if args.resume_pth:
        ckpt = load_checkpoint(args.resume_pth, map_location="cpu")
        if "net" not in ckpt:
            raise ValueError(f"{args.resume_pth}: no 'net' entry (not a VQ-VAE checkpoint)")
        check_config(infer_config(ckpt["net"], cfg), cfg, args.resume_pth)
        model.load_state_dict(ckpt["net"], strict=True)
        model.vqvae.quantizer.mark_initialised()
        if "optimizer" in ckpt:  # a checkpoint of this script: continue where it stopped
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            model.vqvae.quantizer.load_extra_state_dict(ckpt["quantizer_state"])
            torch.set_rng_state(ckpt["torch_rng"])
            if "cuda_rng" in ckpt and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
            start_it = int(ckpt["iter"]) + 1
            best = dict(ckpt.get("best", {}))
            print(f"resumed from {args.resume_pth} at iteration {start_it}")
        else:
            print(f"initialised from the weights of {args.resume_pth}")

    if dist.is_main:
        atomic_write_json(exp_dir / "config.json", {"args": vars(args), "vq_config": cfg.to_dict(), "device": str(device),
                                                    "distributed": dist.describe()})
    logger = make_logger(dist, exp_dir, config=vars(args), use_wandb=args.wandb, run_name=args.exp_name,
                         resume_step=start_it if start_it else None)
    # multi-process: DDP averages the gradients, the quantizer all-reduces its codebook statistics
    # (models/quantizers.py), --batch-size is per process
    train_model = dist.wrap(model)
    if args.torch_compile:
        train_model = torch.compile(train_model)

    train_ds = VQMotionDataset(args.data_root, split="train", window_size=args.window_size,
                               unit_length=cfg.unit_length, mean=mean, std=std, dataname=args.dataname,
                               progress=not args.no_progress)
    val_reader = HumanML3DReader(args.data_root, split=args.val_split, dataname=args.dataname, with_text=False,
                                 progress=not args.no_progress)
    validator = Validator(val_reader, mean, std, spec, cfg.unit_length, args.val_batch_size, args.val_max_clips, device)
    ev_validator = None
    if args.evaluator_dir:
        from models.evaluator_wrapper import EvaluatorWrapper
        glove = args.glove_dir or str(Path(args.data_root) / "glove")
        ev_validator = EvaluatorValidator(EvaluatorWrapper(args.evaluator_dir, device), args.data_root, glove,
                                          args.val_split, args.dataname, mean, std, args.seed, device)
    if dist.is_main:
        print(f"train windows from {len(train_ds)} clips, validation on {len(validator.motions)} clips; "
              f"model {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters on {device}"
              + (f", {dist.world_size} processes" if dist.enabled else ""))

    recons = recons_loss_fn(args.recons_loss)
    ric = ric_slice(spec.joints_num)
    model.train()
    if start_it >= args.total_iter:
        print(f"nothing to do: checkpoint is at iteration {start_it} >= --total-iter {args.total_iter}")
        return best
    bar = tqdm(total=args.total_iter, initial=start_it, desc="train_vq", disable=args.no_progress or not dist.is_main,
               dynamic_ncols=True)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16 and device.type == "cuda")
    acc = {"loss": 0.0, "recons": 0.0, "vel": 0.0, "commit": 0.0, "perplexity": 0.0, "n": 0}
    t_last, frames = time.time(), 0
    for it, batch in batches(train_ds, args, start_it, dist.rank, pin_memory=args.pin_memory and device.type == "cuda"):
        x = batch.to(device, non_blocking=True).float()
        with amp:
            pred, commit, perplexity = train_model(x)
        pred = pred.float()
        l_rec = recons(pred, x)
        l_vel = recons(pred[..., ric], x[..., ric])
        loss = l_rec + args.commit * commit + args.loss_vel * l_vel
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        optimizer.step()
        scheduler.step()
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"non-finite loss at iteration {it}; lower --lr or check the data normalisation")
        for k, v in (("loss", loss), ("recons", l_rec), ("vel", l_vel), ("commit", commit), ("perplexity", perplexity)):
            acc[k] += float(v.detach())
        acc["n"] += 1
        frames += x.shape[0] * x.shape[1] * dist.world_size
        bar.update(1)

        if (it + 1) % args.print_iter == 0 or it + 1 == args.total_iter:
            dt = time.time() - t_last
            rec = {f"train/{k}": acc[k] / acc["n"] for k in ("loss", "recons", "vel", "commit", "perplexity")}
            rec.update({"lr": optimizer.param_groups[0]["lr"], "train/frames_per_s": frames / max(dt, 1e-9)})
            rec = dist.mean_dict(rec)
            logger.log(rec, step=it + 1)
            bar.set_postfix(loss=f"{rec['train/loss']:.4f}", ppl=f"{rec['train/perplexity']:.0f}")
            acc = {k: 0.0 for k in acc} | {"n": 0}
            t_last, frames = time.time(), 0

        if ((it + 1) % args.eval_iter == 0 or it + 1 == args.total_iter) and not dist.is_main:
            dist.barrier()  # rank 0 validates and writes the checkpoints
        elif (it + 1) % args.eval_iter == 0 or it + 1 == args.total_iter:
            metrics = validator(model)
            if ev_validator is not None:
                metrics.update(ev_validator(model))
                if metrics["val/fid"] < best.get("fid", float("inf")):
                    best["fid"], best["fid_iter"] = metrics["val/fid"], it + 1
                    save_checkpoint(exp_dir / "net_best_fid.pth", model, cfg, args=args)
            logger.log(metrics, step=it + 1)
            if metrics["val/mpjpe_mm"] < best.get("mpjpe_mm", float("inf")):
                best.update({"mpjpe_mm": metrics["val/mpjpe_mm"], "iter": it + 1, "perplexity": metrics["val/perplexity"]})
                save_checkpoint(exp_dir / "net_best_mpjpe.pth", model, cfg, args=args)
            save_checkpoint(exp_dir / "net_last.pth", model, cfg, optimizer, scheduler, it, best, args)
            tqdm.write(f"[{it + 1}] val MPJPE {metrics['val/mpjpe_mm']:.1f} mm (root-aligned "
                       f"{metrics['val/mpjpe_root_aligned_mm']:.1f} mm), perplexity {metrics['val/perplexity']:.1f}, "
                       f"code usage {metrics['val/code_usage']:.2f} (best {best['mpjpe_mm']:.1f} mm @ {best['iter']})"
                       + (f", FID {metrics['val/fid']:.3f}, top-1 {metrics['val/top1']:.3f}" if ev_validator else ""))
            dist.barrier()
    bar.close()
    logger.close()
    if dist.enabled:
        sums = dist.weights_checksums(list(model.parameters()) + [model.vqvae.quantizer.codebook])
        if dist.is_main:
            atomic_write_json(exp_dir / "distributed.json", {**dist.describe(), "checksums": sums,
                                                             "in_sync": len(set(sums)) == 1})
    if dist.is_main:
        atomic_write_json(exp_dir / "best.json", best)
    return best


if __name__ == "__main__":
    main()
