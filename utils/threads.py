"""CPU threading that survives a busy machine. Import this module before torch.

PyTorch's OpenMP threads spin-wait at the end of every parallel region. On a machine where another
CPU-bound process runs, a spinning thread holds a core the other thread of the same region needs, and a
tiny model's step becomes ~50x slower. Importing this module (every entry point does, before torch):

* sets ``OMP_WAIT_POLICY=PASSIVE`` unless the user set a policy (threads sleep instead of spinning);
* sets the intra-op thread count to the CPUs this process may run on (``os.sched_getaffinity``, which
  respects taskset/cgroup pinning, unlike ``os.cpu_count``), unless ``OMP_NUM_THREADS`` is set;
* ``MORL_THREADS=N`` (environment) or ``--threads N`` (every script's flag, applied with
  :func:`apply_threads` after parsing) overrides the count.

The policy only takes effect if it is in the environment before the OpenMP runtime loads (with torch):
:func:`wait_policy_applied` tells whether it did.
"""
from __future__ import annotations

import os
import sys

ENV_THREADS = "MORL_THREADS"
_INITIAL = {"OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}
_TORCH_LOADED_FIRST = "torch" in sys.modules


def available_cpus() -> int:
    """CPUs this process may use (affinity mask; falls back to ``os.cpu_count``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    env = os.environ.get(ENV_THREADS)
    if env:
        try:
            n = int(env)
        except ValueError:
            raise SystemExit(f"{ENV_THREADS}={env!r}: expected a positive integer") from None
        if n < 1:
            raise SystemExit(f"{ENV_THREADS}={env!r}: expected a positive integer")
        return n
    if _INITIAL["OMP_NUM_THREADS"]:
        try:
            return max(1, int(_INITIAL["OMP_NUM_THREADS"]))
        except ValueError:
            pass
    # several processes of one launch (torchrun / accelerate) share the machine's CPUs
    return max(1, available_cpus() // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)))


def configure_environment() -> None:
    """Put the wait policy and thread count into the environment (inherited by subprocesses too)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if os.environ.get(ENV_THREADS) or not os.environ.get("OMP_NUM_THREADS"):
        os.environ["OMP_NUM_THREADS"] = str(default_threads())


def user_set_wait_policy() -> bool:
    return _INITIAL["OMP_WAIT_POLICY"] is not None


def wait_policy_applied() -> bool:
    """Whether the OpenMP runtime loaded with this module's settings (torch imported after it)."""
    return not _TORCH_LOADED_FIRST


def apply_threads(threads: int | None = None) -> int:
    """``--threads N``: set torch's intra-op threads to N. Without it nothing changes (the count came from
    the environment this module set before torch loaded, or from whoever configured torch since, e.g. the
    test suite). Returns the count in effect."""
    import torch
    if threads is not None:
        if int(threads) < 1:
            raise SystemExit(f"--threads {threads}: expected a positive integer")
        torch.set_num_threads(int(threads))
    return torch.get_num_threads()


def describe() -> dict:
    """What this process runs with (printed by the quickstart, recorded in run configs)."""
    import torch
    return {"torch_threads": torch.get_num_threads(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "policy_from_user": user_set_wait_policy(), "available_cpus": available_cpus(),
            "wait_policy_applied": wait_policy_applied()}


configure_environment()
