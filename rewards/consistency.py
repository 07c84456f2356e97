"""Text–motion consistency reward (t2m; m2t at test time), docs/method.md §7.5.

Similarity, in the T2M evaluator's co-embedding space (the architecture the metrics use), between
the text embedding of a caption and the motion embedding of a motion:

* t2m: the prompt caption vs. the decoded generated motion;
* m2t: the generated caption vs. the input motion (decoded from the input codes). This never
  looks at a ground-truth caption, so it may rank Chain-of-Motion candidates at test time.

``metric='cosine'`` (default): cosine similarity in [-1, 1]. ``metric='euclidean'``: the negative
Euclidean distance (the evaluator's matching score, unbounded, <= 0). ``metric='retrieval'``: how
well the motion picks out *its* caption among others, the smooth form of R-precision — the mean over
negative captions j of sigmoid((d_j − d_own) / τ), in [0, 1], with Euclidean distances in the
evaluator space and as negatives the most recent distinct captions this reward has embedded (up to
``negatives``; the batch's other prompts included). An absolute similarity can be raised by drifting
every motion toward a generic one that is close to all captions; this one cannot (measured: cosine
rewards rose during GRPO while greedy R-precision fell).

Captions are processed as the evaluator expects (:func:`utils.text_process.process_texts` ->
``word/POS`` tokens -> GloVe vectors via :class:`utils.word_vectorizer.WordVectorizer`); motions
are the raw de-normalised features, which :class:`models.evaluator_wrapper.EvaluatorWrapper`
normalises with the evaluator's own statistics and crops to 196 frames / a multiple of 4. Text
embeddings are cached by caption (the G candidates of a t2m group share one caption).

Candidates without a usable motion (t2m: no decodable codes) or caption (m2t: empty answer) get
``invalid_value``: -1 for cosine (its minimum); for euclidean the lowest valid value of the
batch (0 when there is none).
"""
from __future__ import annotations

import time

import numpy as np
import torch

from .base import LRUCache, Reward, RewardBatch, RewardOutput


class ConsistencyReward(Reward):
    name = "align"
    tasks = ("t2m", "m2t")

    def __init__(self, evaluator, word_vectorizer, metric: str = "cosine", max_batch_size: int = 16,
                 cache_size: int = 100_000, negatives: int = 255, temperature: float = 1.0):
        if metric not in ("cosine", "euclidean", "retrieval"):
            raise ValueError(f"metric must be 'cosine', 'euclidean' or 'retrieval', got {metric!r}")
        self.negatives = int(negatives)
        self.temperature = float(temperature)
        self.evaluator = evaluator
        self.w_vectorizer = word_vectorizer
        self.metric = metric
        self.max_batch_size = max(1, int(max_batch_size))
        self.text_cache = LRUCache(cache_size)
        self.seconds = 0.0

    def config(self) -> dict:
        return {**super().config(), "metric": self.metric,
                **({"negatives": self.negatives, "temperature": self.temperature} if self.metric == "retrieval" else {}),
                "evaluator": str(self.evaluator.opt.get("opt_path", "?"))}

    # ------------------------------------------------------------------ embeddings
    def _embed_captions(self, captions: list[str]) -> list[np.ndarray]:
        from utils.text_process import process_texts

        tokens = process_texts(captions, allow_empty=True)
        emb = self.evaluator.embed_token_lists(tokens, self.w_vectorizer, batch_size=max(self.max_batch_size, 64))
        return list(emb.cpu().numpy())

    def text_embeddings(self, captions: list[str]) -> np.ndarray:
        keys = [" ".join(c.split()) for c in captions]
        return np.stack(self.text_cache.get_many(keys, self._embed_captions))

    def motion_embeddings(self, features: list[np.ndarray]) -> np.ndarray:
        return self.evaluator.embed_raw_motions(features, batch_size=max(self.max_batch_size, 32)).cpu().numpy()

    def similarity(self, t: np.ndarray, m: np.ndarray) -> np.ndarray:
        t = torch.as_tensor(t, dtype=torch.float64)
        m = torch.as_tensor(m, dtype=torch.float64)
        if self.metric == "cosine":
            return torch.nn.functional.cosine_similarity(t, m, dim=-1, eps=1e-8).numpy()
        return -torch.linalg.vector_norm(t - m, dim=-1).numpy()

    def retrieval(self, keys: list[str], t: np.ndarray, m: np.ndarray) -> np.ndarray:
        """Soft R-precision of each motion for its caption against the recent distinct captions."""
        bank_keys = list(self.text_cache._data.keys())[-(self.negatives + len(set(keys))):]
        bank = torch.as_tensor(np.stack([self.text_cache._data[k] for k in bank_keys]), dtype=torch.float64)
        mm = torch.as_tensor(m, dtype=torch.float64)
        d_own = torch.linalg.vector_norm(torch.as_tensor(t, dtype=torch.float64) - mm, dim=-1)  # (N,)
        d_all = torch.cdist(mm, bank)  # (N, K)
        pos = {k: j for j, k in enumerate(bank_keys)}
        neg = torch.ones_like(d_all, dtype=torch.bool)
        for i, k in enumerate(keys):
            if k in pos:
                neg[i, pos[k]] = False
        s = torch.sigmoid((d_all - d_own[:, None]) / self.temperature) * neg
        return (s.sum(1) / neg.sum(1).clamp_min(1)).numpy()

    # ------------------------------------------------------------------ reward
    def score(self, batch: RewardBatch) -> RewardOutput:
        t0 = time.time()
        N = len(batch)
        app = self.applicable(batch)
        motions = batch.motions
        idx, caps, feats = [], [], []
        for i in range(N):
            if not app[i]:
                continue
            cap = batch.captions[i] if batch.tasks[i] == "t2m" else batch.answer_text(i)
            if batch.tasks[i] == "t2m" and not (cap and str(cap).strip()):
                raise ValueError("the consistency reward needs the prompt caption of every t2m candidate")
            m = motions[i]
            min_len = self.evaluator.unit_length
            if cap and str(cap).strip() and m is not None and m.num_frames >= min_len:
                idx.append(i)
                caps.append(str(cap))
                feats.append(m.features)
        values = np.zeros(N)
        if idx:
            t = self.text_embeddings(caps)
            m = self.motion_embeddings(feats)
            if self.metric == "retrieval":
                sim = self.retrieval([" ".join(c.split()) for c in caps], t, m)
            else:
                sim = self.similarity(t, m)
            values[idx] = sim
            invalid_value = {"cosine": -1.0, "retrieval": 0.0}.get(self.metric, float(sim.min()))
        else:
            invalid_value = -1.0 if self.metric == "cosine" else 0.0
        scored = set(idx)
        bad = [i for i in range(N) if app[i] and i not in scored]
        values[bad] = invalid_value
        self.seconds += time.time() - t0
        return RewardOutput(values, {}, {"invalid": len(bad), "metric": self.metric,
                                         "text_cache": self.text_cache.stats()})

    def cache_stats(self) -> dict:
        return {"text": self.text_cache.stats()}

    def reset_cache(self, clear_values: bool = False):
        self.text_cache.reset(clear_values)
