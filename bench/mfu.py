#!/usr/bin/env python
"""Model FLOPs utilisation (MFU) helpers: a measured matmul peak, the FLOPs per token of a decoder-only
transformer from its HF config, and the ratio of the two.

    python bench/mfu.py [--device cpu] [--n 1024] [--repeats 5]     # prints the measured peak FLOP/s

MFU = (tokens/s x model FLOPs per token) / peak FLOP/s, as defined in the PaLM paper (Chowdhery et
al. 2022, appendix B). Here the peak is *measured* (best dense matmul rate of this machine at the
current torch thread count), not the vendor's datasheet number, so the MFU is relative to what a
large GEMM achieves on the same device and dtype.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
import utils.threads  # noqa: E402,F401  (before torch: OpenMP thread count)

import torch  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_matmul_peak(device="cpu", dtype: torch.dtype | None = None, n: int | None = None,
                        repeats: int = 5) -> float:
    """Measured dense matmul throughput of ``device`` in FLOP/s.

    Multiplies two random ``n x n`` matrices (``2 n^3`` FLOPs per product) into a preallocated output;
    after one warm-up product, each of ``repeats`` timings runs enough back-to-back products to last
    roughly 20 ms (50 ms on CUDA, timed between ``torch.cuda.synchronize`` calls) and the best rate is
    returned. Defaults: fp32 and ``n = 1024`` on CPU; bf16 and ``n = 2048`` on CUDA. On CPU the result
    depends on ``torch.get_num_threads()``.
    """
    dev = torch.device(device)
    if dtype is None:
        dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    if n is None:
        n = 2048 if dev.type == "cuda" else 1024
    if n < 1 or repeats < 1:
        raise ValueError("n and repeats must be >= 1")
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device=dev, dtype=dtype)
    b = torch.randn(n, n, generator=gen).to(device=dev, dtype=dtype)
    c = torch.empty(n, n, device=dev, dtype=dtype)
    flops = 2.0 * n ** 3

    torch.matmul(a, b, out=c)  # warm-up (kernel selection, thread pool start)
    _sync(dev)
    t0 = time.perf_counter()
    torch.matmul(a, b, out=c)
    _sync(dev)
    t1 = max(time.perf_counter() - t0, 1e-9)
    target = 0.05 if dev.type == "cuda" else 0.02
    inner = int(min(max(math.ceil(target / t1), 1), 1000))

    best = 0.0
    for _ in range(repeats):
        _sync(dev)
        t0 = time.perf_counter()
        for _ in range(inner):
            torch.matmul(a, b, out=c)
        _sync(dev)
        dt = max(time.perf_counter() - t0, 1e-12)
        best = max(best, inner * flops / dt)
    return best


def _cfg_get(config: Any, name: str, default=None):
    if isinstance(config, dict):
        return config.get(name, default)
    return getattr(config, name, default)


def transformer_flops_per_token(config, seq_len: int, trainable_only_backward: bool = False) -> dict:
    """FLOPs per token of a decoder-only transformer (Llama / Qwen2 layout) from its HF config (or a dict).

    Config fields: hidden_size d, intermediate_size f, num_hidden_layers L, num_attention_heads H,
    num_key_value_heads K (default H), vocab_size V, head_dim h (default d / H). A multimodal config
    is reduced to its text config.

    Matmul parameters (embedding lookups excluded, norms and biases ignored; the LM head counted
    once whether or not it is tied to the input embedding, since its matmul runs either way)::

        N = L * (d*H*h + 2*d*K*h + H*h*d + 3*d*f) + V*d
            (q, k and v, o, gated MLP gate/up/down)          (LM head)

    Forward FLOPs per token: ``2 N`` (one multiply-add per weight, the Kaplan et al. 2020 /
    Chinchilla rule) plus the attention term of the PaLM MFU definition (Chowdhery et al. 2022,
    appendix B) for a context of ``T = seq_len`` tokens: ``Q K^T`` and ``A V`` cost ``2 T (H h)``
    each per layer, so ``attn = 2 * L * T * (H*h) * 2 = 4 L T H h`` (no halving for the causal mask,
    as in PaLM; use the mean context length for ``seq_len`` when sequences vary).

    Training FLOPs per token: backward = 2 x forward, so ``train = 3 * forward = 6 N + 12 L T H h``
    (the usual "6N" rule plus PaLM's ``12 L H Q T``). With ``trainable_only_backward`` (LoRA: the
    base weights are frozen) the weight-gradient matmuls of the frozen weights are skipped, the
    input-gradient ones remain: ``train = 2*(2N) + 3*attn = 4 N + 12 L T H h`` (the attention
    products have no weights, their backward is still 2 x forward; the adapters' own FLOPs are
    ignored).

    Returns {"params_matmul", "attention_flops_per_token", "forward_flops_per_token",
    "train_flops_per_token"}.
    """
    if not isinstance(config, dict) and hasattr(config, "get_text_config"):
        config = config.get_text_config()
    d = int(_cfg_get(config, "hidden_size"))
    f = int(_cfg_get(config, "intermediate_size"))
    n_layers = int(_cfg_get(config, "num_hidden_layers"))
    n_heads = int(_cfg_get(config, "num_attention_heads"))
    n_kv = int(_cfg_get(config, "num_key_value_heads", None) or n_heads)
    vocab = int(_cfg_get(config, "vocab_size"))
    head_dim = _cfg_get(config, "head_dim", None)
    head_dim = int(head_dim) if head_dim else d // n_heads

    q_dim, kv_dim = n_heads * head_dim, n_kv * head_dim
    per_layer = d * q_dim + 2 * d * kv_dim + q_dim * d + 3 * d * f
    params = n_layers * per_layer + vocab * d
    attn = 2 * n_layers * seq_len * q_dim * 2
    forward = 2 * params + attn
    train = (2 * (2 * params) + 3 * attn) if trainable_only_backward else 3 * forward
    return {"params_matmul": params, "attention_flops_per_token": attn, "forward_flops_per_token": forward,
            "train_flops_per_token": train}


def mfu(tokens_per_s: float, flops_per_token: float, peak_flops: float) -> float:
    """Model FLOPs utilisation: achieved FLOP/s (``tokens_per_s * flops_per_token``) over ``peak_flops``."""
    if peak_flops <= 0:
        raise ValueError("peak_flops must be > 0")
    return tokens_per_s * flops_per_token / peak_flops


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    peak = measure_matmul_peak(args.device, n=args.n, repeats=args.repeats)
    res = {"device": args.device, "torch_threads": torch.get_num_threads(), "peak_flops": peak,
           "peak_tflops": peak / 1e12}
    print(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
