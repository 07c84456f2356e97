#!/usr/bin/env python
"""One entry point for the speed figures of the README, measured in one run on this machine.

    python bench/bench_all.py                                  # tiny backbone (+ quickstart assets if present)
    python bench/bench_all.py --backbone Qwen/Qwen2.5-0.5B     # also a real backbone (hub id or local dir)
    python bench/bench_all.py --device cuda --backbone /models/Qwen3-1.7B

Sections (every ratio is measured in the same run):

* **machine**: device, threads, measured dense-matmul peak (fp32 on CPU, bf16 on CUDA) — the MFU denominator.
* **sft** (per backbone): training tokens/s of MotionLLM SFT steps (LoRA r16 + new-token rows, batch 16 of
  CoT-shaped records) and model FLOPs utilisation = tokens/s × FLOPs/token ÷ peak, with FLOPs/token
  = 4N + 3·attention (frozen base: no weight-gradient matmuls; see bench/mfu.py); and the speed-up of running the
  instruction prefix that every row shares once per batch (``MotionLLM.response_logits``) over running it for
  every row.
* **grpo** (per backbone): one GRPO step (B prompts × G samples) of this trainer vs the per-sample loop of the
  original code vs TRL's ``GRPOTrainer`` (optional: ``pip install -r requirements-bench.txt``) on the same
  backbone, LoRA, B, G, max new tokens, temperature and KL coefficient.
* **large_vocab_generation**: generation with the real Qwen3 tokenizer (152k tokens) on the tiny architecture,
  new-token rows merged in place during generation vs peft's per-step full-vocabulary copy.
* **eval**: generation throughput of ``eval_mllm.py`` (samples/s) without and with Chain-of-Motion
  (K = 8, T = 2) and the CoM overhead ratio (the paper reports about 2.1×). Uses the quickstart's trained
  checkpoint, VQ-VAE and evaluator (the CoM scorer is the reward composite) when ``--experiments`` holds
  them; otherwise an untrained model and a format-only scorer (stated in the output).

Writes everything to ``--out`` (JSON) and prints a summary.
"""
from __future__ import annotations

import argparse
import json
import platform
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

for p in (ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from models.mllm import MLLMConfig, MotionLLM  # noqa: E402
from mfu import _sync, measure_matmul_peak, mfu, transformer_flops_per_token  # noqa: E402

CAPTIONS = ["a person walks forward and waves with the right hand.", "someone jumps twice in place.",
            "a man turns around to the left and then sits down.", "the person runs in a circle clockwise.",
            "a figure raises both arms above the head.", "a woman kicks with her left leg.",
            "someone crawls forward on the floor.", "a person steps to the right three times."]
REASONING = ("Plan: start standing, shift the weight to the left leg, take four steps forward at a normal pace "
             "with the arms swinging, then raise the right arm and wave twice before stopping.")


def machine_info(device: torch.device) -> dict:
    info = {"device": str(device), "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "cpu_count": __import__("os").cpu_count()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    info["matmul_peak_flops"] = measure_matmul_peak(device, dtype)
    info["matmul_peak_dtype"] = str(dtype).replace("torch.", "")
    return info


def build_model(backbone: str, device, nb_code=512, seed=0, reference=False) -> MotionLLM:
    torch.manual_seed(seed)
    m = MotionLLM(MLLMConfig(llm_backbone=backbone, nb_code=nb_code, lora_r={"t2m": 16, "m2t": 16},
                             lora_alpha={"t2m": 32, "m2t": 32}), device=device)
    m.set_task("t2m")
    if reference:
        m.add_reference("t2m")
    return m


# ---------------------------------------------------------------------------- SFT
def bench_sft(m: MotionLLM, device, peak: float, batch_size=16, steps=6, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    enc = []
    for i in range(batch_size * 4):
        codes = rng.integers(0, m.cfg.nb_code, int(rng.integers(25, 50))).tolist()
        enc.append(m.encode("t2m", CAPTIONS[i % len(CAPTIONS)], codes, REASONING, None, 200))
    opt = torch.optim.AdamW(m.trainable_parameters(), lr=1e-4)
    m.model.train()
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def step(i):
        batch = m.collate(enc[(i * batch_size) % len(enc):][:batch_size])
        with amp:
            out = m.sft_loss(batch)
        out["loss"].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return int(batch["attention_mask"].sum()), batch["input_ids"].shape[1]

    def timed(shared_prefix: bool):
        import models.mllm as mm
        saved = mm.SHARED_PREFIX_MIN
        mm.SHARED_PREFIX_MIN = saved if shared_prefix else 10 ** 9
        try:
            step(0)  # warm-up
            _sync(device)
            t0, toks, lens = time.time(), 0, []
            for i in range(steps):
                k, L = step(i + 1)
                toks += k
                lens.append(L)
            _sync(device)
            return time.time() - t0, toks, lens
        finally:
            mm.SHARED_PREFIX_MIN = saved

    dt_plain, _, _ = timed(False)  # every row runs the whole prompt (both: logits only where the loss counts)
    dt, toks, lens = timed(True)
    tps = toks / dt
    cfg = m.model.get_base_model().config
    fl = transformer_flops_per_token(cfg, seq_len=int(np.mean(lens)), trainable_only_backward=True)
    # tokens/s counts every token of the batch; with the shared prefix some of them are computed once per batch,
    # so the MFU figure is an effective one (the work a plain forward would do, per second)
    return {"tokens_per_s": round(tps, 1), "step_s": round(dt / steps, 4), "batch_size": batch_size,
            "step_s_without_prefix_sharing": round(dt_plain / steps, 4),
            "prefix_sharing_speedup": round(dt_plain / dt, 3),
            "mean_seq_len": float(np.mean(lens)), "train_flops_per_token": fl["train_flops_per_token"],
            "params_matmul": fl["params_matmul"], "mfu": mfu(tps, fl["train_flops_per_token"], peak)}


# ---------------------------------------------------------------------------- GRPO
def bench_grpo(m: MotionLLM, backbone: str, device, prompts=4, group=8, max_new_tokens=48, repeats=2,
               with_trl=True) -> dict:
    from bench_grpo import per_sample_step, toy_reward
    from rl.grpo import GRPOConfig, GRPOTrainer

    cfg = GRPOConfig(group_size=group, max_new_tokens=max_new_tokens, temperature=1.0, kl_coef=0.02,
                     micro_batch_size=prompts * group)
    caps = CAPTIONS[:prompts]
    tr = GRPOTrainer(m, toy_reward, cfg)
    opt = torch.optim.AdamW(m.trainable_parameters(), lr=1e-5)
    tr.step("t2m", caps)  # warm-up
    b, p = [], []
    for _ in range(repeats):
        _sync(device)
        st = tr.step("t2m", caps)
        _sync(device)
        b.append(st)
        p.append(per_sample_step(m, caps, cfg, opt))
    bb = min(b, key=lambda r: r["step_s"])
    pp = min(p, key=lambda r: r["step_s"])
    tokens_b = bb["response_len"] * prompts * group  # completion tokens of the step (EOS included)
    res = {"prompts": prompts, "group_size": group, "max_new_tokens": max_new_tokens,
           "batched": {"step_s": round(bb["step_s"], 3), "rollout_tokens_per_s": round(bb["rollout_tokens_per_s"]),
                       "step_tokens_per_s": round(tokens_b / bb["step_s"]), "tokens_per_step": round(tokens_b)},
           "per_sample": {"step_s": round(pp["step_s"], 3), "rollout_tokens_per_s": round(pp["rollout_tokens_per_s"])},
           "speedup_vs_per_sample": round(pp["step_s"] / bb["step_s"], 2)}
    if with_trl:
        try:
            from trl_grpo import run_trl_grpo

            from models.merged import export_merged
            from models.prompts import encode_prompt
            # equal work: TRL trains the same network (backbone with the motion-token vocabulary, exported)
            # on the same prompt text (this trainer's t2m prompt, decoded) with a fresh LoRA of the same size
            same = export_merged(m, Path(tempfile.mkdtemp()) / "merged", "t2m")
            texts = [m.tokenizer.decode(encode_prompt(m.tokenizer, "t2m", c, None, None), skip_special_tokens=False)
                     for c in caps]
            t = run_trl_grpo(str(same), texts, group, max_new_tokens, steps=repeats + 1, beta=0.02,
                             device=device.type)
            res["trl"] = {"version": t.get("trl_version"), "step_s": round(t["step_s"], 3),
                          "step_tokens_per_s": round(t["tokens_per_s"]),
                          "tokens_per_step": round(t["tokens_per_s"] * t["step_s"])}
            res["speedup_vs_trl"] = round(t["step_s"] / bb["step_s"], 2)
            # same work only if both sampled about as many tokens (an untrained backbone rarely stops early)
            res["tokens_per_step_ratio_trl_over_ours"] = round(res["trl"]["tokens_per_step"] / max(tokens_b, 1), 2)
        except ImportError as exc:
            res["trl"] = {"skipped": str(exc)}
    return res


# ---------------------------------------------------------------------------- large-vocabulary generation
def bench_token_rows(device, prompts=8, samples=4, max_new_tokens=48) -> dict:
    """Generation with the real Qwen3 tokenizer (152k tokens) on the tiny architecture: new-token rows
    merged in place for generation (this code) vs peft's unmerged forward (a full-vocabulary copy per step)."""
    from prepare.make_tiny_backbone import build_tiny_backbone
    d = str(Path(tempfile.mkdtemp()) / "bbq")
    build_tiny_backbone(d, tokenizer="qwen", verbose=False)
    m = build_model(d, device)
    caps = [CAPTIONS[i % len(CAPTIONS)] for i in range(prompts)]

    def run():
        _sync(device)
        t0 = time.time()
        o = m.generate("t2m", captions=caps, num_return_sequences=samples, do_sample=True, max_new_tokens=max_new_tokens)
        _sync(device)
        return time.time() - t0, sum(x["num_tokens"] for x in o)
    run()
    fast = min(run() for _ in range(2))
    orig = MotionLLM._merge_token_rows
    MotionLLM._merge_token_rows = lambda self: []
    try:
        slow = min(run() for _ in range(2))
    finally:
        MotionLLM._merge_token_rows = orig
    return {"vocab": len(m.tokenizer), "sequences": prompts * samples, "merged_rows_s": round(fast[0], 3),
            "peft_unmerged_s": round(slow[0], 3), "tokens": fast[1], "speedup": round(slow[0] / fast[0], 2)}


# ---------------------------------------------------------------------------- eval / CoM
def _eval_assets(exp: Path) -> dict | None:
    paths = {"ckpt": exp / "morl_rlvr_t2m" / "motionllm_rlvr_epoch_0.pth", "vq": exp / "vq_synthetic" / "net_last.pth",
             "evaluator": exp / "evaluator_synthetic" / "t2m" / "text_mot_match"}
    return paths if all(p.exists() for p in paths.values()) else None


def bench_eval(exp: Path, device, items=32, K=8, T=2, max_new_tokens=160, data_glove=None) -> dict:
    from eval_mllm import Generator
    from rewards.callbacks import build_com_scorer
    from options.option_llm import get_args

    assets = _eval_assets(exp)
    args = get_args(["--eval-task", "t2m", "--max-new-tokens", str(max_new_tokens), "--gen-batch-size", str(items),
                     "--com-candidates", str(K), "--com-refine-steps", str(T), "--nli-model-name", "none"])
    if assets is not None:
        m = MotionLLM.from_checkpoint(assets["ckpt"], device=device)
        from models.vqvae import load_vq_with_stats
        vq = load_vq_with_stats(assets["vq"], device)
        args.evaluator_dir = str(assets["evaluator"])
        critic = exp / "evaluator_critic" / "t2m" / "text_mot_match"
        # timing only: the judge may stand in for the critic when the quickstart's critic is absent
        args.reward_dataset_opt_path = str(critic if critic.exists() else assets["evaluator"])
        args.allow_judge_as_critic = not critic.exists()
        args.reward_glove_path = str(data_glove) if data_glove else args.reward_glove_path
        args.glove_dir = args.reward_glove_path
        scorer, scorer_name = build_com_scorer(args, "t2m", vq, device, judge=args.evaluator_dir)
        source = f"quickstart checkpoint {assets['ckpt']}"
    else:
        m = build_model(fresh_tiny_backbone(), device)

        def scorer(task, inputs, outs):
            return np.asarray([float(o["well_formed"]) + 0.01 * len(o["motion_codes"]) for o in outs])
        scorer_name, source = "well-formedness only", "untrained tiny model (no quickstart assets found)"
    timed = {"s": 0.0}
    raw_scorer = scorer

    def scorer(task, inputs, outs):  # noqa: F811 - time the scoring share of CoM
        t0 = time.time()
        r = raw_scorer(task, inputs, outs)
        timed["s"] += time.time() - t0
        return r
    caps = [CAPTIONS[i % len(CAPTIONS)] for i in range(items)]
    out = {"items": items, "K": K, "T": T, "max_new_tokens": max_new_tokens, "model": source, "scorer": scorer_name}
    for name, use_com in (("plain", False), ("com", True)):
        args.use_com = use_com
        gen = Generator(m, args, scorer if use_com else None)
        gen("t2m", caps[: min(4, items)])  # warm-up
        gen.seconds = 0.0
        gen.samples = 0
        timed["s"] = 0.0
        _sync(device)
        gen("t2m", caps)
        _sync(device)
        out[name] = {"seconds": round(gen.seconds, 3), "samples_per_s": round(items / gen.seconds, 2),
                     "scoring_seconds": round(timed["s"], 3),
                     "generated_sequences": items * (K * T if use_com else 1)}
    out["com_overhead"] = round(out["com"]["seconds"] / out["plain"]["seconds"], 2)
    # CoM samples K*T sequences per item: on a GPU the K candidates ride in the same decode batch (decode is
    # memory-bound), on a CPU every sequence costs compute, so the overhead approaches K*T there
    out["com_overhead_generation_only"] = round((out["com"]["seconds"] - out["com"]["scoring_seconds"])
                                                / out["plain"]["seconds"], 2)
    return out


_FRESH: str | None = None


def fresh_tiny_backbone() -> str:
    """A freshly initialised tiny Qwen2 backbone (built once per run in a temporary folder)."""
    global _FRESH
    if _FRESH is None:
        from prepare.make_tiny_backbone import build_tiny_backbone
        _FRESH = str(Path(tempfile.mkdtemp()) / "bb")
        build_tiny_backbone(_FRESH, tokenizer="bpe", verbose=False)
    return _FRESH


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", action="append", default=[], help="extra backbone(s): hub id or local dir")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--experiments", default="experiments", help="quickstart outputs (for the eval/CoM section)")
    ap.add_argument("--data-root", default="data/synthetic_h3d", help="dataset of the quickstart (GloVe files)")
    ap.add_argument("--grpo-prompts", type=int, default=4)
    ap.add_argument("--grpo-group", type=int, default=8)
    ap.add_argument("--grpo-max-new-tokens", type=int, default=48)
    ap.add_argument("--eval-items", type=int, default=32)
    ap.add_argument("--skip", nargs="*", default=[], choices=["sft", "grpo", "trl", "vocab", "eval"])
    ap.add_argument("--out", default="experiments/bench/bench_all.json")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    report = {"machine": machine_info(device), "backbones": {}}
    peak = report["machine"]["matmul_peak_flops"]
    print(f"machine: {report['machine']['device']}, {report['machine']['torch_threads']} threads, matmul peak "
          f"{peak / 1e9:.1f} GFLOP/s ({report['machine']['matmul_peak_dtype']})", flush=True)
    # the tiny section uses a freshly initialised backbone (the quickstart one is trained to stop early on raw
    # prompts, which would give TRL and this trainer different amounts of sampling work)
    fresh = fresh_tiny_backbone()
    for bb in [fresh, *args.backbone]:
        name = "tiny" if bb == fresh else bb
        r = report["backbones"][name] = {"path": bb}
        m = build_model(bb, device, reference=True)
        r["parameters"] = m.num_parameters()
        if "sft" not in args.skip:
            r["sft"] = bench_sft(m, device, peak)
            print(f"[{name}] SFT {r['sft']['tokens_per_s']:.0f} tokens/s, MFU {100 * r['sft']['mfu']:.1f}% (effective), "
                  f"shared prompt prefix {r['sft']['prefix_sharing_speedup']:.2f}x a plain forward", flush=True)
        if "grpo" not in args.skip:
            g = r["grpo"] = bench_grpo(m, bb, device, args.grpo_prompts, args.grpo_group, args.grpo_max_new_tokens,
                                       with_trl="trl" not in args.skip)
            trl = g.get("trl", {})
            print(f"[{name}] GRPO step {g['batched']['step_s']} s (rollout {g['batched']['rollout_tokens_per_s']} tok/s)"
                  f" | per-sample {g['per_sample']['step_s']} s -> {g['speedup_vs_per_sample']}x"
                  + (f" | TRL {trl['step_s']} s -> {g['speedup_vs_trl']}x" if "step_s" in trl
                     else f" | TRL: {trl.get('skipped', 'skipped')}"), flush=True)
        del m
    if "vocab" not in args.skip:
        v = report["large_vocab_generation"] = bench_token_rows(device)
        print(f"generation, {v['vocab']}-token vocabulary: merged new-token rows {v['merged_rows_s']} s vs peft "
              f"unmerged {v['peft_unmerged_s']} s -> {v['speedup']}x", flush=True)
    if "eval" not in args.skip:
        glove = Path(args.data_root) / "glove"
        e = report["eval"] = bench_eval(Path(args.experiments), device, items=args.eval_items,
                                        data_glove=glove if glove.exists() else None)
        print(f"eval ({e['model']}): plain {e['plain']['samples_per_s']} samples/s, CoM K={e['K']} T={e['T']} "
              f"{e['com']['samples_per_s']} samples/s -> overhead {e['com_overhead']}x "
              f"({e['com_overhead_generation_only']}x without scoring; scorer: {e['scorer']})")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1, default=str))
    tmp.replace(out)
    print(f"written {out}")
    return report


if __name__ == "__main__":
    main()
