"""Device selection and seeding."""
from __future__ import annotations

import argparse
import random

import numpy as np
import torch


def resolve_device(name: str | None = "auto") -> torch.device:
    """'auto' -> cuda:0 when available (else mps, else cpu); otherwise the named device."""
    if name in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda:0")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"--device {name} requested but CUDA is not available on this machine (use --device cpu)")
    return dev


def seed_everything(seed: int):
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def add_performance_args(parser, llm: bool = False):
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


def configure_backends(device: torch.device, tf32: bool = True):
    """TF32 on CUDA when asked (a no-op elsewhere)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = bool(tf32)
        torch.backends.cudnn.allow_tf32 = bool(tf32)
        torch.set_float32_matmul_precision("high" if tf32 else "highest")
