"""Reward flags (the original release's "Reward configuration" names and defaults, except where
noted: ``--semantic-model-name`` defaults to the packaged offline MiniLM, ``--nli-model-name`` to an
MNLI model that exists). :func:`rewards.factory.build_rewards` reads them."""
from __future__ import annotations

import argparse

DEFAULT_OPT_PATH = "checkpoints/critic/t2m/text_mot_match"  # the original: the judge's opt.txt (see rewards/critic.py)
JUDGE_OPT_PATH = "checkpoints/t2m/Comp_v6_KLD005"
ORIGINAL_SEMANTIC_MODEL = "microsoft/deberta-v3-base"


def add_reward_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from rewards.coherence import DEFAULT_NLI_MODEL
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
                   help="the critic: T2M evaluator opt.txt (or its folder) of the text-motion consistency reward and "
                        "the CoM scorer; train it apart from the judge (python train_evaluator.py ... "
                        "--checkpoints-dir checkpoints/critic --seed 1). The original defaulted to the judge's "
                        "checkpoints/t2m/Comp_v6_KLD005/opt.txt")
    g.add_argument("--judge-evaluator-dir", type=str, default=JUDGE_OPT_PATH,
                   help="train_mllm.py: the evaluator that will compute the metrics (the judge), which the critic "
                        "must not be (eval_mllm.py and demo.py use --evaluator-dir)")
    g.add_argument("--allow-judge-as-critic", action="store_true",
                   help="let the consistency reward / CoM scorer use the judge's evaluator (same files or sha256): "
                        "the metric then grades its own optimisation; reports say so")
    g.add_argument("--reward-glove-path", type=str, default="./glove",
                   help="GloVe folder (our_vab_{data.npy,words.pkl,idx.pkl}) for the consistency reward")
    g.add_argument("--reward-align-metric", type=str, default="cosine", choices=["cosine", "euclidean", "retrieval"],
                   help="consistency: cosine similarity, negative Euclidean distance, or 'retrieval' (soft R-precision: "
                        "the motion nearer its own caption than recent other captions; cannot be gamed by a generic "
                        "motion close to every caption)")
    g.add_argument("--reward-max-motion-tokens", type=int, default=49,
                   help="t2m answers with more codes are penalised and cropped (196 frames / 4)")
    g.add_argument("--reward-phys-range", type=str, default="[0,1]", choices=["[0,1]", "[-1,0]"])
    g.add_argument("--reward-phys-target", type=float, default=0.0,
                   help="physics reward capped at this value and rescaled to [0, 1] (0 = off): every motion at or above "
                        "the target scores 1, so the group advantage of the physics term only separates implausible "
                        "motions from plausible ones (e.g. 0.8, the threshold of the evaluation's 'phys < 0.8')")
    g.add_argument("--reward-reset-cache-each-epoch", action="store_true",
                   help="reset the reward cache counters at each RL epoch")
    g.add_argument("--reward-clear-cache-values", action="store_true",
                   help="with --reward-reset-cache-each-epoch, also drop the cached values")
    return parser
