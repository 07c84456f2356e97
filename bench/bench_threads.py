#!/usr/bin/env python
"""CPU threading under load: one SFT step, one GRPO step and one VQ-VAE step, timed on a quiet machine
and beside a CPU hog (a busy-looping process this benchmark starts and stops itself), with torch's
default settings and with ``utils/threads.py`` (threads from the CPU affinity, adapted between steps to
the CPUs other processes leave free), all in one run. Each configuration runs in a fresh worker process
(the OpenMP runtime reads its environment once, when torch loads). A third setting, torch's defaults with
``OMP_WAIT_POLICY=PASSIVE`` (the other fix one might try), is measured for comparison.

    python bench/bench_threads.py [--steps 3] [--out experiments/bench/bench_threads.json]

Prints ms per step and the loaded/quiet ratio of each workload for both settings (target <= 2.5: on
2 cores a hog takes half the machine), and the fixed/default ratio on the quiet machine (cost of the
fix when nothing else runs).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ("sft", "grpo", "vq")


# ---------------------------------------------------------------------------- worker (one configuration)
def _worker(mode: str, backbone: str, steps: int, budget_s: float) -> dict:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    policy = os.environ.get("OMP_WAIT_POLICY", "runtime default")
    if mode == "fixed":
        import utils.threads  # before torch: threads from the affinity, adapted to the load between steps
    import numpy as np
    import torch

    import utils.threads  # noqa: F811
    if mode == "default":
        utils.threads._ADAPTER.enabled = False  # torch's own settings, never adapted
    adapt = utils.threads.adapt

    from bench_all import CAPTIONS, REASONING, build_model
    from bench_grpo import toy_reward
    from models.vqvae import HumanVQVAE, VQConfig
    from rl.grpo import GRPOConfig, GRPOTrainer

    torch.manual_seed(0)
    dev = torch.device("cpu")
    m = build_model(backbone, dev, reference=True)
    rng = np.random.default_rng(0)
    enc = [m.encode("t2m", CAPTIONS[i % len(CAPTIONS)], rng.integers(0, 512, 40).tolist(), REASONING, None, 200)
           for i in range(16)]
    opt = torch.optim.AdamW(m.trainable_parameters(), lr=1e-5)

    def sft():
        adapt()
        m.model.train()
        out = m.sft_loss(m.collate(enc))
        out["loss"].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    trainer = GRPOTrainer(m, toy_reward, GRPOConfig(group_size=8, max_new_tokens=48, micro_batch_size=32))

    def grpo():
        trainer.step("t2m", CAPTIONS[:4])

    vq = HumanVQVAE(VQConfig(nb_code=512, code_dim=128, output_emb_width=128, width=128)).train()
    vq_opt = torch.optim.AdamW(vq.parameters(), lr=2e-4)
    x = torch.randn(64, 64, 263)

    def vq_step():
        adapt()
        rec, commit, _ = vq(x)
        (torch.nn.functional.smooth_l1_loss(rec, x) + 0.02 * commit).backward()
        vq_opt.step()
        vq_opt.zero_grad(set_to_none=True)

    out = {"mode": mode, "omp_wait_policy": policy}
    for name, fn in (("sft", sft), ("grpo", grpo), ("vq", vq_step)):
        fn()  # warm-up
        times, t_start = [], time.perf_counter()
        while len(times) < steps and (len(times) < 1 or time.perf_counter() - t_start < budget_s):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        out[name] = {"ms": round(1000 * float(np.median(times)), 2), "steps": len(times),
                     "threads_at_end": torch.get_num_threads()}
    return out


# ---------------------------------------------------------------------------- parent
MODES = {"default": ("default", {}), "passive": ("default", {"OMP_WAIT_POLICY": "PASSIVE"}), "fixed": ("fixed", {})}


def _run_worker(mode: str, loaded: bool, backbone: str, steps: int, budget_s: float, hog_nice: int = 0) -> dict:
    worker, extra = MODES[mode]
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MORL_THREADS", "MORL_OMP_NUM_THREADS_AUTO")}
    env.update(extra)
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"],
                           preexec_fn=(lambda: os.nice(hog_nice)) if hog_nice else None) if loaded else None
    try:
        res = subprocess.run([sys.executable, __file__, "--worker", worker, "--backbone", backbone, "--steps", str(steps),
                              "--budget-s", str(budget_s)], env=env, capture_output=True, text=True, check=False)
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    if res.returncode != 0:
        raise RuntimeError(f"worker {mode} ({'loaded' if loaded else 'quiet'}) failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per workload (median reported)")
    ap.add_argument("--budget-s", type=float, default=60.0, help="stop timing a workload after this long (>= 1 step)")
    ap.add_argument("--backbone", default=None, help="tiny backbone folder (default: built in a temporary folder)")
    ap.add_argument("--worker", choices=["default", "fixed"], default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default="experiments/bench/bench_threads.json")
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.worker, args.backbone, args.steps, args.budget_s)))
        return None
    backbone = args.backbone
    if backbone is None:
        backbone = str(Path(tempfile.mkdtemp()) / "bb")
        subprocess.run([sys.executable, str(ROOT / "prepare" / "make_tiny_backbone.py"), "--out", backbone,
                        "--tokenizer", "bpe", "--pretrain-steps", "0"], check=True, capture_output=True)
    rep = {"cpus": len(os.sched_getaffinity(0)), "runs": {}}
    for mode in MODES:
        for loaded in (False, True):
            key = f"{mode}/{'loaded' if loaded else 'quiet'}"
            rep["runs"][key] = r = _run_worker(mode, loaded, backbone, args.steps, args.budget_s)
            print(f"{key:15s} wait policy {r['omp_wait_policy']}: "
                  + ", ".join(f"{w} {r[w]['ms']:.1f} ms ({r[w]['threads_at_end']} threads)" for w in WORKLOADS),
                  flush=True)
    # a background job at nice 19 (a data copy, a niced test run): utils/threads.py does not count it as load
    rep["runs"]["fixed/niced"] = r = _run_worker("fixed", True, backbone, args.steps, args.budget_s, hog_nice=19)
    print(f"{'fixed/niced':15s} (hog at nice 19): "
          + ", ".join(f"{w} {r[w]['ms']:.1f} ms ({r[w]['threads_at_end']} threads)" for w in WORKLOADS), flush=True)
    rep["loaded_over_quiet"] = {mode: {w: round(rep["runs"][f"{mode}/loaded"][w]["ms"] / rep["runs"][f"{mode}/quiet"][w]["ms"], 2)
                                       for w in WORKLOADS} for mode in MODES}
    rep["over_default_quiet"] = {mode: {w: round(rep["runs"][f"{mode}/{load}"][w]["ms"] / rep["runs"]["default/quiet"][w]["ms"], 2)
                                        for w in WORKLOADS} for mode in ("passive", "fixed") for load in ("quiet",)}
    rep["fixed_loaded_over_default_quiet"] = {w: round(rep["runs"]["fixed/loaded"][w]["ms"] / rep["runs"]["default/quiet"][w]["ms"], 2)
                                              for w in WORKLOADS}
    print("\nloaded/quiet ratio (one background CPU hog; target <= 2.5):")
    for mode in MODES:
        print(f"  {mode:8s} " + ", ".join(f"{w} {rep['loaded_over_quiet'][mode][w]}x" for w in WORKLOADS))
    for mode, r in rep["over_default_quiet"].items():
        print(f"{mode} / default on the quiet machine: " + ", ".join(f"{w} {v}x" for w, v in r.items()))
    rep["niced_over_quiet"] = {w: round(rep["runs"]["fixed/niced"][w]["ms"] / rep["runs"]["fixed/quiet"][w]["ms"], 2)
                               for w in WORKLOADS}
    print("fixed, beside a nice-19 hog / quiet: " + ", ".join(f"{w} {v}x" for w, v in rep["niced_over_quiet"].items()))
    print("fixed, loaded / default, quiet: " + ", ".join(f"{w} {v}x" for w, v in rep["fixed_loaded_over_default_quiet"].items()))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rep, indent=1))
    return rep


if __name__ == "__main__":
    main()
