"""Critic ≠ judge.

The *judge* is the evaluator that computes the reported metrics (``eval_mllm.py --evaluator-dir``; on
real data the official T2M evaluator). The *critic* is the evaluator inside training and selection: the
text–motion consistency reward (``--reward-dataset-opt-path``) and the Chain-of-Motion scorer
(``--com-evaluator-dir``, else the reward's). If they are the same network, RLVR and CoM optimise the
metric itself and the table measures nothing (the original release's defaults did exactly that).

:func:`check_critic` compares the two by their files (same resolved weights file) and by the sha256 of
the weights and statistics (a copy is the same judge), and stops unless ``--allow-judge-as-critic``.
Every report names both (:func:`describe`).
"""
from __future__ import annotations

from pathlib import Path

ALLOW_FLAG = "--allow-judge-as-critic"


def evaluator_fingerprint(path) -> dict | None:
    """The fingerprint (files + sha256, see ``models.evaluator_wrapper.fingerprint``) of the evaluator at
    ``path`` without loading its network; ``None`` when no evaluator is there."""
    from models.evaluator_wrapper import find_opt, fingerprint, parse_opt_file, resolve_layout
    if not path:
        return None
    try:
        opt = parse_opt_file(find_opt(path))
        return fingerprint(resolve_layout(opt), opt["opt_path"])
    except (FileNotFoundError, ValueError):
        return None


def check_critic(critic: dict | None, judge_path, allow: bool, what: str) -> dict:
    """``critic``: the fingerprint of the evaluator a reward/scorer loaded (``None``: it uses none).
    Returns ``{"critic": ..., "judge": ..., "judge_as_critic": bool}``; raises ``SystemExit`` when the critic
    is the judge and ``allow`` is false."""
    judge = evaluator_fingerprint(judge_path)
    info = {"critic": critic, "judge": judge if judge else {"given": str(judge_path), "found": False},
            "judge_as_critic": False}
    if critic is None or judge is None:
        return info
    same = critic["sha256"] == judge["sha256"] or Path(critic["weights"]) == Path(judge["weights"])
    info["judge_as_critic"] = same
    if same and not allow:
        raise SystemExit(
            f"{what}: the critic evaluator ({critic['opt']}, sha256 {critic['sha256'][:12]}) is the judge that "
            f"computes the metrics ({judge['opt']}): training or selecting with it grades the model by the test "
            f"metric itself. Train a separate critic (python train_evaluator.py ... --checkpoints-dir "
            f"checkpoints/critic --seed 1) and pass it, or give {ALLOW_FLAG} to do this knowingly")
    return info


def describe(fp: dict | None) -> str:
    if not fp:
        return "none"
    if not fp.get("sha256"):
        return f"{fp.get('given', '?')} (not found)"
    return f"{fp['opt']} (sha256 {fp['sha256'][:12]})"


def check_args_critic(args, judge, what: str, uses_evaluator: bool = True) -> dict:
    """:func:`check_critic` for the critic the flags name (``--reward-dataset-opt-path``), before anything
    is loaded; ``uses_evaluator`` False (the consistency reward is off): nothing to compare."""
    critic = evaluator_fingerprint(args.reward_dataset_opt_path) if uses_evaluator else None
    if uses_evaluator and critic is None:
        raise FileNotFoundError(
            f"{what}: no critic evaluator at --reward-dataset-opt-path {args.reward_dataset_opt_path!r} (an "
            "official-layout folder with opt.txt, model/finest.tar and meta/); train one with train_evaluator.py "
            "(--checkpoints-dir checkpoints/critic), pass --com-evaluator-dir, or set --reward-align-weight 0")
    return check_critic(critic, judge, bool(getattr(args, "allow_judge_as_critic", False)), what)
