#!/usr/bin/env bash
# Row (m2t table): MoRL (full: RLVR + Chain-of-Motion). The judge (EVALUATOR_DIR) computes every metric; the CoM scorer ranks
# candidates with the critic (CRITIC_DIR) and never sees the reference.
# Output: $OUT_DIR/<tag>_eval_$STAGE/eval_m2t_com.json and .md
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

eval_args m2t "$(stage_ckpt m2t)" "${TAG}_eval_${STAGE}" com
evaluate "${EVAL_ARGS[@]}" "$@"
