#!/usr/bin/env python
"""Forward+backward speed of the tiny backbone (prepare/make_tiny_backbone.py).

    python bench/bench_tiny_backbone.py                                  # default sizes, built in memory
    python bench/bench_tiny_backbone.py --backbone experiments/tiny_backbone   # a saved backbone
    python bench/bench_tiny_backbone.py --hidden-size 256 --layers 8 --batch 8 --seq-len 128

Times ``model(input_ids, labels=input_ids).loss.backward()`` on random token ids (seeded; the
first iteration is a warm-up, the median of the others is reported) and prints milliseconds per
step and tokens/s. Without ``--backbone`` the model is built in memory as make_tiny_backbone.py
would build it (same sizes and seed, no pre-training: the speed does not depend on the weights).
The numbers are also written as JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
import utils.threads  # noqa: E402,F401  (before torch: OpenMP wait policy and thread count)

import torch

from prepare.make_tiny_backbone import add_model_args, count_parameters, make_backbone  # noqa: E402
from bench.mfu import _sync  # noqa: E402
from utils.device import resolve_device  # noqa: E402


def bench_forward_backward(model, batch: int = 4, seq_len: int = 64, iters: int = 3, seed: int = 0) -> dict:
    """Median time of one causal-LM forward+backward on ``batch`` x ``seq_len`` random ids.

    Gradients are cleared after each step and the train/eval mode is restored: the weights are not
    changed, and the global RNG is not used (the ids come from their own generator)."""
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, model.config.vocab_size, (batch, seq_len), generator=g).to(device)
    was_training = model.training
    model.train()
    times = []
    try:
        for i in range(iters + 1):
            _sync(device)
            t0 = time.perf_counter()
            out = model(input_ids=ids, labels=ids)
            out.loss.backward()
            model.zero_grad(set_to_none=True)
            _sync(device)
            if i:  # the first iteration is a warm-up
                times.append(time.perf_counter() - t0)
    finally:
        model.train(was_training)
    ms = 1000 * sorted(times)[len(times) // 2]
    return {"batch": batch, "seq_len": seq_len, "torch_threads": torch.get_num_threads(), "fwd_bwd_ms": round(ms, 1),
            "tokens_per_s": round(batch * seq_len / (ms / 1000), 0)}


def load_model(args):
    """The model to time: ``--backbone`` loaded from disk, else built in memory from the size flags."""
    if args.backbone:
        from transformers import AutoModelForCausalLM
        return AutoModelForCausalLM.from_pretrained(args.backbone), str(args.backbone)
    model, _, info = make_backbone(args.tokenizer, args.data_root, vocab_size=args.vocab_size, seed=args.seed,
                                   arch=args.arch, tie_word_embeddings=not args.untied, verbose=False,
                                   hidden_size=args.hidden_size, num_hidden_layers=args.layers,
                                   num_attention_heads=args.heads, num_key_value_heads=args.kv_heads,
                                   intermediate_size=args.intermediate_size)
    return model, f"in memory ({info['tokenizer']} tokenizer, {info['arch']})"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default=None, help="a saved backbone folder (default: build one in memory)")
    add_model_args(ap)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--iters", type=int, default=3, help="timed iterations (after one warm-up)")
    ap.add_argument("--seed", type=int, default=0, help="model initialisation and token-id seed")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default="experiments/bench/bench_tiny_backbone.json")
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    model, source = load_model(args)
    model.to(device)
    rep = {"model": source, "model_class": type(model).__name__, "n_parameters": count_parameters(model),
           "device": str(device),
           **bench_forward_backward(model, args.batch, args.seq_len, args.iters, args.seed)}
    print(f"forward+backward, {rep['model_class']} {source}, {rep['n_parameters']:,} parameters, {rep['device']} "
          f"({rep['torch_threads']} threads):")
    print(f"  batch {rep['batch']} x {rep['seq_len']} tokens: {rep['fwd_bwd_ms']} ms/step, "
          f"{rep['tokens_per_s']:,.0f} tokens/s")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rep, indent=1))
    return rep


if __name__ == "__main__":
    main()
