#!/usr/bin/env bash
# Row (VQ-VAE table): VQ-VAE reconstruction on the test split, scored by the judge (EVALUATOR_DIR): FID,
# R-precision top-1/2/3, MM-Dist, Diversity (and MPJPE), 20 replications, mean ± 95% CI, beside the real-motion
# row. T2M-GPT's test-time tokenizer evaluation (docs/evaluation.md §4). Evaluates VQ_CKPT (default
# $OUT_DIR/<tag>_vqvae/net_best_fid.pth, the checkpoint 01_vqvae.sh picked on the validation split).
# Output: $OUT_DIR/<tag>_eval_vqvae/eval_vq.json and .md
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

run "$PYTHON" eval_vq.py --vq-ckpt "$VQ_CKPT" --dataname "$DATANAME" --data-root "$DATA_ROOT" \
    --evaluator-dir "$EVALUATOR_DIR" --glove-dir "$GLOVE_DIR" --split test --replications "$EVAL_REPLICATIONS" \
    --out-dir "$OUT_DIR" --exp-name "${TAG}_eval_vqvae" --seed "$SEED" "$@"
