"""Options of train_mllm.py (SFT and RLVR), with the original release's flag names
(original-release-options.md §1.1). Where the original defaults disagree across its option files
this project uses one value everywhere (``--nb-code`` 512; the VQ checkpoint's own codebook size
wins when ``--vq-ckpt`` is given). Flags the original accepted but never used are accepted and
documented as such.
"""
from __future__ import annotations

import argparse

from models.mllm import DEFAULT_BACKBONE


def add_llm_args(p: argparse.ArgumentParser):
    g = p.add_argument_group("LLM and LoRA")
    g.add_argument("--llm-backbone", type=str, default=DEFAULT_BACKBONE,
                   help="hub id or local directory of a causal LM (e.g. one from prepare/make_tiny_backbone.py)")
    g.add_argument("--lora-r-t2m", type=int, default=64)
    g.add_argument("--lora-alpha-t2m", type=int, default=64)
    g.add_argument("--lora-r-m2t", type=int, default=32)
    g.add_argument("--lora-alpha-m2t", type=int, default=32)
    g.add_argument("--lora-dropout", type=float, default=0.1)
    g.add_argument("--shared-adapter", action="store_true", help="one LoRA adapter for both tasks (t2m ranks)")
    g.add_argument("--trust-remote-code", action="store_true", help="allow custom model code from the backbone repo")
    g.add_argument("--dtype", type=str, default="auto", choices=["auto", "bf16", "fp16", "fp32"],
                   help="backbone weights dtype; auto = bf16 on CUDA, fp32 on CPU")
    g.add_argument("--gradient-checkpointing", action="store_true")
    g.add_argument("--nb-code", type=int, default=512, help="codebook size (overridden by the --vq-ckpt codebook)")
    g.add_argument("--vq-ckpt", type=str, default=None, help="VQ-VAE checkpoint (its meta/ folder beside it)")
    return p


def add_reasoning_args(p: argparse.ArgumentParser):
    g = p.add_argument_group("MoRL targets")
    g.add_argument("--use-reasoning", action="store_true", help="train/generate the CoT reasoning (else an empty think block)")
    g.add_argument("--reasoning-weight", type=float, default=1.0, help="loss weight of reasoning and tag tokens")
    g.add_argument("--motion-weight", type=float, default=1.0, help="loss weight of answer tokens (motion or caption)")
    g.add_argument("--max-motion-len", type=int, default=256,
                   help="max tokens of prompt + target; the reasoning is truncated first, the answer never")
    g.add_argument("--max-text-len", type=int, default=256, help="accepted for compatibility; unused (as in the original)")
    return p


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train MotionLLM (SFT on CoT data)",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("run")
    g.add_argument("--device", type=str, default="auto", help="'auto', 'cpu', 'cuda:0', ...")
    g.add_argument("--train-stage", type=str, default="sft", choices=["sft", "rlvr"], help="training stage")
    g.add_argument("--training-task", type=str, default="t2m", choices=["t2m", "m2t"])
    g.add_argument("--out-dir", type=str, default="experiments")
    g.add_argument("--exp-name", type=str, default="test")
    g.add_argument("--seed", type=int, default=123)
    g.add_argument("--resume", action="store_true", help="continue from <run>/motionllm_<task>_latest.pth")
    g.add_argument("--init-ckpt", type=str, default=None,
                   help="start from the adapters of a MotionLLM checkpoint (e.g. the t2m SFT model for m2t)")
    g.add_argument("--wandb", action="store_true")
    g.add_argument("--no-progress", action="store_true")
    g.add_argument("--print-iter", type=int, default=20, help="log every N optimizer steps")
    g.add_argument("--eval-iter", type=int, default=0, help="also validate every N optimizer steps (0: once per epoch)")
    add_llm_args(p)
    add_reasoning_args(p)
    g = p.add_argument_group("SFT schedule")
    g.add_argument("--learning-rate", type=float, default=1e-4, help="AdamW lr over LoRA + new token rows")
    g.add_argument("--weight-decay", type=float, default=0.0)
    g.add_argument("--warmup-steps", type=int, default=0)
    g.add_argument("--batch-size", type=int, default=6)
    g.add_argument("--grad-accum", type=int, default=1, help="gradient accumulation steps")
    g.add_argument("--max-grad-norm", type=float, default=1.0)
    g.add_argument("--epochs", type=int, default=None, help="overrides --epochs-t2m / --epochs-m2t")
    g.add_argument("--epochs-t2m", type=int, default=500)
    g.add_argument("--epochs-m2t", type=int, default=10)
    g.add_argument("--epochs-start-val", type=int, default=0, help="validate only after this epoch")
    g.add_argument("--epochs-val-interval", type=int, default=1)
    g.add_argument("--save-every-epochs", type=int, default=1)
    g.add_argument("--use-sample-weight", action="store_true", help="per-sample weights from sample_weight/reward/advantage")
    g.add_argument("--reward-clip", type=float, default=5.0)
    g.add_argument("--normalize-reward", action="store_true", help="z-normalise sample weights within the batch")
    g.add_argument("--min-sample-weight", type=float, default=0.05)
    g = p.add_argument_group("RLVR (GRPO)")
    g.add_argument("--rl-reference-ckpt", type=str, default=None,
                   help="MotionLLM checkpoint (the SFT model) loaded into the policy; its frozen copy is the reference")
    g.add_argument("--rl-epochs", type=int, default=3, help="GRPO epochs over the prompts")
    g.add_argument("--rl-group-size", type=int, default=8, help="samples per prompt (G)")
    g.add_argument("--rl-kl-coef", type=float, default=0.02, help="beta of the k3 KL to the reference")
    g.add_argument("--rl-clip-eps", type=float, default=0.2, help="PPO clip epsilon on the token ratio")
    g.add_argument("--disable-rl-component-norm", dest="rl_component_norm", action="store_false",
                   help="normalise only the total reward within a group (default: each component)")
    g.add_argument("--rl-inner-epochs", type=int, default=1, help="policy updates per rollout batch")
    g.add_argument("--rl-batch-size", type=int, default=None, help="prompts per GRPO step (default --batch-size)")
    g.add_argument("--rl-micro-batch-size", type=int, default=16, help="sequences per forward/backward")
    g.add_argument("--rl-temperature", type=float, default=1.0)
    g.add_argument("--rl-top-p", type=float, default=1.0)
    g.add_argument("--rl-max-new-tokens", type=int, default=200)
    g.add_argument("--rl-loss-norm", type=str, default="grpo", choices=["grpo", "token", "dr_grpo"])
    g.add_argument("--rollout-engine", type=str, default="hf", choices=["hf", "vllm"],
                   help="GRPO rollout generation: Hugging Face generate, or a colocated vLLM engine (pip install vllm; "
                        "single process; weights synced after every step)")
    g.add_argument("--vllm-gpu-memory-utilization", type=float, default=0.3)
    g.add_argument("--rl-metrics-jsonl", type=str, default=None, help="also write per-step RL metrics here")
    g.add_argument("--rl-max-prompts", type=int, default=0, help="use at most N prompts per epoch (0 = all)")
    g.add_argument("--com-refine-steps", type=int, default=0,
                   help="Chain-of-Motion rollouts: T rounds of --rl-group-size samples (group = G*T), rounds 2..T "
                        "refine the best plan ranked by the CoM scorer (the original default 2; here opt-in, 0/1 = "
                        "plain GRPO)")
    g.add_argument("--com-candidates", type=int, default=8, help="CoM candidates K (eval/demo; in training K = G)")
    from rewards.factory import add_reward_args
    add_reward_args(p)
    g = p.add_argument_group("data")
    g.add_argument("--dataname", type=str, default="t2m", choices=["t2m", "kit"])
    g.add_argument("--cot-train-jsonl", type=str, nargs="+", default=None, help="CoT training records (JSONL)")
    g.add_argument("--cot-val-jsonl", type=str, nargs="+", default=None, help="CoT validation records (JSONL)")
    g.add_argument("--cot-task-filter", type=str, default=None, help="keep rows whose task matches (rows without task pass)")
    g.add_argument("--cot-num-workers", type=int, default=0)
    g.add_argument("--skip-bad-records", action="store_true", help="skip and count malformed CoT lines")
    g.add_argument("--max-train-records", type=int, default=0, help="use at most N records (0 = all)")
    from utils.device import add_performance_args
    g = add_performance_args(p, llm=True)
    g.add_argument("--fsdp", action="store_true",
                   help="multi-process runs: shard the backbone with FSDP2 (fully_shard per decoder layer) instead of "
                        "replicating it with DDP, for backbones that do not fit one device")
    return p


def get_args(argv=None):
    args = get_args_parser().parse_args(argv)
    if args.cot_train_jsonl is None:
        raise SystemExit(f"train_mllm.py --train-stage {args.train_stage} needs --cot-train-jsonl "
                         "(build it with prepare/build_cot.py)")
    if args.train_stage == "rlvr" and not args.rl_reference_ckpt:
        raise SystemExit("train_mllm.py --train-stage rlvr needs --rl-reference-ckpt (the SFT checkpoint, e.g. "
                         "experiments/morl_sft_t2m/motionllm_t2m_best.pth)")
    if args.rl_batch_size is None:
        args.rl_batch_size = args.batch_size
    if args.epochs is None:
        args.epochs = args.epochs_t2m if args.training_task == "t2m" else args.epochs_m2t
    return args
