"""Chain-of-thought (CoT) JSONL records: schema, validation and a torch Dataset (docs/method.md §5.1).

One JSON object per line::

    required  caption        str, non-empty
              motion_tokens  list of ints, or a string of whitespace-separated ints; each in
                             [0, nb_code); at least one
    optional  task           't2m' | 'm2t'
              reasoning      str
              id             str (the dataset clip name)
              answer         str (m2t target when it differs from ``caption``)
              plan           str, non-empty: makes the record a *refine record* (Chain-of-Motion
                             rounds >= 2, ``models/com.py``): the prompt carries this prior reasoning
                             ("Refine the motion plan using this prior reasoning: <plan>",
                             ``models.prompts.prompt_text``) and the target is still the record's
                             gold reasoning and answer. ``prepare/build_cot.py`` writes one per
                             (caption, motion) record by default (``--refine-per-record``), after
                             the plain records of the same file, with an informational
                             ``plan_source``; SFT mixes them in (``--refine-ratio``), RLVR skips them
              reward, advantage, sample_weight   finite numbers (JSON ints or floats, not bools);
                             sample_weight must not be negative. SFT's ``--use-sample-weight`` takes
                             sample_weight, else reward, else advantage, else 1.0 (``rl.sft.sample_weight``)

``null`` in an optional field means "absent". Unknown fields are kept (copied into the normalised
record) and otherwise ignored. Nothing is tokenised here; the LLM side does that.

Normalised record (what :func:`validate_record` returns and :class:`CoTDataset` yields)::

    {"task": 't2m' | 'm2t' | None (no task in the record and no default),
     "id": str | None, "caption": str (stripped), "motion_tokens": list[int],
     "reasoning": str ('' when absent), "answer": str (the record's answer, else the caption),
     "plan": str (stripped) | None (absent: a plain record),
     "reward": float | None, "advantage": float | None, "sample_weight": float | None (None when absent,
     so that a consumer can fall back on reward / advantage),
     ...unknown fields unchanged}

Errors: a malformed line (invalid UTF-8 included) raises :class:`CoTRecordError` (a ``ValueError``)
whose message starts with ``<file>:<line>:`` and names the field; ``reason`` is one of
:data:`ERROR_REASONS`. With ``skip_bad_records=True`` such lines are skipped, counted per reason in the
returned stats, and each file with skipped lines gets one warning naming the first of them.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from collections import Counter
from typing import Optional, Union

from torch.utils.data import Dataset

TASKS = ("t2m", "m2t")
FLOAT_FIELDS = ("reward", "advantage", "sample_weight")
STR_FIELDS = ("reasoning", "id", "answer", "plan")
ERROR_REASONS = ("bad_encoding", "bad_json", "not_object", "missing_field", "bad_type", "bad_value",
                 "out_of_range")

PathLike = Union[str, os.PathLike]


class CoTRecordError(ValueError):
    """A record that does not follow the CoT schema.

    Attributes: ``reason`` (one of :data:`ERROR_REASONS`), ``field`` (or None), ``path`` and
    ``lineno`` (None for in-memory records).
    """

    def __init__(self, reason: str, field: Optional[str], message: str, path=None, lineno=None):
        self.reason, self.field, self.path, self.lineno = reason, field, path, lineno
        self.detail = message
        prefix = f"{path}:{lineno}: " if path is not None else ""
        super().__init__(prefix + message)

    def at(self, path, lineno) -> "CoTRecordError":
        return CoTRecordError(self.reason, self.field, self.detail, path, lineno)


def _err(reason, field, message):
    return CoTRecordError(reason, field, f"field '{field}': {message}" if field else message)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def parse_motion_tokens(value, nb_code: int) -> list[int]:
    """List of ints or whitespace-separated string -> list[int], each checked against nb_code."""
    field = "motion_tokens"
    if isinstance(value, str):
        parts = value.split()
        codes = []
        for p in parts:
            try:
                codes.append(int(p, 10))
            except ValueError:
                raise _err("bad_type", field, f"{p!r} in the token string is not an integer") from None
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            if not _is_int(v):
                raise _err("bad_type", field, f"element {i} is {type(v).__name__} {v!r}, expected int")
        codes = [int(v) for v in value]
    else:
        raise _err("bad_type", field, f"expected a list of ints or a string of ints, got {type(value).__name__}")
    if not codes:
        raise _err("bad_value", field, "no motion tokens")
    lo, hi = min(codes), max(codes)
    if lo < 0 or hi >= nb_code:
        bad = lo if lo < 0 else hi
        raise _err("out_of_range", field, f"code {bad} outside [0, {nb_code})")
    return codes


def validate_record(rec, nb_code: int, default_task: Optional[str] = None) -> dict:
    """Check one record (a dict) against the schema and return its normalised form.

    Raises :class:`CoTRecordError` (a ``ValueError``) naming the offending field.
    """
    if not _is_int(nb_code) or nb_code <= 0:
        raise ValueError(f"nb_code must be a positive int, got {nb_code!r}")
    if default_task is not None and default_task not in TASKS:
        raise ValueError(f"default_task must be one of {TASKS} or None, got {default_task!r}")
    if not isinstance(rec, dict):
        raise _err("not_object", None, f"expected a JSON object, got {type(rec).__name__}")
    out = dict(rec)  # unknown fields are kept

    if "caption" not in rec or rec["caption"] is None:
        raise _err("missing_field", "caption", "required field is missing")
    if not isinstance(rec["caption"], str):
        raise _err("bad_type", "caption", f"expected str, got {type(rec['caption']).__name__}")
    caption = rec["caption"].strip()
    if not caption:
        raise _err("bad_value", "caption", "empty caption")
    out["caption"] = caption

    if "motion_tokens" not in rec or rec["motion_tokens"] is None:
        raise _err("missing_field", "motion_tokens", "required field is missing")
    out["motion_tokens"] = parse_motion_tokens(rec["motion_tokens"], nb_code)

    task = rec.get("task")
    if task is not None:
        if not isinstance(task, str):
            raise _err("bad_type", "task", f"expected str, got {type(task).__name__}")
        if task not in TASKS:
            raise _err("bad_value", "task", f"{task!r} is not one of {list(TASKS)}")
    out["task"] = task if task is not None else default_task

    for f in STR_FIELDS:
        v = rec.get(f)
        if v is not None and not isinstance(v, str):
            raise _err("bad_type", f, f"expected str, got {type(v).__name__}")
    out["id"] = rec.get("id")
    out["reasoning"] = rec.get("reasoning") or ""
    answer = rec.get("answer")
    if answer is not None and not answer.strip():
        raise _err("bad_value", "answer", "empty answer")
    out["answer"] = answer.strip() if answer is not None else caption
    plan = rec.get("plan")
    if plan is not None and not plan.strip():
        raise _err("bad_value", "plan", "empty plan (leave the field out for a plain record)")
    out["plan"] = plan.strip() if plan is not None else None

    for f in FLOAT_FIELDS:
        v = rec.get(f)
        if v is None:
            out[f] = None  # absent: no default here (SFT falls back on reward / advantage, then 1.0)
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _err("bad_type", f, f"expected a number, got {type(v).__name__}")
        if not math.isfinite(v):
            raise _err("bad_value", f, f"{v!r} is not finite")
        out[f] = float(v)
    if out["sample_weight"] is not None and out["sample_weight"] < 0:
        raise _err("bad_value", "sample_weight", f"{out['sample_weight']} is negative")
    return out


def is_refine_record(rec: dict) -> bool:
    """Does the record carry a ``plan`` (a Chain-of-Motion refine-round example)?"""
    return bool(rec.get("plan"))


def _task_set(task_filter) -> Optional[set]:
    if task_filter is None:
        return None
    tasks = {task_filter} if isinstance(task_filter, str) else set(task_filter)
    bad = tasks - set(TASKS)
    if bad:
        raise ValueError(f"task_filter has unknown task(s) {sorted(bad)}; expected {list(TASKS)}")
    return tasks


def _paths(path_or_paths) -> list[str]:
    if isinstance(path_or_paths, (str, os.PathLike)):
        paths = [os.fspath(path_or_paths)]
    else:
        paths = [os.fspath(p) for p in path_or_paths]
    if not paths:
        raise ValueError("no CoT file given")
    for p in paths:
        if not os.path.isfile(p):
            raise FileNotFoundError(f"CoT file not found: {p}")
    return paths


def utf8_problem(line: str) -> Optional[str]:
    """None for a line read with ``errors='surrogateescape'`` that was valid UTF-8; otherwise
    ``"not valid UTF-8 (byte 0x.. at column N)"`` (column of the first bad byte, 1-based)."""
    try:
        line.encode("utf-8")
        return None
    except UnicodeEncodeError as exc:
        ch = ord(line[exc.start])
        byte = f"byte 0x{ch - 0xDC00:02x}" if 0xDC80 <= ch <= 0xDCFF else f"character U+{ch:04X}"
        return f"not valid UTF-8 ({byte} at column {exc.start + 1})"


def iter_text_lines(path: PathLike):
    """Yield ``(lineno, line, problem)`` for a UTF-8 text file: the invalid bytes of a line do not stop
    the reading; ``problem`` is None for a good line, else what :func:`utf8_problem` says (the line then
    holds the bad bytes as surrogate escapes: report it, do not use it)."""
    with open(path, "r", encoding="utf-8", errors="surrogateescape") as f:
        for lineno, line in enumerate(f, start=1):
            yield lineno, line, utf8_problem(line)


def iter_cot_file(path: PathLike, nb_code: int, default_task: Optional[str] = None,
                  skip_bad_records: bool = False, stats: Optional[Counter] = None):
    """Yield ``(lineno, normalised record)`` for one JSONL file (blank lines ignored).

    Bad lines (invalid UTF-8 included) raise :class:`CoTRecordError` with ``file:line`` unless
    ``skip_bad_records``; then they are counted in ``stats`` (keys of :data:`ERROR_REASONS`, plus
    ``skipped``) and one warning per file names the first of them.
    """
    path = os.fspath(path)
    stats = Counter() if stats is None else stats
    skipped, first = Counter(), None
    for lineno, line, problem in iter_text_lines(path):
        if not line.strip():
            stats["blank_lines"] += 1
            continue
        stats["lines"] += 1
        try:
            if problem:
                raise CoTRecordError("bad_encoding", None, problem)
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CoTRecordError("bad_json", None, f"invalid JSON ({exc.msg} at column {exc.colno})")
            norm = validate_record(rec, nb_code, default_task)
        except CoTRecordError as exc:
            err = exc.at(path, lineno)
            if not skip_bad_records:
                raise err from None
            stats[err.reason] += 1
            stats["skipped"] += 1
            skipped[err.reason] += 1
            first = first or err
            continue
        yield lineno, norm
    if skipped:
        warnings.warn(f"{path}: skipped {sum(skipped.values())} bad line(s) "
                      f"({', '.join(f'{k}={v}' for k, v in sorted(skipped.items()))}); first: {first}",
                      stacklevel=2)


def load_cot_records(path_or_paths, nb_code: int, task_filter=None, skip_bad_records: bool = False,
                     default_task: Optional[str] = None, return_stats: bool = False):
    """Read and validate one or more CoT JSONL files.

    ``task_filter``: a task name or a collection of them; rows whose task is a different one are
    dropped (counted as ``filtered``); rows without a task always pass (they get ``default_task``).
    Returns the list of normalised records, or ``(records, stats)`` with ``return_stats``: stats
    has ``records``, ``lines``, ``skipped`` and the per-reason counts, ``filtered``,
    ``blank_lines``, per-task counts ``task_t2m`` / ``task_m2t`` / ``task_none``, and ``refine``
    (records kept that carry a ``plan``).
    """
    tasks = _task_set(task_filter)
    if default_task is not None and default_task not in TASKS:
        raise ValueError(f"default_task must be one of {TASKS} or None, got {default_task!r}")
    stats: Counter = Counter()
    records = []
    for path in _paths(path_or_paths):
        for lineno, rec in iter_cot_file(path, nb_code, None, skip_bad_records, stats):
            if tasks is not None and rec["task"] is not None and rec["task"] not in tasks:
                stats["filtered"] += 1
                continue
            if rec["task"] is None:
                rec["task"] = default_task
            records.append(rec)
            stats[f"task_{rec['task'] or 'none'}"] += 1
            stats["refine"] += is_refine_record(rec)
    stats["records"] = len(records)
    for r in ERROR_REASONS + ("skipped", "filtered", "refine"):
        stats.setdefault(r, 0)
    return (records, dict(stats)) if return_stats else records


class CoTDataset(Dataset):
    """In-memory CoT records (normalised dicts, see the module doc) from one or more JSONL files.

    Args:
        path_or_paths: a file or a list of files.
        nb_code: codebook size; every motion token must be in ``[0, nb_code)``.
        task_filter: keep only this task (or these tasks); records without a task always pass.
        skip_bad_records: skip and count malformed lines instead of raising.
        default_task: task given to records that have none.
    """

    def __init__(self, path_or_paths, nb_code: int, task_filter=None, skip_bad_records: bool = False,
                 default_task: Optional[str] = None):
        self.paths = _paths(path_or_paths)
        self.nb_code = nb_code
        self.records, self.stats = load_cot_records(self.paths, nb_code, task_filter, skip_bad_records,
                                                    default_task, return_stats=True)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, idx: int) -> dict:
        return self.records[idx]

    def task_counts(self) -> dict:
        return dict(Counter(r["task"] for r in self.records))

    def summary(self) -> str:
        bad = {k: v for k, v in self.stats.items() if k in ERROR_REASONS and v}
        return (f"{len(self.records)} records from {len(self.paths)} file(s), tasks {self.task_counts()}, "
                f"skipped {self.stats.get('skipped', 0)} {bad if bad else ''}, filtered {self.stats.get('filtered', 0)}")
