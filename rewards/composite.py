"""Weighted combination of rewards and GRPO group advantages (morl-method.md §4-5).

``CompositeReward(rewards={name: (reward, weight)}, component_norm=True)``; components with weight
0 are dropped at construction (never computed).

``score(batch, group_size) -> CompositeScore(total, advantages, components, stats)`` (a named
tuple, so it also unpacks as four values):

* ``components[name]``: the raw (N,) values of each weighted reward;
* ``total = sum_c w_c * components[c]``: the raw weighted reward, for logging (the same in both
  normalisation modes);
* ``advantages``: group-normalised, A = (r - mean_g(r)) / (std_g(r) + eps), with r

  - ``component_norm=True`` (default, ``--disable-rl-component-norm`` turns it off): each
    component is first z-normalised within its group of G candidates of the same prompt,
    z_c = (v_c - mean_g) / (std_g + eps), and r = sum_c w_c * z_c; so a component whose values
    hardly vary in a group cannot be drowned by one with a large spread, and the weights set the
    relative importance of the normalised signals;
  - ``component_norm=False``: r = total, normalised only as a whole.

  A group whose r is constant gets advantages 0. ``std`` is the population standard deviation
  (ddof 0), so each non-constant group of advantages has mean 0 and std ~1.

Groups are consecutive blocks of ``group_size`` candidates (the layout of ``generate`` with
``num_return_sequences=G``), or ``batch.group_ids`` when given.

``stats`` (flat, loggable): ``reward/total_mean``, ``reward/<c>_mean``/``_std`` (raw) and the
reward's own sub-components (``reward/phys/skate_mean`` ...), ``reward/<c>_seconds``, the motion
decoding and cache statistics, invalid counts and backends (``reward/coh/backend``).
"""
from __future__ import annotations

import time
from typing import NamedTuple, Optional, Sequence

import numpy as np

from .base import Reward, RewardBatch, RewardOutput


class CompositeScore(NamedTuple):
    total: np.ndarray
    advantages: np.ndarray
    components: dict
    stats: dict


def group_index(n: int, group_size: Optional[int] = None, group_ids: Optional[Sequence] = None) -> np.ndarray:
    """(N,) integer group labels."""
    if group_ids is not None:
        if len(group_ids) != n:
            raise ValueError(f"{len(group_ids)} group ids for {n} candidates")
        _, inv = np.unique(np.asarray([str(g) for g in group_ids]), return_inverse=True)
        return inv.astype(np.int64)
    if not group_size or group_size < 1:
        raise ValueError(f"group_size must be a positive integer, got {group_size!r}")
    if n % group_size:
        raise ValueError(f"{n} candidates do not split into groups of {group_size}")
    return np.arange(n) // group_size


def group_normalize(values: np.ndarray, groups: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    """(v - group mean) / (group std + eps), population std; constant groups give 0."""
    v = np.asarray(values, dtype=np.float64)
    k = int(groups.max()) + 1 if len(groups) else 0
    cnt = np.bincount(groups, minlength=k)
    mean = np.bincount(groups, weights=v, minlength=k) / np.maximum(cnt, 1)
    var = np.bincount(groups, weights=(v - mean[groups]) ** 2, minlength=k) / np.maximum(cnt, 1)
    std = np.sqrt(var)
    centred = v - mean[groups]
    out = centred / (std[groups] + eps)
    return np.where(std[groups] > 1e-12, out, 0.0)


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
    def __init__(self, rewards: dict, component_norm: bool = True, eps: float = 1e-4,
                 reset_cache_each_epoch: bool = False, clear_cache_values: bool = False,
                 decoder=None, notes: Optional[dict] = None, batch_defaults: Optional[dict] = None):
        self.rewards: dict[str, tuple[Reward, float]] = {}
        self.skipped = []
        for name, (reward, weight) in rewards.items():
            if float(weight) == 0.0:
                self.skipped.append(name)
                continue
            self.rewards[name] = (reward, float(weight))
        self.component_norm = component_norm
        self.eps = eps
        self.reset_cache_each_epoch = reset_cache_each_epoch
        self.clear_cache_values = clear_cache_values
        self.decoder = decoder
        self.notes = dict(notes or {})
        self.batch_defaults = dict(batch_defaults or {})

    def make_batch(self, tasks, texts, captions=None, input_codes=None, group_ids=None, **overrides) -> RewardBatch:
        """A :class:`RewardBatch` with this reward's decoder, codebook size, reasoning flag and
        motion-token limit."""
        kw = {**self.batch_defaults, **overrides}
        return RewardBatch(tasks, texts, captions=captions, input_codes=input_codes, decoder=self.decoder,
                           group_ids=group_ids, **kw)

    @property
    def names(self) -> list[str]:
        return list(self.rewards)

    @property
    def weights(self) -> dict:
        return {k: w for k, (_, w) in self.rewards.items()}

    def config(self) -> dict:
        cfg = {"component_norm": self.component_norm, "eps": self.eps, "weights": self.weights,
               "skipped_zero_weight": self.skipped, "rewards": {k: r.config() for k, (r, _) in self.rewards.items()},
               **self.notes}
        if "coh" in self.rewards:
            cfg["coherence_backend"] = self.rewards["coh"][0].config().get("coherence_backend")
        return cfg

    def score(self, batch: RewardBatch, group_size: Optional[int] = None) -> CompositeScore:
        N = len(batch)
        groups = group_index(N, group_size, batch.group_ids)
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
        if self.component_norm:
            shaped = np.zeros(N)
            for name, v in components.items():
                shaped += W[name] * group_normalize(v, groups, self.eps)
        else:
            shaped = total
        advantages = group_normalize(shaped, groups, self.eps)

        stats["reward/total_mean"] = float(total.mean()) if N else 0.0
        stats["reward/total_std"] = float(total.std()) if N else 0.0
        for name, out in outputs.items():
            stats[f"reward/{name}_mean"] = float(out.values.mean()) if N else 0.0
            stats[f"reward/{name}_std"] = float(out.values.std()) if N else 0.0
            for sub, v in out.components.items():
                stats[f"reward/{name}/{sub}_mean"] = float(v.mean()) if N else 0.0
            _flat_info(f"reward/{name}", out.info, stats)
        ng = int(groups.max()) + 1 if N else 0
        stats["reward/groups"] = ng
        stats["reward/zero_std_groups"] = int(sum(np.ptp(shaped[groups == g]) < 1e-12 for g in range(ng)))
        stats["reward/component_norm"] = self.component_norm
        if batch.motions_decoded:
            stats["reward/decode_seconds"] = round(batch.decode_seconds, 4)
        if batch.decoder is not None:
            for k, v in batch.decoder.stats().items():
                stats[f"reward/decoder/{k}"] = v
        return CompositeScore(total, advantages, components, stats)

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
