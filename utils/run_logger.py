"""Metrics logging: JSONL in the experiment folder, optional Weights & Biases (offline works)."""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path


class RunLogger:
    """``resume_step``: a resumed run drops the records its interrupted predecessor logged after the
    checkpoint it resumes from (step > resume_step), so every step appears once in the file."""

    def __init__(self, exp_dir, filename: str = "metrics.jsonl", config: dict | None = None,
                 use_wandb: bool = False, project: str = "morl", run_name: str | None = None, enabled: bool = True,
                 resume_step: int | None = None):
        self.enabled = enabled
        self.path = Path(exp_dir) / filename
        self.wandb = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.is_file():
            self._drop_after(int(resume_step))
        if use_wandb:
            import wandb  # optional; WANDB_MODE=offline works without a network
            self.wandb = wandb.init(project=project, name=run_name or Path(exp_dir).name, config=config or {},
                                    dir=str(Path(exp_dir)), reinit=True)

    def _drop_after(self, step: int):
        from utils.io import atomic_write_text
        kept, dropped = [], 0
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                s = json.loads(line).get("step")
            except (ValueError, AttributeError):
                dropped += 1  # a line cut by the interruption
                continue
            if isinstance(s, int) and s > step:
                dropped += 1
                continue
            kept.append(line)
        if dropped:
            atomic_write_text(self.path, "".join(k + "\n" for k in kept))
            print(f"{self.path}: dropped {dropped} record(s) logged after step {step} by the interrupted run")

    def log(self, metrics: dict, step: int | None = None):
        if not self.enabled:
            return
        rec = {"time": round(time.time(), 3)}
        if step is not None:
            rec["step"] = int(step)
        for k, v in metrics.items():
            if hasattr(v, "item"):
                v = v.item()
            if isinstance(v, float) and not math.isfinite(v):
                v = str(v)
            rec[k] = v
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")
        if self.wandb is not None:
            self.wandb.log({k: v for k, v in rec.items() if isinstance(v, (int, float))}, step=step)

    @property
    def png_path(self) -> Path:
        """Where :meth:`plot` draws the curves: the JSONL's path with ``.png`` (``metrics.png``)."""
        return self.path.with_suffix(".png")

    def plot(self, png_path=None, keys=None, min_steps: int = 1):
        """Draw the curves logged so far (:func:`utils.plot_curves.render`) to ``png_path`` (default
        :attr:`png_path`); callable at any time. Returns the PNG's path, or None when fewer than
        ``min_steps`` distinct steps are logged or plotting failed: a failure (matplotlib missing, an
        unreadable file, a full disk) is printed as one warning line, never raised, so that a plotting
        problem cannot fail a training run."""
        if not self.enabled:
            return None
        out = Path(png_path) if png_path is not None else self.png_path
        try:
            from utils.plot_curves import distinct_steps, read_records, render
            records = read_records(self.path) if self.path.is_file() else []
            if distinct_steps(records) < max(int(min_steps), 1):
                return None
            return render(records, out, keys=keys, title=f"{self.path.parent.name}/{self.path.name}")
        except Exception as exc:  # noqa: BLE001 - plotting must never stop a run
            msg = " ".join(f"{type(exc).__name__}: {exc}".split())
            print(f"warning: could not plot {self.path} to {out}: {msg[:300]}", file=sys.stderr, flush=True)
            return None

    def close(self):
        """Finish wandb (when used) and write :attr:`png_path` from the JSONL when it holds at least 2 steps."""
        try:
            if self.wandb is not None:
                self.wandb.finish()
                self.wandb = None
        finally:
            self.plot(min_steps=2)


class NullLogger:
    """Stand-in for :class:`RunLogger` on ranks other than 0 of a multi-process run."""

    def log(self, metrics: dict, step: int | None = None):
        pass

    def plot(self, png_path=None, keys=None, min_steps: int = 1):
        return None

    def close(self):
        pass


def make_logger(dist, exp_dir, **kw):
    """A :class:`RunLogger` on the main process, a :class:`NullLogger` elsewhere."""
    return RunLogger(exp_dir, **kw) if dist is None or dist.is_main else NullLogger()
