"""utils/threads.py: threads from the CPU affinity, adapted to what other processes leave free, pinned by
MORL_THREADS / OMP_NUM_THREADS / --threads, the user's wait policy untouched, and every entry point
importing it before torch."""
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
         "'applied': t.wait_policy_applied(), 'adaptive': t._ADAPTER.enabled}}))")


def _probe(env_extra=None, pre=""):
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MORL_THREADS", "MORL_OMP_NUM_THREADS_AUTO")}
    env.update(env_extra or {})
    out = subprocess.run([sys.executable, "-c", PROBE.format(root=str(ROOT), pre=pre)], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_threads_from_the_affinity_and_adaptive_by_default():
    cpus = len(os.sched_getaffinity(0))
    r = _probe()
    assert r == {"policy": None, "threads": cpus, "applied": True, "adaptive": True}
    # pinned to one CPU (as taskset / a cgroup would): one thread, not os.cpu_count()
    r = _probe(pre="os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); ")
    assert r["threads"] == 1


def test_user_choices_win():
    assert _probe({"OMP_WAIT_POLICY": "PASSIVE"})["policy"] == "PASSIVE"  # left as the user set it
    r = _probe({"MORL_THREADS": "1"})
    assert r["threads"] == 1 and not r["adaptive"]  # pinned: no adaptation
    r = _probe({"OMP_NUM_THREADS": "1"})
    assert r["threads"] == 1 and not r["adaptive"]
    # a child of a process that imported the module (the quickstart's stages) still adapts
    r = _probe({"OMP_NUM_THREADS": "2", "MORL_OMP_NUM_THREADS_AUTO": "2"})
    assert r["adaptive"] and r["threads"] == len(os.sched_getaffinity(0))
    # two processes of one launch share the CPUs
    cpus = len(os.sched_getaffinity(0))
    assert _probe({"LOCAL_WORLD_SIZE": "2"})["threads"] == max(1, cpus // 2)
    # torch loaded first: the environment could not apply, and the module says so
    assert _probe(pre="import torch; ")["applied"] is False


def test_adapt_runs_with_the_cpus_others_leave_free(monkeypatch):
    """Fed CPU readings (machine busy time, own CPU time) instead of /proc/stat: another process using a core
    takes one thread away; when it stops, the thread comes back; readings closer than the interval are
    ignored."""
    import torch

    import utils.threads as t
    ad = t._Adapter()
    ad.enabled, ad.max_threads = True, 2
    monkeypatch.setattr(t, "available_cpus", lambda: 2)
    clock = {"now": 100.0, "busy": 0.0, "own": 0.0}
    monkeypatch.setattr(t.time, "monotonic", lambda: clock["now"])
    monkeypatch.setattr(ad, "_machine_busy_s", lambda: clock["busy"])
    monkeypatch.setattr(ad, "_own_s", lambda: clock["own"])
    prev = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert ad() is None  # first look: nothing to compare with yet

        def tick(seconds, busy_cores, own_cores):
            clock["now"] += seconds
            clock["busy"] += busy_cores * seconds
            clock["own"] += own_cores * seconds
            return ad()
        assert tick(2.0, busy_cores=2.0, own_cores=1.0) == 1 and torch.get_num_threads() == 1  # a hog: 1 core
        assert tick(0.5, busy_cores=2.0, own_cores=2.0) is None  # within the interval: no look
        assert tick(2.0, busy_cores=1.0, own_cores=1.0) == 2 and torch.get_num_threads() == 2  # hog gone
        assert tick(2.0, busy_cores=2.3, own_cores=2.0) == 2  # a little background work keeps both threads
        assert ad.switches == 2
    finally:
        torch.set_num_threads(prev)


def test_niced_processes_do_not_count_as_load():
    """The nice column of /proc/stat is another process's time only while this process is not niced itself: a
    nice-19 job beside a training run must not take a thread away (it only gets the CPU we leave idle)."""
    import os

    import utils.threads as t
    hz = os.sysconf("SC_CLK_TCK")
    #       user nice system idle iowait irq softirq steal guest guest_nice
    line = "cpu  100 300 50 1000 20 5 5 0 0 0"
    assert round(t._Adapter._machine_busy_s(line, niced=False) * hz, 6) == 160  # user + system + irq + softirq + steal
    assert round(t._Adapter._machine_busy_s(line, niced=True) * hz, 6) == 460  # ours is in the nice column: count it
    assert t._Adapter._machine_busy_s() >= 0  # the real /proc/stat parses


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


_USES_TORCH = re.compile(r"^\s*(import torch|from torch|from models|from rl|from dataset|from rewards|import smplx)", re.M)


def _entry_points() -> list:
    """Every top-level script and every prepare/ and bench/ script that imports torch (or a package of the
    project that does), plus the test conftest: found, not listed, so a new script cannot slip through."""
    files = sorted(ROOT.glob("*.py")) + [p for d in ("prepare", "bench") for p in sorted((ROOT / d).glob("*.py"))
                                         if p.name != "__init__.py" and _USES_TORCH.search(p.read_text())]
    return [str(p.relative_to(ROOT)) for p in files] + ["tests/conftest.py"]


@pytest.mark.parametrize("script", _entry_points())
def test_entry_points_import_it_before_torch(script):
    src = (ROOT / script).read_text()
    first_torch = re.search(r"^(import torch|from torch|import numpy|from models|from rl|from dataset|from prepare\.cot)",
                            src, re.M)
    threads = src.find("import utils.threads")
    assert threads >= 0, f"{script} does not import utils.threads"
    assert first_torch is None or threads < first_torch.start(), f"{script} imports torch before utils.threads"
