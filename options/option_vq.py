"""Command-line options of train_vq.py (T2M-GPT option names; original-release-options.md §1.3).

Defaults follow the T2M-GPT README recipe (batch 256, SmoothL1, velocity weight 0.5, 300k
iterations with the lr drop at 200k, weight decay 0); where the original option file used other
values they are named in the help text. The codebook size is 512 in every parser of this project.
"""
from __future__ import annotations

import argparse


def add_vq_arch_args(parser: argparse.ArgumentParser):
    """VQ-VAE architecture flags, shared with every script that builds or loads a VQ-VAE."""
    g = parser.add_argument_group("VQ-VAE architecture")
    g.add_argument("--nb-code", type=int, default=512, help="codebook size (number of <Motion_i> tokens)")
    g.add_argument("--code-dim", type=int, default=512, help="codebook vector size (= --output-emb-width)")
    g.add_argument("--output-emb-width", type=int, default=512, help="encoder output channels")
    g.add_argument("--down-t", type=int, default=2, help="stride-2 downsampling stages (unit length 2^down_t)")
    g.add_argument("--stride-t", type=int, default=2, help="temporal conv stride")
    g.add_argument("--width", type=int, default=512, help="channel width")
    g.add_argument("--depth", type=int, default=3, help="residual blocks per stage")
    g.add_argument("--dilation-growth-rate", type=int, default=3, help="dilations growth^0..growth^(depth-1), reversed")
    g.add_argument("--vq-act", type=str, default="relu", choices=["relu", "silu", "gelu"], help="activation in the residual blocks")
    g.add_argument("--vq-norm", type=str, default=None, choices=[None, "LN", "GN", "BN"], help="norm in the residual blocks")
    g.add_argument("--quantizer", type=str, default="ema_reset", choices=["ema_reset", "ema", "reset", "orig"], help="quantizer type")
    g.add_argument("--mu", type=float, default=0.99, help="EMA decay of the codebook")
    g.add_argument("--beta", type=float, default=1.0, help="commitment weight inside the 'orig'/'reset' quantizer loss")
    return parser


def add_common_args(parser: argparse.ArgumentParser):
    g = parser.add_argument_group("run")
    g.add_argument("--dataname", type=str, default="t2m", choices=["t2m", "kit"], help="HumanML3D (t2m) or KIT-ML")
    g.add_argument("--data-root", type=str, default=None,
                   help="dataset folder (default ./dataset/HumanML3D or ./dataset/KIT-ML)")
    g.add_argument("--out-dir", type=str, default="experiments", help="output root")
    g.add_argument("--exp-name", type=str, default="vq", help="run folder under --out-dir")
    g.add_argument("--seed", type=int, default=123, help="seeds torch, numpy and the data order")
    g.add_argument("--device", type=str, default="auto", help="'auto' (cuda if available), 'cpu', 'cuda:0', ...")
    g.add_argument("--num-workers", type=int, default=0, help="DataLoader workers")
    g.add_argument("--wandb", action="store_true", help="also log to Weights & Biases (WANDB_MODE=offline works)")
    g.add_argument("--no-progress", action="store_true", help="disable progress bars")
    return parser


def default_data_root(dataname: str) -> str:
    return {"t2m": "./dataset/HumanML3D", "kit": "./dataset/KIT-ML"}[dataname]


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train the motion VQ-VAE (T2M-GPT recipe)",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_common_args(p)
    from utils.device import add_performance_args
    add_performance_args(p)
    # the T2M-GPT recipe trains in fp32: bf16 nearest-code distances change the code assignments
    p.set_defaults(bf16=False)
    g = p.add_argument_group("data")
    g.add_argument("--batch-size", type=int, default=256, help="training batch (option_vq.py default was 128)")
    g.add_argument("--window-size", type=int, default=64, help="random training crop length in frames")
    g.add_argument("--meta-dir", type=str, default=None,
                   help="folder with mean.npy/std.npy (or Mean.npy/Std.npy) used to normalise; default: the data root's "
                        "Mean.npy/Std.npy divided by --feat-bias on the root and foot-contact groups. Copied to <run>/meta/")
    g.add_argument("--feat-bias", type=float, default=25.0,
                   help="divide the root [0:4] and foot-contact std of the data root's Std.npy by this factor, as the "
                        "VQVAEV3/evaluator meta statistics of T2M-GPT do (§1.10b); 1 = plain z-scoring. Ignored with --meta-dir")
    g = p.add_argument_group("optimisation")
    g.add_argument("--total-iter", type=int, default=300000, help="training iterations (warm-up included)")
    g.add_argument("--warm-up-iter", type=int, default=1000, help="linear warm-up iterations")
    g.add_argument("--lr", type=float, default=2e-4, help="peak learning rate (AdamW, betas 0.9/0.99)")
    g.add_argument("--lr-scheduler", type=int, nargs="+", default=[200000], help="MultiStep milestones (iterations)")
    g.add_argument("--gamma", type=float, default=0.05, help="lr decay factor at each milestone")
    g.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay (option_vq.py default was 0.01)")
    g.add_argument("--commit", type=float, default=0.02, help="commitment-loss weight")
    g.add_argument("--loss-vel", type=float, default=0.5, help="weight of the 'velocity' loss (SmoothL1 on the RIC positions)")
    g.add_argument("--recons-loss", type=str, default="l1_smooth", choices=["l1", "l2", "l1_smooth"], help="reconstruction loss")
    g.add_argument("--grad-clip", type=float, default=0.0, help="clip the gradient norm (0 = off)")
    g = p.add_argument_group("evaluation and checkpoints")
    g.add_argument("--print-iter", type=int, default=200, help="log training metrics every N iterations")
    g.add_argument("--eval-iter", type=int, default=1000, help="validate and checkpoint every N iterations")
    g.add_argument("--val-split", type=str, default="val", help="split used for validation")
    g.add_argument("--val-batch-size", type=int, default=32)
    g.add_argument("--val-max-clips", type=int, default=0, help="validate on at most N clips (0 = all)")
    g.add_argument("--evaluator-dir", type=str, default=None,
                   help="T2M evaluator (opt.txt or its folder): adds FID / R-precision of the reconstructions")
    g.add_argument("--glove-dir", type=str, default=None, help="word vectors for the evaluator (default <data-root>/glove)")
    g.add_argument("--resume-pth", type=str, default=None,
                   help="resume from a net_last.pth of this script (optimizer, schedule, iteration, RNG) or start "
                        "from the weights of a released {'net': ...} checkpoint")
    add_vq_arch_args(p)
    return p


def get_args(argv=None):
    args = get_args_parser().parse_args(argv)
    if args.data_root is None:
        args.data_root = default_data_root(args.dataname)
    return args
