"""The offline template reasoner and the wording of the measured motion facts.

:class:`TemplateReasoner` writes a short, deterministic reasoning text from a caption and the
facts of its motion (``utils.motion_facts``): a plan for t2m, observations then a conclusion for
m2t. Each record has its own RNG (:func:`record_rng`), so a text does not depend on the order in
which records are built. :func:`facts_text` words the facts for LLM prompts.
"""
from __future__ import annotations

import hashlib
import random
from typing import Optional

from prepare.cot.captions import LIMB_WORDS, active_limbs, clause_phrase, parse_caption, times_phrase


# ---------------------------------------------------------------------------- wording helpers
def metres(x: float) -> str:
    """'1.3 m' from 0.95 m up, '0.42 m' below."""
    return f"{x:.1f} m" if x >= 0.95 else f"{x:.2f} m"


def rounded_degrees(heading: float) -> int:
    """|heading| rounded to a multiple of 15 degrees."""
    return int(round(abs(heading) / 15.0) * 15)


def turn_side(heading: float) -> str:
    """Side of a heading change (positive = left / counter-clockwise)."""
    return "left" if heading > 0 else "right"


def word_count(text: str) -> int:
    return len(text.split())


def record_rng(seed: int, task: str, item_id: str, caption_index: int, variant: str = "") -> random.Random:
    """RNG of one record, derived from the seed and the record's key (``variant``: another phrasing stream
    for the same record, e.g. the plans of refine records; empty = the record's own text)."""
    key = f"{seed}|{task}|{item_id}|{caption_index}" + (f"|{variant}" if variant else "")
    h = hashlib.sha256(key.encode()).digest()
    return random.Random(int.from_bytes(h[:8], "little"))


def fit_words(sentences: list, optional: set, max_words: int) -> str:
    """Join sentences, dropping optional ones (by index, from the end) while the text is too long."""
    keep = list(range(len(sentences)))
    text = " ".join(sentences[i] for i in keep if sentences[i])
    for i in reversed(range(len(sentences))):
        if word_count(text) <= max_words:
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
    turn = "none" if abs(h) < 15 else f"{abs(h):.0f} degrees to the {turn_side(h)}"
    limbs = ", ".join(f"{LIMB_WORDS[k]} {v:.2f}" for k, v in f["limb_speed_mps"].items())
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
        "- mean limb speed relative to the body (m/s): " + limbs,
        f"- repeated cycles of the most active limb (rough estimate): {f['repetitions_est']}",
    ]
    return "\n".join(lines)


def _travels(f: dict) -> bool:
    """Does the pelvis really go somewhere (or round a long curve)?"""
    return f["net_displacement_m"] >= 0.5 or (f["path_length_m"] >= 2.0 and abs(f["heading_change_deg"]) >= 90)


# ---------------------------------------------------------------------------- reasoner
class TemplateReasoner:
    """Deterministic short reasoning from the caption and the measured facts.

    Sentences are picked from a few phrasings with the record's RNG; optional sentences are
    dropped from the end while the text is longer than ``max_words``. Without facts the duration
    comes from the token count (``unit_length`` frames per token at ``fps``).
    """

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
               caption_index: int, variant: str = "") -> str:
        """The record's text; a non-empty ``variant`` picks the phrasings with another RNG stream."""
        rng = record_rng(self.seed, task, item_id, caption_index, variant)
        if task == "t2m":
            return self.t2m(caption, facts, self.duration(facts, motion_tokens), rng)
        if task == "m2t":
            return self.m2t(caption, facts, self.duration(facts, motion_tokens), rng)
        raise ValueError(f"unknown task {task!r}")

    # -- t2m: a plan
    def t2m(self, caption: str, f: Optional[dict], dur: float, rng: random.Random) -> str:
        acts = [c for c in parse_caption(caption)["clauses"] if c["actions"]]
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
                deg, side = rounded_degrees(h), turn_side(h)
                full = " (a full circle)" if deg >= 330 else ""
                S.append(rng.choice([f"The body should turn about {deg} degrees to the {side}{full}.",
                                     f"Rotate roughly {deg} degrees toward the {side}{full}.",
                                     f"Heading changes by about {deg} degrees, turning {side}{full}."]))
            path, net = f["path_length_m"], f["net_displacement_m"]
            if _travels(f):
                S.append(rng.choice([f"Cover about {metres(path)} at roughly {f['mean_speed_mps']:.1f} m/s.",
                                     f"Travel about {metres(path)} in total.",
                                     f"The pelvis should move about {metres(path)}, ending {metres(net)} from the start."]))
            elif path >= 1.0:
                S.append(rng.choice([f"Stay near the start ({metres(net)} net) while the hips shift around.",
                                     f"The hips move about but end only {metres(net)} from the start."]))
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
                S.append(rng.choice([f"Both feet leave the ground {times_phrase(n)}.",
                                     f"Include {n} airborne phase{'s' if n > 1 else ''}."]))
            if f["crouched"]:
                depth = metres(f["crouch_depth_m"])
                S.append(rng.choice([f"Lower the hips by about {depth}.",
                                     f"Drop the pelvis about {depth} below standing height."]))
        S.append(rng.choice([f"Length: about {dur:.1f} seconds.", f"It should take roughly {dur:.1f} s.",
                             f"Aim for about {dur:.1f} seconds of motion.", f"Duration around {dur:.1f} s."]))
        tail = rng.choice(["Start and end in a relaxed standing pose.", "Keep the movement smooth and natural.",
                           "Keep the transitions smooth.", ""])
        if tail:
            S.append(tail)
            opt.add(len(S) - 1)
        return fit_words(S, opt, self.max_words)

    # -- m2t: observations, then a conclusion
    def m2t(self, caption: str, f: Optional[dict], dur: float, rng: random.Random) -> str:
        acts = [c for c in parse_caption(caption)["clauses"] if c["actions"]]
        S, opt = [], set()
        S.append(rng.choice([f"The motion lasts about {dur:.1f} s.", f"Duration: about {dur:.1f} seconds.",
                             f"I observe a {dur:.1f}-second clip."]))
        if f:
            path, net = f["path_length_m"], f["net_displacement_m"]
            if _travels(f):
                where = ""
                if net >= 0.3 and net >= 0.5 * path:
                    fw, lf = f["net_forward_m"], f["net_left_m"]
                    if abs(fw) >= abs(lf):
                        where = ", mostly forward" if fw > 0 else ", mostly backward"
                    else:
                        where = ", mostly to the left" if lf > 0 else ", mostly to the right"
                S.append(rng.choice([f"The pelvis travels {metres(path)} ({metres(net)} net{where}) at about "
                                     f"{f['mean_speed_mps']:.1f} m/s.",
                                     f"It covers {metres(path)}{where}, ending {metres(net)} from the start, with a "
                                     f"mean speed of {f['mean_speed_mps']:.1f} m/s and a peak of "
                                     f"{f['max_speed_mps']:.1f} m/s."]))
            elif path >= 1.0:
                S.append(rng.choice([f"The hips move around ({metres(path)} of path) but end only {metres(net)} "
                                     "from the start.",
                                     f"It stays near the start ({metres(net)} net) although the pelvis shifts "
                                     f"{metres(path)}."]))
            else:
                S.append(rng.choice(["The body stays roughly in place.",
                                     f"There is little travel ({metres(path)}).", "The feet stay near one spot."]))
            h = f["heading_change_deg"]
            if abs(h) >= 30:
                deg, side = rounded_degrees(h), turn_side(h)
                S.append(rng.choice([f"The body turns about {deg} degrees to the {side}.",
                                     f"Heading changes by about {deg} degrees, a {side} turn.",
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
                S.append(rng.choice([f"Both feet leave the ground {times_phrase(n)}, up to {f['max_air_height_m']:.2f} m.",
                                     f"There {'is one airborne phase' if n == 1 else f'are {n} airborne phases'}."]))
            elif f["crouched"]:
                S.append(rng.choice([f"The hips drop about {metres(f['crouch_depth_m'])} below standing height.",
                                     f"The pelvis lowers to {f['root_height_min_m']:.2f} m."]))
            else:
                contact = f"{100 * f['contact_ratio']:.0f}%"
                S.append(rng.choice([f"The feet are planted {contact} of the time.",
                                     f"Foot contact: {contact} of the frames."]))
                opt.add(len(S) - 1)
            if f["repetitions_est"] >= 2 and any(c["count"] for c in acts):
                S.append(f"The main movement repeats roughly {times_phrase(f['repetitions_est'])}.")
                opt.add(len(S) - 1)
        if acts:
            label = ", then ".join(clause_phrase(c) for c in acts[:3])
            S.append(rng.choice([f"So the person is {label}.", f"This indicates {label}.",
                                 f"Conclusion: {label}."]))
        else:
            S.append(rng.choice(["These observations fit the description.", "That pattern matches the caption."]))
        return fit_words(S, opt, self.max_words)
