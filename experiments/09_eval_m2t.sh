#!/usr/bin/env bash
# Row (m2t table): MoRL w/o CoM (also the ablation's w/o CoM row; STAGE=sft: the SFT row). The judge (EVALUATOR_DIR) computes every metric.
# Output: $OUT_DIR/<tag>_eval_$STAGE/eval_m2t.json and .md
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

eval_args m2t "$(stage_ckpt m2t)" "${TAG}_eval_${STAGE}" 
evaluate "${EVAL_ARGS[@]}" "$@"
