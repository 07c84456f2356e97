"""Options of train_mllm.py (SFT and RLVR), with the original release's flag names
(``option_train.py``). Where the original defaults disagree across its option files this project uses
one value everywhere (``--nb-code`` 512; the VQ checkpoint's own codebook size wins when ``--vq-ckpt``
is given). Flags the original accepted but never used are accepted and documented as such; the GRPO
defaults are :class:`rl.grpo.GRPOConfig`'s.
"""
from __future__ import annotations

import argparse
from dataclasses import fields

from options.common import add_performance_args, add_run_args
from options.generation import add_com_args, add_format_mask_arg
from options.llm import add_llm_args, add_reasoning_args
from options.option_vq import add_vq_arch_args
from options.rewards import add_reward_args


def add_grpo_args(parser: argparse.ArgumentParser):
    from rl.grpo import GRPOConfig
    g = parser.add_argument_group("RLVR (GRPO)")
    g.add_argument("--rl-reference-ckpt", type=str, default=None,
                   help="MotionLLM checkpoint (the SFT model) loaded into the policy; its frozen copy is the reference")
    g.add_argument("--rl-epochs", type=int, default=3, help="GRPO epochs over the prompts")
    g.add_argument("--rl-batch-size", type=int, default=None, help="prompts per GRPO step (default --batch-size)")
    for f in fields(GRPOConfig):
        flag = f.metadata.get("flag")
        if not flag or f.type in (bool, "bool"):
            continue
        kw = {"choices": ["grpo", "token", "dr_grpo"]} if flag == "rl_loss_norm" else {}
        g.add_argument("--" + flag.replace("_", "-"), type=type(f.default), default=f.default, help=f.metadata["help"],
                       **kw)
    g.add_argument("--disable-rl-component-norm", dest="rl_component_norm", action="store_false",
                   help="normalise only the total reward within a group (default: each component)")
    parser.set_defaults(rl_component_norm=GRPOConfig.component_norm)
    g.add_argument("--rollout-engine", type=str, default="hf", choices=["hf", "vllm"],
                   help="GRPO rollout generation: Hugging Face generate, or a colocated vLLM engine (pip install vllm; "
                        "single process; weights synced after every step)")
    g.add_argument("--vllm-gpu-memory-utilization", type=float, default=0.3)
    g.add_argument("--rl-metrics-jsonl", type=str, default=None, help="also write per-step RL metrics here")
    g.add_argument("--rl-max-prompts", type=int, default=0, help="use at most N prompts per epoch (0 = all)")
    add_format_mask_arg(g)
    return g


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train MotionLLM (SFT on CoT data, RLVR with GRPO)",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = add_run_args(p, exp_name="test")
    g.add_argument("--train-stage", type=str, default="sft", choices=["sft", "rlvr"], help="training stage")
    g.add_argument("--training-task", type=str, default="t2m", choices=["t2m", "m2t"])
    g.add_argument("--resume", action="store_true", help="continue from the run's latest checkpoint")
    g.add_argument("--init-ckpt", type=str, default=None,
                   help="start from the adapters of a MotionLLM checkpoint (e.g. the t2m SFT model for m2t)")
    g.add_argument("--print-iter", type=int, default=20, help="log every N optimizer steps")
    g.add_argument("--eval-iter", type=int, default=0, help="also validate every N optimizer steps (0: once per epoch)")
    add_llm_args(p)
    add_reasoning_args(p)
    g = p.add_argument_group("SFT schedule")
    g.add_argument("--learning-rate", type=float, default=1e-4, help="AdamW lr over LoRA + new token rows (SFT and RLVR)")
    g.add_argument("--weight-decay", type=float, default=0.0)
    g.add_argument("--warmup-steps", type=int, default=0)
    g.add_argument("--lr-schedule", type=str, default="constant", choices=["constant", "cosine", "linear"],
                   help="SFT learning rate after warm-up: constant (the original release), or decayed over the run's "
                        "optimizer steps to --min-lr-ratio x the lr")
    g.add_argument("--min-lr-ratio", type=float, default=0.0, help="final lr / --learning-rate of a decayed schedule")
    g.add_argument("--batch-size", type=int, default=6)
    g.add_argument("--grad-accum", type=int, default=1, help="gradient accumulation steps")
    g.add_argument("--max-grad-norm", type=float, default=1.0, help="gradient clipping (SFT and RLVR; 0 = off)")
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
    add_grpo_args(p)
    add_com_args(p, training=True)
    add_reward_args(p)
    g = p.add_argument_group("data")
    g.add_argument("--dataname", type=str, default="t2m", choices=["t2m", "kit"])
    g.add_argument("--cot-train-jsonl", type=str, nargs="+", default=None, help="CoT training records (JSONL)")
    g.add_argument("--cot-val-jsonl", type=str, nargs="+", default=None, help="CoT validation records (JSONL)")
    g.add_argument("--cot-task-filter", type=str, default=None, help="keep rows whose task matches (rows without task pass)")
    g.add_argument("--refine-ratio", type=float, default=0.25,
                   help="SFT: fraction in [0, 1] of each epoch's examples that are refine examples (records with a "
                        "'plan', written by prepare/build_cot.py --refine-per-record), encoded with the plan in the "
                        "prompt as Chain-of-Motion's rounds >= 2 use it; drawn afresh each epoch with --seed, the "
                        "epoch size stays the number of plain records; 0 = none; needs --use-reasoning. RLVR never "
                        "uses refine records as prompts")
    g.add_argument("--cot-num-workers", type=int, default=0,
                   help="accepted for compatibility; no effect (records are tokenised once, in memory)")
    g.add_argument("--skip-bad-records", action="store_true", help="skip and count malformed CoT lines")
    g.add_argument("--max-train-records", type=int, default=0, help="use at most N records (0 = all)")
    add_vq_arch_args(p, from_checkpoint=True)
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
