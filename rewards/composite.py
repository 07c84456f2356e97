"""Weighted combination of rewards (docs/method.md §7.1–7.2).

``CompositeReward(rewards={name: (reward, weight)})``; components with weight 0 are dropped at
construction (never computed).

``score(batch) -> CompositeScore(total, components, stats)`` (a named tuple):

* ``components[name]``: the raw (N,) values of each weighted reward;
* ``total = sum_c w_c * components[c]``: the raw weighted reward (logging, Chain-of-Motion ranking);
* ``stats`` (flat, loggable): ``reward/total_mean``, ``reward/<c>_mean``/``_std`` (raw) and the
  reward's own sub-components (``reward/phys/skate_mean`` ...), ``reward/<c>_seconds``, the motion
  decoding and cache statistics, invalid counts and backends (``reward/coh/backend``).

Rewards only score; turning scores into GRPO advantages (group normalisation, per component or of
the total) is the trainer's job: :func:`rl.grpo.combine_advantages`.
"""
from __future__ import annotations

import time
from typing import NamedTuple, Optional

import numpy as np

from .base import Reward, RewardBatch, RewardOutput


class CompositeScore(NamedTuple):
    total: np.ndarray
    components: dict
    stats: dict


def _flat_info(prefix: str, info: dict, out: dict):
    for k, v in info.items():
        key = f"{prefix}/{k}"
        if isinstance(v, dict):
            _flat_info(key, v, out)
        elif isinstance(v, (bool, int, float, str)) or v is None:
            out[key] = v
        elif isinstance(v, np.ndarray) and v.dtype.kind in "fiub" and v.size:
            finite = v[np.isfinite(v)] if v.dtype.kind == "f" else v
            if finite.size:
                out[f"{key}_mean"] = float(np.mean(finite))


class CompositeReward:
    def __init__(self, rewards: dict, reset_cache_each_epoch: bool = False, clear_cache_values: bool = False,
                 decoder=None, notes: Optional[dict] = None, batch_defaults: Optional[dict] = None):
        self.rewards: dict[str, tuple[Reward, float]] = {}
        self.skipped = []
        self.critic = None  # fingerprint of the evaluator inside the rewards (set by rewards.factory)
        for name, (reward, weight) in rewards.items():
            if float(weight) == 0.0:
                self.skipped.append(name)
                continue
            self.rewards[name] = (reward, float(weight))
        self.reset_cache_each_epoch = reset_cache_each_epoch
        self.clear_cache_values = clear_cache_values
        self.decoder = decoder
        self.notes = dict(notes or {})
        self.batch_defaults = dict(batch_defaults or {})

    def make_batch(self, tasks, texts, captions=None, input_codes=None, **overrides) -> RewardBatch:
        """A :class:`RewardBatch` with this reward's decoder, codebook size, reasoning flag and
        motion-token limit."""
        kw = {**self.batch_defaults, **overrides}
        return RewardBatch(tasks, texts, captions=captions, input_codes=input_codes, decoder=self.decoder,
                           **kw)

    @property
    def names(self) -> list[str]:
        return list(self.rewards)

    @property
    def weights(self) -> dict:
        return {k: w for k, (_, w) in self.rewards.items()}

    def config(self) -> dict:
        cfg = {"weights": self.weights,
               "skipped_zero_weight": self.skipped, "rewards": {k: r.config() for k, (r, _) in self.rewards.items()},
               **self.notes}
        if self.critic is not None:
            cfg["critic"] = self.critic
        if "coh" in self.rewards:
            cfg["coherence_backend"] = self.rewards["coh"][0].config().get("coherence_backend")
        return cfg

    def score(self, batch: RewardBatch) -> CompositeScore:
        N = len(batch)
        components, stats, outputs = {}, {}, {}
        if self.decoder is not None and batch.decoder is None:
            batch.decoder = self.decoder
        for name, (reward, _) in self.rewards.items():
            t0 = time.time()
            out: RewardOutput = reward.score(batch)
            if out.values.shape != (N,):
                raise RuntimeError(f"reward {name!r} returned {out.values.shape} values for {N} candidates")
            if not np.isfinite(out.values).all():
                raise RuntimeError(f"reward {name!r} returned non-finite values")
            outputs[name] = out
            components[name] = out.values
            stats[f"reward/{name}_seconds"] = round(time.time() - t0, 4)
        W = self.weights
        total = np.zeros(N)
        for name, v in components.items():
            total += W[name] * v

        stats["reward/total_mean"] = float(total.mean()) if N else 0.0
        stats["reward/total_std"] = float(total.std()) if N else 0.0
        for name, out in outputs.items():
            stats[f"reward/{name}_mean"] = float(out.values.mean()) if N else 0.0
            stats[f"reward/{name}_std"] = float(out.values.std()) if N else 0.0
            for sub, v in out.components.items():
                stats[f"reward/{name}/{sub}_mean"] = float(v.mean()) if N else 0.0
            _flat_info(f"reward/{name}", out.info, stats)
        if batch.motions_decoded:
            stats["reward/decode_seconds"] = round(batch.decode_seconds, 4)
        if batch.decoder is not None:
            for k, v in batch.decoder.stats().items():
                stats[f"reward/decoder/{k}"] = v
        return CompositeScore(total, components, stats)

    # ------------------------------------------------------------------ caches
    def cache_stats(self) -> dict:
        out = {name: r.cache_stats() for name, (r, _) in self.rewards.items()}
        if self.decoder is not None:
            out["decoder"] = self.decoder.stats()
        return out

    def reset_caches(self, clear_values: Optional[bool] = None):
        clear = self.clear_cache_values if clear_values is None else clear_values
        for r, _ in self.rewards.values():
            r.reset_cache(clear)
        if self.decoder is not None:
            self.decoder.reset(clear)

    def on_epoch_start(self):
        """Reset the cache counters (and values, with ``--reward-clear-cache-values``) when
        ``--reward-reset-cache-each-epoch`` is set."""
        if self.reset_cache_each_epoch:
            self.reset_caches()
