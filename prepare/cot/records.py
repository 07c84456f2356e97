"""Inputs and outputs of the CoT data engine: tokens records in, CoT records out.

A *unit* is one (item, caption) pair of a tokens JSONL (``prepare/tokenize_dataset.py``):
:func:`make_units` picks the captions, :func:`attach_facts` adds the motion facts of the item
(read through :class:`MotionStore`). :func:`make_record` turns a unit and its reasoning into a
validated CoT record; :func:`existing_keys` reads back the keys of an output file to resume it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import random
from pathlib import Path
from typing import Optional

import numpy as np
from tqdm import tqdm

from dataset.dataset_cot import CoTRecordError, iter_text_lines, validate_record
from prepare.cot.captions import RESERVED
from utils.motion_facts import motion_facts

logger = logging.getLogger("build_cot")


class MotionStore:
    """Raw features of dataset items (whole clip or segment), read once per clip."""

    def __init__(self, data_root):
        self.root = Path(data_root)
        self._cache: dict = {}

    def get(self, clip_id: str, segment, length: int) -> np.ndarray:
        if clip_id not in self._cache:
            path = self.root / "new_joint_vecs" / f"{clip_id}.npy"
            if not path.is_file():
                raise FileNotFoundError(f"motion file not found: {path}")
            self._cache[clip_id] = np.load(path, allow_pickle=False)
        m = self._cache[clip_id]
        if segment:
            m = m[int(segment[0]):int(segment[1])]
        return m[:int(length)] if length else m


def read_tokens_jsonl(path) -> list[dict]:
    """Records of a tokens JSONL; each needs ``id``, a non-empty ``captions`` list and ``motion_tokens``."""
    out = []
    for lineno, line, problem in iter_text_lines(path):
        if not line.strip():
            continue
        if problem:
            raise ValueError(f"{path}:{lineno}: {problem}")
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from None
        if not isinstance(rec, dict):
            raise ValueError(f"{path}:{lineno}: expected a JSON object, got {type(rec).__name__}")
        for k in ("id", "captions", "motion_tokens"):
            if k not in rec:
                raise ValueError(f"{path}:{lineno}: tokens record lacks field '{k}'")
        if not isinstance(rec["captions"], list) or not rec["captions"]:
            raise ValueError(f"{path}:{lineno}: 'captions' must be a non-empty list")
        out.append(rec)
    if not out:
        raise ValueError(f"{path}: no records")
    return out


def _caption_rng(seed: int, item_id) -> random.Random:
    h = hashlib.sha256(f"{seed}|caps|{item_id}".encode()).digest()
    return random.Random(int.from_bytes(h[:8], "little"))


def make_units(items: list, captions_per_item: int = 0, seed: int = 0, max_records: Optional[int] = None) -> list:
    """(item, caption) units: all captions, or ``captions_per_item`` chosen per item with a seeded RNG.
    Blank captions are left out; at most ``max_records`` units."""
    units = []
    for it in items:
        caps = list(it["captions"])
        idx = list(range(len(caps)))
        if captions_per_item and captions_per_item < len(caps):
            idx = sorted(_caption_rng(seed, it["id"]).sample(idx, captions_per_item))
        for k in idx:
            cap = caps[k]
            if not isinstance(cap, str) or not cap.strip():
                continue
            units.append({"id": str(it["id"]), "clip_id": str(it.get("clip_id") or it["id"]),
                          "segment": it.get("segment"), "length": it.get("length"), "caption_index": k,
                          "caption": cap.strip(), "motion_tokens": [int(c) for c in it["motion_tokens"]]})
            if max_records is not None and len(units) >= max_records:
                return units
    return units


def attach_facts(units: list, store: Optional[MotionStore], progress: bool = False) -> None:
    """Compute motion facts once per item and attach them to its units (``facts`` key; None without a store)."""
    done: dict = {}
    for u in tqdm(units, desc="facts", disable=not progress, leave=False):
        if store is None:
            u["facts"] = None
            continue
        if u["id"] not in done:
            done[u["id"]] = motion_facts(store.get(u["clip_id"], u["segment"], u["length"]))
        u["facts"] = done[u["id"]]


def make_record(task: str, unit: dict, reasoning: str, nb_code: int, with_facts: bool = False) -> dict:
    """The CoT record of one unit, validated (``CoTRecordError`` names the bad field); t2m reasoning
    must not contain motion tokens or tags."""
    rec = {"task": task, "id": unit["id"], "caption_index": unit["caption_index"], "caption": unit["caption"],
           "motion_tokens": unit["motion_tokens"], "reasoning": reasoning}
    if task == "m2t":
        rec["answer"] = unit["caption"]
    if with_facts and unit.get("facts"):
        rec["facts"] = unit["facts"]
    validate_record(rec, nb_code)
    if task == "t2m" and any(tag in reasoning for tag in RESERVED):
        raise CoTRecordError("bad_value", "reasoning", "t2m reasoning contains motion tokens or tags")
    return rec


def record_key(rec: dict) -> tuple:
    """``(task, id, caption_index)``: what identifies a record; a refine record (one with a ``plan``,
    :mod:`prepare.cot.refine`) gets ``"refine"`` appended."""
    key = (rec.get("task"), str(rec.get("id")), rec.get("caption_index"))
    return key + ("refine",) if rec.get("plan") else key


def existing_keys(path: Path) -> set:
    """Keys of complete records already in an output file; a partial last line is cut off."""
    if not path.is_file():
        return set()
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        logger.warning("%s: dropping a partial last line (%d bytes) before resuming", path, len(data) - cut)
        with open(path, "r+b") as f:
            f.truncate(cut)
        data = data[:cut]
    keys = set()
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            logger.warning("%s:%d: ignoring a line that is not valid UTF-8 (byte 0x%02x at byte %d) while resuming",
                           path, lineno, raw[exc.start], exc.start + 1)
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            logger.warning("%s:%d: ignoring an unreadable line while resuming", path, lineno)
            continue
        if isinstance(rec, dict):
            keys.add(record_key(rec))
        else:
            logger.warning("%s:%d: ignoring a line that is not a JSON object while resuming", path, lineno)
    return keys
