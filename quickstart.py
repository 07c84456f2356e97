#!/usr/bin/env python
"""Run the embedded default end to end (offline, CPU friendly).

Each stage is the same command line a GPU user would run by hand; a stage whose output already
exists is skipped (``--force`` reruns everything). Wall time per stage is printed and written to
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


def first_caption(path: Path) -> str:
    return path.read_text().split("\n", 1)[0].split("#", 1)[0]


def stages(args):
    data = Path(args.data_root)
    exp = Path(args.out_dir) / "quickstart"
    py = sys.executable
    sample = "000000"
    return [
        {
            "name": "synthetic dataset",
            "output": data / "synthetic_h3d" / "Mean.npy",
            "cmd": [py, "prepare/make_synthetic_dataset.py", "--out", str(data / "synthetic_h3d"),
                    "--num-motions", str(args.num_motions), "--seed", str(args.seed), "--overwrite"],
        },
        {
            "name": "render a sample",
            "output": exp / f"{sample}.gif",
            "cmd": lambda: [py, "-m", "utils.plot_script", str(data / "synthetic_h3d" / "new_joint_vecs" / f"{sample}.npy"),
                            str(exp / f"{sample}.gif"), "--dataset", "t2m", "--title",
                            first_caption(data / "synthetic_h3d" / "texts" / f"{sample}.txt")],
        },
    ]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", default="data", help="where the synthetic dataset is written")
    ap.add_argument("--out-dir", default="experiments", help="experiment outputs")
    ap.add_argument("--num-motions", type=int, default=800)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--force", action="store_true", help="rerun stages whose outputs exist")
    args = ap.parse_args(argv)

    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", MPLBACKEND="Agg")
    report = []
    for st in stages(args):
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
    print("\n| stage | wall time (s) |\n|---|---|")
    for r in report:
        print(f"| {r['stage']} | {'skipped' if r['skipped'] else r['seconds']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
