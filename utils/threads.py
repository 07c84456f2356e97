"""CPU threading that survives a busy machine. Import this module before torch.

PyTorch's OpenMP threads spin-wait at the end of every parallel region, and every region needs all of
its threads scheduled at once. With another CPU-bound process on a 2-core machine, a 2-thread step of a
small model becomes several to tens of times slower; with one thread it is as fast as ever. Measured here
(``bench/bench_threads.py``): the passive wait policy removes most of that cliff but makes every step
1.3-2x slower on a quiet machine (each region then wakes a sleeping thread). So this module keeps the
runtime's default policy and instead adapts the *number* of threads to the CPUs that are free:

* the default count is the CPUs this process may use (``os.sched_getaffinity``, which respects
  taskset/cgroup pinning), divided among the processes of a torchrun/accelerate launch;
* :func:`adapt`, called by the training and generation loops between steps, measures at most once a
  second how much CPU *other* processes used (``/proc/stat`` minus this process's own time; niced processes
  do not count, they get the CPU only when we leave it idle) and runs with the CPUs left over (at least 1, at
  most the default count);
* ``--threads N`` (every script), ``MORL_THREADS=N`` or ``OMP_NUM_THREADS=N`` pins the count and turns the
  adaptation off — use it for bit-reproducible runs: the LLM's steps and generation are bit-identical at
  any thread count (tested), but convolution gradients (VQ-VAE, evaluator) differ in the last bits;
* ``OMP_WAIT_POLICY`` set by the user is left as it is.
"""
from __future__ import annotations

import os
import sys
import time

ENV_THREADS = "MORL_THREADS"
ENV_MARK = "MORL_OMP_NUM_THREADS_AUTO"  # OMP_NUM_THREADS was set by this module (a parent process), not the user
_INITIAL = {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", ENV_THREADS, ENV_MARK)}
_TORCH_LOADED_FIRST = "torch" in sys.modules
INTERVAL_S = 1.0


def available_cpus() -> int:
    """CPUs this process may use (affinity mask; falls back to ``os.cpu_count``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _positive(value: str, name: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise SystemExit(f"{name}={value!r}: expected a positive integer")
    return n


def pinned_threads() -> int | None:
    """The count the user pinned through the environment (``MORL_THREADS``, else ``OMP_NUM_THREADS``)."""
    if _INITIAL[ENV_THREADS]:
        return _positive(_INITIAL[ENV_THREADS], ENV_THREADS)
    if _INITIAL["OMP_NUM_THREADS"] and _INITIAL["OMP_NUM_THREADS"] != _INITIAL[ENV_MARK]:
        return _positive(_INITIAL["OMP_NUM_THREADS"], "OMP_NUM_THREADS")
    return None


def default_threads() -> int:
    pinned = pinned_threads()
    if pinned:
        return pinned
    # several processes of one launch (torchrun / accelerate) share the machine's CPUs
    return max(1, available_cpus() // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)))


class _Adapter:
    """Thread count from the CPU time other processes used since the last look."""

    def __init__(self):
        self.enabled = pinned_threads() is None and os.path.exists("/proc/stat")
        self.max_threads = default_threads()
        self.last = None  # (wall, busy jiffies of the machine, own CPU seconds)
        self.switches = 0

    @staticmethod
    def _machine_busy_s(stat_line: str | None = None, niced: bool | None = None) -> float:
        """Busy CPU-s of the machine from the ``cpu`` line of ``/proc/stat`` (user nice system idle iowait irq
        softirq steal). Time of *niced* processes (the ``nice`` column) is left out unless this process is niced
        itself (its own time is then in that column): a nice-19 job gets a sliver of a core beside our threads,
        so yielding a core to it would only slow this process down."""
        if stat_line is None:
            with open("/proc/stat") as f:
                stat_line = f.readline()
        v = [int(x) for x in stat_line.split()[1:]]
        if niced is None:
            niced = os.getpriority(os.PRIO_PROCESS, 0) > 0
        idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
        return (sum(v[:8]) - idle - (0 if niced else v[1])) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own_s() -> float:
        t = os.times()
        return t.user + t.system

    def sample(self) -> tuple[float, float, float]:
        """(wall clock, machine busy CPU-s, this process's CPU-s) now."""
        return time.monotonic(), self._machine_busy_s(), self._own_s()

    @staticmethod
    def other_cores(prev: tuple, cur: tuple) -> float:
        """Cores other processes kept busy between two :meth:`sample` s."""
        return max(0.0, (cur[1] - prev[1]) - (cur[2] - prev[2])) / max(cur[0] - prev[0], 1e-3)

    def desired(self, other_cores: float) -> int:
        return max(1, min(self.max_threads, available_cpus() - int(other_cores + 0.6)))

    def __call__(self) -> int | None:
        if not self.enabled:
            return None
        now = time.monotonic()
        if self.last is not None and now - self.last[0] < INTERVAL_S:
            return None
        try:
            cur = self.sample()
        except (OSError, ValueError):
            self.enabled = False
            return None
        prev, self.last = self.last, cur
        if prev is None:
            return None
        import torch
        n = self.desired(self.other_cores(prev, cur))
        if n != torch.get_num_threads():
            torch.set_num_threads(n)
            self.switches += 1
        return n


_ADAPTER = _Adapter()


def other_load(seconds: float = 1.0) -> float | None:
    """Cores that *other* processes kept busy over the next ``seconds`` (machine busy time from ``/proc/stat``
    minus this process's own); ``None`` where ``/proc/stat`` is not available."""
    try:
        prev = _ADAPTER.sample()
        time.sleep(seconds)
        return _ADAPTER.other_cores(prev, _ADAPTER.sample())
    except (OSError, ValueError):
        return None


def adapt() -> int | None:
    """Between steps: run with the CPUs other processes leave free (cheap; looks at most once a second).
    Returns the new count when it looked, else None. A no-op when the count is pinned."""
    return _ADAPTER()


def configure_environment() -> None:
    """The default thread count for torch's OpenMP runtime (inherited by subprocesses too)."""
    if _INITIAL[ENV_THREADS]:
        os.environ["OMP_NUM_THREADS"] = str(pinned_threads())
    elif pinned_threads() is None:  # ours to choose (also when a parent process of ours chose it)
        os.environ["OMP_NUM_THREADS"] = os.environ[ENV_MARK] = str(default_threads())


def wait_policy_applied() -> bool:
    """Whether the OpenMP runtime loaded after this module (so its environment applied)."""
    return not _TORCH_LOADED_FIRST


def apply_threads(threads: int | None = None) -> int:
    """``--threads N``: pin torch's intra-op threads to N (and stop adapting). Without it nothing changes.
    Returns the count in effect."""
    import torch
    if threads is not None:
        if int(threads) < 1:
            raise SystemExit(f"--threads {threads}: expected a positive integer")
        _ADAPTER.enabled = False
        torch.set_num_threads(int(threads))
    return torch.get_num_threads()


configure_environment()
