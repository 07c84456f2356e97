"""The one prompt/target format of MotionLLM, shared by training and inference (docs/method.md §4).

A sequence is built from segments, each tokenised on its own and tagged with a region id:
0 = prompt (masked out of the loss), 1 = reasoning and tags, 2 = answer (motion tokens or
caption, closing tags, EOS). Because the generation prefix is produced by the same
:func:`encode_prompt`, the prompt seen at training time is byte-for-byte the prefix used at
generation time.

Prompt formats (``--prompt-format``, recorded in the checkpoint's ``MLLMConfig.prompt_format``):

* ``instruction`` (the default, the original's): ``### Instruction: … ### Input: … ### Response:\n<think>``
  (:func:`prompt_text`), with the tokenizer's BOS in front only where it really uses one.
* ``chat``: the backbone tokenizer's chat template with one user turn (the instruction, a blank line, the
  input: :func:`user_text`) rendered with ``add_generation_prompt=True``, then ``<think>``
  (:func:`chat_prompt_text`); no BOS is added (a template writes its own). The assistant turn is the same
  target as in the instruction format and ends with the tokenizer's EOS (with ChatML templates, such as
  SmolLM2's and Qwen's, EOS is ``<|im_end|>``, the template's own end of turn).
* ``auto``: ``chat`` when the tokenizer has a chat template, else ``instruction``
  (:func:`resolve_prompt_format`; a model records the resolved choice).

In both formats the prompt ends with ``<think>`` and only the tokens after it are in the loss. Callers that
do not name a format get the one a :class:`models.mllm.MotionLLM` recorded on its tokenizer
(:data:`TOKENIZER_FORMAT_ATTR`), else ``instruction``: every prompt built with that tokenizer, in training,
generation or length bookkeeping, is then the same.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

MOTION_START, MOTION_END = "<Motion>", "</Motion>"
THINK_START, THINK_END = "<think>", "</think>"
ANSWER_START, ANSWER_END = "<answer>", "</answer>"
TAG_TOKENS = [MOTION_START, MOTION_END, THINK_START, THINK_END, ANSWER_START, ANSWER_END]

INSTRUCTIONS = {
    "t2m": "Generate reasoning and a motion that matches the following description.",
    "m2t": "Generate reasoning and a caption for the following motion.",
}
REFINE = "Refine the motion plan using this prior reasoning: "

REGION_PROMPT, REGION_REASONING, REGION_ANSWER = 0, 1, 2

PROMPT_FORMATS = ("instruction", "chat", "auto")
DEFAULT_PROMPT_FORMAT = "instruction"
# the attribute under which a MotionLLM records its (resolved) prompt format on its tokenizer
TOKENIZER_FORMAT_ATTR = "morl_prompt_format"


def motion_token(i: int) -> str:
    return f"<Motion_{int(i)}>"


def motion_token_list(nb_code: int) -> list[str]:
    return [motion_token(i) for i in range(nb_code)]


def motion_string(codes) -> str:
    return MOTION_START + "".join(motion_token(c) for c in codes) + MOTION_END


def _instruction_and_body(task: str, caption: str | None, motion_codes, plan: str | None) -> tuple[str, str]:
    if task not in INSTRUCTIONS:
        raise ValueError(f"unknown task {task!r}; expected 't2m' or 'm2t'")
    if task == "t2m":
        if caption is None:
            raise ValueError("a t2m prompt needs a caption")
        body = caption.strip()
    else:
        if motion_codes is None:
            raise ValueError("an m2t prompt needs motion codes")
        body = motion_string(motion_codes)
    instruction = INSTRUCTIONS[task]
    if plan:
        instruction += "\n" + REFINE + plan.strip()
    return instruction, body


def prompt_text(task: str, caption: str | None = None, motion_codes=None, plan: str | None = None) -> str:
    """The prompt of the ``instruction`` format, ending with the opening ``<think>`` tag."""
    instruction, body = _instruction_and_body(task, caption, motion_codes, plan)
    return f"### Instruction:\n{instruction}\n\n### Input:\n{body}\n\n### Response:\n{THINK_START}"


def user_text(task: str, caption: str | None = None, motion_codes=None, plan: str | None = None) -> str:
    """The user turn of the ``chat`` format: the instruction (with the plan to refine), a blank line, the input."""
    instruction, body = _instruction_and_body(task, caption, motion_codes, plan)
    return f"{instruction}\n\n{body}"


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def resolve_prompt_format(tokenizer, prompt_format: str | None) -> str:
    """``instruction`` or ``chat`` for ``prompt_format`` (None = ``instruction``; ``auto`` = ``chat`` when the
    tokenizer has a chat template). ``chat`` without a template is an error."""
    fmt = prompt_format or DEFAULT_PROMPT_FORMAT
    if fmt not in PROMPT_FORMATS:
        raise ValueError(f"unknown prompt format {fmt!r}; expected one of {', '.join(PROMPT_FORMATS)}")
    if fmt == "auto":
        return "chat" if has_chat_template(tokenizer) else "instruction"
    if fmt == "chat" and not has_chat_template(tokenizer):
        name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
        raise ValueError(f"prompt format 'chat' (--prompt-format, or the checkpoint's): the tokenizer of the backbone "
                         f"({name}) has no chat template; train with --prompt-format instruction (or auto, which falls "
                         "back to it), or load the checkpoint with the backbone it was trained on")
    return fmt


def chat_prompt_text(tokenizer, task: str, caption: str | None = None, motion_codes=None,
                     plan: str | None = None) -> str:
    """The prompt of the ``chat`` format: the chat template with one user turn, rendered with
    ``add_generation_prompt=True`` (the assistant header), then ``<think>``."""
    messages = [{"role": "user", "content": user_text(task, caption, motion_codes, plan)}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if not isinstance(text, str):
        raise TypeError(f"apply_chat_template(tokenize=False) returned {type(text).__name__}, not text")
    return text + THINK_START


def tokenizer_prompt_format(tokenizer) -> str:
    """The format recorded on ``tokenizer`` by a MotionLLM (:data:`TOKENIZER_FORMAT_ATTR`), else ``instruction``."""
    return getattr(tokenizer, TOKENIZER_FORMAT_ATTR, None) or DEFAULT_PROMPT_FORMAT


@dataclass
class Encoded:
    input_ids: list
    regions: list

    @property
    def prompt_len(self) -> int:
        return self.regions.count(REGION_PROMPT)


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"] if text else []


def encode_prompt(tokenizer, task, caption=None, motion_codes=None, plan=None,
                  prompt_format: str | None = None) -> list[int]:
    """Token ids of the prompt in ``prompt_format`` (None: :func:`tokenizer_prompt_format`)."""
    fmt = resolve_prompt_format(tokenizer, prompt_format or tokenizer_prompt_format(tokenizer))
    if fmt == "chat":  # the template writes its own BOS where the model has one
        return _ids(tokenizer, chat_prompt_text(tokenizer, task, caption, motion_codes, plan))
    ids = _ids(tokenizer, prompt_text(task, caption, motion_codes, plan))
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is not None and getattr(tokenizer, "add_bos_token", False):
        ids = [bos] + ids  # only for tokenizers that really use a BOS (Qwen has none)
    return ids


def encode_example(tokenizer, task: str, caption: str, motion_codes, reasoning: str = "",
                   answer: str | None = None, max_len: int | None = None, plan: str | None = None,
                   prompt_format: str | None = None) -> Encoded | None:
    """Prompt + target token ids with region ids; the prompt is :func:`encode_prompt`'s in ``prompt_format``.

    Over ``max_len`` the reasoning is truncated first; the answer is never cut. Returns ``None``
    when even prompt + answer do not fit (the caller counts such records).
    """
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no EOS token; set tokenizer.eos_token")
    prompt = encode_prompt(tokenizer, task, caption if task == "t2m" else None,
                           motion_codes if task == "m2t" else None, plan, prompt_format)
    reason = _ids(tokenizer, reasoning.strip()) if reasoning else []
    if task == "t2m":
        tags_mid = _ids(tokenizer, THINK_END + ANSWER_START)
        ans = _ids(tokenizer, motion_string(motion_codes) + ANSWER_END) + [eos]
    else:
        tags_mid = _ids(tokenizer, THINK_END + ANSWER_START)
        ans = _ids(tokenizer, (answer if answer is not None else caption).strip() + ANSWER_END) + [eos]
    fixed = len(prompt) + len(tags_mid) + len(ans)
    if max_len is not None:
        if fixed > max_len:
            return None
        reason = reason[: max(0, max_len - fixed)]
    ids = prompt + reason + tags_mid + ans
    regions = [REGION_PROMPT] * len(prompt) + [REGION_REASONING] * (len(reason) + len(tags_mid)) + \
        [REGION_ANSWER] * len(ans)
    return Encoded(ids, regions)


# ---------------------------------------------------------------------------- parsing
_MOTION_RE = re.compile(r"<Motion_(\d+)>")


@dataclass
class Parsed:
    reasoning: str
    answer: str
    motion_codes: list
    well_formed: bool
    has_answer: bool
    closed: bool = True      # the answer's closing tag is present
    stray_tags: bool = False  # tags (other than the motion block's) inside the answer


# why a generation is not a usable answer (``generation_status``; "ok" when it is), and what that means
FAILURE_KINDS = {"no_answer": "no <answer> in the output", "truncated": "cut off at the token limit (--max-new-tokens)",
                 "malformed": "tags missing or misplaced", "empty": "the answer is empty"}


def _strip_tags(text: str) -> tuple[str, bool]:
    stray = False
    for tag in (THINK_START, THINK_END, ANSWER_START, ANSWER_END):
        if tag in text:
            stray = True
            text = text.replace(tag, " ")
    return " ".join(text.split()), stray


def parse_output(text: str, nb_code: int | None = None) -> Parsed:
    """Parse generated text (the part after the prompt). Never raises.

    ``reasoning``: text before ``</think>``; ``answer``: text inside ``<answer>…</answer>`` (to the
    end when the closing tag is missing; the text after ``</think>`` when ``<answer>`` is missing;
    empty when both are missing — reasoning is never returned as the answer); ``motion_codes``: the
    ``<Motion_i>`` indices inside ``<Motion>…</Motion>`` of the answer, out-of-range codes dropped.
    ``well_formed`` says whether all tags were present and the answer holds no stray tags.
    """
    text = text or ""
    think_end = text.find(THINK_END)
    reasoning = text[:think_end] if think_end >= 0 else ""
    rest = text[think_end + len(THINK_END):] if think_end >= 0 else ""
    a0 = text.find(ANSWER_START, think_end + len(THINK_END) if think_end >= 0 else 0)
    has_answer = a0 >= 0
    if has_answer:
        answer = text[a0 + len(ANSWER_START):]
    else:
        answer = rest
    a1 = answer.find(ANSWER_END)
    closed = has_answer and a1 >= 0
    if a1 >= 0:
        answer = answer[:a1]
    m0, m1 = answer.find(MOTION_START), answer.find(MOTION_END)
    motion_region = answer[m0 + len(MOTION_START): m1 if m1 > m0 else None] if m0 >= 0 else answer
    codes = [int(c) for c in _MOTION_RE.findall(motion_region)]
    if nb_code is not None:
        codes = [c for c in codes if 0 <= c < nb_code]
    caption, stray = _strip_tags(_MOTION_RE.sub("", answer.replace(MOTION_START, "").replace(MOTION_END, "")))
    well = think_end >= 0 and has_answer and closed and not stray
    return Parsed(reasoning.strip(), caption, codes, well, has_answer, closed, stray)


def generation_status(task: str, parsed: Parsed, hit_token_limit: bool = False) -> str:
    """"ok", or why the generation is a failure (one of :data:`FAILURE_KINDS`): no ``<answer>``
    ("no_answer"; "truncated" when the token limit cut it off), an answer cut at the token limit
    ("truncated"), missing/stray tags ("malformed"), or no motion codes / caption ("empty")."""
    usable = bool(parsed.motion_codes) if task == "t2m" else bool(parsed.answer)
    if not parsed.has_answer or not parsed.closed:
        return "truncated" if hit_token_limit else ("no_answer" if not parsed.has_answer else "malformed")
    if not parsed.well_formed:
        return "malformed"
    return "ok" if usable else "empty"
