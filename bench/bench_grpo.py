#!/usr/bin/env python
"""One GRPO step for B prompts × G samples: this trainer (one batched decode, batched log-probs)
vs a per-sample loop (one generate and one forward per candidate, as the original code does),
on the same tiny model and settings, measured in one run.

    python bench/bench_grpo.py [--backbone DIR] [--prompts 4] [--group-size 8] [--max-new-tokens 48]

Without ``--backbone`` a tiny Qwen2 backbone is built in a temporary folder. Prints the step
times, rollout tokens/s and the speed-up ratio; writes them as JSON (``--out``).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
import utils.threads  # noqa: E402,F401  (before torch: OpenMP wait policy and thread count)

import numpy as np
import torch

from models.mllm import MLLMConfig, MotionLLM  # noqa: E402
from rl.grpo import GRPOConfig, GRPOTrainer, combine_advantages, policy_loss  # noqa: E402


def toy_reward(task, prompts, outputs):
    return {"target": [float(np.mean([c == 3 for c in o["motion_codes"]])) if o["motion_codes"] else -0.5
                       for o in outputs]}


def per_sample_step(m: MotionLLM, prompts, cfg: GRPOConfig, optimizer) -> dict:
    """The per-candidate loop of the original code: G separate Hugging Face ``generate`` calls per prompt
    through peft's unmerged LoRA layers, one forward per candidate for each log-prob."""
    from models.prompts import encode_prompt, parse_output
    t0 = time.time()
    samples, n_tok = [], 0
    m.set_task("t2m")
    m.model.eval()
    for p in prompts:
        ids = torch.tensor([encode_prompt(m.tokenizer, "t2m", p)], device=m.device)
        for _ in range(cfg.group_size):
            with torch.no_grad():
                seq = m.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
                                       temperature=cfg.temperature, top_k=0, max_new_tokens=cfg.max_new_tokens,
                                       eos_token_id=m.tokenizer.eos_token_id, pad_token_id=m.tokenizer.pad_token_id)
            P = ids.shape[1]
            text = m.tokenizer.decode(seq[0, P:].tolist(), skip_special_tokens=False)
            out = parse_output(text, m.cfg.nb_code)
            samples.append((seq.cpu(), P, {"motion_codes": out.motion_codes}))
            n_tok += seq.shape[1] - P
    t_roll = time.time() - t0
    comps = toy_reward("t2m", prompts, [s[2] for s in samples])
    comps = {k: torch.tensor(v) for k, v in comps.items()}
    _, adv = combine_advantages(comps, {"target": 1.0}, cfg.group_size, True)
    optimizer.zero_grad(set_to_none=True)
    for i, (seq, P, _) in enumerate(samples):
        att = torch.ones_like(seq)
        tgt = seq[:, P:]

        def logp_fn():
            logits = m.model(input_ids=seq.to(m.device), attention_mask=att.to(m.device), use_cache=False).logits
            return torch.log_softmax(logits[:, P - 1:-1].float(), -1).gather(-1, tgt.unsqueeze(-1).to(m.device)).squeeze(-1)
        with torch.no_grad():
            old = logp_fn()
            with m.using_adapter(m.reference_name("t2m")):
                ref = logp_fn()
        logp = logp_fn()
        loss, _ = policy_loss(logp, old, ref, adv[i:i + 1].to(logp.device), torch.ones_like(logp), cfg.clip_eps,
                              cfg.kl_coef)
        (loss / len(samples)).backward()
    optimizer.step()
    return {"step_s": time.time() - t0, "rollout_s": t_roll, "rollout_tokens_per_s": n_tok / t_roll}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default=None)
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default="experiments/bench/bench_grpo.json")
    args = ap.parse_args(argv)
    backbone = args.backbone
    if backbone is None:
        from prepare.make_tiny_backbone import build_tiny_backbone
        backbone = str(Path(tempfile.mkdtemp()) / "bb")
        build_tiny_backbone(backbone, tokenizer="bpe", verbose=False)
    torch.manual_seed(0)
    m = MotionLLM(MLLMConfig(llm_backbone=backbone, nb_code=512, lora_r={"t2m": 16, "m2t": 16},
                             lora_alpha={"t2m": 32, "m2t": 32}), device=args.device)
    m.add_reference("t2m")
    cfg = GRPOConfig(group_size=args.group_size, max_new_tokens=args.max_new_tokens, temperature=1.0,
                     micro_batch_size=args.prompts * args.group_size)
    prompts = [f"a person walks forward and waves {i}." for i in range(args.prompts)]
    trainer = GRPOTrainer(m, toy_reward, cfg)
    opt = torch.optim.AdamW(m.trainable_parameters(), lr=1e-5)
    trainer.step("t2m", prompts)  # warm-up
    res = {"batched": [], "per_sample": []}
    for _ in range(args.repeats):
        res["batched"].append(trainer.step("t2m", prompts))
        res["per_sample"].append(per_sample_step(m, prompts, cfg, opt))
    b = min(r["step_s"] for r in res["batched"])
    p = min(r["step_s"] for r in res["per_sample"])
    report = {"device": str(m.device), "backbone": backbone, "prompts": args.prompts, "group_size": args.group_size,
              "max_new_tokens": args.max_new_tokens, "torch_threads": torch.get_num_threads(),
              "batched_step_s": round(b, 3), "per_sample_step_s": round(p, 3), "speedup": round(p / b, 2),
              "batched_rollout_tokens_per_s": round(max(r["rollout_tokens_per_s"] for r in res["batched"])),
              "per_sample_rollout_tokens_per_s": round(max(r["rollout_tokens_per_s"] for r in res["per_sample"]))}
    print(f"GRPO step, {args.prompts} prompts x {args.group_size} samples, <= {args.max_new_tokens} new tokens, "
          f"{report['device']}:")
    print(f"  batched trainer : {b:.2f} s/step, rollout {report['batched_rollout_tokens_per_s']} tokens/s")
    print(f"  per-sample loop : {p:.2f} s/step, rollout {report['per_sample_rollout_tokens_per_s']} tokens/s")
    print(f"  speed-up: {report['speedup']}x")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
