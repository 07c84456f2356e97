#!/usr/bin/env python
"""Train MotionLLM: SFT on chain-of-thought records and RLVR with GRPO (morl-method.md §1–5).

    python train_mllm.py --train-stage sft --training-task t2m --cot-train-jsonl X --use-reasoning \\
        --exp-name morl_sft_t2m
    python train_mllm.py --train-stage rlvr --training-task t2m --cot-train-jsonl X --use-reasoning \\
        --rl-reference-ckpt experiments/morl_sft_t2m/motionllm_t2m_best.pth --vq-ckpt VQ --exp-name morl_rlvr_t2m

Writes ``<out-dir>/<exp-name>/``: ``motionllm_<task>_latest.pth`` (adapters + new token rows +
config; also optimizer/epoch/RNG for ``--resume``), ``motionllm_<task>_best.pth`` (lowest
validation loss, or training loss without ``--cot-val-jsonl``), ``peft_<task>/`` (a standard peft
adapter folder with the extended tokenizer), ``metrics.jsonl`` and ``config.json``.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from models.mllm import MLLMConfig, MotionLLM  # noqa: E402
from utils.io import atomic_write_json, load_checkpoint  # noqa: E402
from utils.distributed import setup_process  # noqa: E402
from utils.run_logger import make_logger  # noqa: E402


def resolve_nb_code(args) -> int:
    if args.vq_ckpt:
        from models.vqvae import load_vq
        nb = load_vq(args.vq_ckpt).nb_code
        if nb != args.nb_code:
            print(f"--nb-code set to {nb} from the VQ checkpoint {args.vq_ckpt}")
        return nb
    return args.nb_code


def build_config(args, nb_code: int) -> MLLMConfig:
    return MLLMConfig(llm_backbone=args.llm_backbone, nb_code=nb_code, shared_adapter=args.shared_adapter,
                      lora_r={"t2m": args.lora_r_t2m, "m2t": args.lora_r_m2t},
                      lora_alpha={"t2m": args.lora_alpha_t2m, "m2t": args.lora_alpha_m2t},
                      lora_dropout=args.lora_dropout, trust_remote_code=args.trust_remote_code)


def sample_weight(rec: dict) -> float:
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
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16 and device.type == "cuda"):
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


def setup_run(args):
    """Processes, seed, device, task and the run folder shared by both stages. Every rank uses the same
    seed (identical initial weights); a multi-process run takes its device from accelerate."""
    dist, device = setup_process(args)
    exp_dir = Path(args.out_dir) / args.exp_name
    if dist.is_main:
        exp_dir.mkdir(parents=True, exist_ok=True)
    dist.barrier()
    if dist.enabled:
        print(f"rank {dist.rank}/{dist.world_size} on {device} ({dist.backend})")
    return device, args.training_task, exp_dir, dist


def prepare_parallel(model: MotionLLM, dist, args):
    """DDP over the processes (default) or FSDP2 sharding of the backbone (``--fsdp``), then the optional
    ``torch.compile``. Call once the task, reference adapter and checkpoint weights are in place."""
    if getattr(args, "fsdp", False) and dist.enabled:
        model.enable_fsdp(dist, bf16=args.bf16)
    else:
        if getattr(args, "fsdp", False):
            print("--fsdp ignored: a single process (launch with torchrun / accelerate launch)")
        model.enable_data_parallel(dist)
    if args.torch_compile:
        model.enable_compile()


def optimizer_state(model: MotionLLM, optimizer, dist) -> dict:
    """The optimizer state to checkpoint (gathered to full tensors under FSDP: every rank calls)."""
    if dist.fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict
        return get_optimizer_state_dict(model.model, optimizer,
                                        options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return optimizer.state_dict()


def load_optimizer_state(model: MotionLLM, optimizer, state: dict, dist):
    if dist.fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict
        set_optimizer_state_dict(model.model, optimizer, state, options=StateDictOptions(full_state_dict=True))
    else:
        optimizer.load_state_dict(state)


def finish_distributed(model: MotionLLM, dist, exp_dir: Path) -> dict:
    """Gather a checksum of every rank's trainable weights (they must be identical) into
    ``distributed.json`` (rank 0)."""
    if not dist.enabled:
        return {}
    sums = dist.weights_checksums(model.trainable_parameters())
    info = {**dist.describe(), "trainable_checksums": sums, "in_sync": len(set(sums)) == 1}
    if dist.is_main:
        atomic_write_json(exp_dir / "distributed.json", info)
        if not info["in_sync"]:
            print(f"WARNING: ranks ended with different weights: {sums}")
    dist.barrier()
    return info


def run_sft(args):
    from dataset.dataset_cot import load_cot_records

    device, task, exp_dir, dist = setup_run(args)
    latest, best_path = exp_dir / f"motionllm_{task}_latest.pth", exp_dir / f"motionllm_{task}_best.pth"
    nb_code = resolve_nb_code(args)

    resume_state = None
    if args.resume and latest.is_file():
        model = MotionLLM.from_checkpoint(latest, device=device, llm_backbone=args.llm_backbone, dtype=args.dtype,
                                          gradient_checkpointing=args.gradient_checkpointing,
                          attn_implementation=args.attn_implementation)
        resume_state = load_checkpoint(latest)
    elif args.init_ckpt:
        model = MotionLLM.from_checkpoint(args.init_ckpt, device=device, llm_backbone=args.llm_backbone,
                                          dtype=args.dtype, gradient_checkpointing=args.gradient_checkpointing,
                          attn_implementation=args.attn_implementation)
    else:
        model = MotionLLM(build_config(args, nb_code), device=device, dtype=args.dtype,
                          gradient_checkpointing=args.gradient_checkpointing,
                          attn_implementation=args.attn_implementation)
    if model.cfg.nb_code != nb_code:
        raise ValueError(f"the checkpoint has {model.cfg.nb_code} motion tokens but the VQ-VAE/--nb-code has {nb_code}")
    model.set_task(task)
    model.model.train()
    prepare_parallel(model, dist, args)

    filt = args.cot_task_filter or task
    records, stats = load_cot_records(args.cot_train_jsonl, nb_code=nb_code, task_filter=filt,
                                      skip_bad_records=args.skip_bad_records, return_stats=True)
    if args.max_train_records:
        records = records[: args.max_train_records]
    encoded, weights, skipped = encode_records(model, records, task, args)
    if not encoded:
        raise ValueError(f"no usable {task} records in {args.cot_train_jsonl} (skipped: {skipped}, load stats: {stats})")
    val_encoded = []
    if args.cot_val_jsonl:
        val_records = load_cot_records(args.cot_val_jsonl, nb_code=nb_code, task_filter=filt,
                                       skip_bad_records=args.skip_bad_records)
        val_encoded, _, _ = encode_records(model, val_records, task, args)
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

    info = {"records": len(encoded), "skipped": skipped, "load_stats": stats, "val_records": len(val_encoded),
            "parameters": model.num_parameters(), "device": str(device), "nb_code": nb_code,
            "mean_tokens_per_example": float(np.mean(lengths))}
    info["distributed"] = dist.describe()
    if dist.is_main:
        atomic_write_json(exp_dir / "config.json", {"args": vars(args), "data": info})
        print(f"SFT {task}: {len(encoded)} examples ({skipped}), {info['parameters']['trainable']:,} trainable of "
              f"{info['parameters']['total']:,} parameters, {steps_per_epoch} steps/epoch on {device}"
              + (f", {dist.world_size} processes (batch {args.batch_size} per process)" if dist.enabled else ""))
    logger = make_logger(dist, exp_dir, config=vars(args), use_wandb=args.wandb, run_name=args.exp_name)

    bar = tqdm(total=steps_per_epoch * (args.epochs - start_epoch), desc=f"sft {task}",
               disable=args.no_progress or not dist.is_main, dynamic_ncols=True)
    acc_stats = {"loss": 0.0, "acc": 0.0, "answer_acc": 0.0, "tokens": 0, "n": 0}
    t_last = time.time()
    epoch_loss = float("inf")
    for epoch in range(start_epoch, args.epochs):
        rng = np.random.default_rng([args.seed, epoch])
        ep_loss, ep_tok = 0.0, 0
        bl = dist.shard(batches(len(encoded), args.batch_size, lengths, rng))  # this rank's batches
        for bi, idx in enumerate(bl):
            sync = (bi + 1) % args.grad_accum == 0 or bi + 1 == len(bl)
            sw = None
            if args.use_sample_weight:
                sw = transform_weights(torch.tensor([weights[i] for i in idx], dtype=torch.float32), args)
            batch = model.collate([encoded[i] for i in idx], sw)
            with dist.no_sync(model.forward_module, skip=not sync):  # all-reduce once per optimizer step
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16 and device.type == "cuda"):
                    out = model.sft_loss(batch, args.reasoning_weight, args.motion_weight)
                (out["loss"] / args.grad_accum).backward()
            k = out["tokens"]
            for key in ("acc", "answer_acc"):
                acc_stats[key] += out[key] * k
            acc_stats["loss"] += out["loss"].item() * k
            acc_stats["tokens"] += int(batch["attention_mask"].sum())
            acc_stats["n"] += k
            ep_loss += out["loss"].item() * k
            ep_tok += k
            if sync:
                if args.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_(params, args.max_grad_norm)
                optimizer.step()
                sched.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                bar.update(1)
                if step % args.print_iter == 0:
                    dt = time.time() - t_last
                    n = max(acc_stats["n"], 1)
                    rec = {"train/loss": acc_stats["loss"] / n, "train/acc": acc_stats["acc"] / n,
                           "train/answer_acc": acc_stats["answer_acc"] / n, "train/tokens_per_s": acc_stats["tokens"] / dt,
                           "lr": optimizer.param_groups[0]["lr"], "epoch": epoch}
                    rec = dist.mean_dict(rec)
                    rec["train/tokens_per_s"] *= dist.world_size  # throughput of all processes
                    logger.log(rec, step=step)
                    bar.set_postfix(loss=f"{rec['train/loss']:.3f}", acc=f"{rec['train/acc']:.2f}")
                    acc_stats = {k2: 0 for k2 in acc_stats}
                    t_last = time.time()
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


class RewardAdapter:
    """GRPO reward callback on top of :class:`rewards.composite.CompositeReward`: builds the reward
    batch (prompt caption for t2m, reference caption and input codes for m2t) and returns the raw
    reward components; the trainer normalises them per group."""

    def __init__(self, composite):
        self.composite = composite
        self.last_stats: dict = {}

    def __call__(self, task, prompts, outputs):
        G = len(outputs) // max(len(prompts), 1)
        caps, codes = [], []
        for rec in prompts:
            caps += [rec["caption"] if task == "t2m" else (rec.get("answer") or rec["caption"])] * G
            codes += [rec["motion_tokens"] if task == "m2t" else None] * G
        batch = self.composite.make_batch(task, [o["text"] for o in outputs], captions=caps,
                                          input_codes=codes if task == "m2t" else None)
        score = self.composite.score(batch, G)
        self.last_stats = score.stats
        return score.components


class ComScorer:
    """Chain-of-Motion ranking during rollouts: the 'com' composite on the model inputs only
    (t2m: the prompt caption; m2t: the input motion codes) — never the reference caption."""

    def __init__(self, composite):
        self.composite = composite

    def __call__(self, task, inputs, outputs):
        batch = self.composite.make_batch(task, [o["text"] for o in outputs],
                                          captions=list(inputs) if task == "t2m" else None,
                                          input_codes=list(inputs) if task == "m2t" else None)
        return self.composite.score(batch, len(outputs)).total  # ranking uses the raw weighted total


def run_rlvr(args):
    """GRPO from an SFT checkpoint (morl-method.md §4); checkpoints ``motionllm_rlvr_epoch_<n>.pth``."""
    from dataset.dataset_cot import load_cot_records
    from rewards.factory import build_rewards
    from rl.grpo import GRPOConfig, GRPOTrainer

    device, task, exp_dir, dist = setup_run(args)
    latest = exp_dir / "motionllm_rlvr_latest.pth"
    model = MotionLLM.from_checkpoint(args.rl_reference_ckpt, device=device, llm_backbone=None, dtype=args.dtype,
                                      gradient_checkpointing=args.gradient_checkpointing,
                          attn_implementation=args.attn_implementation)
    model.set_task(task)
    model.add_reference(task)  # frozen copy of the SFT adapter = the reference policy
    resume_state = load_checkpoint(latest) if args.resume and latest.is_file() else None
    if resume_state is not None:  # weights before wrapping/sharding
        model.load_adapter_state(model.cfg.adapter_name(task), resume_state["adapters"][model.cfg.adapter_name(task)])
    prepare_parallel(model, dist, args)
    nb_code = model.cfg.nb_code
    vq = None
    if args.vq_ckpt:
        from models.vqvae import load_vq_with_stats
        vq = load_vq_with_stats(args.vq_ckpt, device)
        if vq[0].nb_code != nb_code:
            raise ValueError(f"--vq-ckpt has {vq[0].nb_code} codes but the policy was trained with {nb_code}")
    elif task == "t2m":
        raise SystemExit("--train-stage rlvr --training-task t2m needs --vq-ckpt (rewards decode the motion)")
    reward = build_rewards(args, task, vq=vq, device=device)
    cfg = GRPOConfig(group_size=args.rl_group_size, clip_eps=args.rl_clip_eps, kl_coef=args.rl_kl_coef,
                     inner_epochs=args.rl_inner_epochs, temperature=args.rl_temperature, top_p=args.rl_top_p,
                     max_new_tokens=args.rl_max_new_tokens, loss_norm=args.rl_loss_norm,
                     component_norm=args.rl_component_norm, micro_batch_size=args.rl_micro_batch_size,
                     max_grad_norm=args.max_grad_norm, com_rounds=max(1, args.com_refine_steps))
    reward_fn = RewardAdapter(reward)
    com_scorer = None
    if cfg.com_rounds > 1:
        com = build_rewards(args, task, vq=vq, device=device, purpose="com", decoder=getattr(reward, "decoder", None))
        com_scorer = ComScorer(com)
    trainer = GRPOTrainer(model, reward_fn, cfg, weights=reward.weights, lr=args.learning_rate, com_scorer=com_scorer,
                          dist=dist)
    if args.rollout_engine == "vllm":
        from models.vllm_engine import VLLMEngine
        model.use_engine(VLLMEngine(model, task, work_dir=exp_dir / "vllm", seed=args.seed,
                                    gpu_memory_utilization=args.vllm_gpu_memory_utilization))
    trainer.optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=args.learning_rate, weight_decay=0.0)
    start_epoch, step = 0, 0
    if resume_state is not None:
        state = resume_state
        load_optimizer_state(model, trainer.optimizer, state["optimizer"], dist)
        start_epoch, step = int(state["epoch"]) + 1, int(state["step"])
        torch.set_rng_state(state["torch_rng"])
        print(f"resumed {latest} at epoch {start_epoch}")
    if dist.enabled:  # same initial weights everywhere; different sampling streams per rank
        torch.manual_seed(args.seed + 1000 * dist.rank + step)

    records = load_cot_records(args.cot_train_jsonl, nb_code=nb_code, task_filter=args.cot_task_filter or task,
                               skip_bad_records=args.skip_bad_records)
    if not records:
        raise ValueError(f"no {task} prompts in {args.cot_train_jsonl}")
    if dist.is_main:
        atomic_write_json(exp_dir / "config.json", {"args": vars(args), "prompts": len(records),
                                                    "rewards": reward.config(), "device": str(device),
                                                    "distributed": dist.describe()})
    logger = make_logger(dist, exp_dir, config=vars(args), use_wandb=args.wandb, run_name=args.exp_name)
    extra = None
    if args.rl_metrics_jsonl and dist.is_main:
        extra = make_logger(dist, Path(args.rl_metrics_jsonl).parent, filename=Path(args.rl_metrics_jsonl).name)
    n_prompts = min(len(records), args.rl_max_prompts) if args.rl_max_prompts else len(records)
    # --rl-batch-size prompts per process and step; a step's global batch is split over the ranks
    global_batch = args.rl_batch_size * dist.world_size
    steps_per_epoch = n_prompts // global_batch + (1 if n_prompts % global_batch >= dist.world_size else 0)
    bar = tqdm(total=steps_per_epoch * (args.rl_epochs - start_epoch), desc=f"rlvr {task}",
               disable=args.no_progress or not dist.is_main, dynamic_ncols=True)
    history = []
    for epoch in range(start_epoch, args.rl_epochs):
        reward.on_epoch_start()
        order = np.random.default_rng([args.seed, epoch]).permutation(len(records))[:n_prompts]
        ep = []
        for s in range(0, global_batch * steps_per_epoch, global_batch):
            batch = [records[i] for i in dist.shard(order[s:s + global_batch])]
            st = trainer.step(task, batch)
            step += 1
            st.update({"epoch": epoch, **{k: v for k, v in reward_fn.last_stats.items() if k not in st}})
            st = dist.mean_dict(st)  # rewards and losses averaged over the processes' prompts
            logger.log(st, step=step)
            if extra is not None:
                extra.log(st, step=step)
            ep.append(st)
            bar.update(1)
            bar.set_postfix(reward=f"{st['reward/total_mean']:.3f}", kl=f"{st['kl']:.4f}")
        keys = {k for e in ep for k, v in e.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        summary = {k: float(np.mean([e[k] for e in ep if k in e])) for k in sorted(keys)}
        history.append(summary)
        logger.log({f"epoch/{k}": v for k, v in summary.items()}, step=step)
        model.save(exp_dir / f"motionllm_rlvr_epoch_{epoch}.pth", {"epoch": epoch, "step": step, "task": task},
                   write=dist.is_main)
        model.save(latest, {"optimizer": optimizer_state(model, trainer.optimizer, dist), "epoch": epoch,
                            "step": step, "task": task, "torch_rng": torch.get_rng_state()}, write=dist.is_main)
        dist.barrier()
    bar.close()
    logger.close()
    return {"epochs": history, "steps": step, "distributed": finish_distributed(model, dist, exp_dir)}


def main(argv=None):
    from options.option_train import get_args
    args = get_args(argv)
    return run_rlvr(args) if args.train_stage == "rlvr" else run_sft(args)


if __name__ == "__main__":
    main()
