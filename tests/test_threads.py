"""utils/threads.py: passive OpenMP waiting unless the user chose a policy, threads from the CPU
affinity, MORL_THREADS / --threads overrides, and every entry point importing it before torch."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = ("import os, sys, json; sys.path.insert(0, {root!r}); {pre}import utils.threads as t; import torch; "
         "print(json.dumps({{'policy': os.environ.get('OMP_WAIT_POLICY'), 'threads': torch.get_num_threads(), "
         "'applied': t.wait_policy_applied(), 'user': t.user_set_wait_policy()}}))")


def _probe(env_extra=None, pre=""):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MORL_THREADS")}
    env.update(env_extra or {})
    out = subprocess.run([sys.executable, "-c", PROBE.format(root=str(ROOT), pre=pre)], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_passive_by_default_and_threads_from_the_affinity():
    cpus = len(os.sched_getaffinity(0))
    r = _probe()
    assert r == {"policy": "PASSIVE", "threads": cpus, "applied": True, "user": False}
    # pinned to one CPU (as taskset / a cgroup would): one thread, not os.cpu_count()
    r = _probe(pre="os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); ")
    assert r["threads"] == 1


def test_user_choices_win():
    r = _probe({"OMP_WAIT_POLICY": "ACTIVE"})
    assert r["policy"] == "ACTIVE" and r["user"]
    assert _probe({"MORL_THREADS": "1"})["threads"] == 1
    assert _probe({"OMP_NUM_THREADS": "1"})["threads"] == 1
    # two processes of one launch share the CPUs
    cpus = len(os.sched_getaffinity(0))
    assert _probe({"LOCAL_WORLD_SIZE": "2"})["threads"] == max(1, cpus // 2)
    # torch loaded first: the policy could not apply, and the module says so
    assert _probe(pre="import torch; ")["applied"] is False


def test_threads_flag_sets_torch_and_rejects_nonsense():
    import torch

    from options.option_train import get_args_parser
    from utils.threads import apply_threads
    prev = torch.get_num_threads()
    try:
        args = get_args_parser().parse_args(["--threads", "1"])
        assert apply_threads(args.threads) == 1 == torch.get_num_threads()
        assert apply_threads(None) == 1  # no flag: whatever is configured stays
        with pytest.raises(SystemExit, match="--threads 0"):
            apply_threads(0)
    finally:
        torch.set_num_threads(prev)


@pytest.mark.parametrize("script", ["train_vq.py", "train_evaluator.py", "train_mllm.py", "eval_mllm.py", "demo.py",
                                    "quickstart.py", "prepare/make_tiny_backbone.py", "prepare/tokenize_dataset.py",
                                    "prepare/build_cot.py", "bench/bench_all.py", "bench/bench_grpo.py",
                                    "bench/bench_vq.py", "bench/bench_tiny_backbone.py", "bench/trl_grpo.py",
                                    "tests/conftest.py"])
def test_entry_points_import_it_before_torch(script):
    src = (ROOT / script).read_text()
    first_torch = re.search(r"^(import torch|from torch|import numpy|from models|from rl|from dataset|from prepare\.cot)",
                            src, re.M)
    threads = src.find("import utils.threads")
    assert threads >= 0, f"{script} does not import utils.threads"
    assert first_torch is None or threads < first_torch.start(), f"{script} imports torch before utils.threads"
