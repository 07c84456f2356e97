#!/usr/bin/env python
"""External baseline: wall time of one GRPO optimizer step with TRL's ``GRPOTrainer``.

    pip install -r requirements-bench.txt        # trl==1.16.0 (optional dependency)
    python bench/trl_grpo.py [--backbone DIR] [--prompts 4] [--group-size 8] [--max-new-tokens 48] \\
        [--steps 3] [--device cpu] [--out experiments/bench/trl_grpo.json]

Same workload as ``bench/bench_grpo.py``: a plain causal LM (the local folder ``--backbone``; without it
a tiny Qwen2 backbone is built in a temporary folder) with a fresh LoRA adapter (r 16, alpha 32 on
the attention and MLP projections), B prompts x G sampled completions per optimizer step (one
generation round, one optimizer step, no gradient accumulation), temperature 1, at most
``--max-new-tokens`` new tokens, KL to the reference (beta) and a cheap toy reward. Generation uses
transformers' ``generate`` (no vLLM). The first optimizer step is a warm-up and is not measured.

Prints the result as JSON (and writes it to ``--out`` when given).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
import utils.threads  # noqa: E402,F401  (before torch: OpenMP wait policy and thread count)

TRL_INSTALL_HINT = "trl is not installed: pip install -r requirements-bench.txt"
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _offline_env() -> None:
    """No model-hub access: must run before huggingface_hub / transformers read their settings."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("WANDB_DISABLED", "true")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:  # already imported (e.g. by the backbone builder): its constants were read at import time
        import huggingface_hub.constants as hc
        hc.HF_HUB_OFFLINE = True
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency of transformers
        pass


def fraction_a(text: str) -> float:
    """The toy reward: the fraction of the characters of ``text`` equal to ``"a"`` (0 for empty text)."""
    return text.count("a") / len(text) if text else 0.0


def run_trl_grpo(backbone_dir: str, prompts: list[str], group_size: int, max_new_tokens: int, steps: int = 3,
                 lr: float = 1e-5, beta: float = 0.02, lora_r: int = 16, lora_alpha: int = 32, device: str = "cpu",
                 seed: int = 0) -> dict:
    """Run ``steps + 1`` GRPO optimizer steps of TRL's ``GRPOTrainer`` and time them (the first is a warm-up).

    One optimizer step = ``len(prompts)`` prompts x ``group_size`` completions, generated in one round
    (``per_device_train_batch_size = len(prompts) * group_size``, ``num_generations = group_size``,
    ``gradient_accumulation_steps = steps_per_generation = num_iterations = 1``). The model is
    ``backbone_dir`` loaded with local files only, fp32 on CPU (bf16 weights on a bf16-capable GPU, as
    MotionLLM's ``dtype="auto"``), wrapped by TRL in a new peft LoRA adapter; with ``beta > 0`` TRL's
    reference is the same model with the adapter disabled (no second copy).

    The step time is measured by a ``TrainerCallback`` from ``on_step_begin`` to ``on_step_end``: it
    covers generation, reward, the reference forward, the policy forward/backward and the optimizer
    step (not TRL's logging, which runs after ``on_step_end``). Completion tokens are counted from the
    ``completion_ids`` TRL passes to the reward function (each completion up to and including its
    first EOS, as TRL masks them); TRL's own ``completions/mean_length`` metric is kept as a check.

    Returns a dict: trl_version, step_s (fastest measured step), step_s_all, warmup_step_s,
    rollout_tokens_per_step (mean over measured steps), rollout_tokens_all, tokens_per_s (completion
    tokens of the fastest step / its time), tokens_per_s_all, rollout_padded_tokens_per_step
    (completions x longest completion: the positions ``generate`` actually produced), trl_mean_length,
    prompts, group_size, max_new_tokens, device, torch_threads, settings, trl_metrics_last.
    """
    if steps < 1:
        raise ValueError("steps must be >= 1 (one more warm-up step is run before them)")
    if group_size < 2:
        raise ValueError("GRPO needs group_size >= 2")
    if not prompts:
        raise ValueError("prompts is empty")
    _offline_env()
    try:
        import trl
        from trl import GRPOConfig, GRPOTrainer
    except ImportError as e:
        raise ImportError(TRL_INSTALL_HINT) from e
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    dev = torch.device(device)
    dtype = torch.bfloat16 if dev.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    n_prompts = len(prompts)
    batch = n_prompts * group_size

    tok = AutoTokenizer.from_pretrained(backbone_dir, local_files_only=True, padding_side="left",
                                        truncation_side="left")
    model = AutoModelForCausalLM.from_pretrained(backbone_dir, local_files_only=True, dtype=dtype)
    leaf_names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = [t for t in LORA_TARGETS if t in leaf_names]
    if not targets:
        raise ValueError(f"none of the LoRA targets {LORA_TARGETS} exist in {backbone_dir}")
    lora_dropout = 0.1  # MLLMConfig.lora_dropout, the repo's default
    peft_config = LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, target_modules=targets,
                             bias="none", task_type="CAUSAL_LM")

    # ---- toy reward + token counter (the reward function sees every completion of the round) ----
    acc = {"tokens": 0, "padded": 0, "n": 0}

    def reward_fraction_a(prompts, completions, completion_ids, **kwargs):
        lens = [len(c) for c in completion_ids]
        acc["tokens"] += sum(lens)
        acc["padded"] += len(lens) * (max(lens) if lens else 0)
        acc["n"] += len(lens)
        return [fraction_a(c) for c in completions]

    # ---- timing callback ----
    class StepTimer(TrainerCallback):
        def __init__(self):
            self.rows, self.logs, self._t0 = [], [], None

        def _sync(self):
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)

        def on_step_begin(self, args, state, control, **kw):
            self._sync()
            acc.update(tokens=0, padded=0, n=0)
            self._t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            self._sync()
            self.rows.append({"step": state.global_step, "s": time.perf_counter() - self._t0, **acc})

        def on_log(self, args, state, control, logs=None, **kw):
            if logs:
                self.logs.append(dict(logs))

    settings = {
        "per_device_train_batch_size": batch, "num_generations": group_size, "gradient_accumulation_steps": 1,
        "steps_per_generation": 1, "num_iterations": 1, "max_steps": steps + 1,
        "max_completion_length": max_new_tokens, "temperature": 1.0, "top_p": 1.0, "top_k": 0,
        "beta": beta, "learning_rate": lr, "lr_scheduler_type": "constant", "warmup_steps": 0,
        "optimizer": "adamw_torch (TRL/transformers default)", "max_grad_norm": 1.0,
        "gradient_checkpointing": False, "bf16": False, "fp16": False, "use_cpu": dev.type == "cpu",
        "use_vllm": False, "shuffle_dataset": False, "report_to": "none", "save_strategy": "no",
        "eval_strategy": "no", "logging_steps": 1, "seed": seed, "model_dtype": str(dtype).replace("torch.", ""),
        "lora": {"r": lora_r, "alpha": lora_alpha, "dropout": lora_dropout, "target_modules": targets},
        "reference": "policy with the LoRA adapter disabled (TRL's PEFT path, no second model copy)"
                     if beta != 0.0 else "none (beta = 0)",
    }
    with tempfile.TemporaryDirectory(prefix="trl_grpo_") as out_dir:
        # transformers >= 5.x renamed gradient_checkpointing -> activation_checkpointing (TRL defaults it to True)
        ckpt = ({"activation_checkpointing": False} if "activation_checkpointing" in GRPOConfig.__dataclass_fields__
                else {"gradient_checkpointing": False})
        args = GRPOConfig(
            output_dir=out_dir, per_device_train_batch_size=batch, num_generations=group_size, **ckpt,
            gradient_accumulation_steps=1, steps_per_generation=1, num_iterations=1, max_steps=steps + 1,
            max_completion_length=max_new_tokens, temperature=1.0, top_p=1.0, top_k=0, beta=beta,
            learning_rate=lr, lr_scheduler_type="constant", warmup_steps=0, max_grad_norm=1.0,
            bf16=False, fp16=False, use_cpu=dev.type == "cpu",
            use_vllm=False, shuffle_dataset=False, report_to="none", save_strategy="no", eval_strategy="no",
            logging_steps=1, disable_tqdm=True, seed=seed, data_seed=seed, dataloader_num_workers=0,
            log_completions=False, push_to_hub=False,
        )
        # enough rows for steps + 1 optimizer steps (TRL's sampler repeats each row num_generations times)
        data = Dataset.from_dict({"prompt": list(prompts) * (steps + 1)})
        timer = StepTimer()
        trainer = GRPOTrainer(model=model, reward_funcs=reward_fraction_a, args=args, train_dataset=data,
                              processing_class=tok, peft_config=peft_config, callbacks=[timer])
        for cb in (PrinterCallback, ProgressCallback):  # keep stdout for the JSON result
            trainer.remove_callback(cb)
        settings["model_device"] = str(trainer.model.device)
        settings["gradient_checkpointing"] = bool(getattr(args, "activation_checkpointing", None)
                                                  or args.gradient_checkpointing)
        trainer.train()

    rows = timer.rows
    if len(rows) != steps + 1:
        raise RuntimeError(f"expected {steps + 1} optimizer steps, timed {len(rows)}")
    if any(r["n"] != batch for r in rows):
        raise RuntimeError(f"expected {batch} completions per step, got {[r['n'] for r in rows]}")
    measured = rows[1:]
    best = min(measured, key=lambda r: r["s"])
    train_logs = [lg for lg in timer.logs if "completions/mean_length" in lg]
    trl_mean_len = [lg["completions/mean_length"] for lg in train_logs]
    keep = ("loss", "reward", "reward_std", "kl", "completions/mean_length", "completions/clipped_ratio",
            "grad_norm", "entropy")
    last = {k: v for k, v in (train_logs[-1] if train_logs else {}).items() if k in keep}
    return {
        "trl_version": trl.__version__,
        "step_s": best["s"],
        "step_s_all": [r["s"] for r in measured],
        "warmup_step_s": rows[0]["s"],
        "rollout_tokens_per_step": sum(r["tokens"] for r in measured) / len(measured),
        "rollout_tokens_all": [r["tokens"] for r in measured],
        "rollout_padded_tokens_per_step": sum(r["padded"] for r in measured) / len(measured),
        "tokens_per_s": best["tokens"] / best["s"],
        "tokens_per_s_all": [r["tokens"] / r["s"] for r in measured],
        "trl_mean_length": trl_mean_len[1:],  # TRL's metric per measured step, a check on the count above
        "prompts": n_prompts,
        "group_size": group_size,
        "max_new_tokens": max_new_tokens,
        "device": str(dev),
        "torch_threads": torch.get_num_threads(),
        "settings": settings,
        "trl_metrics_last": last,
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default=None, help="local causal-LM folder (default: build a tiny one)")
    ap.add_argument("--prompts", type=int, default=4, help="prompts per optimizer step")
    ap.add_argument("--group-size", type=int, default=8, help="completions per prompt")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--steps", type=int, default=3, help="measured optimizer steps (plus one warm-up)")
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--beta", type=float, default=0.02)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--out", default=None, help="also write the JSON result here")
    args = ap.parse_args(argv)
    _offline_env()
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    backbone = args.backbone
    tmp = None
    if backbone is None:
        from prepare.make_tiny_backbone import build_tiny_backbone
        tmp = tempfile.TemporaryDirectory(prefix="trl_grpo_bb_")
        backbone = str(Path(tmp.name) / "bb")
        build_tiny_backbone(backbone, tokenizer="bpe", verbose=False)
    prompts = [f"a person walks forward and waves {i}." for i in range(args.prompts)]
    try:
        res = run_trl_grpo(backbone, prompts, args.group_size, args.max_new_tokens, steps=args.steps, lr=args.lr,
                           beta=args.beta, device=args.device, seed=args.seed)
    finally:
        if tmp is not None:
            tmp.cleanup()
    res["backbone"] = args.backbone or "tiny (built in a temporary folder)"
    bad = [k for k in ("step_s", "tokens_per_s", "rollout_tokens_per_step") if not math.isfinite(res[k])]
    if bad:
        raise RuntimeError(f"non-finite result: {bad}")
    text = json.dumps(res, indent=1)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    return res


if __name__ == "__main__":
    main()
