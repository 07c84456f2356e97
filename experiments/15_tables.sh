#!/usr/bin/env bash
# The paper tables (t2m, m2t, reward ablation, VQ-VAE reconstruction; Markdown and LaTeX) from the evaluation
# reports, beside the published rows: $OUT_DIR/<tag>_tables/. Runs that are missing are left out (--skip-missing).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

E="$OUT_DIR/${TAG}"
run "$PYTHON" experiments/make_tables.py "SFT=${E}_eval_sft" "MoRL (ours)=${E}_eval_rlvr" \
    --dataset "$DATASET" --out "${E}_tables" --skip-missing \
    --ablation "full=${E}_eval_rlvr" \
    --ablation "w/o R_sem=${E}_abl_no_sem" \
    --ablation "w/o R_coh=${E}_abl_no_coh" \
    --ablation "w/o R_phys=${E}_abl_no_phys" \
    --ablation "w/o R_align=${E}_abl_no_align" \
    --ablation "w/o CoM=${E}_eval_rlvr/eval_t2m.json,${E}_eval_rlvr/eval_m2t.json" \
    --vq "VQ-VAE (ours)=${E}_eval_vqvae" "$@"
