"""Flag groups every script shares: the run (device, seed, output folder, logging), the dataset and
the GPU/performance settings. Each script's parser (``option_*.py``) composes the groups it needs, so
a flag is declared once and has one default."""
from __future__ import annotations

import argparse

DATA_ROOTS = {"t2m": "./dataset/HumanML3D", "kit": "./dataset/KIT-ML"}
NO_EFFECT = "accepted for compatibility with the original release; no effect"


def default_data_root(dataname: str) -> str:
    return DATA_ROOTS[dataname]


def add_run_args(parser: argparse.ArgumentParser, exp_name: str, exp_help: str = "run folder under --out-dir",
                 wandb: bool = True, overwrite: bool = True) -> argparse._ArgumentGroup:
    g = parser.add_argument_group("run")
    g.add_argument("--device", type=str, default="auto", help="'auto' (cuda if available), 'cpu', 'cuda:0', ...")
    g.add_argument("--seed", type=int, default=123, help="seeds torch, numpy and the data order")
    g.add_argument("--out-dir", type=str, default="experiments", help="output root")
    g.add_argument("--exp-name", type=str, default=exp_name, help=exp_help)
    if wandb:
        g.add_argument("--wandb", action="store_true", help="also log to Weights & Biases (WANDB_MODE=offline works)")
    g.add_argument("--no-progress", action="store_true", help="disable progress bars")
    if overwrite:
        g.add_argument("--overwrite", action="store_true",
                       help="replace the run folder if it already holds a run (its files are deleted first); without "
                            "it (or the script's resume flag) an existing run is never touched")
    add_threads_arg(g)
    return g


def add_threads_arg(group):
    group.add_argument("--threads", type=int, default=None,
                       help="CPU intra-op threads (default: $MORL_THREADS, else the CPUs this process may use, divided "
                            "among the processes of a multi-process launch; see utils/threads.py)")
    return group


def add_data_args(parser: argparse.ArgumentParser, group=None):
    g = group or parser.add_argument_group("data")
    g.add_argument("--dataname", type=str, default="t2m", choices=["t2m", "kit"], help="HumanML3D (t2m) or KIT-ML")
    g.add_argument("--data-root", type=str, default=None,
                   help="dataset folder (default ./dataset/HumanML3D or ./dataset/KIT-ML)")
    return g


def fill_data_root(args):
    if getattr(args, "data_root", None) is None and hasattr(args, "dataname"):
        args.data_root = default_data_root(args.dataname)
    return args


def add_performance_args(parser: argparse.ArgumentParser, llm: bool = False) -> argparse._ArgumentGroup:
    """GPU-box settings shared by the training scripts (all off or harmless on CPU)."""
    g = parser.add_argument_group("performance (GPU)")
    g.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True,
                   help="bf16 autocast for the forward passes on CUDA (ignored on CPU)")
    g.add_argument("--tf32", action=argparse.BooleanOptionalAction, default=True,
                   help="allow TF32 matmuls/convolutions on Ampere+ GPUs")
    g.add_argument("--torch-compile", action="store_true", help="torch.compile the training forward")
    g.add_argument("--pin-memory", action=argparse.BooleanOptionalAction, default=True,
                   help="page-locked host batches for faster host-to-GPU copies (CUDA only)")
    if llm:
        g.add_argument("--attn-implementation", type=str, default="sdpa",
                       choices=["sdpa", "flash_attention_2", "flash_attention_3", "eager"],
                       help="attention kernel of the backbone (falls back to the default if unavailable)")
    return g


def add_compat_args(parser: argparse.ArgumentParser, title: str, flags: dict):
    """Flags of the original release that mean nothing for this script: accepted, documented as such.
    ``flags``: name -> (type or 'flag', default, nargs or None)."""
    g = parser.add_argument_group(title, "accepted so that the original release's command lines work; "
                                         "they change nothing here")
    for name, (typ, default, nargs) in flags.items():
        if typ == "flag":
            g.add_argument(name, action="store_true", help=NO_EFFECT)
        else:
            g.add_argument(name, type=typ, default=default, nargs=nargs, help=NO_EFFECT)
    return g
