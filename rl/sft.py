"""Supervised fine-tuning on chain-of-thought records (docs/method.md §5).

Records are tokenised once; batches of similar lengths are drawn in a shuffled order per epoch; the
loss is the region-weighted next-token cross-entropy (reasoning vs answer weights, optional per-sample
weights from the records).

Refine records (records with a ``plan``, ``prepare/build_cot.py --refine-per-record``) are encoded with
the plan in the prompt (``models.prompts.encode_example(..., plan=...)``: byte for byte the prompt of
Chain-of-Motion's rounds >= 2) and mixed in with ``--refine-ratio R``: an epoch has as many examples as
there are plain records, a fraction R of them refine examples, drawn afresh each epoch with the seed
(:func:`mix_indices`: the refine records without repetition while they last, then again; the plain
records without repetition). The number of steps per epoch does not depend on R. Writes ``motionllm_<task>_latest.pth`` (adapters + optimizer/epoch/RNG for
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
from models.prompts import encode_prompt
from rl.runtime import (check_run, finish_distributed, load_optimizer_state, load_policy, optimizer_state,
                        prepare_parallel, resolve_nb_code, setup_run)
from utils.io import atomic_write_json, load_checkpoint
from utils.run_logger import make_logger
from utils.threads import adapt as adapt_threads


def sample_weight(rec: dict) -> float:
    """The original release's per-record weight: ``sample_weight``, else ``reward``, else ``advantage``,
    else 1.0 (the CoT loader leaves absent fields as None, so each fallback is reached)."""
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
    """Token ids + regions for every record (done once); records that cannot fit are counted. A record
    with a ``plan`` (refine record) is encoded with the plan in its prompt, and ``--max-motion-len`` is
    extended by what the plan adds to the prompt, so its target is cut exactly like the plain record's."""
    encoded, weights, skipped = [], [], {"too_long": 0, "other_task": 0}
    for rec in records:
        if rec.get("task") not in (None, task):
            skipped["other_task"] += 1
            continue
        reasoning = (rec.get("reasoning") or "") if args.use_reasoning else ""
        plan, max_len = rec.get("plan") or None, args.max_motion_len
        if plan and max_len is not None:
            inp = dict(caption=rec["caption"] if task == "t2m" else None,
                       motion_codes=rec["motion_tokens"] if task == "m2t" else None)
            max_len += len(encode_prompt(model.tokenizer, task, plan=plan, **inp)) - \
                len(encode_prompt(model.tokenizer, task, **inp))
        e = model.encode(task, rec["caption"], rec["motion_tokens"], reasoning, rec.get("answer"), max_len, plan=plan)
        if e is None:
            skipped["too_long"] += 1
            continue
        encoded.append(e)
        weights.append(sample_weight(rec))
    return encoded, weights, skipped


def refine_count(n_plain: int, n_refine: int, ratio: float) -> int:
    """Refine examples per epoch: ``round(ratio * n)`` of the ``n`` examples of an epoch (``n`` = the plain
    records; all refine records when there are no plain ones); 0 without refine records or ratio 0."""
    if n_refine == 0 or ratio <= 0:
        return 0
    if n_plain == 0:
        return n_refine
    return round(ratio * n_plain)


def mix_indices(n_plain: int, n_refine: int, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of one epoch's examples into ``plain + refine`` (refine ones offset by ``n_plain``):
    ``n_plain`` examples (``n_refine`` when there are no plain records), :func:`refine_count` of them refine
    examples (without repetition while the refine records last, then again: upsampling), the rest plain
    records without repetition. Without refine examples: ``arange(n_plain)`` and ``rng`` is not used."""
    k = refine_count(n_plain, n_refine, ratio)
    if k == 0:
        return np.arange(n_plain)
    n = n_plain if n_plain else n_refine
    plain = np.sort(rng.choice(n_plain, n - k, replace=False)) if n > k else np.zeros(0, dtype=np.int64)
    reps = -(-k // n_refine)
    refine = np.concatenate([rng.permutation(n_refine) for _ in range(reps)])[:k]
    return np.concatenate([plain, n_plain + np.sort(refine)]).astype(np.int64)


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


def lr_factor(schedule: str, warmup: int, total: int, min_ratio: float = 0.0):
    """The lr multiplier of optimizer step s: a linear warm-up over ``warmup`` steps, then constant or decayed
    (cosine / linear) from 1 at the end of the warm-up to ``min_ratio`` at step ``total``."""
    if schedule not in ("constant", "cosine", "linear"):
        raise ValueError(f"--lr-schedule: unknown schedule {schedule!r} (constant, cosine, linear)")
    if not 0.0 <= min_ratio <= 1.0:
        raise ValueError(f"--min-lr-ratio must lie in [0, 1], got {min_ratio}")

    def factor(s: int) -> float:
        if warmup and s < warmup:
            return (s + 1) / (warmup + 1)
        if schedule == "constant":
            return 1.0
        t = min(1.0, (s - warmup) / max(1, total - warmup))
        decay = 0.5 * (1.0 + math.cos(math.pi * t)) if schedule == "cosine" else 1.0 - t
        return min_ratio + (1.0 - min_ratio) * decay
    return factor


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


def _split_refine(records: list) -> tuple:
    from dataset.dataset_cot import is_refine_record
    return [r for r in records if not is_refine_record(r)], [r for r in records if is_refine_record(r)]


def read_sft_records(args, task: str, nb_code: int) -> tuple:
    """(train records, load stats, validation records) from the CoT JSONL files: read and validated
    before the run folder and the backbone are touched, so a bad file costs nothing.
    ``--max-train-records N`` keeps the first N plain and the first N refine records."""
    from dataset.dataset_cot import load_cot_records
    ratio = getattr(args, "refine_ratio", 0.0) or 0.0
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"--refine-ratio must be in [0, 1], got {ratio}")
    filt = args.cot_task_filter or task
    records, stats = load_cot_records(args.cot_train_jsonl, nb_code=nb_code, task_filter=filt,
                                      skip_bad_records=args.skip_bad_records, return_stats=True)
    if args.max_train_records:
        plain, refine = _split_refine(records)
        records = plain[: args.max_train_records] + refine[: args.max_train_records]
    if not records:
        raise ValueError(f"no {task} records in {args.cot_train_jsonl} (load stats: {stats})")
    val_records = []
    if args.cot_val_jsonl:
        val_records = load_cot_records(args.cot_val_jsonl, nb_code=nb_code, task_filter=filt,
                                       skip_bad_records=args.skip_bad_records)
    return records, stats, val_records


class SFTData:
    """The encoded examples of a run: ``encoded`` = plain examples then refine examples (``weights`` alike),
    ``n_plain`` / ``n_refine``, the validation examples (already mixed, once, with the seed) and ``info``.
    :meth:`epoch_indices` gives an epoch's examples (:func:`mix_indices`)."""

    def __init__(self, encoded, weights, n_plain, n_refine, val_encoded, info, ratio, seed):
        self.encoded, self.weights, self.n_plain, self.n_refine = encoded, weights, n_plain, n_refine
        self.val_encoded, self.info, self.ratio, self.seed = val_encoded, info, ratio, seed

    @property
    def epoch_size(self) -> int:
        return self.n_plain if self.n_plain else self.n_refine

    def epoch_indices(self, epoch: int) -> np.ndarray:
        return mix_indices(self.n_plain, self.n_refine, self.ratio, np.random.default_rng([self.seed, epoch, 7]))


def _encode_mixed(model, records, task, args):
    plain, refine = _split_refine(records)
    enc_p, w_p, sk_p = encode_records(model, plain, task, args)
    enc_r, w_r, sk_r = [], [], {"too_long": 0, "other_task": 0}
    if refine and args.use_reasoning and getattr(args, "refine_ratio", 0.0) > 0:
        enc_r, w_r, sk_r = encode_records(model, refine, task, args)
    return enc_p, w_p, sk_p, enc_r, w_r, sk_r, len(refine)


def load_sft_data(model: MotionLLM, args, task: str, nb_code: int, read=None) -> SFTData:
    """The encoded training and validation examples from the CoT records (``read``: the output of
    :func:`read_sft_records`, read here when not given). Refine records are used only with
    ``--refine-ratio`` > 0 and ``--use-reasoning`` (without reasoning the model writes none, so Chain-of-Motion
    has no plan to pass on)."""
    records, stats, val_records = read if read is not None else read_sft_records(args, task, nb_code)
    ratio = float(getattr(args, "refine_ratio", 0.0) or 0.0)
    enc_p, w_p, skipped, enc_r, w_r, sk_r, n_ref_records = _encode_mixed(model, records, task, args)
    if not enc_p and not enc_r:
        raise ValueError(f"no usable {task} records in {args.cot_train_jsonl} (skipped: {skipped}, load stats: {stats})")
    if not enc_p and ratio == 0:
        raise ValueError(f"{args.cot_train_jsonl} holds only refine records (with a plan) and --refine-ratio is 0")
    data = SFTData(enc_p + enc_r, w_p + w_r, len(enc_p), len(enc_r), [], {}, ratio, args.seed)
    if val_records:
        v_p, _, _, v_r, _, _, _ = _encode_mixed(model, val_records, task, args)
        idx = mix_indices(len(v_p), len(v_r), ratio, np.random.default_rng([args.seed, 99991]))
        data.val_encoded = [(v_p + v_r)[i] for i in idx]
        val_refine = int((idx >= len(v_p)).sum())
    else:
        val_refine = 0
    per_epoch = refine_count(data.n_plain, data.n_refine, ratio)
    if n_ref_records and not enc_r:
        why = ("--refine-ratio 0" if ratio == 0 else "no --use-reasoning" if not args.use_reasoning
               else "none fits --max-motion-len")
        note = f"{n_ref_records} refine records not used ({why})"
    elif ratio > 0 and not n_ref_records:
        note = "no refine records (with a plan) in the training files: --refine-ratio has no effect"
    else:
        note = None
    lengths = [len(data.encoded[i].input_ids) for i in data.epoch_indices(0)]
    info = {"records": data.epoch_size, "skipped": skipped, "load_stats": stats, "val_records": len(data.val_encoded),
            "mean_tokens_per_example": float(np.mean(lengths)),
            "refine": {"ratio": ratio, "records_read": n_ref_records, "records_encoded": data.n_refine,
                       "skipped": sk_r, "examples_per_epoch": per_epoch,
                       "plain_examples_per_epoch": data.epoch_size - per_epoch, "val_examples": val_refine,
                       "note": note},
            "refine_examples": per_epoch}
    data.info = info
    return data


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
    checked = check_run(args)  # before the CoT files are read
    task = args.training_task
    nb_code = resolve_nb_code(args)
    read = read_sft_records(args, task, nb_code)
    device, exp_dir, dist, latest = setup_run(args, checked)
    best_path = exp_dir / f"motionllm_{task}_best.pth"
    model = load_policy(args, device, ckpt=latest if args.resume else args.init_ckpt, nb_code=nb_code)
    resume_state = load_checkpoint(latest) if args.resume else None
    model.set_task(task)
    model.model.train()
    prepare_parallel(model, dist, args)

    data = load_sft_data(model, args, task, nb_code, read)
    encoded, weights, val_encoded, info = data.encoded, data.weights, data.val_encoded, data.info
    lengths = [len(e.input_ids) for e in encoded]
    params = model.trainable_parameters()
    optimizer = torch.optim.AdamW(params, lr=args.learning_rate, weight_decay=args.weight_decay)
    n_batches = math.ceil(data.epoch_size / args.batch_size) // dist.world_size  # per process (see dist.shard)
    if n_batches == 0:
        raise ValueError(f"{data.epoch_size} records are fewer than --batch-size {args.batch_size} x {dist.world_size} "
                         "processes")
    steps_per_epoch = math.ceil(n_batches / args.grad_accum)
    factor = lr_factor(args.lr_schedule, args.warmup_steps, steps_per_epoch * args.epochs, args.min_lr_ratio)
    sched = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    start_epoch, step, best = 0, 0, float("inf")
    if resume_state is not None:
        load_optimizer_state(model, optimizer, resume_state["optimizer"], dist)
        sched.load_state_dict(resume_state["scheduler"])
        for g, base in zip(optimizer.param_groups, sched.base_lrs):  # this run's schedule (--epochs may have grown)
            g["lr"] = base * factor(sched.last_epoch)
        start_epoch, step = int(resume_state["epoch"]) + 1, int(resume_state["step"])
        best = float(resume_state.get("best", float("inf")))
        torch.set_rng_state(resume_state["torch_rng"])
        print(f"resumed {latest} at epoch {start_epoch} (step {step})")

    info.update(parameters=model.num_parameters(), device=str(device), nb_code=nb_code, distributed=dist.describe())
    if dist.is_main:
        atomic_write_json(exp_dir / "config.json", {"args": vars(args), "data": info})
        ref = info["refine"]
        print(f"SFT {task}: {data.epoch_size} examples per epoch ({info['skipped']}), {ref['examples_per_epoch']} of "
              f"them refine examples (--refine-ratio {ref['ratio']}, {ref['records_encoded']} refine records"
              + (f"; {ref['note']}" if ref["note"] else "") + f"), {info['parameters']['trainable']:,} trainable "
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
        ex = data.epoch_indices(epoch)  # this epoch's examples (plain + refine, see --refine-ratio)
        bl = [ex[b] for b in batches(len(ex), args.batch_size, [lengths[i] for i in ex], rng)]
        bl = dist.shard(bl)  # this rank's batches
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
            lr = optimizer.param_groups[0]["lr"]  # the lr of this step (logged below), before the schedule moves on
            optimizer.step()
            sched.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            bar.update(1)
            if step % args.print_iter == 0:
                rec = dist.mean_dict(meter.record(lr, epoch))
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
