#!/usr/bin/env python
"""Run the embedded default end to end (offline, CPU friendly).

Each stage is the same command line a GPU user would run by hand; a stage whose output already
exists is skipped (``--force`` reruns everything). A stage that runs again (forced, or after an interrupted
run) replaces its run folder: the training stages get ``--overwrite``. Stages whose inputs are ready run two
at a time (``--jobs``, :mod:`utils.stage_runner`; each stage's output then goes to
``experiments/quickstart/logs/<stage>.log``; each stage takes the threads the others leave free, see
:mod:`utils.threads`). Two lanes keep both cores of a 2-core machine busy to the end (about 20.5 min here, fresh
clone). Wall time per stage is printed and written to ``experiments/quickstart/stages.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
import utils.threads  # noqa: E402,F401  (before torch: OpenMP wait policy and thread count)
from utils.stage_runner import default_jobs, run_stages  # noqa: E402


def first_caption(path: Path) -> str:
    return path.read_text().split("\n", 1)[0].split("#", 1)[0]


def weight_flags(spec: str) -> list:
    """'align=1.0,phys=0.5' -> ['--reward-align-weight', '1.0', '--reward-phys-weight', '0.5']."""
    out = []
    for item in filter(None, (x.strip() for x in spec.split(","))):
        name, _, value = item.partition("=")
        if name not in ("format", "sem", "coh", "phys", "align") or not value:
            raise SystemExit(f"--rl-t2m-weights: bad entry {item!r} (name=value, names format/sem/coh/phys/align)")
        out += [f"--reward-{name}-weight", str(float(value))]
    return out


# the results rows of the quickstart: (row, run folder, report) per task
EVAL_ROWS = {task: [("SFT", "eval_sft", f"eval_{task}.json"), ("+ RLVR", "eval_rlvr", f"eval_{task}.json"),
                    ("+ RLVR + CoM", "eval_rlvr", f"eval_{task}_com.json")] for task in ("t2m", "m2t")}


def summary(exp: Path) -> str:
    """The results of the quickstart as two tables (t2m, m2t): SFT, +RLVR, +RLVR+CoM, every number from the
    judge; the judge and the critic named with their checksums."""
    from utils.metrics import format_mean_ci
    from utils.tables import markdown_table

    def load(run, name):
        f = exp / run / name
        return json.loads(f.read_text()) if f.is_file() else None
    out = []
    rows_t = [(name, load(run, f)) for name, run, f in EVAL_ROWS["t2m"]]
    cols = ["R_precision_top1", "R_precision_top2", "R_precision_top3", "FID", "MM_Dist", "Diversity", "MModality",
            "Phys_below_0.8"]
    table, meta = [], None
    for name, r in rows_t:
        if r is None:
            continue
        meta = meta or r["meta"]
        if not table:
            real = r["results"]["real_motion"]
            table.append(["real motion"] + [format_mean_ci(real[c]["mean"], real[c]["ci"]) if c in real else "–"
                                            for c in cols] + ["", ""])
        g = r["results"]["generated"]
        n = f"{r['results']['items']} items × {r['meta']['replications']}"
        table.append([name] + [format_mean_ci(g[c]["mean"], g[c]["ci"]) if c in g else "–" for c in cols]
                     + [f"{r['meta']['failures']}/{r['meta']['samples']}", n])
    if table:
        out += ["## text -> motion (synthetic test split; mean ± 95% CI over replications)", "",
                markdown_table(["", "top-1", "top-2", "top-3", "FID", "MM-Dist", "Diversity", "MModality",
                                "phys < 0.8", "failed", "items × reps"], table)]
    rows_m = [(name, load(run, f)) for name, run, f in EVAL_ROWS["m2t"]]
    table = []
    for name, r in rows_m:
        if r is None:
            continue
        meta = meta or r["meta"]
        res = r["results"]
        mt, nl = res.get("matching", {}), res["nlg"]
        if not table and res.get("matching_real"):
            rm = res["matching_real"]
            table.append(["real captions"] + [f"{rm[k]:.3f}" for k in ("R_precision_top1", "R_precision_top3",
                                                                          "MM_Dist")] + ["–"] * 5 + ["", ""])
        table.append([name] + [f"{mt[k]:.3f}" if k in mt else "–" for k in ("R_precision_top1", "R_precision_top3",
                                                                              "MM_Dist")]
                     + [f"{100 * nl[k]:.1f}" if nl.get(k) is not None else "–"
                        for k in ("bleu_1", "bleu_4", "rouge_l", "cider", "bertscore_f1")]
                     + [f"{r['meta']['failures']}/{r['meta']['samples']}", str(res["items"])])
    if table:
        out += ["", "## motion -> text (synthetic test split, greedy; CoM ranks by the critic, never the reference)", "",
                markdown_table(["", "R@1", "R@3", "MM-Dist", "BLEU@1", "BLEU@4", "ROUGE-L", "CIDEr", "BERTScore",
                                "failed", "items"], table)]
    if meta:
        from rewards.critic import describe
        crit = next((r["meta"].get("critic") for _, r in rows_t + rows_m if r and r["meta"].get("critic")), None)
        out += ["", f"judge (every number above): {describe(meta['evaluator'])}; critic (rewards and CoM ranking): "
                f"{describe(crit)}"]
    return "\n".join(out) + "\n"


def aggregate(dirs: list) -> str:
    """Mean ± sd over seeds (one finished quickstart output folder each) of the headline numbers of every row:
    one table for t2m (top-1, top-3, FID, MM-Dist, share of motions with physics reward < 0.8), one for m2t
    (caption R@3, BLEU@4, ROUGE-L, CIDEr)."""
    import numpy as np

    from utils.tables import markdown_table
    cols = {"t2m": [("top-1", "generated", "R_precision_top1", 1), ("top-3", "generated", "R_precision_top3", 1),
                    ("FID", "generated", "FID", 1), ("MM-Dist", "generated", "MM_Dist", 1),
                    ("phys < 0.8", "generated", "Phys_below_0.8", 1)],
            "m2t": [("R@3", "matching", "R_precision_top3", 1), ("BLEU@4", "nlg", "bleu_4", 100),
                    ("ROUGE-L", "nlg", "rouge_l", 100), ("CIDEr", "nlg", "cider", 100)]}

    def values(res, task):  # t2m values are {"mean", "ci", "values"} over replications, m2t ones plain numbers
        out = []
        for _, section, k, scale in cols[task]:
            v = res.get(section, {}).get(k, float("nan"))
            out.append((v["mean"] if isinstance(v, dict) else v) * scale)
        return out
    out, gains = [], []
    for task in ("t2m", "m2t"):
        table, per_seed = [], {}
        for name, run, file in EVAL_ROWS[task]:
            per_seed[name] = {i: values(json.loads((d / run / file).read_text())["results"], task)
                              for i, d in enumerate(dirs) if (d / run / file).is_file()}
            if not per_seed[name]:
                continue
            v = np.asarray(list(per_seed[name].values()), dtype=float)
            sd = v.std(0, ddof=1) if len(v) > 1 else np.zeros(v.shape[1])
            table.append([f"{task} {name}", str(len(v))] + [f"{m:.3f} ± {e:.3f}" for m, e in zip(v.mean(0), sd)])
        out.append(markdown_table(["", "seeds"] + [c[0] for c in cols[task]], table))
        # paired gains: each seed's later row minus its earlier row (the seeds share nothing else)
        names = [n for n, _, _ in EVAL_ROWS[task]]
        for a, b in zip(names, names[1:]):
            both = sorted(set(per_seed.get(a, {})) & set(per_seed.get(b, {})))
            if not both:
                continue
            d = np.asarray([np.subtract(per_seed[b][i], per_seed[a][i]) for i in both], dtype=float)
            sd = d.std(0, ddof=1) if len(d) > 1 else np.zeros(d.shape[1])
            cells = [f"{m:+.3f} ± {e:.3f} ({', '.join(f'{x:+.3f}' for x in d[:, j])})"
                     for j, (m, e) in enumerate(zip(d.mean(0), sd))]
            gains.append([f"{task}: ({b}) − ({a.lstrip('+ ')})", str(len(d))] + cells)
    text = "mean ± sd over seeds\n\n" + "\n\n".join(out) + "\n"
    if gains:
        t2m_cols = [c[0] for c in cols["t2m"]]
        m2t_cols = [c[0] for c in cols["m2t"]]
        text += ("\nper-seed gains (mean ± sd, then each seed)\n\n"
                 + markdown_table(["", "seeds"] + t2m_cols, [g for g in gains if g[0].startswith("t2m")]) + "\n\n"
                 + markdown_table(["", "seeds"] + m2t_cols, [g for g in gains if g[0].startswith("m2t")]) + "\n")
    return text


ABLATIONS = {  # variant -> (task, reward weights zeroed); "w/o CoM" is the full model decoded without CoM
    "full (= w/o CoM)": ("both", ()), "w/o R_sem": ("m2t", ("sem",)), "w/o R_coh": ("both", ("coh",)),
    "w/o R_phys": ("t2m", ("phys",)), "w/o R_align": ("t2m", ("align",))}


def run_ablation(args, env) -> int:
    """The reward ablation on the quickstart's SFT checkpoints: one RLVR run per variant and task, each
    evaluated by the judge (t2m: top-1/top-3/FID/MM-Dist, greedy and with CoM; m2t: BLEU@4/CIDEr)."""
    from utils.tables import markdown_table
    exp = Path(args.out_dir)
    st = {s["name"]: s for s in stages(args)}
    rows = []
    for variant, (tasks, off) in ABLATIONS.items():
        res = {}
        for task in ("t2m", "m2t"):
            if tasks not in ("both", task):
                continue
            run = "ablation/" + "".join(ch for ch in variant.replace(" ", "_") if ch.isalnum() or ch == "_") + "_" + task
            cmd = list(st[f"RLVR {task}"]["cmd"])
            cmd[cmd.index("--exp-name") + 1] = run
            for name in off:
                flag = f"--reward-{name}-weight"
                cmd += [flag, "0"]
            ckpt = exp / run / f"motionllm_rlvr_epoch_{args.rl_epochs - 1}.pth"
            ev = list(st[f"eval {task} RLVR"]["cmd"])
            ev[ev.index("--eval-ckpt") + 1] = str(ckpt)
            ev[ev.index("--exp-name") + 1] = run
            for c in ([] if ckpt.exists() else [cmd]) + [ev]:
                print(f"[ablation] {variant} {task}: {' '.join(c[1:4])} ...", flush=True)
                if subprocess.run(c, cwd=ROOT, env=env).returncode:
                    return 1
            res[task] = json.loads((exp / run / f"eval_{task}.json").read_text())["results"]
        t, m = res.get("t2m", {}).get("generated"), res.get("m2t", {}).get("nlg")
        rows.append([variant] + ([f"{t[k]['mean']:.3f}" for k in ("R_precision_top1", "R_precision_top3", "FID",
                                                                   "MM_Dist", "Phys_below_0.8")] if t else ["–"] * 5)
                    + ([f"{100 * m[k]:.1f}" for k in ("bleu_4", "cider")] if m else ["–"] * 2))
    full = json.loads((exp / "eval_rlvr" / "eval_t2m_com.json").read_text())["results"]["generated"] \
        if (exp / "eval_rlvr" / "eval_t2m_com.json").is_file() else None
    if full:
        rows.insert(1, ["full + CoM"] + [f"{full[k]['mean']:.3f}" for k in ("R_precision_top1", "R_precision_top3",
                                                                             "FID", "MM_Dist", "Phys_below_0.8")]
                    + ["–", "–"])
    text = ("reward ablation (RLVR from the same SFT checkpoints; judge numbers on the synthetic test split)\n\n"
            + markdown_table(["variant", "top-1", "top-3", "FID", "MM-Dist", "phys < 0.8", "BLEU@4", "CIDEr"], rows)
            + "\n")
    (exp / "ablation.md").write_text(text)
    print(text)
    return 0


def stages(args):
    """The embedded default, stage by stage; each command is what a GPU user would run by hand.

    Two evaluators: the *judge* computes every reported metric; the *critic* (another seed, trained and
    selected on the train split only) is the one inside the consistency reward and the Chain-of-Motion
    scorer. The judge is never used in training or selection."""
    data = Path(args.data_root) / "synthetic_h3d"
    exp = Path(args.out_dir)
    py = sys.executable
    vq = exp / "vq_synthetic" / "net_last.pth"
    cot = exp / "cot_synthetic"
    backbone = exp / "tiny_backbone"
    judge = exp / "evaluator_synthetic" / "t2m" / "text_mot_match"
    critic = exp / "evaluator_critic" / "t2m" / "text_mot_match"
    sample = "000000"
    lora = ["--lora-r-t2m", "16", "--lora-alpha-t2m", "32", "--lora-r-m2t", "16", "--lora-alpha-m2t", "32"]
    sft_t2m = exp / "morl_sft_t2m" / "motionllm_t2m_best.pth"
    sft_m2t = exp / "morl_sft_m2t" / "motionllm_m2t_best.pth"
    rl_t2m = exp / "morl_rlvr_t2m" / f"motionllm_rlvr_epoch_{args.rl_epochs - 1}.pth"
    rl_m2t = exp / "morl_rlvr_m2t" / f"motionllm_rlvr_epoch_{args.rl_epochs - 1}.pth"
    eval_base = ["--vq-ckpt", str(vq), "--llm-backbone", str(backbone), "--data-root", str(data), "--evaluator-dir", str(judge),
                 "--glove-dir", str(data / "glove"), "--max-new-tokens", "160"]
    com = ["--use-com", "--com-candidates", str(args.com_candidates), "--com-refine-steps", "2", "--com-include-greedy",
           "--temperature", str(args.com_temperature), "--reward-align-metric", "retrieval",
           "--com-evaluator-dir", str(critic), "--reward-glove-path", str(data / "glove"), "--nli-model-name", "none"]
    seed = ["--seed", str(args.seed)]
    sft_common = [*seed, "--llm-backbone", str(backbone), "--vq-ckpt", str(vq), "--use-reasoning", "--overwrite",
                  "--batch-size", "16", "--max-motion-len", "200", "--lora-dropout", str(args.lora_dropout), *lora,
                  "--lr-schedule", args.sft_lr_schedule, "--min-lr-ratio", "0.05"]
    rl_common = ["--train-stage", "rlvr", *seed, "--cot-train-jsonl", "--out-dir", str(exp), "--llm-backbone", str(backbone),
                 "--vq-ckpt", str(vq), "--use-reasoning", "--rl-epochs", str(args.rl_epochs),
                 "--rl-batch-size", "4", "--rl-group-size", "8", "--rl-max-new-tokens", "160",
                 "--reward-dataset-opt-path", str(critic), "--judge-evaluator-dir", str(judge),
                 "--reward-glove-path", str(data / "glove"), "--nli-model-name", "none", "--overwrite"]

    def rl(task, ref, extra):
        c = list(rl_common)
        c[c.index("--cot-train-jsonl") + 1:c.index("--cot-train-jsonl") + 1] = [str(cot / f"{task}_train.jsonl")]
        return [py, "train_mllm.py", "--training-task", task, "--exp-name", f"morl_rlvr_{task}",
                "--rl-reference-ckpt", str(ref), *c, *extra]

    def ev(name, task, ckpt, out, after, extra=()):
        return {"name": name, "output": exp / out / f"eval_{task}{'_com' if '--use-com' in extra else ''}.json",
                "after": ["evaluator (judge)", *after],
                "cmd": [py, "eval_mllm.py", "--eval-task", task, "--eval-ckpt", str(ckpt), *eval_base,
                        "--out-dir", str(exp), "--exp-name", out, *extra]}

    t2m_reps = ["--replications", str(args.eval_replications)]
    evaluator = ["--glove-dir", str(data / "glove"), "--small", "--movement-iters", "1000", "--movement-lr", "1e-3",
                 "--max-epoch", str(args.evaluator_epochs), "--lr", "1e-3", "--overwrite"]
    # In priority order (utils/stage_runner.py starts the first ready stage first): the longest chain, dataset ->
    # VQ-VAE -> CoT -> SFT t2m -> RLVR t2m -> t2m CoM evaluation, goes first and the rest runs beside it. The t2m
    # and m2t adapters are separate LoRA adapters of one backbone, so each task's chain (SFT -> RLVR ->
    # evaluation) runs on its own; a checkpoint holds both adapters, the other task's one untrained. On fewer
    # than 4 CPUs of a quiet machine the evaluators wait for the VQ-VAE, which then trains with both threads (a
    # VQ-VAE step: 0.082 s at 2 threads, 0.120 s at 1), and run beside SFT t2m instead: nothing needs them before
    # RLVR (args.hold_evaluators, decided in main()).
    hold = ["VQ-VAE"] if args.hold_evaluators else []
    return [
        {"name": "synthetic dataset", "output": data / "Mean.npy", "after": [],
         "cmd": [py, "prepare/make_synthetic_dataset.py", "--out", str(data), "--num-motions", str(args.num_motions),
                 "--seed", str(args.seed), "--overwrite"]},
        {"name": "tiny backbone", "output": backbone / "config.json", "after": ["synthetic dataset"],
         "cmd": [py, "prepare/make_tiny_backbone.py", "--out", str(backbone), "--tokenizer", "bpe",
                 "--data-root", str(data), "--overwrite"]},
        {"name": "VQ-VAE", "output": vq, "after": ["synthetic dataset"],
         "cmd": [py, "train_vq.py", "--data-root", str(data), "--out-dir", str(exp), "--exp-name", "vq_synthetic",
                 "--width", "128", "--code-dim", "128", "--output-emb-width", "128", "--nb-code", "512",
                 "--batch-size", "64", "--total-iter", str(args.vq_iters), "--warm-up-iter", "200",
                 "--lr-scheduler", str(int(args.vq_iters * 0.8)), "--eval-iter", "1000", "--overwrite", *seed]},
        {"name": "CoT data", "output": cot / "m2t_val.jsonl", "after": ["VQ-VAE"],
         "cmd": [py, "prepare/build_cot.py", "--vq-ckpt", str(vq), "--data-root", str(data), "--out-dir", str(cot),
                 "--split", "train", "val", "--captions-per-item", "2", "--reasoner", "template"]},
        {"name": "SFT t2m", "output": sft_t2m, "after": ["CoT data", "tiny backbone"],
         "cmd": [py, "train_mllm.py", "--train-stage", "sft", "--training-task", "t2m",
                 "--cot-train-jsonl", str(cot / "t2m_train.jsonl"), "--cot-val-jsonl", str(cot / "t2m_val.jsonl"),
                 "--exp-name", "morl_sft_t2m", "--out-dir", str(exp), "--epochs", str(args.sft_t2m_epochs),
                 "--learning-rate", "2e-3", *sft_common]},
        {"name": "evaluator (critic)", "output": critic / "model" / "finest.tar", "after": ["synthetic dataset", *hold],
         "cmd": [py, "train_evaluator.py", "--data-root", str(data), "--checkpoints-dir", str(exp / "evaluator_critic"),
                 *evaluator, "--seed", str(args.seed + 1), "--val-split", "train", "--eval-split", "train"]},
        {"name": "evaluator (judge)", "output": judge / "model" / "finest.tar", "after": ["synthetic dataset", *hold],
         "cmd": [py, "train_evaluator.py", "--data-root", str(data), "--checkpoints-dir", str(exp / "evaluator_synthetic"),
                 *evaluator, *seed]},
        {"name": "SFT m2t", "output": sft_m2t, "after": ["CoT data", "tiny backbone"],
         "cmd": [py, "train_mllm.py", "--train-stage", "sft", "--training-task", "m2t",
                 "--cot-train-jsonl", str(cot / "m2t_train.jsonl"), "--cot-val-jsonl", str(cot / "m2t_val.jsonl"),
                 "--exp-name", "morl_sft_m2t", "--out-dir", str(exp), "--epochs", str(args.sft_m2t_epochs),
                 "--learning-rate", "3e-3", *sft_common]},
        {"name": "RLVR t2m", "output": rl_t2m, "after": ["SFT t2m", "evaluator (critic)", "evaluator (judge)"],
         "cmd": rl("t2m", sft_t2m, ["--rl-max-prompts", str(args.rl_prompts), "--learning-rate", str(args.rl_lr),
                                    "--rl-temperature", str(args.rl_temperature), "--rl-kl-coef", str(args.rl_kl),
                                    "--reward-align-metric", "retrieval", *weight_flags(args.rl_t2m_weights)])},
        ev("eval t2m RLVR+CoM", "t2m", rl_t2m, "eval_rlvr", ["RLVR t2m", "evaluator (critic)"],
           [*t2m_reps, "--mm-num-samples", "0", *(["--max-items", str(args.com_items)] if args.com_items else []), *com]),
        {"name": "RLVR m2t", "output": rl_m2t, "after": ["SFT m2t", "evaluator (critic)", "evaluator (judge)"],
         "cmd": rl("m2t", sft_m2t, ["--rl-max-prompts", str(args.rl_prompts_m2t), "--learning-rate",
                                    str(args.rl_lr_m2t), "--rl-temperature", str(args.rl_temperature),
                                    "--rl-kl-coef", str(args.rl_kl)])},
        ev("eval t2m SFT", "t2m", sft_t2m, "eval_sft", ["SFT t2m"], [*t2m_reps, "--mm-num-samples", "0", "--greedy"]),
        ev("eval t2m RLVR", "t2m", rl_t2m, "eval_rlvr", ["RLVR t2m"],
           [*t2m_reps, "--mm-num-samples", "20", "--mm-num-repeats", "5", "--mm-num-times", "4", "--greedy"]),
        ev("eval m2t SFT", "m2t", sft_m2t, "eval_sft", ["SFT m2t"]),
        ev("eval m2t RLVR", "m2t", rl_m2t, "eval_rlvr", ["RLVR m2t"]),
        ev("eval m2t RLVR+CoM", "m2t", rl_m2t, "eval_rlvr", ["RLVR m2t", "evaluator (critic)"],
           [*(["--max-items", str(args.com_items)] if args.com_items else []), *com]),
        {"name": "render a sample", "output": exp / "quickstart" / f"{sample}.gif", "after": ["synthetic dataset"],
         "cmd": lambda: [py, "-m", "utils.plot_script", str(data / "new_joint_vecs" / f"{sample}.npy"),
                         str(exp / "quickstart" / f"{sample}.gif"), "--dataset", "t2m", "--title",
                         first_caption(data / "texts" / f"{sample}.txt")]},
    ]

def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", default="data", help="where the synthetic dataset is written")
    ap.add_argument("--out-dir", default="experiments", help="experiment outputs")
    ap.add_argument("--num-motions", type=int, default=800)
    ap.add_argument("--vq-iters", type=int, default=2500)
    ap.add_argument("--evaluator-epochs", type=int, default=10)
    ap.add_argument("--sft-t2m-epochs", type=int, default=8)
    ap.add_argument("--sft-m2t-epochs", type=int, default=4)
    ap.add_argument("--sft-lr-schedule", default="constant", choices=["constant", "cosine", "linear"],
                    help="SFT lr schedule (cosine/linear: decayed to 0.05 x the lr over the run; measured on seed 0: "
                         "cosine over 5 t2m epochs ends no better than 4 constant ones)")
    ap.add_argument("--rl-prompts", type=int, default=384, help="t2m RLVR prompts per epoch (4 per step)")
    ap.add_argument("--rl-prompts-m2t", type=int, default=128, help="m2t RLVR prompts per epoch (4 per step)")
    ap.add_argument("--rl-epochs", type=int, default=1)
    ap.add_argument("--rl-lr", type=float, default=2e-5, help="t2m RLVR learning rate")
    ap.add_argument("--rl-lr-m2t", type=float, default=2e-5, help="m2t RLVR learning rate")
    ap.add_argument("--rl-temperature", type=float, default=0.15,
                    help="rollout temperature (low: the evaluation decodes greedily, and updates near the mode move it)")
    ap.add_argument("--rl-kl", type=float, default=0.05, help="KL coefficient to the SFT reference")
    ap.add_argument("--rl-t2m-weights", default="align=1.0,phys=1.0,format=0.2,coh=0.0",
                    help="reward weights of the t2m RLVR stage (--reward-<name>-weight)")
    ap.add_argument("--com-candidates", type=int, default=4, help="Chain-of-Motion K of the CoM rows (T = 2)")
    ap.add_argument("--com-items", type=int, default=0,
                    help="test items of the CoM rows (0: all, with the same replications as the other rows)")
    ap.add_argument("--com-temperature", type=float, default=0.15,
                    help="sampling temperature of the CoM candidates: the RLVR rollout temperature, the distribution "
                         "RL shaped (at 1.0 the tiny model's samples are mostly malformed)")
    ap.add_argument("--eval-replications", type=int, default=3)
    ap.add_argument("--only", nargs="+", default=None, help="run only these stages (names as printed)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--force", action="store_true", help="rerun stages whose outputs exist")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads of every stage (default: see utils/threads.py)")
    ap.add_argument("--jobs", type=int, default=None,
                    help="stages run at once where their inputs allow (default: 2 from 2 CPUs up; each stage takes the "
                         "threads the others leave free, utils/threads.py)")
    ap.add_argument("--lora-dropout", type=float, default=0.0,
                    help="LoRA dropout of the SFT stages (0.1 makes a step ~20%% slower on a CPU: peft draws a "
                         "Bernoulli mask per LoRA module)")
    ap.add_argument("--seeds", type=int, nargs="+", default=None,
                    help="run the whole chain once per seed (dataset, models and RL all reseeded) into "
                         "<out-dir>/seed_<s> and <data-root>/seed_<s>, then print mean ± sd over the seeds")
    ap.add_argument("--aggregate", nargs="+", default=None, metavar="OUT_DIR",
                    help="only print mean ± sd over these finished quickstart output folders")
    ap.add_argument("--ablation", action="store_true",
                    help="after the chain: the reward ablation (full, w/o R_sem, R_coh, R_phys, R_align, CoM), each an "
                         "RLVR run from the same SFT checkpoint evaluated by the judge; table in <out-dir>/ablation.md")
    ap.set_defaults(hold_evaluators=False)  # main() sets it from the machine's load (see stages())
    return ap


def main(argv=None):
    ap = parser()
    args = ap.parse_args(argv)
    if args.aggregate:
        print(aggregate([Path(d) for d in args.aggregate]))
        return 0
    if args.seeds:
        argv = list(sys.argv[1:] if argv is None else argv)
        i = argv.index("--seeds")
        j = i + 1
        while j < len(argv) and not argv[j].startswith("--"):
            j += 1
        base = argv[:i] + argv[j:]
        dirs = []
        for seed in args.seeds:
            out = Path(args.out_dir) / f"seed_{seed}"
            rc = main(base + ["--seed", str(seed), "--out-dir", str(out),
                              "--data-root", str(Path(args.data_root) / f"seed_{seed}")])
            if rc:
                return rc
            dirs.append(out)
        text = aggregate(dirs)
        (Path(args.out_dir) / "seeds.md").write_text(text)
        print(text)
        return 0

    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", MPLBACKEND="Agg")
    if args.threads:
        env.update(MORL_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
    pinned = env.get("MORL_THREADS") or utils.threads.pinned_threads()
    print(f"CPU threads per stage: {pinned if pinned else f'adaptive, up to {utils.threads.default_threads()}'} "
          f"(of {utils.threads.available_cpus()} CPUs this process may use); OpenMP wait policy: "
          f"{env.get('OMP_WAIT_POLICY', 'runtime default')}", flush=True)
    jobs = args.jobs or default_jobs(utils.threads.available_cpus())
    # a busy machine leaves the VQ-VAE one thread whatever runs beside it: then the evaluators run beside it
    load = utils.threads.other_load(1.0) if utils.threads.available_cpus() < 4 and jobs > 1 else None
    args.hold_evaluators = load is not None and load < 0.5
    if load is not None:
        print(f"other processes use {load:.1f} CPUs: the evaluators "
              + ("wait for the VQ-VAE (it trains with both threads)" if args.hold_evaluators
                 else "train beside the VQ-VAE"), flush=True)
    print(f"stages at a time: {jobs} (--jobs); " + ("each stage's output goes to "
          f"{Path(args.out_dir) / 'quickstart' / 'logs'}/<stage>.log" if jobs > 1 else "output below"), flush=True)
    t0 = time.time()
    rc, report = run_stages(stages(args), jobs=jobs, env=env, cwd=ROOT,
                            log_dir=Path(args.out_dir) / "quickstart" / "logs", only=args.only, force=args.force,
                            say=lambda m: print(m, flush=True))
    if rc:
        return rc
    wall = time.time() - t0
    exp = Path(args.out_dir) / "quickstart"
    exp.mkdir(parents=True, exist_ok=True)
    tmp = exp / "stages.json.tmp"
    tmp.write_text(json.dumps({"wall_seconds": round(wall, 1), "jobs": jobs, "stages": report}, indent=1))
    os.replace(tmp, exp / "stages.json")
    from utils.tables import markdown_table
    print("\n" + markdown_table(["stage", "wall time (s)", "from (s)", "to (s)"],
                                [[r["stage"], "skipped" if r["skipped"] else r["seconds"], r.get("start_s", ""),
                                  r.get("end_s", "")] for r in report]))
    print(f"all stages: {wall / 60:.1f} min wall time ({jobs} at a time)")
    if args.ablation:
        rc = run_ablation(args, env)
        if rc:
            return rc
    text = summary(Path(args.out_dir))
    (exp / "results.md").write_text(text)
    print("\n" + text)
    curves = [str(Path(args.out_dir) / r / "metrics.png") for r in ("morl_sft_t2m", "morl_sft_m2t", "morl_rlvr_t2m",
                                                                     "morl_rlvr_m2t")
              if (Path(args.out_dir) / r / "metrics.png").is_file()]
    print(f"results: {exp / 'results.md'}; per-stage reports: {args.out_dir}/eval_*/eval_*.md; training curves "
          f"(metrics.jsonl + PNG): {', '.join(curves) or 'none'}")
    print(f"paper-style tables (Markdown + LaTeX) beside the published rows: python experiments/make_tables.py "
          f"SFT={args.out_dir}/eval_sft RLVR={args.out_dir}/eval_rlvr --dataset synthetic --out {args.out_dir}/tables")
    o = args.out_dir
    ckpts = (f"--model-ckpt {o}/morl_rlvr_t2m/motionllm_rlvr_epoch_{args.rl_epochs - 1}.pth --m2t-model-ckpt "
             f"{o}/morl_rlvr_m2t/motionllm_rlvr_epoch_{args.rl_epochs - 1}.pth --vq-ckpt {o}/vq_synthetic/net_last.pth")
    print(f"web demo (http://127.0.0.1:7860, offline): python demo.py --web {ckpts}")
    ev = next(st for st in stages(args) if st["name"] == "eval t2m RLVR")
    cmd = [c for c in ev["cmd"][1:] if isinstance(c, str)]
    cmd[cmd.index("--exp-name") + 1] = "gallery_rlvr"
    cmd[cmd.index("--replications") + 1], cmd[cmd.index("--mm-num-samples") + 1] = "1", "0"
    print(f"results gallery of 8 test items ({o}/gallery_rlvr/gallery/index.html): python "
          f"{' '.join(cmd + ['--gallery', '8'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
