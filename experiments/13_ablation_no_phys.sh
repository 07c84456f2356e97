#!/usr/bin/env bash
# Ablation row: w/o R_phys. RLVR (t2m) from the same SFT checkpoints with --reward-phys-weight 0,
# then evaluated as the full model (Chain-of-Motion, default CoM scorer).
# Output: $OUT_DIR/<tag>_abl_no_phys_<task>/ (training), $OUT_DIR/<tag>_abl_no_phys/eval_<task>_com.json.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ablation no_phys phys t2m "$@"
