"""Refine records: the later rounds of Chain-of-Motion as SFT examples.

Chain-of-Motion (``models/com.py``) re-prompts an input with the reasoning of its best candidate so
far as a plan ("Refine the motion plan using this prior reasoning: <plan>", ``models.prompts``). A
*refine record* is a copy of a (caption, motion) record with a ``plan`` field: its prompt carries the
plan, its target stays the gold reasoning and answer, so SFT trains the prompt that CoM uses from
round 2 on (``rl/sft.py --refine-ratio``).

The plan is a plausible reasoning text for the same caption and motion that is not the target's
reasoning (it stands for a sampled round-1 reasoning). Candidates, drawn in a seeded order per record
(``plan_source`` in the record says which one was used):

* ``caption:<k>``: the reasoning (same task) of another caption, index ``k``, of the same item: the
  same motion seen through another caption (only when the item has several captions in the split);
* ``variant``: the template reasoner's text for the same caption and facts with another phrasing
  stream (:meth:`TemplateReasoner.reason` with a ``variant``);
* ``jitter``: the same with perturbed measurements (duration, distances and speeds scaled, the turn off
  by 20-60 degrees): the kind of error a sampled plan makes (needs the motion facts).

A plan never equals the target reasoning or another plan of the same record. Everything is
deterministic for a seed: each record has its own RNG derived from the seed and its key.
"""
from __future__ import annotations

import hashlib
import random
from collections import Counter
from typing import Optional

from dataset.dataset_cot import CoTRecordError, validate_record
from prepare.cot.captions import RESERVED
from prepare.cot.template import TemplateReasoner

PLAN_KINDS = ("caption", "variant", "jitter")
_ATTEMPTS = 12  # candidates tried per refine record before giving up on it


def refine_rng(seed: int, task: str, item_id: str, caption_index) -> random.Random:
    h = hashlib.sha256(f"{seed}|refine|{task}|{item_id}|{caption_index}".encode()).digest()
    return random.Random(int.from_bytes(h[:8], "little"))


def jitter_facts(f: dict, rng: random.Random) -> dict:
    """Facts with plausible errors: duration x0.7-1.4, distances and speeds x0.6-1.5 (same factor),
    heading off by 20-60 degrees (either side). Other facts are kept."""
    g = dict(f)
    g["duration_s"] = float(f["duration_s"]) * rng.uniform(0.7, 1.4)
    scale = rng.uniform(0.6, 1.5)
    for k in ("path_length_m", "net_displacement_m", "net_forward_m", "net_left_m", "mean_speed_mps", "max_speed_mps"):
        if k in f:
            g[k] = float(f[k]) * scale
    h = float(f["heading_change_deg"]) + rng.choice((-1, 1)) * rng.uniform(20.0, 60.0)
    g["heading_change_deg"] = max(-360.0, min(360.0, h))
    return g


def make_refine_record(base: dict, plan: str, source: str, nb_code: int) -> dict:
    """A copy of ``base`` with ``plan`` and ``plan_source``, validated; a plan may not hold motion
    tokens or tags (they would become special tokens of the prompt)."""
    plan = plan.strip()
    if any(tag in plan for tag in RESERVED):
        raise CoTRecordError("bad_value", "plan", "plan contains motion tokens or tags")
    rec = {k: v for k, v in base.items() if k not in ("plan", "plan_source")}
    rec["plan"] = plan
    rec["plan_source"] = source
    validate_record(rec, nb_code)
    return rec


def _norm(text: Optional[str]) -> str:
    return " ".join((text or "").split())


def plans_for(base: dict, siblings: list, k: int, reasoner: TemplateReasoner, facts: Optional[dict],
              seed: int) -> list:
    """Up to ``k`` ``(plan, source)`` pairs for one record; ``siblings`` are ``(caption_index, reasoning)``
    of the item's other captions (same task)."""
    task, item_id, ci = base["task"], str(base.get("id")), base.get("caption_index")
    rng = refine_rng(seed, task, item_id, ci)
    sib = sorted(siblings, key=lambda x: (str(x[0]), x[1]))
    rng.shuffle(sib)
    seen = {_norm(base.get("reasoning"))}
    out, n_var = [], 0
    for _ in range(k * _ATTEMPTS):
        if len(out) == k:
            break
        kinds = [x for x in PLAN_KINDS if (x != "caption" or sib) and (x != "jitter" or facts)]
        kind = rng.choice(kinds)
        if kind == "caption":
            idx, text = sib.pop(0)
            source = f"caption:{idx}"
        else:
            n_var += 1
            f = jitter_facts(facts, rng) if kind == "jitter" else facts
            text = reasoner.reason(task, base["caption"], f, base["motion_tokens"], item_id, ci,
                                   variant=f"plan{n_var}")
            source = kind
        if not _norm(text) or _norm(text) in seen or any(tag in text for tag in RESERVED):
            continue
        seen.add(_norm(text))
        out.append((text.strip(), source))
    return out


def refine_records(base_records: list, per_record: int, reasoner: TemplateReasoner, nb_code: int, seed: int,
                   facts_by_id: Optional[dict] = None) -> tuple:
    """``per_record`` refine records for each plain record of ``base_records`` (one task), in the order
    of the base records, and stats ``{"records", "sources": {kind: n}, "short"}`` (``short``: base
    records that got fewer plans than asked, e.g. a one-word reasoning without facts).
    Facts: the record's ``facts`` field, else ``facts_by_id[id]``."""
    stats = {"records": 0, "sources": Counter(), "short": 0}
    if per_record <= 0:
        return [], {"records": 0, "sources": {}, "short": 0}
    plain = [r for r in base_records if not r.get("plan")]
    by_item: dict = {}
    for r in plain:
        by_item.setdefault((r["task"], str(r.get("id"))), []).append(r)
    out = []
    for r in plain:
        siblings = [(s.get("caption_index"), s["reasoning"]) for s in by_item[(r["task"], str(r.get("id")))]
                    if s is not r and s.get("caption_index") != r.get("caption_index") and s.get("reasoning")]
        facts = r.get("facts") or (facts_by_id or {}).get(str(r.get("id")))
        plans = plans_for(r, siblings, per_record, reasoner, facts, seed)
        if len(plans) < per_record:
            stats["short"] += 1
        for plan, source in plans:
            out.append(make_refine_record(r, plan, source, nb_code))
            stats["sources"][source.split(":")[0]] += 1
    stats["records"] = len(out)
    stats["sources"] = dict(sorted(stats["sources"].items()))
    return out, stats
