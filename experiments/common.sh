# shellcheck shell=bash
# Shared settings of the paper recipes (experiments/*.sh source this file; it is not run on its own).
#
# Every setting is an environment variable with a default; relative paths given in the environment are
# taken relative to the directory you run the script from, the defaults relative to the repository root
# (the scripts cd there). DRY_RUN=1 prints each command (one per line, shell-quoted) instead of running it.
#
#   DATASET        humanml3d (default) | kit
#   DATA_ROOT      dataset folder (default dataset/HumanML3D or dataset/KIT-ML)
#   EVALUATOR_DIR  the judge: the official T2M evaluator (default checkpoints/<t2m|kit>/Comp_v6_KLD005);
#                  it computes every metric and is never used in training or decoding
#   GLOVE_DIR      GloVe folder our_vab_{data.npy,words.pkl,idx.pkl} (default glove)
#   CRITIC_ROOT    where 00_critic.sh trains the critic (default experiments/<tag>_critic)
#   CRITIC_DIR     the critic evaluator used by the rewards and Chain-of-Motion
#                  (default $CRITIC_ROOT/<t2m|kit>/text_mot_match)
#   BACKBONE       LLM backbone, hub id or an absolute local folder (default Qwen/Qwen3-4B-Instruct-2507)
#   OUT_DIR        output root (default experiments); each run writes $OUT_DIR/<tag>_<stage>/
#   NUM_GPUS       processes of the training scripts (default 1: plain python; >1: accelerate launch)
#   LAUNCH         launcher command that replaces both (e.g. "torchrun --nproc_per_node 4")
#   ACCELERATE_ARGS extra arguments of accelerate launch (e.g. "--main_process_port 29600")
#   PYTHON         interpreter (default python)
#   SEED           seed of every stage (default 123, the original release's)
#   M2T_CONVENTION m2t reference convention of the evaluation: motiongpt (raw captions, as MoRL reports;
#                  default) | tm2t (processed words)
#   BERTSCORE_MODEL BERTScore model of the evaluation (default roberta-large, the official setting)
#   STAGE          what 07-10_eval_*.sh evaluate: rlvr (default) | sft

_CALLER_PWD="$PWD"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

# paths given in the environment are relative to where the script was started
for _v in DATA_ROOT EVALUATOR_DIR GLOVE_DIR CRITIC_ROOT CRITIC_DIR OUT_DIR VQ_CKPT COT_DIR EVAL_CKPT; do
    if [[ -n "${!_v:-}" && "${!_v}" != /* ]]; then
        printf -v "$_v" '%s' "$_CALLER_PWD/${!_v}"
    fi
done
unset _v

DATASET="${DATASET:-humanml3d}"
case "$DATASET" in
    humanml3d|HumanML3D|t2m) DATASET=humanml3d; DATANAME=t2m; TAG=hml3d; _data_root=dataset/HumanML3D ;;
    kit|KIT-ML|kit-ml|KIT) DATASET=kit; DATANAME=kit; TAG=kit; _data_root=dataset/KIT-ML ;;
    *) echo "experiments: DATASET=$DATASET: expected humanml3d or kit" >&2; exit 2 ;;
esac

DATA_ROOT="${DATA_ROOT:-$_data_root}"
EVALUATOR_DIR="${EVALUATOR_DIR:-checkpoints/$DATANAME/Comp_v6_KLD005}"
GLOVE_DIR="${GLOVE_DIR:-glove}"
OUT_DIR="${OUT_DIR:-experiments}"
CRITIC_ROOT="${CRITIC_ROOT:-$OUT_DIR/${TAG}_critic}"
CRITIC_DIR="${CRITIC_DIR:-$CRITIC_ROOT/$DATANAME/text_mot_match}"
BACKBONE="${BACKBONE:-Qwen/Qwen3-4B-Instruct-2507}"
NUM_GPUS="${NUM_GPUS:-1}"
LAUNCH="${LAUNCH:-}"
ACCELERATE_ARGS="${ACCELERATE_ARGS:-}"
PYTHON="${PYTHON:-python}"
SEED="${SEED:-123}"
M2T_CONVENTION="${M2T_CONVENTION:-motiongpt}"
BERTSCORE_MODEL="${BERTSCORE_MODEL:-roberta-large}"
STAGE="${STAGE:-rlvr}"
if [[ "$STAGE" != rlvr && "$STAGE" != sft ]]; then
    echo "experiments: STAGE=$STAGE: expected rlvr or sft" >&2; exit 2
fi
if ! [[ "$NUM_GPUS" =~ ^[1-9][0-9]*$ ]]; then
    echo "experiments: NUM_GPUS=$NUM_GPUS: expected a positive integer" >&2; exit 2
fi

# what the stages hand each other (run folders under $OUT_DIR, named <tag>_<stage>)
VQ_CKPT="${VQ_CKPT:-$OUT_DIR/${TAG}_vqvae/net_best_fid.pth}"
COT_DIR="${COT_DIR:-$OUT_DIR/${TAG}_cot}"

# ------------------------------------------------------------------ hyper-parameters of the paper runs
# From the original release's option_train.py / option_llm.py defaults (the paper's settings as far as they
# are known); "guess" marks a value nobody has confirmed for the paper.
SFT_BATCH_SIZE=6            # original --batch-size
SFT_LR=1e-5                 # original --learning-rate (Adam, constant); this project's default is 1e-4
SFT_EPOCHS_T2M=500          # original --epochs-t2m
SFT_EPOCHS_M2T=10           # original --epochs-m2t
MAX_MOTION_LEN=200          # original --max-motion-len (prompt + target tokens)
LORA_FLAGS=(--lora-r-t2m 64 --lora-alpha-t2m 64 --lora-r-m2t 32 --lora-alpha-m2t 32 --lora-dropout 0.1)  # original
RL_EPOCHS=3                 # original --rl-epochs
RL_GROUP_SIZE=8             # original --rl-group-size
RL_KL_COEF=0.02             # original --rl-kl-coef
RL_CLIP_EPS=0.2             # original --rl-clip-eps
RL_LR=1e-5                  # original: RLVR shares --learning-rate with SFT
RL_COM_REFINE_STEPS=2       # guess: the original default 2 also drove the GRPO rollouts (group = G x T); that the paper's runs used it is not confirmed
COM_CANDIDATES=8            # original --com-candidates (K)
COM_REFINE_STEPS=2          # original --com-refine-steps (T)
# reward weights: the original "Reward configuration" defaults
REWARD_WEIGHTS=(--reward-format-weight 0.2 --reward-sem-weight 0.5 --reward-coh-weight 0.8
                --reward-phys-weight 0.5 --reward-align-weight 0.5)
SEMANTIC_MODEL=microsoft/deberta-v3-base   # original --semantic-model-name (this project's offline default: minilm)
# guess: the NLI model of the coherence reward is this project's default (microsoft/deberta-large-mnli); the
# original named microsoft/deberta-v3-large-mnli, which does not exist on the Hub
EVAL_REPLICATIONS=20        # the t2m protocol (20 replications, mean ± 95% CI)

# ------------------------------------------------------------------ helpers
# shell-quote one word the way Python's shlex.quote does (so the printed commands parse with shlex.split)
_quote() {
    if [[ -z "$1" ]]; then
        printf "''"
    elif [[ "$1" =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
        printf '%s' "$1"
    else
        printf "'%s'" "${1//\'/\'\"\'\"\'}"
    fi
}

# run CMD ARGS...: run one command, or print it with DRY_RUN=1
run() {
    if [[ "${DRY_RUN:-0}" == 1 ]]; then
        local first=1 a
        for a in "$@"; do
            if (( first )); then first=0; else printf ' '; fi
            _quote "$a"
        done
        printf '\n'
        return 0
    fi
    echo "+ $*" >&2
    "$@"
}

# train SCRIPT ARGS...: a training script as one process, or data-parallel under accelerate/LAUNCH
train() {
    local launcher=()
    if [[ -n "$LAUNCH" ]]; then
        read -r -a launcher <<< "$LAUNCH"
    elif (( NUM_GPUS > 1 )); then
        local extra=()
        [[ -n "$ACCELERATE_ARGS" ]] && read -r -a extra <<< "$ACCELERATE_ARGS"
        launcher=(accelerate launch --num_processes "$NUM_GPUS" "${extra[@]}")
    else
        launcher=("$PYTHON")
    fi
    run "${launcher[@]}" "$@"
}

# evaluate ARGS...: eval_mllm.py (always one process)
evaluate() {
    run "$PYTHON" eval_mllm.py "$@"
}

# sft_ckpt TASK / rlvr_ckpt TASK: the checkpoint each stage leaves for the next
sft_ckpt() { printf '%s' "$OUT_DIR/${TAG}_sft_$1/motionllm_$1_best.pth"; }
rlvr_ckpt() { printf '%s' "$OUT_DIR/${TAG}_rlvr_$1/motionllm_rlvr_epoch_$((RL_EPOCHS - 1)).pth"; }

# rlvr_args TASK EXP_NAME: the RLVR command line (paper settings) of one task
rlvr_args() {
    local task=$1 exp=$2
    RLVR_ARGS=(train_mllm.py --train-stage rlvr --training-task "$task" --dataname "$DATANAME"
        --cot-train-jsonl "$COT_DIR/${task}_train.jsonl"
        --rl-reference-ckpt "$(sft_ckpt "$task")" --vq-ckpt "$VQ_CKPT"
        --out-dir "$OUT_DIR" --exp-name "$exp" --seed "$SEED" --use-reasoning
        --batch-size "$SFT_BATCH_SIZE" --learning-rate "$RL_LR" --max-motion-len "$MAX_MOTION_LEN"
        --rl-epochs "$RL_EPOCHS" --rl-group-size "$RL_GROUP_SIZE" --rl-kl-coef "$RL_KL_COEF"
        --rl-clip-eps "$RL_CLIP_EPS" --com-refine-steps "$RL_COM_REFINE_STEPS"
        "${REWARD_WEIGHTS[@]}" --semantic-model-name "$SEMANTIC_MODEL"
        --reward-dataset-opt-path "$CRITIC_DIR" --judge-evaluator-dir "$EVALUATOR_DIR"
        --reward-glove-path "$GLOVE_DIR")
}

# eval_args TASK CKPT EXP_NAME [com]: the evaluation command line (judge = EVALUATOR_DIR; with "com" the
# Chain-of-Motion decoding ranks with the critic, never the judge)
eval_args() {
    local task=$1 ckpt=$2 exp=$3 com=${4:-}
    EVAL_ARGS=(--eval-task "$task" --eval-ckpt "$ckpt" --vq-ckpt "$VQ_CKPT" --dataname "$DATANAME"
        --data-root "$DATA_ROOT" --evaluator-dir "$EVALUATOR_DIR" --glove-dir "$GLOVE_DIR"
        --out-dir "$OUT_DIR" --exp-name "$exp" --seed "$SEED")
    if [[ "$task" == t2m ]]; then
        # t2m decodes by sampling (the original's and T2M-GPT's protocol); multimodality 100 x 30 (default)
        EVAL_ARGS+=(--replications "$EVAL_REPLICATIONS")
    else
        # m2t decodes greedily (default); BERTScore with the official roberta-large setting
        EVAL_ARGS+=(--m2t-convention "$M2T_CONVENTION" --bertscore-model "$BERTSCORE_MODEL")
    fi
    if [[ "$com" == com ]]; then
        EVAL_ARGS+=(--use-com --com-candidates "$COM_CANDIDATES" --com-refine-steps "$COM_REFINE_STEPS"
            --com-evaluator-dir "$CRITIC_DIR" --reward-dataset-opt-path "$CRITIC_DIR"
            --reward-glove-path "$GLOVE_DIR")
    fi
}

# ablation NAME REWARD TASK...: RLVR of each TASK with the REWARD weight set to 0, from the same SFT
# checkpoints, then the evaluation with Chain-of-Motion (the full model's decoding; the CoM scorer keeps its
# default weights, only the training reward changes) into $OUT_DIR/<tag>_abl_NAME/. Extra arguments go to
# the training command(s).
ablation() {
    local name=$1 reward=$2 task
    shift 2
    local tasks=()
    while (( $# )) && [[ "$1" == t2m || "$1" == m2t ]]; do tasks+=("$1"); shift; done
    for task in "${tasks[@]}"; do
        rlvr_args "$task" "${TAG}_abl_${name}_${task}"
        local i
        for i in "${!RLVR_ARGS[@]}"; do  # the one change: this reward's weight -> 0
            if [[ "${RLVR_ARGS[$i]}" == "--reward-${reward}-weight" ]]; then RLVR_ARGS[i+1]=0; fi
        done
        train "${RLVR_ARGS[@]}" "$@"
    done
    for task in "${tasks[@]}"; do
        eval_args "$task" "$OUT_DIR/${TAG}_abl_${name}_${task}/motionllm_rlvr_epoch_$((RL_EPOCHS - 1)).pth" \
            "${TAG}_abl_${name}" com
        evaluate "${EVAL_ARGS[@]}"
    done
}

# stage_ckpt TASK: the checkpoint the evaluation scripts read (STAGE=rlvr|sft; EVAL_CKPT overrides)
stage_ckpt() {
    if [[ -n "${EVAL_CKPT:-}" ]]; then printf '%s' "$EVAL_CKPT"; return; fi
    case "$STAGE" in
        rlvr) rlvr_ckpt "$1" ;;
        *) sft_ckpt "$1" ;;
    esac
}
