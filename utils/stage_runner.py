"""Run a pipeline of command-line stages, several at once where their dependencies allow.

A stage is a dict: ``name``, ``output`` (the file whose existence means the stage is done), ``cmd`` (argv, or a
callable returning it when the stage starts) and ``after`` (names of the stages whose outputs it reads).

:func:`run_stages` starts ready stages (dependencies done) in list order, so the list is the priority, at most
``jobs`` at a time. Each child adapts its own thread count to what the others leave free
(:mod:`utils.threads`), so two stages on a 2-CPU machine run one thread each. That is the point on CPU: the
quickstart's tiny models use a second thread poorly (an SFT step 1.2-1.6x faster with 2 threads than with 1,
a VQ-VAE step 1.5x; ``bench/bench_threads.py``), so two stages side by side get more done than one after the
other. With more than one job the children's output goes to one log file per stage; with one job it streams
to the terminal.
"""
from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower()


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").replace("\r", "\n")
    except OSError:
        return ""
    return "\n".join([ln for ln in text.splitlines() if ln.strip()][-lines:])


def check_graph(stages: list) -> None:
    """Every ``after`` names a stage of the list and the dependencies have no cycle; raises ValueError."""
    names = {st["name"]: st for st in stages}
    for st in stages:
        for dep in st.get("after", ()):
            if dep not in names:
                raise ValueError(f"stage {st['name']!r} depends on {dep!r}, which is not a stage")
    state: dict = {}

    def visit(name, path):
        if state.get(name) == 1:
            raise ValueError(f"dependency cycle: {' -> '.join(path + [name])}")
        if state.get(name) == 2:
            return
        state[name] = 1
        for dep in names[name].get("after", ()):
            visit(dep, path + [name])
        state[name] = 2
    for name in names:
        visit(name, [])


def run_stages(stages: list, *, jobs: int, env: dict, cwd, log_dir=None, only=None, force=False,
               say=print, poll_s: float = 0.5):
    """Run ``stages``; returns ``(returncode, report)`` where report has one entry per stage considered
    (``stage``, ``seconds``, ``skipped``, ``start_s``/``end_s`` from the start of the run, ``log``)."""
    check_graph(stages)
    jobs = max(1, jobs)
    t_start = time.time()
    report, done, pending = {}, set(), []
    for st in stages:
        if only and st["name"] not in only:
            done.add(st["name"])  # not asked for: its output is assumed to be there
            continue
        out = Path(st["output"])
        if out.exists() and not force:
            say(f"[skip] {st['name']}: {out} exists")
            report[st["name"]] = {"stage": st["name"], "seconds": 0.0, "skipped": True}
            done.add(st["name"])
            continue
        pending.append(st)
    running = {}  # name -> (Popen, stage, t0, log path, log file)
    failed = None

    def start(st):
        cmd = st["cmd"]() if callable(st["cmd"]) else st["cmd"]
        log, fh = None, None
        if jobs > 1 and log_dir is not None:
            Path(log_dir).mkdir(parents=True, exist_ok=True)
            log = Path(log_dir) / f"{slug(st['name'])}.log"
            fh = open(log, "w")
        say(f"[run ] {st['name']}: {' '.join(map(str, cmd[1:]))}" + (f"\n       log: {log}" if log else ""))
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT if fh else None)
        running[st["name"]] = (proc, st, time.time(), log, fh)

    try:
        while pending or running:
            if failed is None:
                for st in list(pending):
                    if len(running) >= jobs:
                        break
                    if all(d in done for d in st.get("after", ())):
                        pending.remove(st)
                        start(st)
            if not running:
                if pending and failed is None:  # cannot happen after check_graph, unless an output vanished
                    raise RuntimeError(f"stages {[s['name'] for s in pending]} can never start")
                break
            time.sleep(poll_s)
            for name, (proc, st, t0, log, fh) in list(running.items()):
                rc = proc.poll()
                if rc is None:
                    continue
                if fh:
                    fh.close()
                del running[name]
                dt = time.time() - t0
                report[name] = {"stage": name, "seconds": round(dt, 1), "skipped": False,
                                "start_s": round(t0 - t_start, 1), "end_s": round(time.time() - t_start, 1),
                                **({"log": str(log)} if log else {})}
                if rc != 0:
                    say(f"[fail] {name} exited with {rc} after {dt:.1f}s" + (f"; last lines of {log}:\n{_tail(log)}"
                                                                            if log else ""))
                    if failed is None:
                        failed = rc
                        pending.clear()
                        if running:
                            say(f"[wait] letting {', '.join(running)} finish (their outputs stay usable)")
                else:
                    done.add(name)
                    say(f"[done] {name} in {dt:.1f}s (at {time.time() - t_start:.0f}s)")
    except KeyboardInterrupt:
        for proc, *_ in running.values():
            proc.terminate()
        raise
    order = [st["name"] for st in stages if st["name"] in report]
    return (failed or 0), [report[n] for n in order]


def default_jobs(cpus: int) -> int:
    """Two stages at a time from 2 CPUs up, else one."""
    return 2 if cpus >= 2 else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit("utils/stage_runner.py is a library (used by quickstart.py)")
