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


def build_com_scorer(args, task: str, vq, device, judge: str | None = None,
                     decoder=None, use_reasoning: bool = True) -> tuple[ComScorer, str]:
    """The CoM scorer and a description of the critic it ranks with: ``--com-evaluator-dir`` if given, else
    ``--reward-dataset-opt-path``. ``judge``: the evaluator that computes the metrics (eval_mllm.py's
    ``--evaluator-dir``; default ``--judge-evaluator-dir``); a critic that is the judge stops the run unless
    ``--allow-judge-as-critic`` (then, and only then, a missing critic falls back to the judge). A missing
    critic is an error naming the flags (``--reward-align-weight 0`` ranks without one).
    ``scorer.critic`` holds :func:`rewards.critic.check_critic`'s record (both fingerprints).
    ``use_reasoning``: whether the model writes reasoning (eval and demo assume it does)."""
    from rewards.critic import check_args_critic, describe
    from rewards.factory import build_rewards
    judge = judge or getattr(args, "judge_evaluator_dir", None)
    allow = bool(getattr(args, "allow_judge_as_critic", False))  # only then may a missing critic be the judge
    com_dir = getattr(args, "com_evaluator_dir", None)
    if com_dir:
        args.reward_dataset_opt_path = com_dir
    elif allow and judge and not Path(args.reward_dataset_opt_path).exists():
        args.reward_dataset_opt_path = judge
    if not Path(args.reward_glove_path).exists() and getattr(args, "glove_dir", None):
        args.reward_glove_path = args.glove_dir
    # refused before anything loads (the critic is the evaluator of the align reward, when it is on)
    critic = check_args_critic(args, judge, "Chain-of-Motion scorer",
                               uses_evaluator=float(args.reward_align_weight) != 0.0)
    composite = build_rewards(args, task, vq=vq, device=device, purpose="com", decoder=decoder,
                              use_reasoning=use_reasoning)
    scorer = ComScorer(composite)
    scorer.critic = critic
    if "align" not in composite.names:
        return scorer, "no evaluator (align off)"
    name = describe(composite.critic) + (" — the JUDGE itself (--allow-judge-as-critic)"
                                         if scorer.critic["judge_as_critic"] else "")
    return scorer, name
