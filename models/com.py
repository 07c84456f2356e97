"""Chain-of-Motion decoding (docs/method.md §9).

Round 1 samples K candidates (reasoning + answer) per input in one batched ``generate`` call; a
scorer ranks them; rounds 2..T re-prompt each input with the reasoning of its best candidate so far
as a plan to refine, and sample K again. The best candidate over all rounds is returned.

The scorer is ``scorer(task, inputs, outputs) -> (N,)`` and receives only the model inputs
(captions for t2m, motion codes for m2t) — never a reference caption or motion.
"""
from __future__ import annotations

import numpy as np


def update_best(best: list, scores, outputs: list, K: int) -> list:
    """Keep, per input, the highest-scoring candidate seen so far: best[i] = (score, output)."""
    scores = np.asarray(scores, dtype=np.float64).reshape(len(best), K)
    for i in range(len(best)):
        j = int(scores[i].argmax())
        if best[i] is None or scores[i, j] > best[i][0]:
            best[i] = (float(scores[i, j]), outputs[i * K + j])
    return best


def chain_of_motion(mllm, task: str, inputs: list, scorer, candidates: int = 8, rounds: int = 2,
                    temperature: float = 1.0, top_p: float = 1.0, max_new_tokens: int = 256,
                    include_greedy: bool = False) -> tuple[list, dict]:
    """Best output per input (dicts as returned by ``MotionLLM.generate``) and statistics.
    ``include_greedy``: the greedy decode joins round 1's candidates (K sampled + 1), so the chain can only
    replace it with a candidate the scorer prefers."""
    if candidates < 1 or rounds < 1:
        raise ValueError("--com-candidates and --com-refine-steps must be at least 1")
    best: list = [None] * len(inputs)
    plans = None
    picked_round = [0] * len(inputs)
    if include_greedy:
        greedy = mllm.generate(task, captions=inputs if task == "t2m" else None,
                               motion_codes=inputs if task == "m2t" else None, do_sample=False,
                               max_new_tokens=max_new_tokens)
        best = update_best(best, scorer(task, list(inputs), greedy), greedy, 1)
    for r in range(rounds):
        outs = mllm.generate(task, captions=inputs if task == "t2m" else None,
                             motion_codes=inputs if task == "m2t" else None, plans=plans,
                             num_return_sequences=candidates, do_sample=True, temperature=temperature,
                             top_p=top_p, max_new_tokens=max_new_tokens)
        rep = [x for x in inputs for _ in range(candidates)]
        before = [b[0] if b else None for b in best]
        best = update_best(best, scorer(task, rep, outs), outs, candidates)
        for i, b in enumerate(best):
            if before[i] is None or b[0] > before[i]:
                picked_round[i] = r + 1
        plans = [b[1]["reasoning"] or None for b in best]
    stats = {"com_candidates": candidates, "com_rounds": rounds,
             "com_best_from_round": np.bincount(picked_round, minlength=rounds + 1)[1:].tolist(),
             "com_mean_best_score": float(np.mean([b[0] for b in best])) if best else 0.0}
    if include_greedy:
        stats["com_kept_greedy"] = int(sum(1 for r in picked_round if r == 0))
    return [b[1] for b in best], stats
