"""The builder of a task's :class:`CompositeReward` from the reward flags (declared in
:mod:`options.rewards`, with their defaults and how they differ from the original release).

Which rewards a task uses (weight 0 drops a reward entirely):

==========  ==========================================  ============================================
task        purpose='train' (GRPO)                      purpose='com' (Chain-of-Motion ranking)
==========  ==========================================  ============================================
t2m         format, phys, align, coh                    align, phys, format
m2t         format, sem, coh                            align (generated caption vs input motion),
                                                        coh — never the ground-truth caption
==========  ==========================================  ============================================

``format`` is also used for m2t (caption inside the answer tags): without it nothing in the m2t
rewards asks for closed tags. ``coh`` is skipped when the run does not train reasoning
(``--use-reasoning`` off: every reasoning is empty).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from .base import MotionDecoder
from .coherence import CoherenceReward
from .composite import CompositeReward
from .format_reward import FormatReward

log = logging.getLogger("rewards")
REWARDS_BY_TASK = {
    ("t2m", "train"): ("format", "phys", "align", "coh"),
    ("m2t", "train"): ("format", "sem", "coh"),
    ("t2m", "com"): ("align", "phys", "format"),
    ("m2t", "com"): ("align", "coh"),
}
WEIGHT_FLAGS = {"format": "reward_format_weight", "sem": "reward_sem_weight", "coh": "reward_coh_weight",
                "phys": "reward_phys_weight", "align": "reward_align_weight"}


def _device(args, device):
    from utils.device import resolve_device
    name = args.reward_device or device or args.device or "cpu"
    return resolve_device(str(name))


def _load_evaluator(args, device):
    from models.evaluator_wrapper import EvaluatorWrapper, find_opt
    from utils.word_vectorizer import WordVectorizer

    opt_path = args.reward_dataset_opt_path
    try:
        find_opt(opt_path)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"the text-motion consistency reward needs a T2M evaluator: no opt.txt at "
                                f"{opt_path!r}; set --reward-dataset-opt-path to the evaluator's opt.txt or folder "
                                f"(train one with train_evaluator.py), or --reward-align-weight 0") from exc
    try:
        evaluator = EvaluatorWrapper(opt_path, device)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"--reward-dataset-opt-path {opt_path}: {exc}") from exc
    glove = Path(args.reward_glove_path)
    if not glove.is_dir():
        raise FileNotFoundError(f"the consistency reward needs the GloVe folder: {str(glove)!r} does not exist; "
                                f"set --reward-glove-path (our_vab_{{data.npy,words.pkl,idx.pkl}}) or "
                                f"--reward-align-weight 0")
    try:
        wv = WordVectorizer(glove)
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise FileNotFoundError(f"--reward-glove-path {glove}: {exc}") from exc
    return evaluator, wv


def build_rewards(args, task: str, vq=None, device=None, purpose: str = "train",
                  decoder: Optional[MotionDecoder] = None, use_reasoning: Optional[bool] = None) -> CompositeReward:
    """The :class:`CompositeReward` of ``task`` ('t2m' | 'm2t') for ``purpose`` ('train' | 'com').

    ``vq``: ``(model, mean, std)`` as returned by ``models.vqvae.load_vq_with_stats``
    (needed by the physics and consistency rewards); ``device``: fallback for
    ``--reward-device`` (then ``args.device``). Only the rewards the task needs, with non-zero
    weight, are built; missing assets raise ``FileNotFoundError`` naming the flag to set.
    """
    if (task, purpose) not in REWARDS_BY_TASK:
        raise ValueError(f"task must be 't2m' or 'm2t' and purpose 'train' or 'com', got {task!r}/{purpose!r}")
    dev = _device(args, device)
    bs = int(args.reward_max_batch_size)
    use_reasoning = args.use_reasoning if use_reasoning is None else use_reasoning
    weights, notes = {}, {"task": task, "purpose": purpose, "reward_device": str(dev)}
    for name in REWARDS_BY_TASK[(task, purpose)]:
        w = float(getattr(args, WEIGHT_FLAGS[name]))
        if name == "coh" and not use_reasoning and w != 0.0:
            notes["coh_skipped"] = "--use-reasoning is off: every reasoning is empty"
            log.info("coherence reward skipped: --use-reasoning is off")
            w = 0.0
        if w != 0.0:
            weights[name] = w

    needs_motion = any(n in weights for n in ("phys", "align")) or \
        ("coh" in weights and task == "t2m" and args.reward_coh_t2m_hypothesis == "motion")
    if decoder is None and vq is not None:
        model, mean, std = vq
        decoder = MotionDecoder(model, mean, std, max_batch_size=max(bs, 32))
    if needs_motion and decoder is None:
        raise ValueError(f"the {task} rewards {sorted(n for n in weights if n in ('phys', 'align'))} score decoded "
                         f"motion and need the VQ-VAE: pass --vq-ckpt (or set their weights to 0)")
    nb_code = decoder.nb_code if decoder is not None else getattr(args, "nb_code", None)
    max_tokens = args.reward_max_motion_tokens or None

    rewards = {}
    critic = None  # the fingerprint of the evaluator inside the reward (rewards/critic.py)
    for name, w in weights.items():
        if name == "format":
            r = FormatReward(nb_code=nb_code, max_motion_tokens=max_tokens)
        elif name == "phys":
            from utils.paramUtil import get_spec

            from .physics import PhysicsReward
            r = PhysicsReward(get_spec(args.dataname), value_range=args.reward_phys_range,
                              target=args.reward_phys_target)
        elif name == "align":
            from .consistency import ConsistencyReward
            evaluator, wv = _load_evaluator(args, dev)
            critic = evaluator.fingerprint
            r = ConsistencyReward(evaluator, wv, metric=args.reward_align_metric, max_batch_size=bs)
        elif name == "sem":
            from .semantic import SemanticReward
            r = SemanticReward(args.semantic_model_name, dev, bs)
        elif name == "coh":
            r = CoherenceReward(args.nli_model_name, dev, bs, require_nli=args.reward_require_nli,
                                t2m_hypothesis=args.reward_coh_t2m_hypothesis)
            notes["coherence_backend"] = r.backend
        else:  # pragma: no cover
            raise AssertionError(name)
        rewards[name] = (r, w)
    composite = CompositeReward(
        rewards, reset_cache_each_epoch=args.reward_reset_cache_each_epoch,
        clear_cache_values=args.reward_clear_cache_values, decoder=decoder, notes=notes,
        batch_defaults={"nb_code": nb_code, "reasoning_expected": bool(use_reasoning),
                        "max_motion_tokens": max_tokens})
    composite.critic = critic
    return composite
