"""RLVR: GRPO from an SFT checkpoint (docs/method.md §6). The policy starts from
``--rl-reference-ckpt``, whose frozen copy is the KL reference; checkpoints
``motionllm_rlvr_epoch_<n>.pth`` per epoch and ``motionllm_rlvr_latest.pth`` (+ optimizer/RNG) for
``--resume``; per-step metrics in ``metrics.jsonl``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from rl.grpo import GRPOConfig, GRPOTrainer
from rl.runtime import (check_run, finish_distributed, load_optimizer_state, load_policy, optimizer_state,
                        prepare_parallel, setup_run)
from utils.io import atomic_write_json, load_checkpoint
from utils.run_logger import make_logger


def load_reward_vq(args, nb_code: int, device, task: str):
    """(VQ-VAE, mean, std) for the rewards that decode motion; t2m needs it."""
    if not args.vq_ckpt:
        if task == "t2m":
            raise SystemExit("--train-stage rlvr --training-task t2m needs --vq-ckpt (rewards decode the motion)")
        return None
    from models.vqvae import load_vq_with_stats
    vq = load_vq_with_stats(args.vq_ckpt, device)
    if vq[0].nb_code != nb_code:
        raise ValueError(f"--vq-ckpt has {vq[0].nb_code} codes but the policy was trained with {nb_code}")
    return vq


def build_trainer(model, args, task: str, vq, device, dist, critic_check: dict):
    """The reward callback, the optional Chain-of-Motion scorer and the trainer. ``critic_check``: what
    :func:`rewards.critic.check_args_critic` found before anything loaded (config.json records both evaluators)."""
    from rewards.callbacks import GRPOReward, build_com_scorer
    from rewards.factory import build_rewards
    reward = build_rewards(args, task, vq=vq, device=device)
    reward.notes.update(judge=critic_check["judge"], judge_as_critic=critic_check["judge_as_critic"])
    cfg = GRPOConfig.from_args(args)
    com_scorer = None
    if cfg.com_rounds > 1:
        com_scorer, _ = build_com_scorer(args, task, vq, device, decoder=reward.decoder,
                                         use_reasoning=args.use_reasoning)
    trainer = GRPOTrainer(model, GRPOReward(reward), cfg, weights=reward.weights, com_scorer=com_scorer, dist=dist)
    return trainer, reward


def prompt_records(records: list) -> tuple:
    """RLVR's prompts: the plain CoT records. Refine records (with a ``plan``, for SFT's ``--refine-ratio``)
    are left out. Returns ``(prompts, number left out)``."""
    from dataset.dataset_cot import is_refine_record
    prompts = [r for r in records if not is_refine_record(r)]
    return prompts, len(records) - len(prompts)


def run_rlvr(args) -> dict:
    from dataset.dataset_cot import load_cot_records

    from rewards.critic import check_args_critic
    task = args.training_task
    checked = check_run(args)  # run folder and input files first
    # the critic inside the reward (t2m's consistency reward) is never the judge of the metrics (unless
    # --allow-judge-as-critic): checked before anything loads
    critic_check = check_args_critic(args, args.judge_evaluator_dir,
                                     "train_mllm.py --train-stage rlvr: the consistency reward",
                                     uses_evaluator=task == "t2m" and float(args.reward_align_weight) != 0.0)
    device, exp_dir, dist, latest = setup_run(args, checked)
    model = load_policy(args, device, ckpt=args.rl_reference_ckpt)
    model.use_format_mask = args.format_mask  # rollouts and GRPO log-probs alike
    model.set_task(task)
    model.add_reference(task)  # frozen copy of the SFT adapter = the reference policy
    resume_state = load_checkpoint(latest) if args.resume else None
    if resume_state is not None:  # weights before wrapping/sharding
        model.load_adapter_state(model.cfg.adapter_name(task), resume_state["adapters"][model.cfg.adapter_name(task)])
    prepare_parallel(model, dist, args)
    nb_code = model.cfg.nb_code
    vq = load_reward_vq(args, nb_code, device, task)
    trainer, reward = build_trainer(model, args, task, vq, device, dist, critic_check)
    if args.rollout_engine == "vllm":
        from models.vllm_engine import VLLMEngine
        model.use_engine(VLLMEngine(model, task, work_dir=exp_dir / "vllm", seed=args.seed,
                                    gpu_memory_utilization=args.vllm_gpu_memory_utilization))
    start_epoch, step = 0, 0
    if resume_state is not None:
        load_optimizer_state(model, trainer.optimizer, resume_state["optimizer"], dist)
        start_epoch, step = int(resume_state["epoch"]) + 1, int(resume_state["step"])
        torch.set_rng_state(resume_state["torch_rng"])
        print(f"resumed {latest} at epoch {start_epoch}")
    if dist.enabled:  # same initial weights everywhere; different sampling streams per rank
        torch.manual_seed(args.seed + 1000 * dist.rank + step)

    records = load_cot_records(args.cot_train_jsonl, nb_code=nb_code, task_filter=args.cot_task_filter or task,
                               skip_bad_records=args.skip_bad_records)
    records, n_refine = prompt_records(records)
    if not records:
        raise ValueError(f"no {task} prompts in {args.cot_train_jsonl}"
                         + (f" ({n_refine} refine records with a plan, not used as prompts)" if n_refine else ""))
    if dist.is_main:
        atomic_write_json(exp_dir / "config.json", {"args": vars(args), "prompts": len(records),
                                                    "refine_records_skipped": n_refine,
                                                    "rewards": reward.config(), "device": str(device),
                                                    "distributed": dist.describe()})
    resumed = step if resume_state is not None else None
    logger = make_logger(dist, exp_dir, config=vars(args), use_wandb=args.wandb, run_name=args.exp_name,
                         resume_step=resumed)
    extra = None
    if args.rl_metrics_jsonl and dist.is_main:
        extra = make_logger(dist, Path(args.rl_metrics_jsonl).parent, filename=Path(args.rl_metrics_jsonl).name,
                            resume_step=resumed)
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
            st.update({"epoch": epoch, **{k: v for k, v in trainer.reward_fn.last_stats.items() if k not in st}})
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
    logger.close()  # also draws metrics.png
    if extra is not None:
        extra.close()
    return {"epochs": history, "steps": step, "distributed": finish_distributed(model, dist, exp_dir)}
