"""The OpenAI-compatible reasoner: prompts, completion checks and a chat-completions client.

:func:`build_messages` writes the prompt of one record from its caption and facts;
:func:`clean_completion` accepts or rejects what the model answered (:class:`CompletionError`);
:class:`OpenAIReasoner` POSTs ``<api-base>/chat/completions`` with the standard library (no SDK),
retries with exponential back-off (and ``Retry-After``) on 408/409/425/429, 5xx, timeouts and
connection errors, and keeps an on-disk cache keyed by the SHA-256 of (model, messages,
temperature, max_tokens). It is thread-safe.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import random
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Optional

from prepare.cot.captions import RESERVED
from prepare.cot.template import facts_text
from utils.io import atomic_write_text

SYSTEM_PROMPT = ("You write short reasoning traces for a motion-language model. Reply with the reasoning "
                 "text only: plain prose, 30 to 80 words, no lists, no markup, no tags, no motion tokens.")


def build_messages(task: str, caption: str, facts: Optional[dict], duration_s: Optional[float] = None) -> list:
    """Chat messages (system + user) asking for the reasoning of one ``task`` record."""
    ft = facts_text(facts, duration_s)
    if task == "t2m":
        user = ("Task: text-to-motion. A model reads the description below and must plan a 3D human motion "
                "before generating it.\n"
                f"Description: {caption}\n"
                f"Measured facts of the reference motion (use them as the targets of the plan):\n{ft}\n"
                "Write the plan the model should think through: the action(s) and their order, side or limb, "
                "direction and amount of travel or turning, repetitions, and about how long it lasts. Phrase it "
                "as a plan (imperative or future tense). Do not say that facts were measured.")
    elif task == "m2t":
        user = ("Task: motion-to-text. A model observes a 3D human motion and must describe it.\n"
                f"Measured facts of the motion:\n{ft}\n"
                f"Reference caption: {caption}\n"
                "Write the reasoning the model should think through: first what the facts show (duration, "
                "travel, turning, speed, most active limbs, ground contact or jumps), then conclude what the "
                "person is doing. Use only information in the facts and the caption; invent nothing else. "
                "Do not copy the caption word for word.")
    else:
        raise ValueError(f"unknown task {task!r}")
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


class CompletionError(RuntimeError):
    """A request or completion that gave no usable reasoning; ``reason`` is a short code
    (``http_<status>``, ``network``, ``bad_response``, ``bad_completion``, ``empty_completion``)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def clean_completion(text) -> str:
    """Strip whitespace and ``<think>`` wrappers; reject empty text or reserved tags."""
    if not isinstance(text, str):
        raise CompletionError("bad_completion", f"completion content is {type(text).__name__}, not text")
    t = re.sub(r"^\s*<think>\s*|\s*</think>\s*$", "", text.strip()).strip()
    if not t:
        raise CompletionError("empty_completion", "empty completion")
    if any(tag in t for tag in RESERVED):
        raise CompletionError("bad_completion", "completion contains reserved tags or motion tokens")
    return " ".join(t.split())


class OpenAIReasoner:
    """Chat-completions client with retries, back-off and an on-disk cache (thread-safe).

    ``stats`` counts ``api_calls``, ``retries`` and ``cache_hits``. Only usable completions are
    cached; a damaged cache entry is ignored and rewritten.
    """

    name = "openai"
    RETRY_STATUS = {408, 409, 425, 429}

    def __init__(self, api_base: str, model: str, api_key: Optional[str] = None, temperature: float = 0.7,
                 max_tokens: int = 200, timeout: float = 60.0, max_retries: int = 6, retry_base: float = 1.0,
                 retry_max: float = 60.0, cache_dir=None, fps: float = 20.0, unit_length: int = 4):
        self.url = api_base.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.fps, self.unit_length = fps, unit_length
        self.stats = Counter()
        self._lock = threading.Lock()
        self._jitter = random.Random(0)

    def _count(self, key, n=1):
        with self._lock:
            self.stats[key] += n

    def _request(self, messages) -> dict:
        return {"model": self.model, "messages": messages, "temperature": self.temperature,
                "max_tokens": self.max_tokens}

    # -- cache
    def cache_key(self, messages) -> str:
        blob = json.dumps(self._request(messages), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def _cache_path(self, key: str) -> Optional[Path]:
        return None if self.cache_dir is None else self.cache_dir / key[:2] / f"{key}.json"

    def _cache_get(self, key):
        p = self._cache_path(key)
        if p is None or not p.is_file():
            return None
        try:
            return json.loads(p.read_text(encoding="utf-8"))["content"]
        except (OSError, ValueError, KeyError):
            return None

    def _cache_put(self, key, content):
        p = self._cache_path(key)
        if p is not None:
            atomic_write_text(p, json.dumps({"model": self.model, "key": key, "content": content}) + "\n")

    # -- HTTP
    def _sleep_for(self, attempt: int, retry_after: Optional[str]) -> float:
        """Back-off before retry ``attempt`` + 1: doubling, up to 25% jitter, at least Retry-After,
        at most ``retry_max``."""
        delay = self.retry_base * (2 ** attempt)
        with self._lock:
            delay *= 1.0 + 0.25 * self._jitter.random()
        if retry_after:
            try:
                delay = max(delay, float(retry_after))
            except ValueError:
                pass
        return min(delay, self.retry_max)

    def _post(self, messages) -> str:
        """The completion text of one request, after up to ``max_retries`` retries."""
        body = json.dumps(self._request(messages)).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = None
        for attempt in range(self.max_retries + 1):
            req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            retry_after = None
            try:
                self._count("api_calls")
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    payload = json.loads(resp.read().decode("utf-8"))
                try:
                    return payload["choices"][0]["message"]["content"]
                except (KeyError, IndexError, TypeError):
                    raise CompletionError("bad_response", f"unexpected response shape: {str(payload)[:200]}") from None
            except urllib.error.HTTPError as exc:
                status = exc.code
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                detail = exc.read()[:200].decode("utf-8", "replace") if exc.fp else ""
                last = CompletionError(f"http_{status}", f"HTTP {status} from {self.url}: {detail}")
                if not (status in self.RETRY_STATUS or 500 <= status < 600):
                    raise last from None
            except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError,
                    http.client.HTTPException) as exc:
                last = CompletionError("network", f"{type(exc).__name__} talking to {self.url}: {exc}")
            except json.JSONDecodeError as exc:
                last = CompletionError("bad_response", f"response is not JSON: {exc}")
            if attempt < self.max_retries:
                self._count("retries")
                time.sleep(self._sleep_for(attempt, retry_after))
        raise CompletionError(last.reason if last else "network",
                              f"gave up after {self.max_retries + 1} attempts: {last}")

    def complete(self, messages) -> str:
        """Cleaned completion of ``messages`` (from the cache when it has them)."""
        key = self.cache_key(messages)
        cached = self._cache_get(key)
        if cached is not None:
            self._count("cache_hits")
            return clean_completion(cached)
        content = self._post(messages)
        text = clean_completion(content)  # raises before caching an unusable completion
        self._cache_put(key, content)
        return text

    def reason(self, task, caption, facts, motion_tokens, item_id=None, caption_index=None) -> str:
        dur = None if facts else len(motion_tokens) * self.unit_length / self.fps
        return self.complete(build_messages(task, caption, facts, dur))
