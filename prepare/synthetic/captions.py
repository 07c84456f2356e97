"""Caption templates with part-of-speech tags for the synthetic dataset.

Templates are written as ``surface/POS`` or ``surface/POS:lemma`` words. The HumanML3D text
line is ``caption#tokens#start#end`` where tokens are ``word/POS`` with the lemma for NOUN and
VERB (except "left") and the lower-cased surface otherwise, alphabetic tokens only
(docs/evaluation.md §1.2). Tags follow spaCy's universal POS tags as the real
HumanML3D texts use them (possessives are DET, as in spaCy 2).
"""
from __future__ import annotations

import re


SUBJECTS = [
    "a/DET person/NOUN", "a/DET man/NOUN", "a/DET woman/NOUN", "someone/PRON", "the/DET person/NOUN",
    "a/DET figure/NOUN", "the/DET man/NOUN", "a/DET human/NOUN",
]
POSSESSIVE = {"a/DET woman/NOUN": "her/DET"}

MIRROR_WORDS = {"left": "right", "right": "left", "clockwise": "counterclockwise",
                "counterclockwise": "clockwise"}


def _times(n):
    if n == 1:
        return ["once/ADV"]
    if n == 2:
        return ["twice/ADV", "two/NUM times/NOUN:time"]
    word = {3: "three", 4: "four", 5: "five", 6: "six", 7: "seven"}[n]
    return [f"{word}/NUM times/NOUN:time"]


def _speed(speed):
    return {"slow": ["slowly/ADV", "at/ADP a/DET slow/ADJ pace/NOUN"],
            "fast": ["quickly/ADV", "fast/ADV"], "normal": [""]}[speed]


def predicates(facts, rng, poss="his/DET"):
    """Several predicate variants (verb phrases) describing the action in ``facts``."""
    a = facts["action"]
    side = facts.get("side")
    pick = lambda xs: xs[int(rng.integers(len(xs)))]  # noqa: E731
    if a == "walk":
        sp = pick(_speed(facts["speed"]))
        if facts["backward"]:
            return [f"walks/VERB:walk backwards/ADV {sp}", f"steps/VERB:step backward/ADV {sp}",
                    f"walks/VERB:walk back/ADV {sp}", "is/AUX walking/VERB:walk backward/ADV"]
        if facts["path"] == "circle":
            rot = facts["rotation"]
            return [f"walks/VERB:walk in/ADP a/DET circle/NOUN {sp}",
                    f"walks/VERB:walk {rot}/ADV in/ADP a/DET circle/NOUN",
                    f"walks/VERB:walk around/ADP in/ADP a/DET {rot}/ADJ circle/NOUN",
                    f"walks/VERB:walk in/ADP a/DET circle/NOUN turning/VERB:turn to/ADP the/DET {facts['turn']}/NOUN"]
        if facts["path"] == "curve":
            t = facts["turn"]
            return [f"walks/VERB:walk forward/ADV and/CCONJ curves/VERB:curve to/ADP the/DET {t}/NOUN",
                    f"walks/VERB:walk {sp} while/SCONJ turning/VERB:turn {t}/ADV",
                    f"walks/VERB:walk in/ADP a/DET curve/NOUN to/ADP the/DET {t}/NOUN",
                    f"walks/VERB:walk forward/ADV veering/VERB:veer {t}/ADV"]
        return [f"walks/VERB:walk forward/ADV {sp}", f"walks/VERB:walk straight/ADV ahead/ADV {sp}",
                "strolls/VERB:stroll forward/ADV", f"walks/VERB:walk {sp} in/ADP a/DET straight/ADJ line/NOUN",
                f"is/AUX walking/VERB:walk forward/ADV {sp}"]
    if a == "run":
        sp = pick(_speed(facts["speed"]))
        if facts["path"] == "circle":
            rot = facts["rotation"]
            return ["runs/VERB:run in/ADP a/DET circle/NOUN", f"jogs/VERB:jog {rot}/ADV in/ADP a/DET circle/NOUN",
                    f"runs/VERB:run around/ADP in/ADP a/DET {rot}/ADJ circle/NOUN"]
        return [f"runs/VERB:run forward/ADV {sp}", "jogs/VERB:jog forward/ADV", "runs/VERB:run straight/ADV ahead/ADV",
                f"is/AUX running/VERB:run forward/ADV {sp}"]
    if a == "side_step":
        t = pick(_times(facts["times"])) if facts["times"] <= 3 else ""
        return [f"steps/VERB:step to/ADP the/DET {side}/NOUN", f"side/NOUN steps/VERB:step to/ADP the/DET {side}/NOUN {t}",
                f"moves/VERB:move sideways/ADV to/ADP {poss} {side}/NOUN", f"shuffles/VERB:shuffle {side}/ADV"]
    if a == "turn":
        ang = facts["angle"]
        if ang == 180:
            return [f"turns/VERB:turn around/ADV to/ADP the/DET {side}/NOUN", "turns/VERB:turn around/ADV",
                    f"turns/VERB:turn {side}/ADV to/ADP face/VERB:face the/DET other/ADJ direction/NOUN"]
        if ang == 360:
            return [f"spins/VERB:spin around/ADV to/ADP the/DET {side}/NOUN", "turns/VERB:turn in/ADP a/DET full/ADJ circle/NOUN",
                    f"turns/VERB:turn all/DET the/DET way/NOUN around/ADV to/ADP the/DET {side}/NOUN"]
        return [f"turns/VERB:turn to/ADP the/DET {side}/NOUN", f"turns/VERB:turn {side}/ADV",
                f"rotates/VERB:rotate {poss} body/NOUN to/ADP the/DET {side}/NOUN"]
    if a == "crawl":
        return ["crawls/VERB:crawl forward/ADV on/ADP hands/NOUN:hand and/CCONJ knees/NOUN:knee",
                "gets/VERB:get down/ADV and/CCONJ crawls/VERB:crawl forward/ADV",
                "crawls/VERB:crawl on/ADP the/DET floor/NOUN", "is/AUX crawling/VERB:crawl on/ADP all/DET fours/NOUN:four"]
    if a == "jump":
        t = pick(_times(facts["times"]))
        if facts["forward"]:
            return [f"jumps/VERB:jump forward/ADV {t}", f"leaps/VERB:leap forward/ADV {t}",
                    f"hops/VERB:hop forward/ADV with/ADP both/DET feet/NOUN:foot {t}"]
        return [f"jumps/VERB:jump up/ADV {t}", f"jumps/VERB:jump in/ADP place/NOUN {t}",
                f"jumps/VERB:jump up/ADV and/CCONJ down/ADV {t}", f"leaps/VERB:leap into/ADP the/DET air/NOUN {t}"]
    if a == "jumping_jacks":
        num = _times(facts["times"])[-1].split()[0]
        return ["does/VERB:do jumping/VERB:jump jacks/NOUN:jack", f"does/VERB:do {num} jumping/VERB:jump jacks/NOUN:jack",
                "jumps/VERB:jump while/SCONJ spreading/VERB:spread arms/NOUN:arm and/CCONJ legs/NOUN:leg",
                "performs/VERB:perform jumping/VERB:jump jacks/NOUN:jack"]
    if a == "squat":
        t = pick(_times(facts["times"]))
        return [f"squats/VERB:squat down/ADV {t}", "does/VERB:do a/DET squat/NOUN" if facts["times"] == 1 else "does/VERB:do squats/NOUN:squat",
                f"bends/VERB:bend {poss} knees/NOUN:knee and/CCONJ squats/VERB:squat {t}", f"crouches/VERB:crouch down/ADV and/CCONJ stands/VERB:stand up/ADV {t}"]
    if a == "sit_down":
        return ["sits/VERB:sit down/ADV", "sits/VERB:sit down/ADV on/ADP a/DET chair/NOUN",
                "lowers/VERB:lower into/ADP a/DET seated/ADJ position/NOUN", "takes/VERB:take a/DET seat/NOUN"]
    if a == "stand_up":
        return ["stands/VERB:stand up/ADV from/ADP a/DET chair/NOUN", "gets/VERB:get up/ADV from/ADP sitting/VERB:sit",
                "rises/VERB:rise from/ADP a/DET seated/ADJ position/NOUN", "stands/VERB:stand up/ADV"]
    if a == "bow":
        t = pick(_times(facts["times"]))
        return [f"bows/VERB:bow {t}", f"bends/VERB:bend forward/ADV at/ADP the/DET waist/NOUN {t}",
                "takes/VERB:take a/DET bow/NOUN" if facts["times"] == 1 else f"bows/VERB:bow down/ADV {t}",
                "leans/VERB:lean forward/ADV and/CCONJ back/ADV up/ADV"]
    if a == "lunge":
        t = pick(_times(facts["times"]))
        return [f"lunges/VERB:lunge forward/ADV with/ADP the/DET {side}/ADJ leg/NOUN",
                f"does/VERB:do a/DET lunge/NOUN with/ADP {poss} {side}/ADJ leg/NOUN",
                f"steps/VERB:step forward/ADV into/ADP a/DET lunge/NOUN on/ADP the/DET {side}/ADJ leg/NOUN {t}"]
    if a == "hop":
        t = pick(_times(facts["times"]))
        return [f"hops/VERB:hop on/ADP {poss} {side}/ADJ foot/NOUN {t}", "hops/VERB:hop on/ADP one/NUM leg/NOUN",
                f"jumps/VERB:jump on/ADP the/DET {side}/ADJ leg/NOUN {t}", f"stands/VERB:stand on/ADP the/DET {side}/ADJ leg/NOUN and/CCONJ hops/VERB:hop"]
    if a == "dance":
        return ["dances/VERB:dance", "dances/VERB:dance happily/ADV swaying/VERB:sway side/NOUN to/ADP side/NOUN",
                "sways/VERB:sway and/CCONJ waves/VERB:wave arms/NOUN:arm while/SCONJ dancing/VERB:dance",
                "is/AUX dancing/VERB:dance in/ADP place/NOUN"]
    if a == "march":
        return ["marches/VERB:march in/ADP place/NOUN", "marches/VERB:march lifting/VERB:lift knees/NOUN:knee high/ADV",
                "steps/VERB:step in/ADP place/NOUN raising/VERB:raise knees/NOUN:knee", "jogs/VERB:jog in/ADP place/NOUN"]
    if a == "kick":
        t = pick(_times(facts["times"]))
        h = "high/ADV" if facts["high"] else ""
        return [f"kicks/VERB:kick with/ADP {poss} {side}/ADJ leg/NOUN {t}", f"kicks/VERB:kick {h} with/ADP the/DET {side}/ADJ foot/NOUN",
                f"does/VERB:do a/DET {side}/ADJ kick/NOUN" if facts["times"] == 1 else f"kicks/VERB:kick {side}/ADJ leg/NOUN forward/ADV {t}",
                f"lifts/VERB:lift {poss} {side}/ADJ leg/NOUN and/CCONJ kicks/VERB:kick forward/ADV {t}"]
    if a == "wave":
        if side == "both":
            return ["waves/VERB:wave both/DET hands/NOUN:hand", "waves/VERB:wave with/ADP both/DET arms/NOUN:arm above/ADP the/DET head/NOUN",
                    "raises/VERB:raise both/DET arms/NOUN:arm and/CCONJ waves/VERB:wave"]
        return [f"waves/VERB:wave with/ADP {poss} {side}/ADJ hand/NOUN", f"raises/VERB:raise the/DET {side}/ADJ hand/NOUN and/CCONJ waves/VERB:wave",
                f"waves/VERB:wave hello/INTJ with/ADP the/DET {side}/ADJ arm/NOUN", f"waves/VERB:wave {poss} {side}/ADJ hand/NOUN"]
    if a == "punch":
        t = pick(_times(facts["times"]))
        if side == "both":
            return ["punches/VERB:punch with/ADP both/DET fists/NOUN:fist", "throws/VERB:throw punches/NOUN:punch",
                    f"boxes/VERB:box punching/VERB:punch forward/ADV {t}", "punches/VERB:punch alternating/VERB:alternate hands/NOUN:hand"]
        return [f"punches/VERB:punch with/ADP {poss} {side}/ADJ hand/NOUN {t}", f"punches/VERB:punch forward/ADV with/ADP the/DET {side}/ADJ arm/NOUN",
                f"throws/VERB:throw {side}/ADJ punches/NOUN:punch {t}"]
    if a == "raise_arms":
        if side == "both":
            return ["raises/VERB:raise both/DET arms/NOUN:arm above/ADP the/DET head/NOUN", "lifts/VERB:lift both/DET arms/NOUN:arm up/ADV and/CCONJ lowers/VERB:lower them/PRON",
                    "puts/VERB:put both/DET hands/NOUN:hand up/ADV in/ADP the/DET air/NOUN", "raises/VERB:raise arms/NOUN:arm overhead/ADV"]
        return [f"raises/VERB:raise {poss} {side}/ADJ arm/NOUN", f"lifts/VERB:lift the/DET {side}/ADJ arm/NOUN above/ADP the/DET head/NOUN",
                f"puts/VERB:put {poss} {side}/ADJ hand/NOUN up/ADV", f"raises/VERB:raise the/DET {side}/ADJ hand/NOUN up/ADV high/ADV"]
    if a == "clap":
        t = pick(_times(facts["times"])) if facts["times"] <= 4 else ""
        return [f"claps/VERB:clap {poss} hands/NOUN:hand {t}", f"claps/VERB:clap {t}", "applauds/VERB:applaud",
                "claps/VERB:clap hands/NOUN:hand in/ADP front/NOUN of/ADP the/DET chest/NOUN"]
    if a == "throw":
        return [f"throws/VERB:throw a/DET ball/NOUN with/ADP the/DET {side}/ADJ hand/NOUN", f"throws/VERB:throw something/PRON with/ADP {poss} {side}/ADJ arm/NOUN",
                f"winds/VERB:wind up/ADV and/CCONJ throws/VERB:throw with/ADP the/DET {side}/ADJ hand/NOUN", f"pitches/VERB:pitch a/DET ball/NOUN {side}/ADJ handed/ADJ"]
    if a == "stretch":
        return ["stretches/VERB:stretch arms/NOUN:arm out/ADV to/ADP the/DET sides/NOUN:side", "holds/VERB:hold both/DET arms/NOUN:arm out/ADV to/ADP the/DET side/NOUN",
                "spreads/VERB:spread arms/NOUN:arm wide/ADV", "raises/VERB:raise arms/NOUN:arm into/ADP a/DET t/NOUN pose/NOUN"]
    raise KeyError(f"no caption templates for action {a!r}")


def _clean(s):
    return " ".join(w for w in s.split() if w)


def realise(words: str):
    """``surface/POS[:lemma]`` words -> (caption text, list of 'word/POS' tokens)."""
    surfaces, tokens = [], []
    for w in words.split():
        surface, _, tag = w.rpartition("/")
        pos, _, lemma = tag.partition(":")
        surfaces.append(surface)
        if not surface.isalpha():
            continue
        word = (lemma or surface).lower() if pos in ("NOUN", "VERB") and surface.lower() != "left" else surface.lower()
        tokens.append(f"{word}/{pos}")
    return " ".join(surfaces) + ".", tokens


def describe(facts_list, rng, n_captions):
    """Captions for a motion made of one or two actions.

    Returns (whole-clip captions, per-segment captions), each a list of (text, tokens).
    """
    order = rng.permutation(len(SUBJECTS))
    whole, segments = [], []
    used = set()
    tries = 0
    starts = [int(rng.integers(16)) for _ in facts_list]
    while len(whole) < n_captions and tries < 50:
        tries += 1
        subj = SUBJECTS[order[len(whole) % len(SUBJECTS)]]
        poss = POSSESSIVE.get(subj, "his/DET")
        preds = [predicates(f, rng, poss) for f in facts_list]
        # cycle through the paraphrases in a random order so captions of one motion differ
        chosen = [p[(first + len(whole) + tries) % len(p)] for p, first in zip(preds, starts)]
        if len(chosen) == 1:
            words = f"{subj} {chosen[0]}"
        else:
            joiner = ["then/ADV", "and/CCONJ then/ADV", ",/PUNCT then/ADV", ",/PUNCT and/CCONJ then/ADV"][int(rng.integers(4))]
            words = f"{subj} {chosen[0]} {joiner} {chosen[1]}"
        text, tokens = realise(_clean(words))
        if text in used:
            continue
        used.add(text)
        whole.append((text.replace(" ,", ","), tokens))
    if len(facts_list) > 1:
        for f in facts_list:
            subj = SUBJECTS[int(rng.integers(len(SUBJECTS)))]
            preds = predicates(f, rng, POSSESSIVE.get(subj, "his/DET"))
            segments.append(realise(_clean(f"{subj} {preds[int(rng.integers(len(preds)))]}")))
    return whole, segments


_MIRROR_RE = re.compile(r"\b(" + "|".join(sorted(MIRROR_WORDS, key=len, reverse=True)) + r")\b", re.IGNORECASE)


def mirror_text(text: str) -> str:
    """Swap left/right (and clockwise/counterclockwise) in a caption or a whole text line."""
    def swap(m):
        word = m.group(0)
        rep = MIRROR_WORDS[word.lower()]
        return rep.capitalize() if word[0].isupper() else rep

    return _MIRROR_RE.sub(swap, text)
