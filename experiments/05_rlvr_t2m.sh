#!/usr/bin/env bash
# Row: RLVR (t2m), GRPO from the SFT checkpoint with the task rewards; the critic (00_critic.sh) scores
# text-motion consistency, the judge is only checked against it. Output: $OUT_DIR/<tag>_rlvr_t2m/
# motionllm_rlvr_epoch_<n>.pth (evaluated by 07/08_eval_t2m*.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# settings in common.sh (rlvr_args): original GRPO and reward defaults; G=8, beta 0.02, eps 0.2, 3 epochs
rlvr_args t2m "${TAG}_rlvr_t2m"
train "${RLVR_ARGS[@]}" "$@"
