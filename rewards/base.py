"""Common interface of the RLVR rewards (docs/method.md §7.1).

Every reward scores a whole :class:`RewardBatch` at once::

    out = reward.score(batch)          # RewardOutput
    out.values                         # (N,) float64 numpy, one value per candidate
    out.components                     # {name: (N,)} sub-terms (e.g. the physics terms)
    out.info                           # backend, cache statistics, counts of invalid candidates ...

A reward never raises on a malformed generation: candidates without a usable answer get the
reward's documented floor value (and are counted in ``info``). Programming errors (a reward that
needs a reference caption called without one, a t2m reward without a motion decoder) do raise.

:class:`RewardBatch` holds, per candidate, the task, the prompt caption (t2m) or the reference
caption (m2t, training only), the input motion codes (m2t), the generated text and its parse
(:func:`models.prompts.parse_output`). The motion of each candidate (t2m: the generated codes,
m2t: the input codes) is decoded lazily, **once per batch**, by a shared :class:`MotionDecoder`
(VQ decode -> de-normalise -> ``recover_from_ric``), which caches clips by their code tuple.
"""
from __future__ import annotations

import abc

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Optional, Sequence

import numpy as np
import torch

from models.prompts import Parsed, parse_output

log = logging.getLogger("rewards")
TASKS = ("t2m", "m2t")
_WARNED: set = set()


def warn_once(key: Hashable, message: str):
    """Log ``message`` as a warning the first time ``key`` is seen in this process."""
    if key not in _WARNED:
        _WARNED.add(key)
        log.warning(message)


# ============================================================================ outputs
@dataclass
class RewardOutput:
    values: np.ndarray
    components: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        self.values = np.asarray(self.values, dtype=np.float64).reshape(-1)
        self.components = {k: np.asarray(v, dtype=np.float64).reshape(-1) for k, v in self.components.items()}
        for k, v in self.components.items():
            if v.shape != self.values.shape:
                raise ValueError(f"component {k!r} has shape {v.shape}, values {self.values.shape}")


# ============================================================================ caches
class LRUCache:
    """A bounded key -> value store with hit/miss counters (``stats()``)."""

    def __init__(self, max_entries: int = 100_000):
        self.max_entries = int(max_entries)
        self._data: OrderedDict = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self):
        return len(self._data)

    def __contains__(self, key):
        return key in self._data

    def get(self, key, default=None):
        if key in self._data:
            self._data.move_to_end(key)
            self.hits += 1
            return self._data[key]
        self.misses += 1
        return default

    def put(self, key, value):
        self._data[key] = value
        self._data.move_to_end(key)
        while self.max_entries > 0 and len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def get_many(self, keys: Sequence, compute: Callable[[list], Sequence]) -> list:
        """Values for ``keys``; the distinct missing ones are computed in one ``compute`` call.
        A key repeated within one call counts as one miss and then hits."""
        out, missing = [None] * len(keys), []
        seen = {}
        for i, k in enumerate(keys):
            if k in self._data:
                self.hits += 1
                self._data.move_to_end(k)
                out[i] = self._data[k]
            elif k in seen:
                self.hits += 1
                seen[k].append(i)
            else:
                self.misses += 1
                seen[k] = [i]
                missing.append(k)
        if missing:
            values = compute(missing)
            if len(values) != len(missing):
                raise RuntimeError(f"cache compute returned {len(values)} values for {len(missing)} keys")
            for k, v in zip(missing, values):
                self.put(k, v)
                for i in seen[k]:
                    out[i] = v
        return out

    def stats(self) -> dict:
        total = self.hits + self.misses
        return {"entries": len(self._data), "hits": self.hits, "misses": self.misses,
                "hit_rate": round(self.hits / total, 4) if total else 0.0}

    def reset(self, clear_values: bool = False):
        self.hits = self.misses = 0
        if clear_values:
            self._data.clear()


# ============================================================================ motion decoding
@dataclass
class DecodedMotion:
    """One decoded clip: raw (de-normalised) features (T, D) and joints (T, J, 3) in metres."""
    codes: tuple
    features: np.ndarray
    joints: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.features.shape[0])


class MotionDecoder:
    """Batch VQ decoding of code lists with a cache keyed by the code tuple.

    ``decode_many(code_lists)`` decodes the distinct uncached, valid lists in length-sorted,
    padded batches of at most ``max_batch_size`` (padding-aware, so a clip decodes exactly as on
    its own), de-normalises them with the VQ run's ``mean``/``std`` (``x * std + mean``) and
    recovers joint positions with ``recover_from_ric`` (metres, 20 fps for t2m). With
    ``repair_yaw`` the known sign-flip artefact of the root-yaw channel is undone first
    (:func:`utils.motion_facts.repair_root_yaw`), so it does not count as a physical error.
    Empty lists and lists with codes outside ``[0, nb_code)`` give ``None`` (counted as
    ``invalid``), never an exception.

    ``stats()``: ``requests`` (clips asked for), ``hits``/``misses`` (cache), ``decoded`` (clips
    run through the VQ), ``vq_calls`` (``model.decode`` forward passes), ``invalid``, ``seconds``.
    """

    def __init__(self, model, mean, std, max_batch_size: int = 64, cache_size: int = 4096,
                 repair_yaw: bool = True, joints_num: Optional[int] = None):
        self.model = model
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        dim = int(getattr(model, "input_dim", self.mean.shape[-1]))
        if self.mean.shape != (dim,) or self.std.shape != (dim,):
            raise ValueError(f"mean/std shapes {self.mean.shape}/{self.std.shape} do not match the VQ-VAE "
                             f"feature width {dim}")
        self.nb_code = int(model.nb_code)
        self.unit_length = int(model.unit_length)
        self.joints_num = joints_num or (dim + 1) // 12
        self.max_batch_size = max(1, int(max_batch_size))
        self.repair_yaw = repair_yaw
        self.cache = LRUCache(cache_size)
        self.vq_calls = 0
        self.decoded = 0
        self.requests = 0
        self.invalid = 0
        self.seconds = 0.0

    @property
    def device(self) -> torch.device:
        try:
            return next(self.model.parameters()).device
        except StopIteration:  # pragma: no cover - a model without parameters
            return torch.device("cpu")

    def _valid(self, codes) -> bool:
        return len(codes) > 0 and all(0 <= c < self.nb_code for c in codes)

    def decode_many(self, code_lists: Sequence[Sequence[int]]) -> list[Optional[DecodedMotion]]:
        t0 = time.time()
        keys = [tuple(int(c) for c in codes) if codes is not None else () for codes in code_lists]
        self.requests += len(keys)
        valid = [self._valid(k) for k in keys]
        self.invalid += sum(1 for v in valid if not v)
        idx = [i for i, v in enumerate(valid) if v]
        found = self.cache.get_many([keys[i] for i in idx], self._decode) if idx else []
        out: list[Optional[DecodedMotion]] = [None] * len(keys)
        for i, m in zip(idx, found):
            out[i] = m
        self.seconds += time.time() - t0
        return out

    @torch.no_grad()
    def _decode(self, keys: list[tuple]) -> list[DecodedMotion]:
        from utils.motion_facts import repair_root_yaw
        from utils.motion_process import recover_from_ric

        order = sorted(range(len(keys)), key=lambda i: -len(keys[i]))
        result: list = [None] * len(keys)
        dev = self.device
        for s in range(0, len(order), self.max_batch_size):
            chunk = order[s:s + self.max_batch_size]
            n_max = len(keys[chunk[0]])
            codes = torch.full((len(chunk), n_max), -1, dtype=torch.long)
            for r, i in enumerate(chunk):
                codes[r, :len(keys[i])] = torch.tensor(keys[i], dtype=torch.long)
            lens = [len(keys[i]) for i in chunk]
            feats = self.model.decode(codes.to(dev), torch.tensor(lens, device=dev)).float().cpu().numpy()
            self.vq_calls += 1
            self.decoded += len(chunk)
            feats = feats * self.std + self.mean
            T_max = n_max * self.unit_length
            padded = np.zeros((len(chunk), T_max, feats.shape[-1]), dtype=np.float64)
            for r, n in enumerate(lens):
                f = feats[r, : n * self.unit_length].astype(np.float64)
                if self.repair_yaw:
                    f, _ = repair_root_yaw(f)
                padded[r, : len(f)] = f
            joints = recover_from_ric(padded, self.joints_num)  # causal in time: padding never leaks back
            for r, i in enumerate(chunk):
                T = lens[r] * self.unit_length
                result[i] = DecodedMotion(keys[i], padded[r, :T].astype(np.float32),
                                          np.asarray(joints[r, :T], dtype=np.float32))
        return result

    def stats(self) -> dict:
        return {"requests": self.requests, **{k: v for k, v in self.cache.stats().items()}, "decoded": self.decoded,
                "vq_calls": self.vq_calls, "invalid": self.invalid, "seconds": round(self.seconds, 4)}

    def reset(self, clear_values: bool = False):
        self.cache.reset(clear_values)
        self.vq_calls = self.decoded = self.requests = self.invalid = 0
        self.seconds = 0.0


# ============================================================================ batch
class RewardBatch:
    """The candidates of one scoring call (typically groups of G samples per prompt, contiguous).

    Per candidate: ``tasks[i]`` ('t2m' | 'm2t'), ``texts[i]`` (generated text after the prompt),
    ``captions[i]`` (t2m: the prompt caption; m2t: the reference caption, training only, else
    None), ``input_codes[i]`` (m2t: the input motion codes), ``parsed[i]``
    (:class:`models.prompts.Parsed`, codes *not* range-filtered, see :attr:`motion_codes`).

    ``motions`` is computed on first access: one :meth:`MotionDecoder.decode_many` call for the
    whole batch, shared by every reward. Precomputed motions (e.g. ground truth) can be given
    with :meth:`set_motions`.
    """

    def __init__(self, tasks, texts: Sequence[str], captions: Optional[Sequence[Optional[str]]] = None,
                 input_codes: Optional[Sequence] = None, nb_code: Optional[int] = None,
                 decoder: Optional[MotionDecoder] = None, reasoning_expected: bool = True,
                 max_motion_tokens: Optional[int] = None):
        self.texts = ["" if t is None else str(t) for t in texts]
        n = len(self.texts)
        self.tasks = [tasks] * n if isinstance(tasks, str) else list(tasks)
        if len(self.tasks) != n:
            raise ValueError(f"{len(self.tasks)} tasks for {n} candidates")
        bad = sorted({t for t in self.tasks if t not in TASKS})
        if bad:
            raise ValueError(f"unknown task(s) {bad}; expected 't2m' or 'm2t'")
        self.captions = list(captions) if captions is not None else [None] * n
        self.input_codes = list(input_codes) if input_codes is not None else [None] * n
        for name, lst in (("captions", self.captions), ("input_codes", self.input_codes)):
            if len(lst) != n:
                raise ValueError(f"{name} has {len(lst)} entries for {n} candidates")
        self.decoder = decoder
        self.nb_code = int(nb_code) if nb_code is not None else (decoder.nb_code if decoder is not None else None)
        self.reasoning_expected = bool(reasoning_expected)
        self.max_motion_tokens = max_motion_tokens
        self.parsed: list[Parsed] = [parse_output(t, None) for t in self.texts]
        self._motions: Optional[list] = None
        self.decode_seconds = 0.0

    def __len__(self):
        return len(self.texts)

    # ------------------------------------------------------------------ motion codes
    def generated_codes(self, i: int) -> list[int]:
        """In-range codes of a t2m answer, at most ``max_motion_tokens`` of them."""
        codes = self.parsed[i].motion_codes
        if self.nb_code is not None:
            codes = [c for c in codes if 0 <= c < self.nb_code]
        if self.max_motion_tokens:
            codes = codes[: self.max_motion_tokens]
        return codes

    def motion_codes(self, i: int) -> list[int]:
        """The codes whose motion the rewards score: t2m the generated ones, m2t the input."""
        if self.tasks[i] == "t2m":
            return self.generated_codes(i)
        codes = self.input_codes[i]
        return [] if codes is None else [int(c) for c in codes]

    def answer_text(self, i: int) -> str:
        """m2t: the generated caption (the answer without tags); t2m: the answer text left after
        removing the motion block (normally empty)."""
        return self.parsed[i].answer

    # ------------------------------------------------------------------ decoded motion
    @property
    def motions(self) -> list[Optional[DecodedMotion]]:
        if self._motions is None:
            if self.decoder is None:
                raise RuntimeError("this reward needs decoded motions but the batch has no MotionDecoder "
                                   "(build it with the VQ-VAE: --vq-ckpt)")
            t0 = time.time()
            self._motions = self.decoder.decode_many([self.motion_codes(i) for i in range(len(self))])
            self.decode_seconds = time.time() - t0
        return self._motions

    def set_motions(self, motions: Sequence[Optional[DecodedMotion]]):
        if len(motions) != len(self):
            raise ValueError(f"{len(motions)} motions for {len(self)} candidates")
        self._motions = list(motions)

    @property
    def motions_decoded(self) -> bool:
        return self._motions is not None


def motion_from_features(features, joints_num: Optional[int] = None, repair_yaw: bool = False) -> DecodedMotion:
    """A :class:`DecodedMotion` from raw (de-normalised) features (T, D), e.g. ground truth."""
    from utils.motion_facts import repair_root_yaw
    from utils.motion_process import recover_from_ric

    f = np.asarray(features, dtype=np.float64)
    if repair_yaw:
        f, _ = repair_root_yaw(f)
    j = recover_from_ric(f, joints_num)
    return DecodedMotion((), f.astype(np.float32), np.asarray(j, dtype=np.float32))


# ============================================================================ reward base
class Reward(abc.ABC):
    """Base class: ``name``, ``tasks``, ``score(batch) -> RewardOutput``."""

    name: str = "reward"
    tasks: tuple = TASKS

    @abc.abstractmethod
    def score(self, batch: RewardBatch) -> RewardOutput:
        """One value per candidate (and per-term components)."""

    def applicable(self, batch: RewardBatch) -> np.ndarray:
        return np.array([t in self.tasks for t in batch.tasks], dtype=bool)

    def config(self) -> dict:
        """What this reward was built with (logged with the run)."""
        return {"name": self.name, "tasks": list(self.tasks)}

    def cache_stats(self) -> dict:
        return {}

    def reset_cache(self, clear_values: bool = False):
        pass


def batched(seq: Sequence, size: int):
    size = max(1, int(size))
    for s in range(0, len(seq), size):
        yield seq[s:s + size]


def as_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)
