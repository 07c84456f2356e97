#!/usr/bin/env python
"""CoT data engine: MoGen-CoT (t2m) and MoUnd-CoT (m2t) JSONL from a dataset + VQ-VAE.

    # offline, deterministic (template reasoner)
    python prepare/build_cot.py --vq-ckpt experiments/vq/net_last.pth --data-root data/synthetic_h3d \\
        --out-dir experiments/cot --split train val
    # from an existing tokens JSONL (prepare/tokenize_dataset.py); --data-root gives the motion facts
    python prepare/build_cot.py --tokens-jsonl experiments/vq/tokens_train.jsonl --nb-code 512 \\
        --data-root data/synthetic_h3d --out-dir experiments/cot --split train
    # any OpenAI-compatible chat-completions endpoint (key from $OPENAI_API_KEY by default)
    python prepare/build_cot.py ... --reasoner openai --api-base https://api.openai.com/v1 \\
        --model gpt-4o-mini --concurrency 8

Outputs in ``--out-dir`` per split: ``t2m_<split>.jsonl``, ``m2t_<split>.jsonl`` and one
``summary.json``. One record per (item, caption) (``--captions-per-item K`` keeps K captions per
item, chosen with the seed; 0 = all)::

    {"task": "t2m", "id": "000123", "caption_index": 0, "caption": "a person walks forward.",
     "motion_tokens": [12, 7, ...], "reasoning": "Plan: walking forward. ..."}
    {"task": "m2t", "id": "000123", "caption_index": 0, "caption": "...", "motion_tokens": [...],
     "reasoning": "The clip lasts 4.2 s. ...", "answer": "a person walks forward."}

Every record is validated with ``dataset.dataset_cot.validate_record`` before it is written
(morl-method.md §3). ``(task, id, caption_index)`` identifies a record.

Reasoners:

* ``template`` (default): offline and deterministic for a ``--seed`` (each record has its own
  RNG derived from seed, task, id and caption index, so the text does not depend on the order or
  on ``--max-records``). t2m: a plan built from the caption (actions and their order, side/limb,
  direction, repetitions, speed) and from the measured target quantities (turn angle, distance,
  jumps, crouch, duration); it never contains motion tokens or tags. m2t: the observed facts
  (duration, travel, heading change, speed, most active limbs, jumps/contacts/crouch), then a
  conclusion drawn from the caption. About 30-80 words. The output is written atomically.
* ``openai``: POST ``<api-base>/chat/completions`` (standard library HTTP, no SDK), prompts from
  the caption and the facts (m2t: nothing beyond facts and caption), ``--concurrency`` worker
  threads, retries with exponential back-off (and ``Retry-After``) on 429 / 5xx / timeouts /
  connection errors, an on-disk cache keyed by the SHA-256 of (model, messages, temperature,
  max_tokens) in ``--cache-dir``, and resumable output: records already in the output file are
  skipped, new ones are appended (one ``write`` + ``flush`` per record) as they complete; a
  partial last line left by a crash is cut off on the next run. Records that fail (non-retryable
  HTTP error, retries exhausted, unusable completion) are counted in the summary and left out, so
  a rerun fills them in; the exit status is 1 when any failed.

Motion facts come from ``utils.motion_facts`` on the raw features of the item
(``<data-root>/new_joint_vecs/<clip_id>.npy``, the item's segment). Without ``--data-root``
(only possible with ``--tokens-jsonl``) reasoning uses the caption and the token count only.
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import logging
import os
import random
import re
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Optional

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dataset.dataset_cot import CoTRecordError, validate_record  # noqa: E402
from utils.io import atomic_write_json, atomic_write_text  # noqa: E402
from utils.motion_facts import motion_facts  # noqa: E402
from utils.paramUtil import get_spec  # noqa: E402

logger = logging.getLogger("build_cot")

TASKS = ("t2m", "m2t")
RESERVED = ("<Motion", "</Motion", "<think>", "</think>", "<answer>", "</answer>")
LIMB_WORDS = {"left_arm": "left arm", "right_arm": "right arm", "left_leg": "left leg", "right_leg": "right leg"}

# ============================================================================ caption parsing
# (pattern, gerund label, kind). Kinds decide how a side is phrased (arm / leg / travel / turn).
_LEXICON = [
    (r"jumping jacks?|star jumps?", "doing jumping jacks", "jump"),
    (r"side ?steps?|sidesteps?|shuffl\w*|moves? sideways|steps? (?:to the )?(?:left|right)\b|sideways", "side-stepping", "travel"),
    (r"walk\w*|stroll\w*|strides?|steps? (?:forward|backwards?|back)\b|pac(?:e|es|ing)\b|wander\w*|limp\w*", "walking", "travel"),
    (r"run\b|runs|running|ran\b|jog\w*|sprint\w*", "running", "travel"),
    (r"crawl\w*", "crawling", "travel"),
    (r"march\w*", "marching", "leg"),
    (r"jump\w*|leap\w*", "jumping", "jump"),
    (r"hop\w*|skip\w*", "hopping", "jump"),
    (r"turn\w*|spin\w*|rotat\w*|pivot\w*|veer\w*|curv\w*", "turning", "turn"),
    (r"kick\w*", "kicking", "leg"),
    (r"lunge\w*|lunging", "lunging", "leg"),
    (r"squat\w*|crouch\w*|duck\w*", "squatting", "body"),
    (r"kneel\w*|knelt", "kneeling", "body"),
    (r"sits?\b|sitting|sat\b|seated|takes? a seat", "sitting down", "body"),
    (r"stands? up|standing up|gets? up|rises?\b|rising", "standing up", "body"),
    (r"bow\w*|bend\w*|bent\b|lean\w*", "bending forward", "body"),
    (r"wav\w*", "waving", "arm"),
    (r"throw\w* (?:a )?punch\w*|punch\w*|box\w*|jab\w*|fight\w*", "punching", "arm"),
    (r"throw\w*|threw|pitch\w*|toss\w*", "throwing", "arm"),
    (r"clap\w*|applaud\w*", "clapping", "arm"),
    (r"rais\w*|lift\w*|puts? (?:both |his |her |the )?(?:left |right )?(?:hands?|arms?) up|reach\w*", "raising the arms", "arm"),
    (r"stretch\w*|t pose|spread\w*|hold\w* (?:both |his |her |the )?arms? out", "stretching the arms", "arm"),
    (r"danc\w*|sway\w*", "dancing", "body"),
    (r"climb\w*", "climbing", "travel"),
    (r"pick\w* up|picks?\b|grab\w*", "picking something up", "arm"),
    (r"swing\w*", "swinging", "arm"),
    (r"stumbl\w*|trip\w*", "stumbling", "travel"),
    (r"balanc\w*", "balancing", "body"),
]
_LEXICON = [(re.compile(r"\b(?:" + p + r")"), label, kind) for p, label, kind in _LEXICON]
_SPLIT = re.compile(r",?\s*\b(?:and then|then|after that|afterwards|followed by|before|after)\b\s*|,\s*|;\s*")
_NUM = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
        "ten": 10}
_NUM_WORD = {v: k for k, v in _NUM.items()}
_DIRECTIONS = [
    (r"counter ?clockwise|anti ?clockwise", "counterclockwise"),
    (r"clockwise", "clockwise"),
    (r"in a (?:\w+ )?circle|circles?\b|around in", "in a circle"),
    (r"backwards?|in reverse|(?:walk|step|mov|run|jog|go|goe)\w* back\b", "backward"),
    (r"forwards?|ahead|straight", "forward"),
    (r"sideways|to the side", "sideways"),
    (r"diagonal\w*", "diagonally"),
    (r"up and down", "up and down"),
    (r"in place|on the spot", "in place"),
    (r"around", "around"),
]
_DIRECTIONS = [(re.compile(r"\b(?:" + p + r")\b"), d) for p, d in _DIRECTIONS]



def active_limbs(f: dict, min_speed: float = 0.1, ratio: float = 0.7) -> list:
    """Names of the limbs worth mentioning: none when the fastest moves under ``min_speed`` m/s,
    the two fastest when the second reaches ``ratio`` of the first, else the fastest."""
    ls, rank = f["limb_speed_mps"], f["limb_rank"]
    r0, r1 = rank[0], rank[1]
    if ls[r0] < min_speed:
        return []
    return [LIMB_WORDS[r0], LIMB_WORDS[r1]] if ls[r1] >= ratio * ls[r0] else [LIMB_WORDS[r0]]

def _count(text: str) -> Optional[int]:
    if re.search(r"\bonce\b", text):
        return 1
    if re.search(r"\btwice\b", text):
        return 2
    if re.search(r"\bthrice\b", text):
        return 3
    m = re.search(r"\b(\d+|one|two|three|four|five|six|seven|eight|nine|ten) times\b", text)
    if m:
        v = m.group(1)
        return int(v) if v.isdigit() else _NUM[v]
    return None


def _side(text: str) -> Optional[str]:
    left, right = re.search(r"\bleft\b", text), re.search(r"\bright\b", text)
    if re.search(r"\bboth\b", text) and not (left or right):
        return "both"
    if left and right:
        return "left and right"
    return "left" if left else "right" if right else None


def parse_caption(caption: str) -> dict:
    """Clause-level keyword parse: ``{"clauses": [{actions, kind, side, direction, count, speed}],
    "actions": [labels in order], "sequential": bool}``. Unknown verbs give an empty action list."""
    text = caption.lower().strip().rstrip(".!")
    clauses = []
    for part in _SPLIT.split(text):
        part = part.strip()
        if not part:
            continue
        hits = []
        for rx, label, kind in _LEXICON:
            m = rx.search(part)
            if m and all(label != h[1] for h in hits):
                # a more specific entry earlier in the lexicon owns its span (e.g. jumping jacks)
                if any(m.start() < h[3] and h[2] < m.end() for h in hits):
                    continue
                hits.append((m.start(), label, m.start(), m.end(), kind))
        hits.sort()
        found = [d for rx, d in _DIRECTIONS if rx.search(part)]
        direction = found[0] if found else None
        if direction in ("clockwise", "counterclockwise") and "in a circle" in found:
            direction = f"in a {direction} circle"
        speed = ("slow" if re.search(r"\bslow(?:ly)?\b", part) else
                 "fast" if re.search(r"\b(?:quick(?:ly)?|fast|rapid(?:ly)?|briskly)\b", part) else None)
        if not hits and clauses:  # a modifier clause ("three times", "to the left"): merge into the last
            last = clauses[-1]
            last["side"] = last["side"] or _side(part)
            last["direction"] = last["direction"] or direction
            last["count"] = last["count"] or _count(part)
            last["speed"] = last["speed"] or speed
            continue
        clauses.append({"actions": [h[1] for h in hits], "kind": hits[0][4] if hits else None,
                        "side": _side(part), "direction": direction, "count": _count(part), "speed": speed})
    actions = [a for c in clauses for a in c["actions"]]
    return {"clauses": clauses, "actions": actions,
            "sequential": sum(1 for c in clauses if c["actions"]) > 1}


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{_NUM_WORD.get(n, n)} times")


def clause_phrase(c: dict, with_count: bool = True) -> str:
    """'kicking with the left leg three times', 'walking forward slowly', 'turning to the left'."""
    if not c["actions"]:
        return ""
    label = " and ".join(c["actions"])
    kind, side, d = c["kind"], c["side"], c["direction"]
    if "the arms" in label and side in ("left", "right", "both"):
        if side != "both":
            label = label.replace("the arms", f"the {side} arm")
        side = None
    parts = [label]
    if d and d not in label and not (kind == "arm" and d == "up and down") \
            and not (d == "sideways" and label.startswith("side")):
        parts.append(d)
    if side:
        if kind == "arm":
            parts.append("with both arms" if side == "both" else f"with the {side} arm")
        elif kind in ("leg",):
            parts.append("with both legs" if side == "both" else f"with the {side} leg")
        elif kind == "jump":
            parts.append("on both feet" if side == "both" else f"on the {side} leg")
        elif kind in ("turn", "travel"):
            if side != "both":
                parts.append(f"to the {side}")
        else:
            parts.append(f"on the {side} side" if side != "both" else "with both sides")
    if c["speed"]:
        parts.append("slowly" if c["speed"] == "slow" else "quickly")
    if with_count and c["count"]:
        parts.append(_times(c["count"]))
    return " ".join(parts)


# ============================================================================ formatting helpers
def _m(x: float) -> str:
    return f"{x:.1f} m" if x >= 0.95 else f"{x:.2f} m"


def _deg(h: float) -> int:
    return int(round(abs(h) / 15.0) * 15)


def _side_of(h: float) -> str:
    return "left" if h > 0 else "right"


def _words(text: str) -> int:
    return len(text.split())


def record_rng(seed: int, task: str, item_id: str, caption_index: int) -> random.Random:
    h = hashlib.sha256(f"{seed}|{task}|{item_id}|{caption_index}".encode()).digest()
    return random.Random(int.from_bytes(h[:8], "little"))


def _fit(sentences: list, optional: set, max_words: int) -> str:
    """Join sentences, dropping optional ones from the end while the text is too long."""
    keep = list(range(len(sentences)))
    text = " ".join(sentences[i] for i in keep if sentences[i])
    for i in reversed(range(len(sentences))):
        if _words(text) <= max_words:
            break
        if i in optional:
            keep.remove(i)
            text = " ".join(sentences[i] for i in keep if sentences[i])
    return text


def facts_text(f: Optional[dict], duration_s: Optional[float] = None) -> str:
    """Compact, sign-free wording of the facts for LLM prompts."""
    if not f:
        return f"- duration: about {duration_s:.1f} s (from the token count)" if duration_s else "- (no measurements)"
    h = f["heading_change_deg"]
    turn = "none" if abs(h) < 15 else f"{abs(h):.0f} degrees to the {_side_of(h)}"
    ls = f["limb_speed_mps"]
    lines = [
        f"- duration: {f['duration_s']:.1f} s",
        f"- root path length: {f['path_length_m']:.2f} m; net displacement: {f['net_displacement_m']:.2f} m "
        f"({f['net_forward_m']:+.2f} m forward, {f['net_left_m']:+.2f} m to the left of the start facing)",
        f"- heading change (body rotation): {turn}; total turning incl. torso twist: {f['turning_abs_deg']:.0f} degrees",
        f"- root speed: mean {f['mean_speed_mps']:.2f} m/s, max {f['max_speed_mps']:.2f} m/s",
        f"- pelvis height: {f['root_height_min_m']:.2f}-{f['root_height_max_m']:.2f} m "
        f"(standing about {f['standing_root_height_m']:.2f} m; crouched: {'yes' if f['crouched'] else 'no'})",
        f"- both feet off the ground: {f['airborne_frames']} frames, {f['jump_count']} airborne phase(s), "
        f"max clearance {f['max_air_height_m']:.2f} m",
        f"- feet static (contact) {100 * f['contact_ratio']:.0f}% of the time",
        "- mean limb speed relative to the body (m/s): " + ", ".join(f"{LIMB_WORDS[k]} {v:.2f}" for k, v in ls.items()),
        f"- repeated cycles of the most active limb (rough estimate): {f['repetitions_est']}",
    ]
    return "\n".join(lines)


# ============================================================================ template reasoner
class TemplateReasoner:
    """Deterministic short reasoning from the caption and the measured facts."""

    name = "template"

    def __init__(self, seed: int = 0, max_words: int = 80, fps: float = 20.0, unit_length: int = 4):
        self.seed = int(seed)
        self.max_words = max_words
        self.fps = fps
        self.unit_length = unit_length

    def duration(self, facts, motion_tokens) -> float:
        if facts:
            return float(facts["duration_s"])
        return len(motion_tokens) * self.unit_length / self.fps

    def reason(self, task: str, caption: str, facts: Optional[dict], motion_tokens, item_id: str,
               caption_index: int) -> str:
        rng = record_rng(self.seed, task, item_id, caption_index)
        if task == "t2m":
            return self.t2m(caption, facts, self.duration(facts, motion_tokens), rng)
        if task == "m2t":
            return self.m2t(caption, facts, self.duration(facts, motion_tokens), rng)
        raise ValueError(f"unknown task {task!r}")

    # -- t2m: a plan
    def t2m(self, caption: str, f: Optional[dict], dur: float, rng: random.Random) -> str:
        p = parse_caption(caption)
        acts = [c for c in p["clauses"] if c["actions"]]
        S, opt = [], set()
        if not acts:
            S.append(rng.choice(["The description is unusual, so I plan the movement it names directly.",
                                 "Plan: reproduce the described movement as a whole.",
                                 "I will follow the description closely."]))
        elif len(acts) == 1:
            ph = clause_phrase(acts[0])
            S.append(rng.choice([f"Plan: {ph}.", f"The description asks for {ph}.", f"Main action: {ph}.",
                                 f"I will generate {ph}."]))
        else:
            phs = [clause_phrase(c) for c in acts[:3]]
            if len(phs) == 2:
                S.append(rng.choice([f"Two phases: first {phs[0]}, then {phs[1]}.",
                                     f"Plan: {phs[0]}, followed by {phs[1]}.",
                                     f"The description asks for {phs[0]} and then {phs[1]}."]))
            else:
                S.append(rng.choice([f"Phases in order: {', then '.join(phs)}.",
                                     f"Plan: {phs[0]}, then {phs[1]}, then {phs[2]}."]))
        kinds = {c["kind"] for c in acts}
        if f:
            h = f["heading_change_deg"]
            if abs(h) >= 30:
                deg = _deg(h)
                full = " (a full circle)" if deg >= 330 else ""
                S.append(rng.choice([f"The body should turn about {deg} degrees to the {_side_of(h)}{full}.",
                                     f"Rotate roughly {deg} degrees toward the {_side_of(h)}{full}.",
                                     f"Heading changes by about {deg} degrees, turning {_side_of(h)}{full}."]))
            path, net = f["path_length_m"], f["net_displacement_m"]
            if net >= 0.5 or (path >= 2.0 and abs(f["heading_change_deg"]) >= 90):
                speed = f["mean_speed_mps"]
                S.append(rng.choice([f"Cover about {_m(path)} at roughly {speed:.1f} m/s.",
                                     f"Travel about {_m(path)} in total.",
                                     f"The pelvis should move about {_m(path)}, ending {_m(net)} from the start."]))
            elif path >= 1.0:
                S.append(rng.choice([f"Stay near the start ({_m(net)} net) while the hips shift around.",
                                     f"The hips move about but end only {_m(net)} from the start."]))
            else:
                S.append(rng.choice(["Stay roughly in place.", "Little travel is needed.",
                                     "The feet stay near the starting spot."]))
                opt.add(len(S) - 1)
            limbs = active_limbs(f)
            if len(limbs) == 2:
                S.append(rng.choice([f"The {limbs[0]} and {limbs[1]} do most of the work.",
                                     f"Most limb motion goes to the {limbs[0]} and {limbs[1]}."]))
                opt.add(len(S) - 1)
            elif limbs:
                S.append(rng.choice([f"The {limbs[0]} does most of the work.",
                                     f"Focus the movement on the {limbs[0]}."]))
                opt.add(len(S) - 1)
            if f["jump_count"] > 0 and (kinds & {"jump"} or f["max_air_height_m"] > 0.1):
                n = f["jump_count"]
                S.append(rng.choice([f"Both feet leave the ground {_times(n)}.",
                                     f"Include {n} airborne phase{'s' if n > 1 else ''}."]))
            if f["crouched"]:
                S.append(rng.choice([f"Lower the hips by about {_m(f['crouch_depth_m'])}.",
                                     f"Drop the pelvis about {_m(f['crouch_depth_m'])} below standing height."]))
        S.append(rng.choice([f"Length: about {dur:.1f} seconds.", f"It should take roughly {dur:.1f} s.",
                             f"Aim for about {dur:.1f} seconds of motion.", f"Duration around {dur:.1f} s."]))
        tail = rng.choice(["Start and end in a relaxed standing pose.", "Keep the movement smooth and natural.",
                           "Keep the transitions smooth.", ""])
        if tail:
            S.append(tail)
            opt.add(len(S) - 1)
        return _fit(S, opt, self.max_words)

    # -- m2t: observations, then a conclusion
    def m2t(self, caption: str, f: Optional[dict], dur: float, rng: random.Random) -> str:
        p = parse_caption(caption)
        acts = [c for c in p["clauses"] if c["actions"]]
        S, opt = [], set()
        S.append(rng.choice([f"The motion lasts about {dur:.1f} s.", f"Duration: about {dur:.1f} seconds.",
                             f"I observe a {dur:.1f}-second clip."]))
        if f:
            path, net = f["path_length_m"], f["net_displacement_m"]
            if net >= 0.5 or (path >= 2.0 and abs(f["heading_change_deg"]) >= 90):
                where = ""
                if net >= 0.3 and net >= 0.5 * path:
                    fw, lf = f["net_forward_m"], f["net_left_m"]
                    if abs(fw) >= abs(lf):
                        where = ", mostly forward" if fw > 0 else ", mostly backward"
                    else:
                        where = ", mostly to the left" if lf > 0 else ", mostly to the right"
                S.append(rng.choice([f"The pelvis travels {_m(path)} ({_m(net)} net{where}) at about "
                                     f"{f['mean_speed_mps']:.1f} m/s.",
                                     f"It covers {_m(path)}{where}, ending {_m(net)} from the start, with a mean "
                                     f"speed of {f['mean_speed_mps']:.1f} m/s and a peak of {f['max_speed_mps']:.1f} m/s."]))
            elif path >= 1.0:
                S.append(rng.choice([f"The hips move around ({_m(path)} of path) but end only {_m(net)} from the start.",
                                     f"It stays near the start ({_m(net)} net) although the pelvis shifts {_m(path)}."]))
            else:
                S.append(rng.choice(["The body stays roughly in place.",
                                     f"There is little travel ({_m(path)}).", "The feet stay near one spot."]))
            h = f["heading_change_deg"]
            if abs(h) >= 30:
                deg = _deg(h)
                S.append(rng.choice([f"The body turns about {deg} degrees to the {_side_of(h)}.",
                                     f"Heading changes by about {deg} degrees, a {_side_of(h)} turn.",
                                     f"It rotates roughly {deg} degrees {'counterclockwise' if h > 0 else 'clockwise'}."]))
            else:
                S.append(rng.choice(["The heading stays nearly constant.", "There is no real turn."]))
                opt.add(len(S) - 1)
            limbs = active_limbs(f)
            if not limbs:
                S.append(rng.choice(["The limbs barely move relative to the body.", "Limb motion is small."]))
            elif len(limbs) == 2:
                S.append(rng.choice([f"The {limbs[0]} and {limbs[1]} move the most.",
                                     f"Most limb motion is in the {limbs[0]} and the {limbs[1]}."]))
            else:
                S.append(rng.choice([f"The {limbs[0]} is clearly the most active limb.",
                                     f"Most of the movement comes from the {limbs[0]}."]))
            if f["jump_count"] > 0:
                n = f["jump_count"]
                S.append(rng.choice([f"Both feet leave the ground {_times(n)}, up to {f['max_air_height_m']:.2f} m.",
                                     f"There {'is one airborne phase' if n == 1 else f'are {n} airborne phases'}."]))
            elif f["crouched"]:
                S.append(rng.choice([f"The hips drop about {_m(f['crouch_depth_m'])} below standing height.",
                                     f"The pelvis lowers to {f['root_height_min_m']:.2f} m."]))
            else:
                S.append(rng.choice([f"The feet are planted {100 * f['contact_ratio']:.0f}% of the time.",
                                     f"Foot contact: {100 * f['contact_ratio']:.0f}% of the frames."]))
                opt.add(len(S) - 1)
            if f["repetitions_est"] >= 2 and any(c["count"] for c in acts):
                S.append(f"The main movement repeats roughly {_times(f['repetitions_est'])}.")
                opt.add(len(S) - 1)
        if acts:
            label = ", then ".join(clause_phrase(c) for c in acts[:3])
            S.append(rng.choice([f"So the person is {label}.", f"This indicates {label}.",
                                 f"Conclusion: {label}."]))
        else:
            S.append(rng.choice(["These observations fit the description.", "That pattern matches the caption."]))
        return _fit(S, opt, self.max_words)


# ============================================================================ OpenAI-compatible reasoner
SYSTEM_PROMPT = ("You write short reasoning traces for a motion-language model. Reply with the reasoning "
                 "text only: plain prose, 30 to 80 words, no lists, no markup, no tags, no motion tokens.")


def build_messages(task: str, caption: str, facts: Optional[dict], duration_s: Optional[float] = None) -> list:
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
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def clean_completion(text) -> str:
    """Strip whitespace and ``<think>`` wrappers; reject empty text or reserved tags."""
    if not isinstance(text, str):
        raise CompletionError("bad_completion", f"completion content is {type(text).__name__}, not text")
    t = text.strip()
    t = re.sub(r"^\s*<think>\s*|\s*</think>\s*$", "", t).strip()
    if not t:
        raise CompletionError("empty_completion", "empty completion")
    if any(tag in t for tag in RESERVED):
        raise CompletionError("bad_completion", "completion contains reserved tags or motion tokens")
    return " ".join(t.split())


class OpenAIReasoner:
    """Chat-completions client with retries, back-off and an on-disk cache (thread-safe)."""

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

    def cache_key(self, messages) -> str:
        blob = json.dumps({"model": self.model, "messages": messages, "temperature": self.temperature,
                           "max_tokens": self.max_tokens}, sort_keys=True, ensure_ascii=False)
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
            return None  # a damaged cache entry is ignored and rewritten

    def _cache_put(self, key, content):
        p = self._cache_path(key)
        if p is not None:
            atomic_write_text(p, json.dumps({"model": self.model, "key": key, "content": content}) + "\n")

    def _sleep_for(self, attempt: int, retry_after: Optional[str]) -> float:
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
        body = json.dumps({"model": self.model, "messages": messages, "temperature": self.temperature,
                           "max_tokens": self.max_tokens}).encode("utf-8")
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
                if not (status in self.RETRY_STATUS or 500 <= status < 600):
                    raise CompletionError(f"http_{status}", f"HTTP {status} from {self.url}: {detail}") from None
                last = CompletionError(f"http_{status}", f"HTTP {status} from {self.url}: {detail}")
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
        key = self.cache_key(messages)
        cached = self._cache_get(key)
        if cached is not None:
            self._count("cache_hits")
            return clean_completion(cached)
        content = self._post(messages)
        text = clean_completion(content)  # only usable completions are cached
        self._cache_put(key, content)
        return text

    def reason(self, task, caption, facts, motion_tokens, item_id=None, caption_index=None) -> str:
        dur = None if facts else len(motion_tokens) * self.unit_length / self.fps
        return self.complete(build_messages(task, caption, facts, dur))


# ============================================================================ units (item, caption)
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
    out = []
    with open(path, "r", encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from None
            for k in ("id", "captions", "motion_tokens"):
                if k not in rec:
                    raise ValueError(f"{path}:{lineno}: tokens record lacks field '{k}'")
            if not isinstance(rec["captions"], list) or not rec["captions"]:
                raise ValueError(f"{path}:{lineno}: 'captions' must be a non-empty list")
            out.append(rec)
    if not out:
        raise ValueError(f"{path}: no records")
    return out


def make_units(items: list, captions_per_item: int = 0, seed: int = 0, max_records: Optional[int] = None) -> list:
    """(item, caption) units: all captions, or ``captions_per_item`` chosen per item with a seeded RNG."""
    units = []
    for it in items:
        caps = list(it["captions"])
        idx = list(range(len(caps)))
        if captions_per_item and captions_per_item < len(caps):
            rng = random.Random(int.from_bytes(hashlib.sha256(f"{seed}|caps|{it['id']}".encode()).digest()[:8], "little"))
            idx = sorted(rng.sample(idx, captions_per_item))
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
    """Compute motion facts once per item and attach them to its units (``facts`` key)."""
    done: dict = {}
    for u in tqdm(units, desc="facts", disable=not progress, leave=False):
        if store is None:
            u["facts"] = None
            continue
        if u["id"] not in done:
            done[u["id"]] = motion_facts(store.get(u["clip_id"], u["segment"], u["length"]))
        u["facts"] = done[u["id"]]


def make_record(task: str, unit: dict, reasoning: str, nb_code: int, with_facts: bool = False) -> dict:
    rec = {"task": task, "id": unit["id"], "caption_index": unit["caption_index"], "caption": unit["caption"],
           "motion_tokens": unit["motion_tokens"], "reasoning": reasoning}
    if task == "m2t":
        rec["answer"] = unit["caption"]
    if with_facts and unit.get("facts"):
        rec["facts"] = unit["facts"]
    validate_record(rec, nb_code)  # raises CoTRecordError naming the field
    if task == "t2m" and any(tag in reasoning for tag in RESERVED):
        raise CoTRecordError("bad_value", "reasoning", "t2m reasoning contains motion tokens or tags")
    return rec


def record_key(rec: dict) -> tuple:
    return (rec.get("task"), str(rec.get("id")), rec.get("caption_index"))


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
    for line in data.decode("utf-8").splitlines():
        if line.strip():
            try:
                keys.add(record_key(json.loads(line)))
            except json.JSONDecodeError:
                logger.warning("%s: ignoring an unreadable line while resuming", path)
    return keys


# ============================================================================ split builders
def _word_stats(records_by_task: dict) -> dict:
    out = {}
    for task, recs in records_by_task.items():
        w = [_words(r["reasoning"]) for r in recs]
        if w:
            out[task] = {"mean": round(float(np.mean(w)), 1), "min": int(min(w)), "max": int(max(w))}
    return out


def build_template(units, tasks, reasoner: TemplateReasoner, nb_code, out_paths, with_facts=False,
                   progress=False) -> dict:
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
    for task in tasks:
        atomic_write_text(out_paths[task], "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs[task]))
    return {"records": {t: len(recs[t]) for t in tasks}, "skipped_existing": 0,
            "errors": sum(errors.values()), "error_reasons": dict(errors), "reasoning_words": _word_stats(recs)}


def build_openai(units, tasks, reasoner: OpenAIReasoner, nb_code, out_paths, concurrency=4, with_facts=False,
                 progress=False) -> dict:
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
    try:
        for t in tasks:
            out_paths[t].parent.mkdir(parents=True, exist_ok=True)
            files[t] = open(out_paths[t], "a", encoding="utf-8")

        def work(task, u):
            text = reasoner.reason(task, u["caption"], u["facts"], u["motion_tokens"], u["id"], u["caption_index"])
            return make_record(task, u, text, nb_code, with_facts)

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
                files[task].write(json.dumps(rec, ensure_ascii=False) + "\n")  # main thread: single writer
                files[task].flush()
                written[task] += 1
                words[task].append(_words(rec["reasoning"]))
        except BaseException:
            # Ctrl-C / crash: drop the queued requests; what was written stays and a rerun resumes
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
    finally:
        for fh in files.values():
            fh.close()
    wstats = {t: {"mean": round(float(np.mean(w)), 1), "min": int(min(w)), "max": int(max(w))}
              for t, w in words.items() if w}
    return {"records": {t: written[t] for t in tasks}, "skipped_existing": skipped,
            "errors": sum(errors.values()), "error_reasons": dict(errors), "reasoning_words": wstats,
            "api": {k: int(v) for k, v in reasoner.stats.items()}}


def load_items(args, split: str):
    """Tokens records of one split (tokenize_split or --tokens-jsonl) and nb_code."""
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


def build(args) -> dict:
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = list(dict.fromkeys(args.tasks))
    splits = list(dict.fromkeys(args.split + (["val"] if args.with_val else [])))
    if args.tokens_jsonl and len(splits) != 1:
        raise SystemExit("--tokens-jsonl holds one split: give exactly one --split name (used for file names)")
    store = MotionStore(args.data_root) if args.data_root else None
    if store is None:
        logger.warning("no --data-root: reasoning uses the captions and token counts only (no motion facts)")
    fps = get_spec(args.dataname).fps
    if args.reasoner == "template":
        reasoner = TemplateReasoner(seed=args.seed, max_words=args.max_words, fps=fps)
    else:
        if not args.model:
            raise SystemExit("--reasoner openai needs --model")
        key = os.environ.get(args.api_key_env) if args.api_key_env else None
        if not key:
            logger.warning("environment variable %s is empty: sending requests without an API key",
                           args.api_key_env)
        cache = Path(args.cache_dir) if args.cache_dir else out_dir / ".cot_cache"
        reasoner = OpenAIReasoner(args.api_base, args.model, key, args.temperature, args.max_tokens, args.timeout,
                                  args.max_retries, args.retry_base, args.retry_max, cache, fps=fps)
    summary = {"reasoner": args.reasoner, "model": args.model if args.reasoner == "openai" else None,
               "seed": args.seed, "tasks": tasks, "captions_per_item": args.captions_per_item,
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
            res = build_template(units, tasks, reasoner, nb_code, paths, args.with_facts, not args.no_progress)
        else:
            reasoner.stats.clear()
            res = build_openai(units, tasks, reasoner, nb_code, paths, args.concurrency, args.with_facts,
                               not args.no_progress)
        failed += res["errors"]
        summary["splits"][split] = {"items": len(items), "units": len(units), "nb_code": nb_code, **res,
                                    "files": {t: str(p) for t, p in paths.items()},
                                    "seconds": {"tokenize": round(t_tok, 2), "facts": round(t_facts, 2),
                                                "total": round(time.time() - t0, 2)}}
    summary["errors"] = failed
    atomic_write_json(out_dir / "summary.json", summary)
    return summary


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_argument_group("source")
    src.add_argument("--vq-ckpt", default=None, help="VQ-VAE checkpoint (tokenises --data-root with tokenize_split)")
    src.add_argument("--meta-dir", default=None, help="VQ normalisation statistics (default <ckpt dir>/meta)")
    src.add_argument("--tokens-jsonl", default=None, help="existing tokens JSONL (prepare/tokenize_dataset.py)")
    src.add_argument("--nb-code", type=int, default=None, help="codebook size (needed with --tokens-jsonl)")
    src.add_argument("--data-root", default=None, help="dataset folder (motions for the facts)")
    src.add_argument("--dataname", default="t2m", choices=["t2m", "kit"])
    src.add_argument("--split", nargs="+", default=["train"], help="split name(s), e.g. train val")
    src.add_argument("--with-val", action="store_true", help="also build the val split")
    src.add_argument("--batch-size", type=int, default=64, help="VQ encoding batch size")
    src.add_argument("--device", default="auto", help="device for the VQ encoding (auto/cpu/cuda)")
    out = ap.add_argument_group("output")
    out.add_argument("--out-dir", required=True)
    out.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    out.add_argument("--captions-per-item", type=int, default=0, help="captions kept per item (0 = all)")
    out.add_argument("--max-records", type=int, default=None, help="at most this many (item, caption) units per split")
    out.add_argument("--with-facts", action="store_true", help="store the measured facts in each record")
    out.add_argument("--seed", type=int, default=0)
    out.add_argument("--no-progress", action="store_true")
    rs = ap.add_argument_group("reasoner")
    rs.add_argument("--reasoner", choices=["template", "openai"], default="template")
    rs.add_argument("--max-words", type=int, default=80, help="template: longest reasoning (optional sentences dropped)")
    rs.add_argument("--api-base", default="https://api.openai.com/v1")
    rs.add_argument("--model", default=None)
    rs.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    rs.add_argument("--concurrency", type=int, default=4)
    rs.add_argument("--temperature", type=float, default=0.7)
    rs.add_argument("--max-tokens", type=int, default=200)
    rs.add_argument("--timeout", type=float, default=60.0, help="seconds per HTTP request")
    rs.add_argument("--max-retries", type=int, default=6)
    rs.add_argument("--retry-base", type=float, default=1.0, help="first back-off delay (s), doubled per retry")
    rs.add_argument("--retry-max", type=float, default=60.0, help="longest back-off delay (s)")
    rs.add_argument("--cache-dir", default=None, help="completion cache (default <out-dir>/.cot_cache)")
    args = ap.parse_args(argv)
    if not args.tokens_jsonl and not (args.vq_ckpt and args.data_root):
        ap.error("give --vq-ckpt and --data-root, or --tokens-jsonl")
    if args.captions_per_item < 0:
        ap.error("--captions-per-item must be >= 0")
    if args.max_records is not None and args.max_records <= 0:
        ap.error("--max-records must be positive")
    return args


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    summary = build(args)
    brief = {s: {"records": v["records"], "skipped_existing": v["skipped_existing"], "errors": v["errors"],
                 "seconds": v["seconds"]["total"]} for s, v in summary["splits"].items()}
    print(json.dumps({"out_dir": args.out_dir, "splits": brief}))
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
