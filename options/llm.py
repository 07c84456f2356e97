"""LLM / LoRA and chain-of-thought target flags (the original ``option_train.py`` and ``option_llm.py``
share them). Defaults are :class:`models.mllm.MLLMConfig`'s; ``MLLMConfig.from_args`` reads them back."""
from __future__ import annotations

import argparse


def add_llm_args(parser: argparse.ArgumentParser, from_checkpoint: bool = False):
    """``from_checkpoint``: the script loads a MotionLLM checkpoint, whose recorded backbone and LoRA
    shapes win (``--llm-backbone`` still overrides where the backbone lives)."""
    from models.mllm import MLLMConfig
    from models.prompts import PROMPT_FORMATS
    d = MLLMConfig()
    note = " (read from the checkpoint: no effect)" if from_checkpoint else ""
    g = parser.add_argument_group("LLM and LoRA" + (" (the checkpoint's own values are used; --llm-backbone "
                                                    "overrides where its backbone lives)" if from_checkpoint else ""))
    g.add_argument("--llm-backbone", type=str, default=None,
                   help="hub id or local directory of a causal LM (e.g. one from prepare/make_tiny_backbone.py); "
                        "default: the backbone recorded in the checkpoint being loaded"
                        + ("" if from_checkpoint else f", else {d.llm_backbone}"))
    g.add_argument("--lora-r-t2m", type=int, default=d.lora_r["t2m"], help="LoRA rank of the t2m adapter" + note)
    g.add_argument("--lora-alpha-t2m", type=int, default=d.lora_alpha["t2m"], help="LoRA alpha of the t2m adapter" + note)
    g.add_argument("--lora-r-m2t", type=int, default=d.lora_r["m2t"], help="LoRA rank of the m2t adapter" + note)
    g.add_argument("--lora-alpha-m2t", type=int, default=d.lora_alpha["m2t"], help="LoRA alpha of the m2t adapter" + note)
    g.add_argument("--lora-dropout", type=float, default=d.lora_dropout, help="LoRA dropout of both adapters" + note)
    g.add_argument("--shared-adapter", action="store_true", help="one LoRA adapter for both tasks (t2m ranks)" + note)
    g.add_argument("--trust-remote-code", action="store_true", help="allow custom model code from the backbone repo")
    g.add_argument("--prompt-format", type=str, default=d.prompt_format, choices=list(PROMPT_FORMATS),
                   help="prompt layout: instruction (the original '### Instruction/Input/Response'), chat (the "
                        "backbone tokenizer's chat template; an error without one) or auto (chat when the tokenizer "
                        "has a template); the checkpoint records the choice and eval/demo use it" + note)
    g.add_argument("--dtype", type=str, default="auto", choices=["auto", "bf16", "fp16", "fp32"],
                   help="backbone weights dtype; auto = bf16 on CUDA, fp32 on CPU")
    g.add_argument("--gradient-checkpointing", action="store_true",
                   help="recompute activations in the backward pass (training)" + (note if from_checkpoint else ""))
    g.add_argument("--vq-ckpt", type=str, default=None, help="VQ-VAE checkpoint (its meta/ folder beside it)")
    return g


def add_reasoning_args(parser: argparse.ArgumentParser, training: bool = True):
    note = "" if training else " (training only: no effect here)"
    g = parser.add_argument_group("MoRL targets")
    g.add_argument("--use-reasoning", action="store_true",
                   help="train/generate the CoT reasoning (else an empty think block); rewards then score it")
    g.add_argument("--reasoning-weight", type=float, default=1.0, help="loss weight of reasoning and tag tokens" + note)
    g.add_argument("--motion-weight", type=float, default=1.0,
                   help="loss weight of answer tokens (motion or caption)" + note)
    g.add_argument("--max-motion-len", type=int, default=256,
                   help="max tokens of prompt + target; the reasoning is truncated first, the answer never" + note)
    g.add_argument("--max-text-len", type=int, default=256, help="accepted for compatibility; unused (as in the original)")
    return g
