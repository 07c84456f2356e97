#!/usr/bin/env python
"""Train MotionLLM: SFT on chain-of-thought records, then RLVR with GRPO (docs/method.md §3–7).

    python train_mllm.py --train-stage sft --training-task t2m --cot-train-jsonl X --use-reasoning \\
        --exp-name morl_sft_t2m
    python train_mllm.py --train-stage rlvr --training-task t2m --cot-train-jsonl X --use-reasoning \\
        --rl-reference-ckpt experiments/morl_sft_t2m/motionllm_t2m_best.pth --vq-ckpt VQ --exp-name morl_rlvr_t2m

Flags: ``options/option_train.py`` (``--help``). The stages: ``rl/sft.py`` and ``rl/rlvr.py``
(GRPO in ``rl/grpo.py``, rewards in ``rewards/``). Outputs go to ``<out-dir>/<exp-name>/``.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
import utils.threads  # noqa: E402,F401  (before torch: OpenMP wait policy and thread count)


def main(argv=None):
    from options.option_train import get_args
    args = get_args(argv)
    if args.train_stage == "rlvr":
        from rl.rlvr import run_rlvr
        return run_rlvr(args)
    from rl.sft import run_sft
    return run_sft(args)


if __name__ == "__main__":
    main()
