"""Reasoning-coherence reward (t2m and m2t), docs/method.md §7.7. Values in [0, 1].

Does the answer follow from the reasoning? The premise is the generated reasoning (text before
``</think>``); the hypothesis is

* m2t: the generated caption (the answer);
* t2m: by default (``t2m_hypothesis='caption'``) the **prompt caption**: the answer is motion
  tokens, not text, and the reasoning is a plan for realising that caption, so a reasoning that
  entails the caption stays on the task. ``t2m_hypothesis='motion'`` instead uses a short
  description of the *decoded* motion measured by :mod:`utils.motion_facts` ("a person walks
  forward about 2.1 meters, turns left about 90 degrees."), which ties the reasoning to what the
  motion actually does, at the cost of a rule-based caption.

**Backends.**

``nli`` (``--nli-model-name``, default ``microsoft/deberta-large-mnli``): a 3-way MNLI
sequence classifier; the value is the softmax probability of its entailment class, whose index is
read from ``config.id2label`` (the label containing "entail"). Other real MNLI models:
``microsoft/deberta-xlarge-mnli``, ``microsoft/deberta-v2-xlarge-mnli``, ``roberta-large-mnli``.
The original release's default ``microsoft/deberta-v3-large-mnli`` does not exist on the Hub.

``embedding-fallback``: used when no NLI model is given (``--nli-model-name none``) or the named
one cannot be loaded offline (unless ``require_nli``): cosine similarity of the reasoning and the
hypothesis in the all-MiniLM-L6-v2 sentence space, clipped to [0, 1]. It measures topical
agreement, not entailment. The fallback is never silent: a warning is logged once, and
``config()['coherence_backend']`` / ``info['backend']`` say ``'embedding-fallback'`` with
``info['fallback_reason']``.

An empty reasoning or hypothesis scores 0. Scores are cached by (premise, hypothesis).
"""
from __future__ import annotations

import time
from typing import Optional

import numpy as np
import torch

from .base import LRUCache, Reward, RewardBatch, RewardOutput, batched, warn_once
from .sentence_encoder import SentenceEncoder, get_sentence_encoder

DEFAULT_NLI_MODEL = "microsoft/deberta-large-mnli"
NO_MODEL = ("", "none", "None", "off", "embedding", "embedding-fallback")
BACKEND_NLI, BACKEND_FALLBACK = "nli", "embedding-fallback"


def entailment_index(id2label: dict) -> int:
    """Index of the entailment class of an NLI classifier's ``config.id2label``."""
    hits = [int(i) for i, lab in (id2label or {}).items() if "entail" in str(lab).lower()
            and "not" not in str(lab).lower()]
    if len(hits) != 1:
        raise ValueError(f"cannot find one entailment label in id2label={id2label!r}; use a 3-way MNLI model "
                         f"(e.g. {DEFAULT_NLI_MODEL})")
    return hits[0]


def describe_motion(facts: dict) -> str:
    """A short caption-like description of a clip from :func:`utils.motion_facts.motion_facts`."""
    parts = []
    disp = facts.get("net_displacement_m", 0.0)
    if disp > 0.5:
        fwd, left = facts.get("net_forward_m", 0.0), facts.get("net_left_m", 0.0)
        if abs(fwd) >= abs(left):
            direction = "forward" if fwd > 0 else "backward"
        else:
            direction = "to the left" if left > 0 else "to the right"
        verb = "runs" if facts.get("mean_speed_mps", 0.0) > 2.0 else "walks"
        parts.append(f"{verb} {direction} about {disp:.1f} meters")
    turn = facts.get("heading_change_deg", 0.0)
    if abs(turn) > 45:
        parts.append(f"turns {'left' if turn > 0 else 'right'} about {abs(turn):.0f} degrees")
    jumps = facts.get("jump_count", 0)
    if jumps:
        parts.append(f"jumps {jumps} time{'s' if jumps > 1 else ''}")
    if facts.get("crouched"):
        parts.append("crouches down")
    if facts.get("arms_share", 0.5) > 0.6:
        limb = facts.get("most_active_limb", "right_arm").replace("_", " ")
        parts.append(f"moves the {limb}")
    if not parts:
        parts.append("stays mostly in place")
    return "a person " + ", ".join(parts) + "."


class _NLIScorer:
    def __init__(self, model_name: str, device, max_batch_size: int, max_length: int = 512):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.model_name = model_name
        self.device = torch.device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(model_name)
        self.model = AutoModelForSequenceClassification.from_pretrained(model_name).to(self.device).eval()
        self.entail = entailment_index(self.model.config.id2label)
        self.max_batch_size = max(1, int(max_batch_size))
        self.max_length = max_length
        self.forward_calls = 0

    @torch.no_grad()
    def __call__(self, pairs: list[tuple]) -> list[float]:
        out = []
        for chunk in batched(pairs, self.max_batch_size):
            enc = self.tokenizer([p for p, _ in chunk], [h for _, h in chunk], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt").to(self.device)
            probs = self.model(**enc).logits.float().softmax(-1)[:, self.entail]
            out.extend(float(p) for p in probs.cpu())
            self.forward_calls += 1
        return out


class CoherenceReward(Reward):
    name = "coh"
    tasks = ("t2m", "m2t")

    def __init__(self, nli_model_name: Optional[str] = DEFAULT_NLI_MODEL, device="cpu", max_batch_size: int = 16,
                 fallback_model: Optional[str] = "minilm", require_nli: bool = False,
                 t2m_hypothesis: str = "caption", encoder: Optional[SentenceEncoder] = None,
                 cache_size: int = 100_000):
        if t2m_hypothesis not in ("caption", "motion"):
            raise ValueError(f"t2m_hypothesis must be 'caption' or 'motion', got {t2m_hypothesis!r}")
        self.t2m_hypothesis = t2m_hypothesis
        self.nli_model_name = None if nli_model_name in NO_MODEL else nli_model_name
        self.fallback_reason = None
        self.nli = None
        self.encoder = None
        if self.nli_model_name is None:
            self.fallback_reason = "no NLI model given (--nli-model-name none)"
        else:
            try:
                self.nli = _NLIScorer(self.nli_model_name, device, max_batch_size)
            except Exception as exc:  # noqa: BLE001 - any load failure: report it and fall back (or raise)
                if require_nli:
                    raise RuntimeError(f"cannot load the NLI model {self.nli_model_name!r} for the coherence "
                                       f"reward: {exc}") from exc
                self.fallback_reason = f"cannot load the NLI model {self.nli_model_name!r}: {type(exc).__name__}: " \
                                       f"{str(exc).splitlines()[0] if str(exc) else ''}"
        if self.nli is None:
            self.encoder = encoder or get_sentence_encoder(fallback_model, device, max_batch_size)
            warn_once(("coherence-fallback", self.fallback_reason),
                      f"coherence reward: using the EMBEDDING FALLBACK ({self.encoder.display_name} cosine "
                      f"similarity of reasoning and answer, clipped to [0, 1]) instead of NLI entailment: "
                      f"{self.fallback_reason}")
        self.backend = BACKEND_NLI if self.nli is not None else BACKEND_FALLBACK
        self.cache = LRUCache(cache_size)
        self.seconds = 0.0

    @property
    def model_display(self) -> str:
        return self.nli_model_name if self.nli is not None else self.encoder.display_name

    def config(self) -> dict:
        return {**super().config(), "coherence_backend": self.backend, "model": self.model_display,
                "requested_nli_model": self.nli_model_name, "fallback_reason": self.fallback_reason,
                "t2m_hypothesis": self.t2m_hypothesis}

    def _hypothesis(self, batch: RewardBatch, i: int) -> str:
        if batch.tasks[i] == "m2t":
            return batch.answer_text(i)
        if self.t2m_hypothesis == "caption":
            return str(batch.captions[i] or "")
        m = batch.motions[i]
        if m is None:
            return ""
        try:
            from utils.motion_facts import motion_facts
            return describe_motion(motion_facts(m.joints))
        except ValueError:  # NaN/inf motion: nothing to describe
            return ""

    def _score_pairs(self, pairs: list[tuple]) -> list[float]:
        if self.nli is not None:
            return self.nli(pairs)
        sims = self.encoder.similarity([p for p, _ in pairs], [h for _, h in pairs])
        return [float(s) for s in np.clip(sims, 0.0, 1.0)]

    def score(self, batch: RewardBatch) -> RewardOutput:
        t0 = time.time()
        N = len(batch)
        app = self.applicable(batch)
        values = np.zeros(N)
        idx, pairs = [], []
        for i in range(N):
            if not app[i]:
                continue
            prem = " ".join(batch.parsed[i].reasoning.split())
            hyp = " ".join(self._hypothesis(batch, i).split())
            if prem and hyp:
                idx.append(i)
                pairs.append((prem, hyp))
        if idx:
            values[idx] = self.cache.get_many(pairs, self._score_pairs)
        self.seconds += time.time() - t0
        info = {"backend": self.backend, "model": self.model_display, "fallback_reason": self.fallback_reason,
                "empty": int(app.sum() - len(idx)), "cache": self.cache.stats()}
        return RewardOutput(values, {}, info)

    def cache_stats(self) -> dict:
        return self.cache.stats()

    def reset_cache(self, clear_values: bool = False):
        self.cache.reset(clear_values)
