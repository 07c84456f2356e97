#!/usr/bin/env bash
# Row: SFT (m2t), the MotionLLM before RLVR (evaluate it with STAGE=sft 09_eval_m2t.sh).
# Output: $OUT_DIR/<tag>_sft_m2t/motionllm_m2t_best.pth. The adapters are independent: the t2m and m2t
# chains can run side by side (the README chain's --init-ckpt from the t2m model is optional).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# original option_train.py settings: Adam lr 1e-5, batch 6, 10 epochs, whole sequence cut to 200 tokens,
# LoRA r/alpha 32/32, dropout 0.1. guess: validation loss every epoch picks the best checkpoint (the
# original validated t2m only after epoch 70, every 3 epochs); --refine-ratio 0.25 (this project's default, the
# Chain-of-Motion refine prompts) has no counterpart in the original
train train_mllm.py --train-stage sft --training-task m2t --dataname "$DATANAME" \
    --cot-train-jsonl "$COT_DIR/m2t_train.jsonl" --cot-val-jsonl "$COT_DIR/m2t_val.jsonl" --use-reasoning \
    --out-dir "$OUT_DIR" --exp-name "${TAG}_sft_m2t" --seed "$SEED" --vq-ckpt "$VQ_CKPT" --llm-backbone "$BACKBONE" \
    --learning-rate "$SFT_LR" --batch-size "$SFT_BATCH_SIZE" --epochs-m2t "$SFT_EPOCHS_M2T" \
    --max-motion-len "$MAX_MOTION_LEN" "${LORA_FLAGS[@]}" "$@"
