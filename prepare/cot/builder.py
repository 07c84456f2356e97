"""Building the CoT JSONL files of a run: one function per reasoner, and the run over splits.

:func:`build_template` writes each output file at once (atomically); :func:`build_openai` runs
the requests on a thread pool and appends records as they complete (one ``write`` + ``flush``
each, from the main thread), skipping the records already in the file, so an interrupted run
resumes. :func:`build` does every split of a parsed command line (``prepare/build_cot.py``) and
writes ``summary.json``.

Refine records (:mod:`prepare.cot.refine`, ``--refine-per-record``) follow the plain records of the same
file. They are derived from the plain records: the template builder writes both at once; the OpenAI
builder, once its requests are done, rewrites the file (atomically) as its plain lines, unchanged and in
order, followed by the refine records derived from them (:func:`rewrite_refine`), so a rerun that fills in
failed records also refreshes the refine records.
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dataset.dataset_cot import CoTRecordError
from prepare.cot.openai_client import CompletionError, OpenAIReasoner
from prepare.cot.records import MotionStore, attach_facts, existing_keys, make_record, make_units, read_tokens_jsonl
from prepare.cot.refine import refine_records
from prepare.cot.template import TemplateReasoner, word_count
from utils.io import _atomic, atomic_write_json, atomic_write_text
from utils.paramUtil import get_spec

logger = logging.getLogger("build_cot")


def word_stats(words_by_task: dict) -> dict:
    """``{task: {mean, min, max}}`` of the reasoning lengths (in words) of each task that has records."""
    return {task: {"mean": round(float(np.mean(w)), 1), "min": int(min(w)), "max": int(max(w))}
            for task, w in words_by_task.items() if w}


def _facts_by_id(units) -> dict:
    return {u["id"]: u.get("facts") for u in units}


def _refine_summary(per_task: dict) -> dict:
    """``refine_records`` {task: n}, ``refine_plan_sources`` {kind: n}, ``refine_short`` for the split summary."""
    sources = Counter()
    for st in per_task.values():
        sources.update(st["sources"])
    return {"refine_records": {t: st["records"] for t, st in per_task.items()},
            "refine_plan_sources": dict(sorted(sources.items())),
            "refine_short": sum(st["short"] for st in per_task.values())}


def build_template(units, tasks, reasoner: TemplateReasoner, nb_code, out_paths, with_facts=False,
                   progress=False, refine_per_record: int = 0) -> dict:
    """Every record of ``units`` x ``tasks``, then ``refine_per_record`` refine records per record; each
    file of ``out_paths`` is rewritten atomically."""
    recs = {t: [] for t in tasks}
    errors = Counter()
    for u in tqdm(units, desc="cot/template", disable=not progress):
        for task in tasks:
            try:
                text = reasoner.reason(task, u["caption"], u["facts"], u["motion_tokens"], u["id"],
                                       u["caption_index"])
                recs[task].append(make_record(task, u, text, nb_code, with_facts))
            except (CoTRecordError, ValueError) as exc:
                errors[getattr(exc, "reason", "error")] += 1
                logger.error("%s %s#%s: %s", task, u["id"], u["caption_index"], exc)
    refine = {}
    for task in tasks:
        extra, refine[task] = refine_records(recs[task], refine_per_record, reasoner, nb_code, reasoner.seed,
                                             _facts_by_id(units))
        atomic_write_text(out_paths[task], "".join(json.dumps(r, ensure_ascii=False) + "\n"
                                                   for r in recs[task] + extra))
    words = {t: [word_count(r["reasoning"]) for r in recs[t]] for t in tasks}
    return {"records": {t: len(recs[t]) for t in tasks}, "skipped_existing": 0,
            "errors": sum(errors.values()), "error_reasons": dict(errors), "reasoning_words": word_stats(words),
            **_refine_summary(refine)}


def rewrite_refine(path: Path, per_record: int, plan_reasoner: TemplateReasoner, nb_code, units) -> dict:
    """Rewrite ``path`` atomically as its plain lines (byte for byte, in order; unreadable ones too)
    followed by the refine records derived from its plain records (old refine records are dropped)."""
    path = Path(path)
    if not path.is_file():
        return refine_records([], 0, plan_reasoner, nb_code, plan_reasoner.seed)[1]
    keep, plain = [], []
    for line in path.read_bytes().splitlines(keepends=True):
        if not line.strip():
            continue
        try:
            rec = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            rec = None
        if isinstance(rec, dict) and rec.get("plan"):
            continue  # an old refine record: derived again below
        keep.append(line if line.endswith(b"\n") else line + b"\n")
        if isinstance(rec, dict) and rec.get("task") and rec.get("caption") and rec.get("motion_tokens"):
            plain.append(rec)
    extra, stats = refine_records(plain, per_record, plan_reasoner, nb_code, plan_reasoner.seed, _facts_by_id(units))
    data = b"".join(keep) + "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in extra).encode("utf-8")
    with _atomic(path) as tmp:
        tmp.write_bytes(data)
    return stats


def build_openai(units, tasks, reasoner: OpenAIReasoner, nb_code, out_paths, concurrency=4, with_facts=False,
                 progress=False) -> dict:
    """The records of ``units`` x ``tasks`` not yet in ``out_paths``, appended as they complete.
    Failed records are counted and left out (a rerun fills them in)."""
    have = {t: existing_keys(out_paths[t]) for t in tasks}
    jobs, skipped = [], 0
    for u in units:
        for task in tasks:
            if (task, u["id"], u["caption_index"]) in have[task]:
                skipped += 1
            else:
                jobs.append((task, u))
    errors = Counter()
    written = Counter()
    words = {t: [] for t in tasks}
    files = {}

    def work(task, u):
        text = reasoner.reason(task, u["caption"], u["facts"], u["motion_tokens"], u["id"], u["caption_index"])
        return make_record(task, u, text, nb_code, with_facts)

    try:
        for t in tasks:
            out_paths[t].parent.mkdir(parents=True, exist_ok=True)
            files[t] = open(out_paths[t], "a", encoding="utf-8")
        pool = ThreadPoolExecutor(max_workers=max(1, int(concurrency)))
        try:
            futs = {pool.submit(work, t, u): (t, u) for t, u in jobs}
            for fut in tqdm(as_completed(futs), total=len(futs), desc="cot/openai", disable=not progress):
                task, u = futs[fut]
                try:
                    rec = fut.result()
                except (CompletionError, CoTRecordError, ValueError, OSError) as exc:
                    errors[getattr(exc, "reason", type(exc).__name__)] += 1
                    if sum(errors.values()) <= 5:
                        logger.error("%s %s#%s: %s", task, u["id"], u["caption_index"], exc)
                    continue
                files[task].write(json.dumps(rec, ensure_ascii=False) + "\n")
                files[task].flush()
                written[task] += 1
                words[task].append(word_count(rec["reasoning"]))
        except BaseException:
            # Ctrl-C / crash: drop the queued requests; what was written stays and a rerun resumes
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
    finally:
        for fh in files.values():
            fh.close()
    return {"records": {t: written[t] for t in tasks}, "skipped_existing": skipped,
            "errors": sum(errors.values()), "error_reasons": dict(errors), "reasoning_words": word_stats(words),
            "api": {k: int(v) for k, v in reasoner.stats.items()}}


def load_items(args, split: str):
    """Tokens records of one split (``tokenize_split`` or ``--tokens-jsonl``) and the codebook size."""
    if args.tokens_jsonl:
        items = read_tokens_jsonl(args.tokens_jsonl)
        nb_code = args.nb_code
        if nb_code is None and args.vq_ckpt:
            from models.vqvae import load_vq
            nb_code = load_vq(args.vq_ckpt).nb_code
        if nb_code is None:
            raise SystemExit("--tokens-jsonl needs --nb-code (or --vq-ckpt) to validate the motion tokens")
        return items, int(nb_code)
    from prepare.tokenize_dataset import tokenize_split
    from utils.device import resolve_device
    items, stats = tokenize_split(args.vq_ckpt, args.data_root, split, args.dataname, args.batch_size,
                                  resolve_device(args.device), meta_dir=args.meta_dir,
                                  progress=not args.no_progress)
    if args.nb_code is not None and args.nb_code != stats["nb_code"]:
        raise SystemExit(f"--nb-code {args.nb_code} differs from the VQ codebook size {stats['nb_code']}")
    return items, int(stats["nb_code"])


def make_reasoner(args, out_dir: Path, fps: float):
    """The reasoner chosen on the command line (the API key is read from ``--api-key-env``)."""
    if args.reasoner == "template":
        return TemplateReasoner(seed=args.seed, max_words=args.max_words, fps=fps)
    if not args.model:
        raise SystemExit("--reasoner openai needs --model")
    key = os.environ.get(args.api_key_env) if args.api_key_env else None
    if not key:
        logger.warning("environment variable %s is empty: sending requests without an API key", args.api_key_env)
    cache = Path(args.cache_dir) if args.cache_dir else out_dir / ".cot_cache"
    return OpenAIReasoner(args.api_base, args.model, key, args.temperature, args.max_tokens, args.timeout,
                          args.max_retries, args.retry_base, args.retry_max, cache, fps=fps)


def build(args) -> dict:
    """Every split of a ``prepare/build_cot.py`` command line; returns (and writes) the summary."""
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = list(dict.fromkeys(args.tasks))
    splits = list(dict.fromkeys(args.split + (["val"] if args.with_val else [])))
    if args.tokens_jsonl and len(splits) != 1:
        raise SystemExit("--tokens-jsonl holds one split: give exactly one --split name (used for file names)")
    store = MotionStore(args.data_root) if args.data_root else None
    if store is None:
        logger.warning("no --data-root: reasoning uses the captions and token counts only (no motion facts)")
    reasoner = make_reasoner(args, out_dir, get_spec(args.dataname).fps)
    per_record = int(getattr(args, "refine_per_record", 0) or 0)
    summary = {"reasoner": args.reasoner, "model": args.model if args.reasoner == "openai" else None,
               "seed": args.seed, "tasks": tasks, "captions_per_item": args.captions_per_item,
               "refine_per_record": per_record,
               "max_records": args.max_records, "source": args.tokens_jsonl or args.vq_ckpt,
               "data_root": args.data_root, "splits": {}}
    failed = 0
    for split in splits:
        t0 = time.time()
        items, nb_code = load_items(args, split)
        t_tok = time.time() - t0
        units = make_units(items, args.captions_per_item, args.seed, args.max_records)
        attach_facts(units, store, progress=not args.no_progress)
        t_facts = time.time() - t0 - t_tok
        paths = {t: out_dir / f"{t}_{split}.jsonl" for t in tasks}
        if args.reasoner == "template":
            res = build_template(units, tasks, reasoner, nb_code, paths, args.with_facts, not args.no_progress,
                                 refine_per_record=per_record)
        else:
            reasoner.stats.clear()
            res = build_openai(units, tasks, reasoner, nb_code, paths, args.concurrency, args.with_facts,
                               not args.no_progress)
            # plans from the other captions' completions, else template phrasings of the same facts
            plan_reasoner = TemplateReasoner(seed=args.seed, max_words=args.max_words, fps=get_spec(args.dataname).fps)
            res.update(_refine_summary({t: rewrite_refine(paths[t], per_record, plan_reasoner, nb_code, units)
                                        for t in tasks}))
        failed += res["errors"]
        summary["splits"][split] = {"items": len(items), "units": len(units), "nb_code": nb_code, **res,
                                    "files": {t: str(p) for t, p in paths.items()},
                                    "seconds": {"tokenize": round(t_tok, 2), "facts": round(t_facts, 2),
                                                "total": round(time.time() - t0, 2)}}
    summary["errors"] = failed
    atomic_write_json(out_dir / "summary.json", summary)
    return summary
