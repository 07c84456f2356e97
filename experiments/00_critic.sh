#!/usr/bin/env bash
# The critic: a T2M text-motion evaluator of its own (another seed, trained and selected on the train split
# only), used by the text-motion consistency reward and the Chain-of-Motion scorer. Never the judge
# (EVALUATOR_DIR, the official evaluator that computes every metric). No table row; 05/06 and the CoM
# evaluations read it. Output: $CRITIC_ROOT/<t2m|kit>/text_mot_match (default experiments/<tag>_critic/).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# the official evaluator's recipe (train_evaluator.py defaults: 300 contrastive epochs, lr 1e-4, batch 32,
# movement autoencoder 20k iterations); guess: seed 1 (any seed other than the judge's)
train train_evaluator.py --dataname "$DATANAME" --data-root "$DATA_ROOT" --glove-dir "$GLOVE_DIR" \
    --checkpoints-dir "$CRITIC_ROOT" --seed "${CRITIC_SEED:-1}" --val-split train --eval-split train "$@"
