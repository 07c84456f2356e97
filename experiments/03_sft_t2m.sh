#!/usr/bin/env bash
# Row: SFT (t2m), the MotionLLM before RLVR (evaluate it with STAGE=sft 07_eval_t2m.sh).
# Output: $OUT_DIR/<tag>_sft_t2m/motionllm_t2m_best.pth. The adapters are independent: the t2m and m2t
# chains can run side by side (the README chain's --init-ckpt from the t2m model is optional).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# original option_train.py settings: Adam lr 1e-5, batch 6, 500 epochs, whole sequence cut to 200 tokens,
# LoRA r/alpha 64/64, dropout 0.1. guess: validation loss every epoch picks the best checkpoint (the
# original validated t2m only after epoch 70, every 3 epochs); --refine-ratio 0.25 (this project's default, the
# Chain-of-Motion refine prompts) has no counterpart in the original
train train_mllm.py --train-stage sft --training-task t2m --dataname "$DATANAME" \
    --cot-train-jsonl "$COT_DIR/t2m_train.jsonl" --cot-val-jsonl "$COT_DIR/t2m_val.jsonl" --use-reasoning \
    --out-dir "$OUT_DIR" --exp-name "${TAG}_sft_t2m" --seed "$SEED" --vq-ckpt "$VQ_CKPT" --llm-backbone "$BACKBONE" \
    --learning-rate "$SFT_LR" --batch-size "$SFT_BATCH_SIZE" --epochs-t2m "$SFT_EPOCHS_T2M" \
    --max-motion-len "$MAX_MOTION_LEN" "${LORA_FLAGS[@]}" "$@"
