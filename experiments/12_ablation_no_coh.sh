#!/usr/bin/env bash
# Ablation row: w/o R_coh. RLVR (t2m and m2t) from the same SFT checkpoints with --reward-coh-weight 0,
# then evaluated as the full model (Chain-of-Motion, default CoM scorer).
# Output: $OUT_DIR/<tag>_abl_no_coh_<task>/ (training), $OUT_DIR/<tag>_abl_no_coh/eval_<task>_com.json.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ablation no_coh coh t2m m2t "$@"
