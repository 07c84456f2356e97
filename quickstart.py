#!/usr/bin/env python
"""Run the embedded default end to end (offline, CPU friendly).

Each stage is the same command line a GPU user would run by hand; a stage whose output already
exists is skipped (``--force`` reruns everything). A stage that runs again (forced, or after an interrupted
run) replaces its run folder: the training stages get ``--overwrite``. Wall time per stage is printed and written to
``experiments/quickstart/stages.json``.
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


def first_caption(path: Path) -> str:
    return path.read_text().split("\n", 1)[0].split("#", 1)[0]


def stages(args):
    """The embedded default, stage by stage; each command is what a GPU user would run by hand."""
    data = Path(args.data_root) / "synthetic_h3d"
    exp = Path(args.out_dir)
    py = sys.executable
    vq = exp / "vq_synthetic" / "net_last.pth"
    cot = exp / "cot_synthetic"
    backbone = exp / "tiny_backbone"
    evaluator = exp / "evaluator_synthetic"
    sample = "000000"
    lora = ["--lora-r-t2m", "16", "--lora-alpha-t2m", "32", "--lora-r-m2t", "16", "--lora-alpha-m2t", "32"]
    rl_ckpt = exp / "morl_rlvr_t2m" / "motionllm_rlvr_epoch_0.pth"
    eval_base = ["--vq-ckpt", str(vq), "--data-root", str(data),
                 "--evaluator-dir", str(evaluator / "t2m" / "text_mot_match"), "--glove-dir", str(data / "glove"),
                 "--max-new-tokens", "160"]
    eval_common = ["--eval-ckpt", str(rl_ckpt), *eval_base]
    sft_common = ["--llm-backbone", str(backbone), "--vq-ckpt", str(vq), "--use-reasoning", "--overwrite",
                  "--batch-size", "16", "--max-motion-len", "200", *lora]
    sft_ckpt = exp / "morl_sft_t2m" / "motionllm_t2m_best.pth"
    return [
        {"name": "synthetic dataset", "output": data / "Mean.npy",
         "cmd": [py, "prepare/make_synthetic_dataset.py", "--out", str(data), "--num-motions", str(args.num_motions),
                 "--seed", str(args.seed), "--overwrite"]},
        {"name": "tiny backbone", "output": backbone / "config.json",
         "cmd": [py, "prepare/make_tiny_backbone.py", "--out", str(backbone), "--tokenizer", "bpe",
                 "--data-root", str(data), "--overwrite"]},
        {"name": "VQ-VAE", "output": vq,
         "cmd": [py, "train_vq.py", "--data-root", str(data), "--out-dir", str(exp), "--exp-name", "vq_synthetic",
                 "--width", "128", "--code-dim", "128", "--output-emb-width", "128", "--nb-code", "512",
                 "--batch-size", "64", "--total-iter", str(args.vq_iters), "--warm-up-iter", "200",
                 "--lr-scheduler", str(int(args.vq_iters * 0.8)), "--eval-iter", "1000", "--overwrite"]},
        {"name": "evaluator", "output": evaluator / "t2m" / "text_mot_match" / "model" / "finest.tar",
         "cmd": [py, "train_evaluator.py", "--data-root", str(data), "--glove-dir", str(data / "glove"),
                 "--checkpoints-dir", str(evaluator), "--small", "--movement-iters", "1000", "--movement-lr", "1e-3",
                 "--max-epoch", str(args.evaluator_epochs), "--lr", "1e-3", "--overwrite"]},
        {"name": "CoT data", "output": cot / "m2t_val.jsonl",
         "cmd": [py, "prepare/build_cot.py", "--vq-ckpt", str(vq), "--data-root", str(data), "--out-dir", str(cot),
                 "--split", "train", "val", "--captions-per-item", "2", "--reasoner", "template"]},
        {"name": "SFT t2m", "output": exp / "morl_sft_t2m" / "motionllm_t2m_best.pth",
         "cmd": [py, "train_mllm.py", "--train-stage", "sft", "--training-task", "t2m",
                 "--cot-train-jsonl", str(cot / "t2m_train.jsonl"), "--cot-val-jsonl", str(cot / "t2m_val.jsonl"),
                 "--exp-name", "morl_sft_t2m", "--out-dir", str(exp), "--epochs", str(args.sft_t2m_epochs),
                 "--learning-rate", "2e-3", *sft_common]},
        {"name": "SFT m2t", "output": exp / "morl_sft_m2t" / "motionllm_m2t_best.pth",
         "cmd": [py, "train_mllm.py", "--train-stage", "sft", "--training-task", "m2t",
                 "--cot-train-jsonl", str(cot / "m2t_train.jsonl"), "--cot-val-jsonl", str(cot / "m2t_val.jsonl"),
                 "--exp-name", "morl_sft_m2t", "--out-dir", str(exp),
                 "--init-ckpt", str(exp / "morl_sft_t2m" / "motionllm_t2m_best.pth"),
                 "--epochs", str(args.sft_m2t_epochs), "--learning-rate", "3e-3", *sft_common]},
        {"name": "RLVR t2m", "output": exp / "morl_rlvr_t2m" / "motionllm_rlvr_epoch_0.pth",
         "cmd": [py, "train_mllm.py", "--train-stage", "rlvr", "--training-task", "t2m",
                 "--cot-train-jsonl", str(cot / "t2m_train.jsonl"), "--exp-name", "morl_rlvr_t2m", "--out-dir", str(exp),
                 "--rl-reference-ckpt", str(exp / "morl_sft_m2t" / "motionllm_m2t_best.pth"),
                 "--llm-backbone", str(backbone), "--vq-ckpt", str(vq), "--use-reasoning", "--rl-epochs", "1",
                 "--rl-max-prompts", str(args.rl_prompts), "--rl-batch-size", "4", "--rl-group-size", "8",
                 "--rl-max-new-tokens", "160", "--learning-rate", str(args.rl_lr),
                 "--reward-dataset-opt-path", str(evaluator / "t2m" / "text_mot_match"),
                 "--reward-glove-path", str(data / "glove"), "--nli-model-name", "none", "--overwrite"]},
        {"name": "eval t2m SFT", "output": exp / "morl_sft_t2m" / "eval_t2m.json",
         "cmd": [py, "eval_mllm.py", "--eval-task", "t2m", "--eval-ckpt", str(sft_ckpt), *eval_base,
                 "--replications", str(args.eval_replications), "--mm-num-samples", "0", "--greedy"]},
        {"name": "eval t2m", "output": exp / "morl_rlvr_t2m" / "eval_t2m.json",
         "cmd": [py, "eval_mllm.py", "--eval-task", "t2m", *eval_common, "--replications", str(args.eval_replications),
                 "--mm-num-samples", "20", "--mm-num-repeats", "5", "--mm-num-times", "4", "--greedy"]},
        {"name": "eval t2m CoM", "output": exp / "morl_rlvr_t2m" / "eval_t2m_com.json",
         "cmd": [py, "eval_mllm.py", "--eval-task", "t2m", *eval_common, "--replications", "1", "--mm-num-samples", "0",
                 "--use-com", "--com-candidates", "4", "--com-refine-steps", "2", "--max-items", "128",
                 "--nli-model-name", "none"]},
        {"name": "eval m2t", "output": exp / "morl_rlvr_t2m" / "eval_m2t.json",
         "cmd": [py, "eval_mllm.py", "--eval-task", "m2t", *eval_common, "--greedy"]},
        {"name": "render a sample", "output": exp / "quickstart" / f"{sample}.gif",
         "cmd": lambda: [py, "-m", "utils.plot_script", str(data / "new_joint_vecs" / f"{sample}.npy"),
                         str(exp / "quickstart" / f"{sample}.gif"), "--dataset", "t2m", "--title",
                         first_caption(data / "texts" / f"{sample}.txt")]},
    ]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", default="data", help="where the synthetic dataset is written")
    ap.add_argument("--out-dir", default="experiments", help="experiment outputs")
    ap.add_argument("--num-motions", type=int, default=800)
    ap.add_argument("--vq-iters", type=int, default=3000)
    ap.add_argument("--evaluator-epochs", type=int, default=15)
    ap.add_argument("--rl-prompts", type=int, default=64, help="prompts of the RLVR stage (one epoch)")
    ap.add_argument("--sft-t2m-epochs", type=int, default=8)
    ap.add_argument("--sft-m2t-epochs", type=int, default=4)
    ap.add_argument("--rl-lr", type=float, default=1e-5,
                    help="RLVR learning rate (at this scale larger steps cost greedy accuracy; see README)")
    ap.add_argument("--eval-replications", type=int, default=3)
    ap.add_argument("--only", nargs="+", default=None, help="run only these stages (names as printed)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--force", action="store_true", help="rerun stages whose outputs exist")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads of every stage (default: see utils/threads.py)")
    args = ap.parse_args(argv)

    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", MPLBACKEND="Agg")
    if args.threads:
        env.update(MORL_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
    pinned = env.get("MORL_THREADS") or utils.threads.pinned_threads()
    print(f"CPU threads per stage: {pinned if pinned else f'adaptive, up to {utils.threads.default_threads()}'} "
          f"(of {utils.threads.available_cpus()} CPUs this process may use); OpenMP wait policy: "
          f"{env.get('OMP_WAIT_POLICY', 'runtime default')}", flush=True)
    report = []
    for st in stages(args):
        if args.only and st["name"] not in args.only:
            continue
        out = Path(st["output"])
        if out.exists() and not args.force:
            print(f"[skip] {st['name']}: {out} exists")
            report.append({"stage": st["name"], "seconds": 0.0, "skipped": True})
            continue
        cmd = st["cmd"]() if callable(st["cmd"]) else st["cmd"]
        print(f"[run ] {st['name']}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.time()
        res = subprocess.run(cmd, cwd=ROOT, env=env)
        dt = time.time() - t0
        if res.returncode != 0:
            print(f"[fail] {st['name']} exited with {res.returncode} after {dt:.1f}s", file=sys.stderr)
            return res.returncode
        report.append({"stage": st["name"], "seconds": round(dt, 1), "skipped": False})

    exp = Path(args.out_dir) / "quickstart"
    exp.mkdir(parents=True, exist_ok=True)
    tmp = exp / "stages.json.tmp"
    tmp.write_text(json.dumps(report, indent=1))
    os.replace(tmp, exp / "stages.json")
    from utils.tables import markdown_table
    print("\n" + markdown_table(["stage", "wall time (s)"],
                                [[r["stage"], "skipped" if r["skipped"] else r["seconds"]] for r in report]))
    for run, name in (("morl_sft_t2m", "eval_t2m.md"), ("morl_rlvr_t2m", "eval_t2m.md"),
                      ("morl_rlvr_t2m", "eval_t2m_com.md"), ("morl_rlvr_t2m", "eval_m2t.md")):  # the results tables
        md = Path(args.out_dir) / run / name
        if md.is_file():
            print("\n" + md.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
