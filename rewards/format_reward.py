"""Format reward (docs/method.md §7.3): is the generation a well-formed answer? Values in [-1, 1].

The generated text is what follows the prompt (which ends with ``<think>``), i.e.
``reasoning</think><answer>ANSWER</answer>`` (the EOS is not part of the decoded text).

**t2m** (ANSWER = ``<Motion><Motion_i>…</Motion>``):

* -1.0 when no motion token in ``[0, nb_code)`` can be read from the answer (empty output, text
  only, every code out of range, motion tokens only inside the reasoning);
* otherwise 1.0 minus the penalties below, floored at -0.5, so every output that yields a
  decodable motion ranks above every output that does not:

  ====  =============================================================================
  0.2   per structural tag missing or out of order: ``</think>``, ``<answer>``,
        ``</answer>``, ``<Motion>``, ``</Motion>`` (``<Motion>…</Motion>`` must be inside
        the answer)
  0.5   any code outside ``[0, nb_code)`` (such codes are dropped before decoding)
  0.5   more than ``max_motion_tokens`` codes (only the first ``max_motion_tokens`` are
        decoded; HumanML3D clips have at most 196 frames = 49 codes)
  0.3   reasoning expected (``--use-reasoning``) but empty
  0.1   other text inside ``<answer>`` besides the motion block (e.g. a caption)
  0.1   non-whitespace text after ``</answer>``
  ====  =============================================================================

**m2t** (ANSWER = a caption): -1.0 for an empty caption (after removing tags and motion tokens);
otherwise 1.0 minus: 0.2 per missing/misordered tag among ``</think>``, ``<answer>``,
``</answer>``; 0.3 reasoning expected but empty; 0.3 motion tokens or ``<Motion>`` tags inside the
answer; 0.2 caption longer than ``max_caption_words`` (60; HumanML3D captions average ~12
words); 0.1 text after ``</answer>``; floored at -0.5.

Components: ``well_formed`` (1 when no penalty applied), ``num_codes`` (decodable codes),
``tag_errors``. Never raises on any text.
"""
from __future__ import annotations

import re
from typing import Optional

import numpy as np

from models.prompts import ANSWER_END, ANSWER_START, MOTION_END, MOTION_START, THINK_END

from .base import Reward, RewardBatch, RewardOutput

_CODE_RE = re.compile(r"<Motion_(-?\d+)>")
PENALTY = {"tag": 0.2, "out_of_range": 0.5, "too_long": 0.5, "no_reasoning": 0.3, "extra_text": 0.1,
           "trailing": 0.1, "motion_in_caption": 0.3, "caption_too_long": 0.2}
FLOOR_WITH_ANSWER = -0.5


def _find(text: str, tag: str, start: int = 0) -> int:
    return text.find(tag, start) if start >= 0 else -1


def _answer_region(text: str):
    """(end of </think>, start of <answer>, start of </answer>, the answer text): inside the answer
    tags, else after </think>, else the whole text (-1 for a missing tag)."""
    t_end = _find(text, THINK_END)
    a0 = _find(text, ANSWER_START, t_end + len(THINK_END)) if t_end >= 0 else _find(text, ANSWER_START)
    a1 = _find(text, ANSWER_END, a0 + len(ANSWER_START)) if a0 >= 0 else -1
    if a0 >= 0:
        ans = text[a0 + len(ANSWER_START): a1 if a1 >= 0 else len(text)]
    else:
        ans = text[t_end + len(THINK_END):] if t_end >= 0 else text
    return t_end, a0, a1, ans


def check_t2m(text: str, nb_code: Optional[int], max_motion_tokens: Optional[int],
              reasoning_expected: bool) -> dict:
    """Rule-by-rule verdict for one t2m generation (module doc)."""
    text = text or ""
    t_end, a0, a1, ans = _answer_region(text)
    m0 = ans.find(MOTION_START)
    m1 = ans.find(MOTION_END, m0 + len(MOTION_START)) if m0 >= 0 else -1
    region = ans[m0 + len(MOTION_START): m1 if m1 >= 0 else len(ans)] if m0 >= 0 else ans
    raw = [int(c) for c in _CODE_RE.findall(region)]
    in_range = [c for c in raw if c >= 0 and (nb_code is None or c < nb_code)]
    missing_tags = sum([t_end < 0, a0 < 0, a1 < 0, m0 < 0, m1 < 0])
    reasoning = text[:t_end].strip() if t_end >= 0 else ""
    outside = ans[:m0] + ans[m1 + len(MOTION_END):] if (m0 >= 0 and m1 >= 0) else ""
    extra = bool(_CODE_RE.sub("", outside).strip())
    trailing = bool(text[a1 + len(ANSWER_END):].strip()) if a1 >= 0 else False
    pen = {"tag": PENALTY["tag"] * missing_tags,
           "out_of_range": PENALTY["out_of_range"] * (len(in_range) < len(raw)),
           "too_long": PENALTY["too_long"] * bool(max_motion_tokens and len(in_range) > max_motion_tokens),
           "no_reasoning": PENALTY["no_reasoning"] * (reasoning_expected and not reasoning),
           "extra_text": PENALTY["extra_text"] * extra,
           "trailing": PENALTY["trailing"] * trailing}
    if not in_range:
        value = -1.0
    else:
        value = max(FLOOR_WITH_ANSWER, 1.0 - sum(pen.values()))
    return {"value": value, "num_codes": len(in_range), "num_raw_codes": len(raw), "tag_errors": missing_tags,
            "penalties": {k: v for k, v in pen.items() if v}}


def check_m2t(text: str, reasoning_expected: bool, max_caption_words: int = 60) -> dict:
    """Rule-by-rule verdict for one m2t generation (module doc)."""
    text = text or ""
    t_end, a0, a1, ans = _answer_region(text)
    has_motion = bool(_CODE_RE.search(ans)) or MOTION_START in ans or MOTION_END in ans
    caption = _CODE_RE.sub(" ", ans)
    for tag in (MOTION_START, MOTION_END, ANSWER_START, ANSWER_END, THINK_END, "<think>"):
        caption = caption.replace(tag, " ")
    caption = " ".join(caption.split())
    missing_tags = sum([t_end < 0, a0 < 0, a1 < 0])
    reasoning = text[:t_end].strip() if t_end >= 0 else ""
    trailing = bool(text[a1 + len(ANSWER_END):].strip()) if a1 >= 0 else False
    pen = {"tag": PENALTY["tag"] * missing_tags,
           "no_reasoning": PENALTY["no_reasoning"] * (reasoning_expected and not reasoning),
           "motion_in_caption": PENALTY["motion_in_caption"] * has_motion,
           "caption_too_long": PENALTY["caption_too_long"] * (len(caption.split()) > max_caption_words),
           "trailing": PENALTY["trailing"] * trailing}
    value = -1.0 if not caption else max(FLOOR_WITH_ANSWER, 1.0 - sum(pen.values()))
    return {"value": value, "caption_words": len(caption.split()), "tag_errors": missing_tags,
            "penalties": {k: v for k, v in pen.items() if v}}


class FormatReward(Reward):
    name = "format"
    tasks = ("t2m", "m2t")

    def __init__(self, nb_code: Optional[int] = None, max_motion_tokens: Optional[int] = 49,
                 reasoning_expected: Optional[bool] = None, max_caption_words: int = 60):
        self.nb_code = nb_code
        self.max_motion_tokens = max_motion_tokens
        self.reasoning_expected = reasoning_expected  # None: take it from the batch
        self.max_caption_words = max_caption_words

    def config(self) -> dict:
        return {**super().config(), "nb_code": self.nb_code, "max_motion_tokens": self.max_motion_tokens,
                "reasoning_expected": self.reasoning_expected, "max_caption_words": self.max_caption_words,
                "penalties": dict(PENALTY)}

    def score(self, batch: RewardBatch) -> RewardOutput:
        N = len(batch)
        nb = self.nb_code if self.nb_code is not None else batch.nb_code
        expect = batch.reasoning_expected if self.reasoning_expected is None else self.reasoning_expected
        values, well, n_codes, tag_err = np.zeros(N), np.zeros(N), np.zeros(N), np.zeros(N)
        counts: dict = {}
        for i, (task, text) in enumerate(zip(batch.tasks, batch.texts)):
            if task == "t2m":
                r = check_t2m(text, nb, self.max_motion_tokens, expect)
                n_codes[i] = r["num_codes"]
            else:
                r = check_m2t(text, expect, self.max_caption_words)
            values[i] = r["value"]
            well[i] = float(r["value"] == 1.0)
            tag_err[i] = r["tag_errors"]
            for k in r["penalties"]:
                counts[k] = counts.get(k, 0) + 1
            if r["value"] == -1.0:
                counts["no_answer"] = counts.get("no_answer", 0) + 1
        return RewardOutput(values, {"well_formed": well, "num_codes": n_codes, "tag_errors": tag_err},
                            {"violations": counts, "reasoning_expected": expect})
