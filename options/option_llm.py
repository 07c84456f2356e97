"""Options of eval_mllm.py and demo.py (original flag names, original-release-options.md §1.2).

The LoRA/backbone flags of the original are accepted for compatibility; the architecture is read
from the checkpoint (``--llm-backbone`` overrides where the backbone lives). The codebook size comes
from the checkpoint and must match ``--vq-ckpt``.
"""
from __future__ import annotations

import argparse

from options.option_train import add_llm_args


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Evaluate MotionLLM (t2m / m2t), optionally with Chain-of-Motion",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("run")
    g.add_argument("--device", type=str, default="auto")
    g.add_argument("--seed", type=int, default=123)
    g.add_argument("--out-dir", type=str, default="experiments")
    g.add_argument("--exp-name", type=str, default=None, help="results folder (default: the checkpoint's folder)")
    g.add_argument("--no-progress", action="store_true")
    add_llm_args(p)
    p.set_defaults(llm_backbone=None)  # from the checkpoint unless given
    g = p.add_argument_group("evaluation")
    g.add_argument("--eval-task", type=str, default="t2m", choices=["t2m", "m2t"])
    g.add_argument("--eval-ckpt", type=str, default="ckpt/motionllm.pth")
    g.add_argument("--model-ckpt", type=str, default=None, help="alias of --eval-ckpt (demo)")
    g.add_argument("--dataname", type=str, default="t2m", choices=["t2m", "kit"])
    g.add_argument("--data-root", type=str, default=None, help="dataset folder (default ./dataset/HumanML3D|KIT-ML)")
    g.add_argument("--split", type=str, default="test")
    g.add_argument("--m2t-eval-split", type=str, default=None, help="alias of --split for m2t")
    g.add_argument("--evaluator-dir", type=str, default="checkpoints/t2m/Comp_v6_KLD005",
                   help="T2M evaluator for the metrics (opt.txt or its folder)")
    g.add_argument("--glove-dir", type=str, default="./glove")
    g.add_argument("--replications", type=int, default=20)
    g.add_argument("--batch-size", type=int, default=32, help="R-precision batch (32 in the protocol)")
    g.add_argument("--gen-batch-size", type=int, default=32, help="inputs per generate call")
    g.add_argument("--m2t-eval-batch-size", type=int, default=None, help="alias of --gen-batch-size for m2t")
    g.add_argument("--max-new-tokens", type=int, default=256)
    g.add_argument("--gen-engine", type=str, default="hf", choices=["hf", "vllm"],
                   help="generation backend: Hugging Face generate or vLLM (pip install vllm; merged adapter)")
    g.add_argument("--vllm-gpu-memory-utilization", type=float, default=0.5)
    g.add_argument("--greedy", action="store_true", help="greedy decoding for the main pass (default: sampling)")
    g.add_argument("--temperature", type=float, default=1.0)
    g.add_argument("--top-p", type=float, default=1.0)
    g.add_argument("--mm-num-samples", type=int, default=100, help="captions for multimodality (0 = skip)")
    g.add_argument("--mm-num-repeats", type=int, default=30)
    g.add_argument("--mm-num-times", type=int, default=10)
    g.add_argument("--diversity-times", type=int, default=300)
    g.add_argument("--max-items", type=int, default=0, help="evaluate at most N items (0 = all; quick checks)")
    g.add_argument("--m2t-convention", type=str, default="tm2t", choices=["tm2t", "motiongpt"])
    g.add_argument("--bertscore-model", type=str, default=None,
                   help="BERTScore model (hub id or path); default: the packaged MiniLM offline; 'roberta-large' = official")
    g.add_argument("--no-bertscore", action="store_true")
    g = p.add_argument_group("Chain-of-Motion")
    g.add_argument("--use-com", action="store_true")
    g.add_argument("--com-candidates", type=int, default=8)
    g.add_argument("--com-refine-steps", type=int, default=2, help="CoM rounds T")
    g.add_argument("--com-evaluator-dir", type=str, default=None,
                   help="a separately trained evaluator for the CoM scorer (default: --reward-dataset-opt-path, "
                        "else --evaluator-dir)")
    from rewards.factory import add_reward_args
    add_reward_args(p)
    return p


def get_args(argv=None):
    from options.option_vq import default_data_root
    args = get_args_parser().parse_args(argv)
    if args.model_ckpt:
        args.eval_ckpt = args.model_ckpt
    if args.m2t_eval_split and args.eval_task == "m2t":
        args.split = args.m2t_eval_split
    if args.m2t_eval_batch_size and args.eval_task == "m2t":
        args.gen_batch_size = args.m2t_eval_batch_size
    if args.data_root is None:
        args.data_root = default_data_root(args.dataname)
    return args
