#!/usr/bin/env bash
# Row (t2m table): MoRL w/o CoM (also the ablation's w/o CoM row; STAGE=sft: the SFT row). The judge (EVALUATOR_DIR) computes every metric.
# Output: $OUT_DIR/<tag>_eval_$STAGE/eval_t2m.json and .md
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

eval_args t2m "$(stage_ckpt t2m)" "${TAG}_eval_${STAGE}" 
evaluate "${EVAL_ARGS[@]}" "$@"
