#!/usr/bin/env bash
# Ablation row: w/o R_sem. RLVR (m2t) from the same SFT checkpoints with --reward-sem-weight 0,
# then evaluated as the full model (Chain-of-Motion, default CoM scorer).
# Output: $OUT_DIR/<tag>_abl_no_sem_<task>/ (training), $OUT_DIR/<tag>_abl_no_sem/eval_<task>_com.json.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ablation no_sem sem m2t "$@"
