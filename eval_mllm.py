#!/usr/bin/env python
"""Evaluate MotionLLM on the standard protocols (docs/evaluation.md §2–3).

    python eval_mllm.py --eval-task t2m --eval-ckpt experiments/morl_rlvr_t2m/motionllm_rlvr_epoch_2.pth \\
        --use-com --com-candidates 8 --com-refine-steps 2
    python eval_mllm.py --eval-task m2t --eval-ckpt ... --vq-ckpt ...

t2m: ``--replications`` passes over the test loader (batch 32, shuffled, drop_last, fresh crops
and captions); for each batch one batched generation, VQ decode, evaluator embeddings of the GT and
generated motions from the same batches (the T2M-GPT convention) → R-precision top-1/2/3, FID,
MM-Dist, diversity; multimodality from ``--mm-num-samples`` captions × ``--mm-num-repeats`` sampled
generations; a "Real motion" row (GT vs an independent GT pass); mean ± 1.96·std/√n. Failed
generations (no answer, cut at the token limit, malformed tags, empty answer:
``models.prompts.generation_status``) are counted and reported by kind; their motion codes are
decoded as generated, and one without any is embedded as a 4-frame rest motion (the protocol needs
one motion per item). m2t: captions generated for each test motion (its VQ codes)
→ BLEU@1/4, ROUGE-L, CIDEr, BERTScore (``utils.m2t_metrics``) and caption R-precision / MM-Dist
through the evaluator, with the real-caption row. Results: ``<out-dir>/<exp>/eval_<task>.json`` and
``eval_<task>.md``; the mean inference time per sample and the device are reported. ``--gallery N`` also writes
``<out-dir>/<exp>/gallery/index.html`` (utils/gallery.py: N items with their animations, judge score and physics
terms; ``--gallery-render mesh`` draws the skinned body of utils/mesh_render.py).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
import utils.threads  # noqa: E402,F401  (before torch: OpenMP wait policy and thread count)

import numpy as np
import torch
from tqdm import tqdm

from models.mllm import MotionLLM  # noqa: E402
from utils.device import resolve_device, seed_everything  # noqa: E402
from utils.threads import adapt as adapt_threads  # noqa: E402
from utils.io import atomic_write_json, atomic_write_text, check_writable, run_dir  # noqa: E402
from utils.tables import markdown_table  # noqa: E402
from utils.metrics import (aggregate_replications, calculate_diversity, calculate_fid, calculate_multimodality,  # noqa: E402
                           diversity_times, format_mean_ci, matching_metrics)


class Generator:
    """Batched generation (plain or Chain-of-Motion) with timing and failure counts."""

    def __init__(self, mllm: MotionLLM, args, scorer=None):
        self.m, self.args, self.scorer = mllm, args, scorer
        self.seconds, self.samples, self.failures = 0.0, 0, 0
        self.failure_kinds: dict = {}
        self.com_kept_greedy = 0

    def __call__(self, task, inputs, sample: bool | None = None, n: int = 1) -> list:
        a = self.args
        t0 = time.time()
        out = []
        step = max(1, a.gen_batch_size // n) if a.use_com else a.gen_batch_size  # CoM: chunk x n rows per call
        for s in range(0, len(inputs), step):
            adapt_threads()
            chunk = inputs[s:s + step]
            if a.use_com:  # n > 1 (multimodality): n independent Chain-of-Motion picks per input
                from models.com import chain_of_motion
                rep = [x for x in chunk for _ in range(n)]
                best, st = chain_of_motion(self.m, task, rep, self.scorer, a.com_candidates, a.com_refine_steps,
                                           a.temperature, a.top_p, a.max_new_tokens,
                                           include_greedy=bool(getattr(a, "com_include_greedy", False)) and n == 1)
                self.com_kept_greedy += st.get("com_kept_greedy", 0)
                out += best
            else:
                do_sample = a.do_sample if sample is None else sample
                out += self.m.generate(task, captions=chunk if task == "t2m" else None,
                                       motion_codes=chunk if task == "m2t" else None, num_return_sequences=n,
                                       do_sample=do_sample, temperature=a.temperature, top_p=a.top_p,
                                       top_k=a.top_k, max_new_tokens=a.max_new_tokens,
                                       num_beams=1 if do_sample else a.num_beams)
        self.seconds += time.time() - t0
        self.samples += len(inputs) * n
        for o in out:
            status = o.get("status", "ok")
            if status != "ok":
                self.failures += 1
                self.failure_kinds[status] = self.failure_kinds.get(status, 0) + 1
        return out


def decode_motions(vq, outputs, max_frames: int = 196) -> list:
    """Generated codes -> raw feature sequences (≤ max_frames; a failed generation -> 4 rest frames)."""
    model, mean, std = vq
    unit = model.unit_length
    codes = [o["motion_codes"][: max_frames // unit] or [0] for o in outputs]
    L = max(len(c) for c in codes)
    batch = torch.full((len(codes), L), -1, dtype=torch.long)
    for i, c in enumerate(codes):
        batch[i, :len(c)] = torch.tensor(c)
    dev = next(model.parameters()).device
    feats = model.decode(batch.to(dev), torch.tensor([len(c) for c in codes], device=dev)).cpu().numpy()
    return [feats[i, : len(c) * unit] * std + mean for i, c in enumerate(codes)]


# ---------------------------------------------------------------------------- t2m
def eval_t2m(args, mllm, wrapper, wv, vq, gen: Generator) -> dict:
    from dataset.dataset_TM_eval import get_t2m_eval_loader
    from utils.eval_t2m import build_eval_dataset, evaluate_real_motion

    ds = build_eval_dataset(wrapper, args.data_root, wv, args.split, args.dataname, args.seed)
    if args.max_items:
        ds.items = ds.items[: args.max_items]
    if len(ds) < args.batch_size:
        raise SystemExit(f"{args.data_root} split {args.split!r} has {len(ds)} usable items, fewer than --batch-size "
                         f"{args.batch_size} (t2m R-precision needs full batches); lower --batch-size")
    reps = []
    for r in tqdm(range(args.replications), desc="t2m replications", disable=args.no_progress):
        ds.reset_rng(args.seed * 1000 + 2 * r)
        texts, gts, gens, phys = [], [], [], []
        for word_embs, pos_ohot, captions, sent_len, motion, m_len, _ in get_t2m_eval_loader(
                ds, batch_size=args.batch_size, seed=args.seed * 1000 + 2 * r):
            outs = gen("t2m", list(captions))
            raw = decode_motions(vq, outs)
            t, m = wrapper.get_co_embeddings(word_embs, pos_ohot, sent_len, motion, m_len)
            texts.append(t.cpu().numpy())
            gts.append(m.cpu().numpy())
            gens.append(wrapper.embed_raw_motions(raw).cpu().numpy())
            phys.append(physics_scores(raw, args.dataname))
        texts, gts, gens = map(np.concatenate, (texts, gts, gens))
        rng = np.random.default_rng([args.seed, r])
        res = matching_metrics(texts, gens, args.batch_size)
        res.pop("n")
        res["FID"] = calculate_fid(gts, gens)
        res["Diversity"] = calculate_diversity(gens, min(args.diversity_times, diversity_times(len(gens))), rng)
        ph = np.concatenate(phys)
        res["Phys"] = float(ph.mean())  # physics reward (rewards/physics.py) of the generated motions, [0, 1]
        res["Phys_below_0.8"] = float((ph < 0.8).mean())  # share of implausible motions
        if args.mm_num_samples > 0:
            res["MModality"] = multimodality(args, ds, gen, vq, wrapper, rng)
        reps.append(res)
    real = evaluate_real_motion(wrapper, args.data_root, wv, args.split, args.replications, args.seed,
                                args.dataname, args.batch_size, dataset=ds)
    return {"generated": aggregate_replications(reps), "real_motion": real, "items": len(ds)}


def physics_scores(raw_motions, dataname: str) -> np.ndarray:
    """The physics reward of each generated motion (features -> joints -> rewards/physics.py terms)."""
    from rewards.physics import PhysicsReward
    from utils.motion_process import recover_from_ric
    from utils.paramUtil import get_spec
    spec = get_spec(dataname)
    joints = [np.asarray(recover_from_ric(m.astype(np.float32), spec.joints_num)) if len(m) >= 2 else None
              for m in raw_motions]
    return PhysicsReward(spec).score_joints(joints).values


def multimodality(args, ds, gen: Generator, vq, wrapper, rng) -> float:
    n = min(args.mm_num_samples, len(ds.items))
    idx = sorted(rng.choice(len(ds.items), n, replace=False))
    caps = [ds.items[i]["captions"][int(rng.integers(len(ds.items[i]["captions"])))]["caption"] for i in idx]
    outs = gen("t2m", caps, sample=True, n=args.mm_num_repeats)
    emb = wrapper.embed_raw_motions(decode_motions(vq, outs)).cpu().numpy()
    return calculate_multimodality(emb.reshape(n, args.mm_num_repeats, -1),
                                   min(args.mm_num_times, args.mm_num_repeats), rng)


# ---------------------------------------------------------------------------- m2t
def eval_m2t(args, mllm, wrapper, wv, vq, gen: Generator) -> dict:
    from dataset.humanml3d import HumanML3DReader
    from models.vqvae import encode_motions
    from utils.eval_m2t import m2t_matching
    from utils.m2t_metrics import compute_m2t_metrics

    reader = HumanML3DReader(args.data_root, args.split, args.dataname, progress=not args.no_progress)
    items = reader.items[: args.max_items] if args.max_items else reader.items
    model, mean, std = vq
    motions = [it["motion"][:196] for it in items]
    codes = encode_motions(model, motions, mean, std, device=next(model.parameters()).device)
    outs = gen("m2t", codes)
    cands = [o["answer"] for o in outs]
    raw_refs = [[c["caption"] for c in it["captions"]] for it in items]
    conv = args.m2t_convention
    # tm2t: processed-word references from the dataset's word/POS tokens; motiongpt: raw captions
    refs = raw_refs if conv == "motiongpt" else [[c["tokens"] for c in it["captions"]] for it in items]
    nlg = compute_m2t_metrics(cands, refs, convention=conv, bertscore_model=args.bertscore_model,
                              compute_bertscore=not args.no_bertscore, device=str(gen.m.device))
    # chance-level reference point: the most frequent training caption for every item
    from utils.m2t_metrics import most_frequent_caption_baseline
    train = HumanML3DReader(args.data_root, "train", args.dataname, progress=False)
    base_caps = most_frequent_caption_baseline([c["caption"] for it in train.items for c in it["captions"]], len(items))
    baseline = compute_m2t_metrics(base_caps, refs, convention=conv, compute_bertscore=False)
    emb = wrapper.embed_raw_motions(motions).cpu().numpy()
    out = {"nlg": nlg, "items": len(items), "baseline_most_frequent_caption": {"caption": base_caps[0] if base_caps else "",
                                                                                **baseline}}
    if len(items) >= args.batch_size:
        out["matching"] = m2t_matching(wrapper, wv, motions, cands, seed=args.seed, batch_size=args.batch_size,
                                       motion_embeddings=emb)
        real_caps = [it["captions"][0]["caption"] for it in items]
        out["matching_real"] = m2t_matching(wrapper, wv, motions, real_caps, seed=args.seed,
                                            batch_size=args.batch_size, motion_embeddings=emb)
    out["samples"] = [{"id": it["name"], "generated": c, "references": r[:3]}
                      for it, c, r in list(zip(items, cands, raw_refs))[:20]]
    return out


# ---------------------------------------------------------------------------- report
def decoding_name(args) -> str:
    if args.use_com:
        return f"Chain-of-Motion sampling (T={args.temperature}, top-p {args.top_p})"
    if args.do_sample:
        return f"sampling (T={args.temperature}, top-p {args.top_p}" + (f", top-k {args.top_k})" if args.top_k else ")")
    return f"beam search ({args.num_beams} beams)" if args.num_beams > 1 else "greedy"


def markdown(task: str, res: dict, meta: dict) -> str:
    lines = [f"# MotionLLM {task} evaluation", "", f"checkpoint `{meta['checkpoint']}`, split `{meta['split']}`, "
             f"{meta['device']}, decoding: {meta.get('decoding', '?')}, CoM: {meta['com']}", ""]
    if task == "t2m":
        cols = ["R_precision_top1", "R_precision_top2", "R_precision_top3", "FID", "MM_Dist", "Diversity", "MModality",
                "Phys_below_0.8"]
        rows = [[name] + [format_mean_ci(block[c]["mean"], block[c]["ci"]) if c in block else "–" for c in cols]
                for name, block in (("Real motion", res["real_motion"]), ("MotionLLM", res["generated"]))]
        lines.append(markdown_table(["", "Top-1", "Top-2", "Top-3", "FID", "MM-Dist", "Diversity", "MModality",
                                     "phys < 0.8"], rows))
    else:
        n = res["nlg"]
        base = res.get("baseline_most_frequent_caption", {})
        rows = []
        for name, key, nlg_row in (("Real captions", "matching_real", None), ("Most frequent caption", None, base),
                                   ("MotionLLM", "matching", n)):
            mt = res.get(key, {}) if key else {}
            r = [f"{mt[k]:.3f}" if k in mt else "–" for k in ("R_precision_top1", "R_precision_top2", "R_precision_top3", "MM_Dist")]
            nl = ["–"] * 5 if nlg_row is None else [f"{100 * nlg_row[k]:.1f}" if nlg_row.get(k) is not None else "–"
                                                    for k in ("bleu_1", "bleu_4", "rouge_l", "cider", "bertscore_f1")]
            rows.append([name] + r + nl)
        lines.append(markdown_table(["", "R@1", "R@2", "R@3", "MM-Dist", "BLEU@1", "BLEU@4", "ROUGE-L", "CIDEr",
                                     "BERTScore"], rows))
        lines += ["", f"NLG convention: {n.get('convention')}; BERTScore model {n.get('bertscore_model')}, "
                  f"rescaled: {n.get('bertscore_rescaled')}"]
    kinds = meta.get("failure_kinds") or {}
    why = f" ({', '.join(f'{k}: {v}' for k, v in sorted(kinds.items()))})" if kinds else ""
    lines += ["", f"failed generations: {meta['failures']} of {meta['samples']}{why}; mean inference time "
              f"{meta['seconds_per_sample'] * 1000:.1f} ms per sample on {meta['device']}"]
    if meta["failures"]:
        lines.append("(failures are still scored as generated: t2m decodes the motion codes the answer holds, a "
                     "4-frame rest motion when there are none; m2t scores the answer text, never the reasoning)")
    ev = meta.get("evaluator")
    if isinstance(ev, dict):
        lines.append(f"evaluator (judge): `{ev['opt']}`, sha256 {ev['sha256'][:12]} (weights {ev['weights_sha256'][:12]})")
    if meta.get("com_scorer"):
        lines.append(f"CoM scorer (critic): {meta['com_scorer']}")
    if meta.get("judge_as_critic"):
        lines.append("WARNING: the CoM critic is the judge (--allow-judge-as-critic): these numbers grade their own "
                     "selection")
    return "\n".join(lines) + "\n"


def main(argv=None):
    from models.evaluator_wrapper import EvaluatorWrapper
    from options.option_llm import get_args
    from models.vqvae import load_vq_with_stats
    from utils.word_vectorizer import WordVectorizer

    args = get_args(argv)
    from utils.threads import apply_threads
    apply_threads(args.threads)
    seed_everything(args.seed)
    device = resolve_device(args.device)
    if not Path(args.eval_ckpt).is_file():
        raise SystemExit(f"--eval-ckpt {args.eval_ckpt} not found")
    if not args.vq_ckpt:
        raise SystemExit("--vq-ckpt is required (the VQ-VAE the model's motion tokens come from)")
    if args.max_new_tokens < 1:
        raise SystemExit(f"--max-new-tokens {args.max_new_tokens}: must be at least 1")
    if args.eval_task == "t2m" and args.max_items and args.max_items < args.batch_size:
        raise SystemExit(f"--max-items {args.max_items} is below --batch-size {args.batch_size}: t2m R-precision ranks "
                         f"each text among a batch of {args.batch_size} motions (incomplete batches are dropped); "
                         f"raise --max-items or lower --batch-size")
    # where the reports go, checked before the expensive part (a name that leaves --out-dir or a folder that
    # cannot be written stops the run now, not after the generation)
    out_dir = run_dir(args.out_dir, args.exp_name) if args.exp_name else Path(args.eval_ckpt).resolve().parent
    check_writable(out_dir, "--out-dir/--exp-name" if args.exp_name else "the checkpoint's folder")
    # the judge and its word vectors before the (slow) model: a broken evaluator stops the run now
    wrapper = EvaluatorWrapper(args.evaluator_dir, device)
    wv = WordVectorizer(args.glove_dir)
    vq = load_vq_with_stats(args.vq_ckpt, device)
    scorer, scorer_name = None, None
    if args.use_com:  # its critic is checked against the judge before the model loads
        from rewards.callbacks import build_com_scorer
        scorer, scorer_name = build_com_scorer(args, args.eval_task, vq, device, judge=args.evaluator_dir)
    mllm = MotionLLM.from_checkpoint(args.eval_ckpt, device=device, llm_backbone=args.llm_backbone,
                                     dtype=args.dtype)
    mllm.use_format_mask = args.format_mask
    if args.gen_engine == "vllm":
        from models.vllm_engine import VLLMEngine
        mllm.use_engine(VLLMEngine(mllm, args.eval_task, seed=args.seed,
                                   gpu_memory_utilization=args.vllm_gpu_memory_utilization))
    if vq[0].nb_code != mllm.cfg.nb_code:
        raise SystemExit(f"--vq-ckpt has {vq[0].nb_code} codes but the checkpoint uses {mllm.cfg.nb_code}")
    gen = Generator(mllm, args, scorer)
    t0 = time.time()
    res = (eval_t2m if args.eval_task == "t2m" else eval_m2t)(args, mllm, wrapper, wv, vq, gen)
    meta = {"checkpoint": args.eval_ckpt, "split": args.split, "engine": args.gen_engine, "device": str(device) + (
        f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "com": (f"K={args.com_candidates}, T={args.com_refine_steps}" + (", greedy candidate included (kept for "
                f"{gen.com_kept_greedy} inputs)" if args.com_include_greedy else "")) if args.use_com else "off",
        "decoding": decoding_name(args) + ("" if args.format_mask or args.gen_engine == "vllm" else ", no format mask"),
        "format_mask": bool(args.format_mask and args.gen_engine != "vllm"),
        "com_scorer": f"{scorer_name} (never sees the reference)" if args.use_com else None,
        "critic": scorer.critic["critic"] if args.use_com else None,
        "judge_as_critic": bool(scorer.critic["judge_as_critic"]) if args.use_com else False,
        "evaluator": {"given": str(args.evaluator_dir), **wrapper.fingerprint}, "failures": gen.failures,
        "failure_kinds": gen.failure_kinds, "samples": gen.samples,
        "seconds_per_sample": gen.seconds / max(gen.samples, 1), "wall_seconds": round(time.time() - t0, 1),
        "replications": args.replications if args.eval_task == "t2m" else 1}
    suffix = "_com" if args.use_com else ""
    atomic_write_json(out_dir / f"eval_{args.eval_task}{suffix}.json", {"meta": meta, "results": res})
    md = markdown(args.eval_task, res, meta)
    atomic_write_text(out_dir / f"eval_{args.eval_task}{suffix}.md", md)
    print(md)
    out = {"meta": meta, "results": res}
    if getattr(args, "gallery", 0) > 0:  # results page (utils/gallery.py): N items generated again, own counters
        from utils.gallery import eval_gallery
        page = eval_gallery(args, Generator(mllm, args, scorer), vq, wrapper, wv, out_dir, decode_motions)
        out["gallery"] = str(page)
        print(f"gallery: {out['gallery']}")
    return out


if __name__ == "__main__":
    main()
