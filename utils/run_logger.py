"""Metrics logging: JSONL in the experiment folder, optional Weights & Biases (offline works)."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path


class RunLogger:
    def __init__(self, exp_dir, filename: str = "metrics.jsonl", config: dict | None = None,
                 use_wandb: bool = False, project: str = "morl", run_name: str | None = None, enabled: bool = True):
        self.enabled = enabled
        self.path = Path(exp_dir) / filename
        self.wandb = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if use_wandb:
            import wandb  # optional; WANDB_MODE=offline works without a network
            self.wandb = wandb.init(project=project, name=run_name or Path(exp_dir).name, config=config or {},
                                    dir=str(Path(exp_dir)), reinit=True)

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

    def close(self):
        if self.wandb is not None:
            self.wandb.finish()
            self.wandb = None


class NullLogger:
    """Stand-in for :class:`RunLogger` on ranks other than 0 of a multi-process run."""

    def log(self, metrics: dict, step: int | None = None):
        pass

    def close(self):
        pass


def make_logger(dist, exp_dir, **kw):
    """A :class:`RunLogger` on the main process, a :class:`NullLogger` elsewhere."""
    return RunLogger(exp_dir, **kw) if dist is None or dist.is_main else NullLogger()
