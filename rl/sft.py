"""Supervised fine-tuning on chain-of-thought records (morl-method.md §3).

Records are tokenised once; batches of similar lengths are drawn in a shuffled order per epoch; the
loss is the region-weighted next-token cross-entropy (reasoning vs answer weights, optional per-sample
weights from the records). Writes ``motionllm_<task>_latest.pth`` (adapters + optimizer/epoch/RNG for
``--resume``), ``motionllm_<task>_best.pth`` (lowest validation loss, or training loss without
``--cot-val-jsonl``), ``peft_<task>/``, ``metrics.jsonl`` and ``config.json``.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
from tqdm import tqdm

from models.mllm import MotionLLM
from rl.runtime import (check_run, finish_distributed, load_optimizer_state, load_policy, optimizer_state,
                        prepare_parallel, resolve_nb_code, setup_run)
from utils.io import atomic_write_json, load_checkpoint
from utils.run_logger import make_logger
from utils.threads import adapt as adapt_threads


def sample_weight(rec: dict) -> float:
    """The original release's per-record weight: ``sample_weight``, else ``reward``, else ``advantage``."""
    for key in ("sample_weight", "reward", "advantage"):
        if rec.get(key) is not None:
            return float(rec[key])
    return 1.0


def transform_weights(w: torch.Tensor, args) -> torch.Tensor:
    w = w.clamp(-args.reward_clip, args.reward_clip)
    if args.normalize_reward and len(w) > 1:
        w = (w - w.mean()) / (w.std() + 1e-6)
    return w.clamp_min(args.min_sample_weight)


def encode_records(model: MotionLLM, records, task: str, args):
    """Token ids + regions for every record (done once); records that cannot fit are counted."""
    encoded, weights, skipped = [], [], {"too_long": 0, "other_task": 0}
    for rec in records:
        if rec.get("task") not in (None, task):
            skipped["other_task"] += 1
            continue
        reasoning = (rec.get("reasoning") or "") if args.use_reasoning else ""
        e = model.encode(task, rec["caption"], rec["motion_tokens"], reasoning, rec.get("answer"), args.max_motion_len)
        if e is None:
            skipped["too_long"] += 1
            continue
        encoded.append(e)
        weights.append(sample_weight(rec))
    return encoded, weights, skipped


def batches(n: int, batch_size: int, lengths, rng: np.random.Generator):
    """Shuffled batches of similar lengths (sort inside random chunks of 50 batches)."""
    order = rng.permutation(n)
    chunk = batch_size * 50
    out = []
    for s in range(0, n, chunk):
        part = order[s:s + chunk]
        part = part[np.argsort([lengths[i] for i in part], kind="stable")]
        out += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    return [out[i] for i in rng.permutation(len(out))]


def _autocast(args, device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16 and device.type == "cuda")


@torch.no_grad()
def evaluate_loss(model: MotionLLM, encoded, args, device, dist=None) -> dict:
    """Token-weighted validation loss/accuracy; with several processes each rank scores a shard and the
    sums are all-reduced (every rank gets the same numbers)."""
    model.model.eval()
    shard = dist is not None and dist.enabled and not dist.fsdp  # FSDP: every rank must run the same forwards
    if shard:
        encoded = dist.shard(encoded, drop_uneven=False)
    tot, n, acc, ans_acc = 0.0, 0, 0.0, 0.0
    for s in range(0, len(encoded), args.batch_size):
        batch = model.collate(encoded[s:s + args.batch_size])
        with _autocast(args, device):
            out = model.sft_loss(batch, args.reasoning_weight, args.motion_weight)
        k = out["tokens"]
        tot += out["loss"].item() * k
        acc += out["acc"] * k
        ans_acc += out["answer_acc"] * k
        n += k
    model.model.train()
    if shard:
        tot, acc, ans_acc, n = dist.sum_scalars(tot, acc, ans_acc, n)
    return {"val/loss": tot / max(n, 1), "val/acc": acc / max(n, 1), "val/answer_acc": ans_acc / max(n, 1)}


def read_sft_records(args, task: str, nb_code: int) -> tuple:
    """(train records, load stats, validation records) from the CoT JSONL files: read and validated
    before the run folder and the backbone are touched, so a bad file costs nothing."""
    from dataset.dataset_cot import load_cot_records
    filt = args.cot_task_filter or task
    records, stats = load_cot_records(args.cot_train_jsonl, nb_code=nb_code, task_filter=filt,
                                      skip_bad_records=args.skip_bad_records, return_stats=True)
    if args.max_train_records:
        records = records[: args.max_train_records]
    if not records:
        raise ValueError(f"no {task} records in {args.cot_train_jsonl} (load stats: {stats})")
    val_records = []
    if args.cot_val_jsonl:
        val_records = load_cot_records(args.cot_val_jsonl, nb_code=nb_code, task_filter=filt,
                                       skip_bad_records=args.skip_bad_records)
    return records, stats, val_records


def load_sft_data(model: MotionLLM, args, task: str, nb_code: int, read=None):
    """(train encoded, their sample weights, validation encoded, info) from the CoT records
    (``read``: the output of :func:`read_sft_records`, read here when not given)."""
    records, stats, val_records = read if read is not None else read_sft_records(args, task, nb_code)
    encoded, weights, skipped = encode_records(model, records, task, args)
    if not encoded:
        raise ValueError(f"no usable {task} records in {args.cot_train_jsonl} (skipped: {skipped}, load stats: {stats})")
    val_encoded = []
    if val_records:
        val_encoded, _, _ = encode_records(model, val_records, task, args)
    info = {"records": len(encoded), "skipped": skipped, "load_stats": stats, "val_records": len(val_encoded),
            "mean_tokens_per_example": float(np.mean([len(e.input_ids) for e in encoded]))}
    return encoded, weights, val_encoded, info


class _Meter:
    """Token-weighted running training statistics between two log lines."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.loss = self.acc = self.answer_acc = 0.0
        self.tokens = self.n = 0
        self.t0 = time.time()

    def add(self, out: dict, tokens_in_batch: int):
        k = out["tokens"]
        self.loss += out["loss"].item() * k
        self.acc += out["acc"] * k
        self.answer_acc += out["answer_acc"] * k
        self.tokens += tokens_in_batch
        self.n += k

    def record(self, lr: float, epoch: int) -> dict:
        n = max(self.n, 1)
        return {"train/loss": self.loss / n, "train/acc": self.acc / n, "train/answer_acc": self.answer_acc / n,
                "train/tokens_per_s": self.tokens / (time.time() - self.t0), "lr": lr, "epoch": epoch}


def run_sft(args) -> dict:
    check_run(args)  # before the CoT files are read
    task = args.training_task
    nb_code = resolve_nb_code(args)
    read = read_sft_records(args, task, nb_code)
    device, exp_dir, dist, latest = setup_run(args)
    best_path = exp_dir / f"motionllm_{task}_best.pth"
    model = load_policy(args, device, ckpt=latest if args.resume else args.init_ckpt, nb_code=nb_code)
    resume_state = load_checkpoint(latest) if args.resume else None
    model.set_task(task)
    model.model.train()
    prepare_parallel(model, dist, args)

    encoded, weights, val_encoded, info = load_sft_data(model, args, task, nb_code, read)
    lengths = [len(e.input_ids) for e in encoded]
    params = model.trainable_parameters()
    optimizer = torch.optim.AdamW(params, lr=args.learning_rate, weight_decay=args.weight_decay)
    n_batches = math.ceil(len(encoded) / args.batch_size) // dist.world_size  # per process (see dist.shard)
    if n_batches == 0:
        raise ValueError(f"{len(encoded)} records are fewer than --batch-size {args.batch_size} x {dist.world_size} "
                         "processes")
    steps_per_epoch = math.ceil(n_batches / args.grad_accum)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / (args.warmup_steps + 1)) if args.warmup_steps else 1.0)
    start_epoch, step, best = 0, 0, float("inf")
    if resume_state is not None:
        load_optimizer_state(model, optimizer, resume_state["optimizer"], dist)
        sched.load_state_dict(resume_state["scheduler"])
        start_epoch, step = int(resume_state["epoch"]) + 1, int(resume_state["step"])
        best = float(resume_state.get("best", float("inf")))
        torch.set_rng_state(resume_state["torch_rng"])
        print(f"resumed {latest} at epoch {start_epoch} (step {step})")

    info.update(parameters=model.num_parameters(), device=str(device), nb_code=nb_code, distributed=dist.describe())
    if dist.is_main:
        atomic_write_json(exp_dir / "config.json", {"args": vars(args), "data": info})
        print(f"SFT {task}: {len(encoded)} examples ({info['skipped']}), {info['parameters']['trainable']:,} trainable "
              f"of {info['parameters']['total']:,} parameters, {steps_per_epoch} steps/epoch on {device}"
              + (f", {dist.world_size} processes (batch {args.batch_size} per process)" if dist.enabled else ""))
    logger = make_logger(dist, exp_dir, config=vars(args), use_wandb=args.wandb, run_name=args.exp_name,
                         resume_step=step if resume_state is not None else None)

    bar = tqdm(total=steps_per_epoch * (args.epochs - start_epoch), desc=f"sft {task}",
               disable=args.no_progress or not dist.is_main, dynamic_ncols=True)
    meter = _Meter()
    epoch_loss = float("inf")
    for epoch in range(start_epoch, args.epochs):
        rng = np.random.default_rng([args.seed, epoch])
        ep_loss, ep_tok = 0.0, 0
        bl = dist.shard(batches(len(encoded), args.batch_size, lengths, rng))  # this rank's batches
        for bi, idx in enumerate(bl):
            adapt_threads()  # between steps: as many CPU threads as other processes leave free
            sync = (bi + 1) % args.grad_accum == 0 or bi + 1 == len(bl)
            sw = None
            if args.use_sample_weight:
                sw = transform_weights(torch.tensor([weights[i] for i in idx], dtype=torch.float32), args)
            batch = model.collate([encoded[i] for i in idx], sw)
            with dist.no_sync(model.forward_module, skip=not sync):  # all-reduce once per optimizer step
                with _autocast(args, device):
                    out = model.sft_loss(batch, args.reasoning_weight, args.motion_weight)
                (out["loss"] / args.grad_accum).backward()
            meter.add(out, int(batch["attention_mask"].sum()))
            ep_loss += out["loss"].item() * out["tokens"]
            ep_tok += out["tokens"]
            if not sync:
                continue
            if args.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(params, args.max_grad_norm)
            optimizer.step()
            sched.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            bar.update(1)
            if step % args.print_iter == 0:
                rec = dist.mean_dict(meter.record(optimizer.param_groups[0]["lr"], epoch))
                rec["train/tokens_per_s"] *= dist.world_size  # throughput of all processes
                logger.log(rec, step=step)
                bar.set_postfix(loss=f"{rec['train/loss']:.3f}", acc=f"{rec['train/acc']:.2f}")
                meter.reset()
            if args.eval_iter and step % args.eval_iter == 0 and val_encoded:
                logger.log(evaluate_loss(model, val_encoded, args, device, dist), step=step)
        ep_loss, ep_tok = dist.sum_scalars(ep_loss, ep_tok)
        epoch_loss = ep_loss / max(ep_tok, 1)
        metrics = {"epoch": epoch, "train/epoch_loss": epoch_loss}
        score = epoch_loss
        if val_encoded and epoch >= args.epochs_start_val and (epoch + 1) % args.epochs_val_interval == 0:
            metrics.update(evaluate_loss(model, val_encoded, args, device, dist))
            score = metrics["val/loss"]
        logger.log(metrics, step=step)
        # the same decisions on every rank (all-reduced numbers); every rank builds the state (FSDP gathers
        # it), rank 0 writes
        if score < best:
            best = score
            model.save(best_path, {"epoch": epoch, "step": step, "score": score, "task": task}, write=dist.is_main)
        if (epoch + 1) % args.save_every_epochs == 0 or epoch + 1 == args.epochs:
            model.save(latest, {"optimizer": optimizer_state(model, optimizer, dist), "scheduler": sched.state_dict(),
                                "epoch": epoch, "step": step, "best": best, "torch_rng": torch.get_rng_state(),
                                "task": task}, write=dist.is_main)
    bar.close()
    dist.barrier()  # rank 0's writes are done: every rank takes the same decision below (FSDP saves are collective)
    if not best_path.is_file():  # e.g. resumed after the last epoch
        model.save(best_path, {"epoch": args.epochs - 1, "step": step, "task": task}, write=dist.is_main)
    if dist.is_main and not dist.fsdp:
        model.export_peft(exp_dir / f"peft_{task}", adapters=[model.cfg.adapter_name(task)])
    elif dist.is_main:
        print(f"FSDP run: no peft export; the .pth checkpoints hold the adapters (MotionLLM.export_peft after "
              f"loading {best_path} in one process writes it)")
    logger.close()
    info["distributed"] = finish_distributed(model, dist, exp_dir) or info["distributed"]
    return {"best": best, "last_epoch_loss": epoch_loss, "steps": step, **info}
