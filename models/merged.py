"""A MotionLLM task adapter folded into plain backbone weights.

:func:`merged_state_dict` returns the backbone's own parameter names (``model.layers.0.self_attn.q_proj.weight``
...) with W + ΔW_LoRA for every adapted linear layer and the trained rows of the new tokens written into the
(resized) embedding / output matrices. It reads the training model without modifying it (no in-place
merge/unmerge), so it is safe to call between optimizer steps. :func:`export_merged` writes a standard
Hugging Face folder (weights + extended tokenizer) that any HF-compatible server, including vLLM, loads.
"""
from __future__ import annotations

from pathlib import Path

import torch

_SKIP = ("lora_", "trainable_tokens_", "modules_to_save", "original_module")


def _clean(name: str) -> str:
    return name.replace(".base_layer", "").replace(".token_adapter", "")


@torch.no_grad()
def merged_state_dict(mllm, task: str | None = None) -> dict:
    """{backbone parameter name: merged tensor} for the adapter of ``task`` (default: the active one)."""
    from peft.tuners.lora import LoraLayer
    from peft.utils.other import TrainableTokensWrapper

    adapter = mllm.cfg.adapter_name(task) if task else mllm.active
    base = mllm.model.get_base_model()
    out: dict = {}
    for mod_name, mod in base.named_modules():
        if isinstance(mod, LoraLayer) and hasattr(mod, "get_delta_weight"):
            layer = mod.get_base_layer()
            w = layer.weight.detach()
            if adapter in mod.lora_A:
                w = w + mod.get_delta_weight(adapter).to(w.dtype)
            out[f"{mod_name}.weight"] = w
            if getattr(layer, "bias", None) is not None:
                out[f"{mod_name}.bias"] = layer.bias.detach()
        elif isinstance(mod, TrainableTokensWrapper):
            tl = mod.token_adapter
            w = tl.base_layer.weight.detach()
            if adapter in tl.trainable_tokens_delta and not getattr(tl, "tied_adapter", None):
                idx = torch.as_tensor(tl.token_indices[adapter], device=w.device)
                w = w.index_copy(0, idx, tl.trainable_tokens_delta[adapter].detach().to(w.dtype))
            elif getattr(tl, "tied_adapter", None) is not None:  # lm_head tied to the input embedding
                continue
            out[f"{mod_name}.weight"] = w
    for name, p in base.named_parameters():
        if any(s in name for s in _SKIP):
            continue
        out.setdefault(_clean(name), p.detach())
    return out


def export_merged(mllm, out_dir, task: str | None = None, dtype: torch.dtype | None = None) -> Path:
    """Write the backbone with ``task``'s adapter merged (resized vocabulary, new tokens included) and the
    extended tokenizer to ``out_dir``; loadable with ``AutoModelForCausalLM.from_pretrained`` or vLLM."""
    from transformers import AutoModelForCausalLM

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base = mllm.model.get_base_model()
    cfg = base.config
    sd = merged_state_dict(mllm, task)
    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(cfg)
    plain = plain.to_empty(device="cpu")
    missing, unexpected = plain.load_state_dict({k: v.cpu() for k, v in sd.items()}, strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" and cfg.tie_word_embeddings)]
    if missing or unexpected:
        raise RuntimeError(f"merged weights do not fit the backbone: missing {missing[:3]}, unexpected {unexpected[:3]}")
    if cfg.tie_word_embeddings:
        plain.tie_weights()
    if dtype is not None:
        plain = plain.to(dtype)
    plain.save_pretrained(out_dir)
    mllm.tokenizer.save_pretrained(out_dir)
    return out_dir
