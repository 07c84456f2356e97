"""Caption parsing for the CoT data engine.

A keyword parse of a caption into clauses (actions, kind, side, direction, repetitions, speed),
the phrase that words one clause back ("kicking with the left leg three times"), and the limb
names used when the measured facts are put into words. Also :data:`RESERVED`, the markup that a
reasoning text must never contain.
"""
from __future__ import annotations

import re
from typing import Optional

# Markup of the model's output format (motion tokens, think/answer tags): never in a reasoning text.
RESERVED = ("<Motion", "</Motion", "<think>", "</think>", "<answer>", "</answer>")

LIMB_WORDS = {"left_arm": "left arm", "right_arm": "right arm", "left_leg": "left leg", "right_leg": "right leg"}

# (pattern, gerund label, kind). The kind decides how a side is worded (arm / leg / travel / turn ...).
# Order matters: an entry owns its span against later, less specific ones (jumping jacks vs jumping).
_ACTION_PATTERNS = [
    (r"jumping jacks?|star jumps?", "doing jumping jacks", "jump"),
    (r"side ?steps?|sidesteps?|shuffl\w*|moves? sideways|steps? (?:to the )?(?:left|right)\b|sideways",
     "side-stepping", "travel"),
    (r"walk\w*|stroll\w*|strides?|steps? (?:forward|backwards?|back)\b|pac(?:e|es|ing)\b|wander\w*|limp\w*",
     "walking", "travel"),
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
    (r"rais\w*|lift\w*|puts? (?:both |his |her |the )?(?:left |right )?(?:hands?|arms?) up|reach\w*",
     "raising the arms", "arm"),
    (r"stretch\w*|t pose|spread\w*|hold\w* (?:both |his |her |the )?arms? out", "stretching the arms", "arm"),
    (r"danc\w*|sway\w*", "dancing", "body"),
    (r"climb\w*", "climbing", "travel"),
    (r"pick\w* up|picks?\b|grab\w*", "picking something up", "arm"),
    (r"swing\w*", "swinging", "arm"),
    (r"stumbl\w*|trip\w*", "stumbling", "travel"),
    (r"balanc\w*", "balancing", "body"),
]
ACTIONS = [(re.compile(r"\b(?:" + p + r")"), label, kind) for p, label, kind in _ACTION_PATTERNS]

# Clause boundaries: sequencing words, commas and semicolons.
CLAUSE_SPLIT = re.compile(r",?\s*\b(?:and then|then|after that|afterwards|followed by|before|after)\b\s*|,\s*|;\s*")

NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                "nine": 9, "ten": 10}
_WORD_OF_NUMBER = {v: k for k, v in NUMBER_WORDS.items()}

# (pattern, direction); the first one found in a clause is its direction.
_DIRECTION_PATTERNS = [
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
DIRECTIONS = [(re.compile(r"\b(?:" + p + r")\b"), d) for p, d in _DIRECTION_PATTERNS]


def active_limbs(f: dict, min_speed: float = 0.1, ratio: float = 0.7) -> list:
    """Names of the limbs worth mentioning: none when the fastest moves under ``min_speed`` m/s,
    the two fastest when the second reaches ``ratio`` of the first, else the fastest."""
    speed, rank = f["limb_speed_mps"], f["limb_rank"]
    first, second = rank[0], rank[1]
    if speed[first] < min_speed:
        return []
    if speed[second] >= ratio * speed[first]:
        return [LIMB_WORDS[first], LIMB_WORDS[second]]
    return [LIMB_WORDS[first]]


def repetitions(text: str) -> Optional[int]:
    """'once' / 'twice' / 'thrice' / '<n> times' in ``text`` as a number, else None."""
    for word, n in (("once", 1), ("twice", 2), ("thrice", 3)):
        if re.search(rf"\b{word}\b", text):
            return n
    m = re.search(r"\b(\d+|one|two|three|four|five|six|seven|eight|nine|ten) times\b", text)
    if m is None:
        return None
    v = m.group(1)
    return int(v) if v.isdigit() else NUMBER_WORDS[v]


def body_side(text: str) -> Optional[str]:
    """'left', 'right', 'left and right', 'both' (only without left/right) or None."""
    left, right = re.search(r"\bleft\b", text), re.search(r"\bright\b", text)
    if re.search(r"\bboth\b", text) and not (left or right):
        return "both"
    if left and right:
        return "left and right"
    if left:
        return "left"
    return "right" if right else None


def times_phrase(n: int) -> str:
    """1 -> 'once', 2 -> 'twice', 3 -> 'three times', 12 -> '12 times'."""
    return {1: "once", 2: "twice"}.get(n, f"{_WORD_OF_NUMBER.get(n, n)} times")


def _speed(text: str) -> Optional[str]:
    if re.search(r"\bslow(?:ly)?\b", text):
        return "slow"
    if re.search(r"\b(?:quick(?:ly)?|fast|rapid(?:ly)?|briskly)\b", text):
        return "fast"
    return None


def _action_hits(part: str) -> list:
    """(start, label, start, end, kind) of the actions named in one clause, in text order."""
    hits = []
    for rx, label, kind in ACTIONS:
        m = rx.search(part)
        if not m or any(label == h[1] for h in hits):
            continue
        if any(m.start() < h[3] and h[2] < m.end() for h in hits):
            continue  # an earlier, more specific entry owns this span
        hits.append((m.start(), label, m.start(), m.end(), kind))
    hits.sort()
    return hits


def parse_caption(caption: str) -> dict:
    """Clause-level keyword parse: ``{"clauses": [{actions, kind, side, direction, count, speed}],
    "actions": [labels in order], "sequential": bool}``. Unknown verbs give an empty action list."""
    text = caption.lower().strip().rstrip(".!")
    clauses = []
    for part in CLAUSE_SPLIT.split(text):
        part = part.strip()
        if not part:
            continue
        hits = _action_hits(part)
        found = [d for rx, d in DIRECTIONS if rx.search(part)]
        direction = found[0] if found else None
        if direction in ("clockwise", "counterclockwise") and "in a circle" in found:
            direction = f"in a {direction} circle"
        speed = _speed(part)
        if not hits and clauses:
            # a clause without an action ("three times", "to the left") modifies the previous one
            last = clauses[-1]
            last["side"] = last["side"] or body_side(part)
            last["direction"] = last["direction"] or direction
            last["count"] = last["count"] or repetitions(part)
            last["speed"] = last["speed"] or speed
            continue
        clauses.append({"actions": [h[1] for h in hits], "kind": hits[0][4] if hits else None,
                        "side": body_side(part), "direction": direction, "count": repetitions(part),
                        "speed": speed})
    actions = [a for c in clauses for a in c["actions"]]
    return {"clauses": clauses, "actions": actions,
            "sequential": sum(1 for c in clauses if c["actions"]) > 1}


def _side_words(kind: Optional[str], side: str) -> Optional[str]:
    """How a side is worded for an action kind (None: not worded)."""
    both = side == "both"
    if kind == "arm":
        return "with both arms" if both else f"with the {side} arm"
    if kind == "leg":
        return "with both legs" if both else f"with the {side} leg"
    if kind == "jump":
        return "on both feet" if both else f"on the {side} leg"
    if kind in ("turn", "travel"):
        return None if both else f"to the {side}"
    return "with both sides" if both else f"on the {side} side"


def clause_phrase(c: dict, with_count: bool = True) -> str:
    """'kicking with the left leg three times', 'walking forward slowly', 'turning to the left'."""
    if not c["actions"]:
        return ""
    label = " and ".join(c["actions"])
    kind, side, direction = c["kind"], c["side"], c["direction"]
    if "the arms" in label and side in ("left", "right", "both"):
        if side != "both":
            label = label.replace("the arms", f"the {side} arm")
        side = None
    parts = [label]
    if direction and direction not in label and not (kind == "arm" and direction == "up and down") \
            and not (direction == "sideways" and label.startswith("side")):
        parts.append(direction)
    if side:
        words = _side_words(kind, side)
        if words:
            parts.append(words)
    if c["speed"]:
        parts.append("slowly" if c["speed"] == "slow" else "quickly")
    if with_count and c["count"]:
        parts.append(times_phrase(c["count"]))
    return " ".join(parts)
