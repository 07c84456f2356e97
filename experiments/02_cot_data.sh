#!/usr/bin/env bash
# CoT data (MoGen-CoT t2m / MoUnd-CoT m2t records) for SFT and RLVR: $COT_DIR/{t2m,m2t}_{train,val}.jsonl
# (default experiments/<tag>_cot/). No table row.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# guess: the paper's reasoning traces were written by a strong LLM; the default here is the offline template
# reasoner. REASONER=openai REASONER_MODEL=... [REASONER_API_BASE=...] uses any OpenAI-compatible endpoint
# (key from $OPENAI_API_KEY).
reasoner=(--reasoner "${REASONER:-template}")
if [[ "${REASONER:-template}" == openai ]]; then
    reasoner+=(--model "${REASONER_MODEL:?REASONER=openai needs REASONER_MODEL}"
               --api-base "${REASONER_API_BASE:-https://api.openai.com/v1}")
fi
run "$PYTHON" prepare/build_cot.py --vq-ckpt "$VQ_CKPT" --data-root "$DATA_ROOT" --dataname "$DATANAME" \
    --out-dir "$COT_DIR" --split train val --seed "$SEED" "${reasoner[@]}" "$@"
