"""The two ways the trainer and the decoders call a :class:`CompositeReward`.

* :class:`GRPOReward` — the GRPO reward callback: builds the reward batch of B prompts × G samples
  (t2m: the prompt caption; m2t: the reference caption and the input codes) and returns the raw
  reward components; :func:`rl.grpo.combine_advantages` turns them into advantages.
* :class:`ComScorer` — Chain-of-Motion ranking (eval, demo, GRPO CoM rollouts): the 'com' composite
  on the model inputs only (t2m: the caption; m2t: the input motion codes), never a reference.
  :func:`build_com_scorer` picks its evaluator from the flags and names it.
"""
from __future__ import annotations

from pathlib import Path


class GRPOReward:
    def __init__(self, composite):
        self.composite = composite
        self.last_stats: dict = {}

    def __call__(self, task, prompts, outputs) -> dict:
        G = len(outputs) // max(len(prompts), 1)
        caps, codes = [], []
        for rec in prompts:
            caps += [rec["caption"] if task == "t2m" else (rec.get("answer") or rec["caption"])] * G
            codes += [rec["motion_tokens"] if task == "m2t" else None] * G
        batch = self.composite.make_batch(task, [o["text"] for o in outputs], captions=caps,
                                          input_codes=codes if task == "m2t" else None)
        score = self.composite.score(batch)
        self.last_stats = score.stats
        return score.components


class ComScorer:
    def __init__(self, composite):
        self.composite = composite

    def __call__(self, task, inputs, outputs):
        batch = self.composite.make_batch(task, [o["text"] for o in outputs],
                                          captions=list(inputs) if task == "t2m" else None,
                                          input_codes=list(inputs) if task == "m2t" else None)
        return self.composite.score(batch).total  # ranking uses the raw weighted total


def build_com_scorer(args, task: str, vq, device, fallback_evaluator: str | None = None,
                     decoder=None, use_reasoning: bool = True) -> tuple[ComScorer, str]:
    """The CoM scorer and the evaluator it ranks with: ``--com-evaluator-dir`` if given, else
    ``--reward-dataset-opt-path`` when it exists, else ``fallback_evaluator`` (eval_mllm.py: the
    metric's own evaluator). A missing evaluator is an error naming the flags (``--reward-align-weight
    0`` ranks without it). ``use_reasoning``: whether the model writes reasoning (eval and demo assume it
    does; training passes ``--use-reasoning``)."""
    from rewards.factory import build_rewards
    com_dir = getattr(args, "com_evaluator_dir", None)
    if com_dir:
        args.reward_dataset_opt_path = com_dir
    elif fallback_evaluator and not Path(args.reward_dataset_opt_path).exists():
        args.reward_dataset_opt_path = fallback_evaluator
    if fallback_evaluator and not Path(args.reward_glove_path).exists() and getattr(args, "glove_dir", None):
        args.reward_glove_path = args.glove_dir
    composite = build_rewards(args, task, vq=vq, device=device, purpose="com", decoder=decoder,
                              use_reasoning=use_reasoning)
    uses_evaluator = "align" in composite.names
    return ComScorer(composite), (str(args.reward_dataset_opt_path) if uses_evaluator else "no evaluator (align off)")
