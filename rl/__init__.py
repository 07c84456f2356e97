"""The two training stages of train_mllm.py: supervised fine-tuning on CoT records (:mod:`rl.sft`)
and RLVR with GRPO (:mod:`rl.rlvr` runs :class:`rl.grpo.GRPOTrainer`); :mod:`rl.runtime` holds what
both share (processes, run folder, policy loading, parallel wrapping, checkpointed optimizer state)."""
