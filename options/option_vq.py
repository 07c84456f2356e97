"""Options of train_vq.py (T2M-GPT option names; the original release's ``option_vq.py``) and the
VQ-VAE architecture group that every script building or loading a VQ-VAE shares.

Defaults follow the T2M-GPT README recipe (batch 256, SmoothL1, velocity weight 0.5, 300k
iterations with the lr drop at 200k, weight decay 0); where the original option file used other
values they are named in the help text. Architecture defaults are :class:`models.vqvae.VQConfig`'s
(one place); the codebook size is 512 in every parser of this project.
"""
from __future__ import annotations

import argparse

from options.common import add_compat_args, add_data_args, add_performance_args, add_run_args, fill_data_root

# T2M-GPT visualisation/resume leftovers that both original option files carried
_T2MGPT_LEFTOVERS = {"--resume-gpt": (str, None, None), "--results-dir": (str, "visual_results/", None),
                     "--visual-name": (str, "baseline", None), "--vis-gt": ("flag", None, None),
                     "--nb-vis": (int, 20, None)}
# the original option_vq.py also carried LLM options (the defaults are that file's, for --help; none of these
# flags is read)
VQ_SCRIPT_COMPAT = {"--use-reasoning": ("flag", None, None), "--reasoning-weight": (float, 1.0, None),
                    "--motion-weight": (float, 1.0, None), "--max-motion-len": (int, 200, None),
                    "--max-text-len": (int, 256, None), "--lora-r": (int, 32, None), "--lora-alpha": (int, 32, None),
                    "--lora-dropout": (float, 0.1, None), **_T2MGPT_LEFTOVERS}
# VQ training options that the original option_llm.py carried over (unused there)
VQ_TRAIN_COMPAT = {"--total-iter": (int, 200000, None), "--warm-up-iter": (int, 1000, None),
                   "--lr": (float, 2e-4, None), "--lr-scheduler": (int, [50000, 400000], "+"),
                   "--gamma": (float, 0.05, None), "--weight-decay": (float, 0.01, None),
                   "--commit": (float, 0.02, None), "--loss-vel": (float, 0.1, None),
                   "--recons-loss": (str, "l2", None), "--window-size": (int, 64, None),
                   "--resume-pth": (str, None, None), **_T2MGPT_LEFTOVERS}


def add_vq_arch_args(parser: argparse.ArgumentParser, from_checkpoint: bool = False):
    """VQ-VAE architecture flags. ``from_checkpoint``: the script reads the architecture from
    ``--vq-ckpt`` (the flags are accepted for the original command lines; only ``--nb-code`` is used,
    when no ``--vq-ckpt`` is given)."""
    from models.vqvae import VQConfig
    d = VQConfig()
    title = "VQ-VAE architecture" + (" (read from --vq-ckpt: these flags have no effect, except --nb-code "
                                      "without --vq-ckpt)" if from_checkpoint else "")
    g = parser.add_argument_group(title)
    g.add_argument("--nb-code", type=int, default=d.nb_code, help="codebook size (number of <Motion_i> tokens)")
    g.add_argument("--code-dim", type=int, default=d.code_dim, help="codebook vector size (= --output-emb-width)")
    g.add_argument("--output-emb-width", type=int, default=d.output_emb_width, help="encoder output channels")
    g.add_argument("--down-t", type=int, default=d.down_t, help="stride-2 downsampling stages (unit length 2^down_t)")
    g.add_argument("--stride-t", type=int, default=d.stride_t, help="temporal conv stride")
    g.add_argument("--width", type=int, default=d.width, help="channel width")
    g.add_argument("--depth", type=int, default=d.depth, help="residual blocks per stage")
    g.add_argument("--dilation-growth-rate", type=int, default=d.dilation_growth_rate,
                   help="dilations growth^0..growth^(depth-1), reversed")
    g.add_argument("--vq-act", type=str, default=d.vq_act, choices=["relu", "silu", "gelu"],
                   help="activation in the residual blocks")
    g.add_argument("--vq-norm", type=str, default=d.vq_norm, choices=[None, "LN", "GN", "BN"],
                   help="norm in the residual blocks")
    g.add_argument("--quantizer", type=str, default=d.quantizer, choices=["ema_reset", "ema", "reset", "orig"],
                   help="quantizer type")
    g.add_argument("--mu", type=float, default=d.mu, help="EMA decay of the codebook")
    g.add_argument("--beta", type=float, default=d.beta, help="commitment weight inside the 'orig'/'reset' quantizer loss")
    return parser


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train the motion VQ-VAE (T2M-GPT recipe)",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    run = add_run_args(p, exp_name="vq")
    add_data_args(p, run)
    run.add_argument("--num-workers", type=int, default=0, help="DataLoader workers")
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
                        "VQVAEV3/evaluator meta statistics of T2M-GPT do (docs/data-format.md §7.2); 1 = plain z-scoring. Ignored with --meta-dir")
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
    add_compat_args(p, "original option_vq.py leftovers", VQ_SCRIPT_COMPAT)
    return p


def get_args(argv=None):
    return fill_data_root(get_args_parser().parse_args(argv))
