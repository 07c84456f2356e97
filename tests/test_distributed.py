"""Two CPU processes (torchrun + gloo through accelerate) for a few SFT and GRPO steps: both ranks must
end with identical weights, only rank 0 writes, and the run must have trained (weights moved)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _torchrun(args, tmp_path, name, script="train_mllm.py"):
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(ROOT / script), *args]
    res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    (tmp_path / f"{name}.log").write_text(res.stdout + res.stderr)
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    return res.stdout + res.stderr


def _adapter(ck_path):
    ck = torch.load(ck_path, weights_only=True)
    return ck["adapters"]["t2m"]


@pytest.mark.slow
def test_two_process_sft_and_grpo_stay_in_sync(tmp_path):
    from conftest import build_tiny_rl_assets

    a = build_tiny_rl_assets(tmp_path, num_motions=30, seed=2, pretrain_steps=30, vq_iters=2, evaluator_iters=2,
                             cot_records=16)
    data, bb, vq = a["data"], a["backbone"], a["vq"]
    common = ["--llm-backbone", str(bb), "--vq-ckpt", str(vq), "--use-reasoning", "--out-dir", str(tmp_path),
              "--no-progress", "--dtype", "fp32", "--lora-r-t2m", "4", "--lora-alpha-t2m", "8", "--lora-dropout", "0",
              "--lora-r-m2t", "4", "--lora-alpha-m2t", "8", "--batch-size", "2", "--print-iter", "1"]
    cot = str(tmp_path / "cot" / "t2m_train.jsonl")

    # SFT: 16 records, 2 per process -> 4 optimizer steps per epoch
    _torchrun(["--train-stage", "sft", "--training-task", "t2m", "--cot-train-jsonl", cot, "--cot-val-jsonl", cot,
               "--exp-name", "sft", "--epochs", "1", "--learning-rate", "3e-3", *common], tmp_path, "sft")
    info = json.loads((tmp_path / "sft" / "distributed.json").read_text())
    assert info["world_size"] == 2 and info["backend"] == "gloo"
    assert len(info["trainable_checksums"]) == 2 and info["in_sync"], info
    lines = [json.loads(x) for x in (tmp_path / "sft" / "metrics.jsonl").read_text().splitlines()]
    steps = [x["step"] for x in lines if "train/loss" in x]
    assert steps == [1, 2, 3, 4]  # one writer (rank 0), steps of the global batch
    assert any("val/loss" in x for x in lines)
    sft = tmp_path / "sft" / "motionllm_t2m_latest.pth"

    # GRPO: 2 prompts per process per step, group of 3, 2 steps
    _torchrun(["--train-stage", "rlvr", "--training-task", "t2m", "--cot-train-jsonl", cot, "--exp-name", "rl",
               "--rl-reference-ckpt", str(sft), "--rl-group-size", "3", "--rl-batch-size", "2",
               "--rl-max-prompts", "8", "--rl-max-new-tokens", "24", "--rl-micro-batch-size", "4",
               "--learning-rate", "1e-2", "--rl-epochs", "1", "--nli-model-name", "none",
               "--reward-dataset-opt-path", str(tmp_path / "ev" / "t2m" / "text_mot_match"),
               "--reward-glove-path", str(data / "glove"), *common], tmp_path, "rl")
    info = json.loads((tmp_path / "rl" / "distributed.json").read_text())
    assert info["world_size"] == 2 and info["in_sync"], info
    rl_lines = [json.loads(x) for x in (tmp_path / "rl" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in rl_lines if "kl" in x] == [1, 2]
    assert all(torch.isfinite(torch.tensor(x["reward/total_mean"])) for x in rl_lines if "kl" in x)
    before, after = _adapter(sft), _adapter(tmp_path / "rl" / "motionllm_rlvr_epoch_0.pth")
    moved = max(float((after[k].float() - before[k].float()).abs().max()) for k in before)
    assert moved > 0, "GRPO did not update the weights"


@pytest.mark.slow
def test_two_process_fsdp_sft_resume_and_grpo(tmp_path):
    """FSDP2 (--fsdp): the backbone sharded over 2 gloo processes; SFT, resume from the gathered optimizer
    state, and GRPO with synchronised generation; ranks agree and the checkpoints load in one process."""
    from conftest import build_tiny_rl_assets
    from models.mllm import MotionLLM

    a = build_tiny_rl_assets(tmp_path, num_motions=30, seed=4, pretrain_steps=30, vq_iters=2, evaluator_iters=2,
                             cot_records=16)
    cot = str(a["cot"] / "t2m_train.jsonl")
    common = ["--llm-backbone", str(a["backbone"]), "--vq-ckpt", str(a["vq"]), "--use-reasoning", "--out-dir",
              str(tmp_path), "--no-progress", "--dtype", "fp32", "--lora-r-t2m", "4", "--lora-alpha-t2m", "8",
              "--lora-dropout", "0", "--lora-r-m2t", "4", "--lora-alpha-m2t", "8", "--batch-size", "2",
              "--print-iter", "1", "--fsdp"]
    sft = ["--train-stage", "sft", "--training-task", "t2m", "--cot-train-jsonl", cot, "--cot-val-jsonl", cot,
           "--exp-name", "sft", "--learning-rate", "3e-3", *common]
    _torchrun(sft + ["--epochs", "1"], tmp_path, "fsdp_sft1")
    _torchrun(sft + ["--epochs", "2", "--resume"], tmp_path, "fsdp_sft2")
    info = json.loads((tmp_path / "sft" / "distributed.json").read_text())
    assert info["sharding"] == "fsdp2" and info["world_size"] == 2 and info["in_sync"], info
    steps = [json.loads(x)["step"] for x in (tmp_path / "sft" / "metrics.jsonl").read_text().splitlines()
             if "train/loss" in x]
    assert steps == [1, 2, 3, 4, 5, 6, 7, 8]  # the resumed epoch continues the step count
    ck = torch.load(tmp_path / "sft" / "motionllm_t2m_latest.pth", weights_only=True)
    assert ck["epoch"] == 1 and ck["optimizer"]["state"], "gathered optimizer state missing"
    sft_ckpt = tmp_path / "sft" / "motionllm_t2m_latest.pth"
    MotionLLM.from_checkpoint(sft_ckpt)  # full (unsharded) tensors: loads in one process

    _torchrun(["--train-stage", "rlvr", "--training-task", "t2m", "--cot-train-jsonl", cot, "--exp-name", "rl",
               "--rl-reference-ckpt", str(sft_ckpt), "--rl-group-size", "3", "--rl-batch-size", "2",
               "--rl-max-prompts", "8", "--rl-max-new-tokens", "24", "--rl-micro-batch-size", "4",
               "--learning-rate", "1e-2", "--rl-epochs", "1", "--nli-model-name", "none",
               "--reward-dataset-opt-path", str(a["evaluator"]), "--reward-glove-path", str(a["data"] / "glove"),
               *common], tmp_path, "fsdp_rl")
    info = json.loads((tmp_path / "rl" / "distributed.json").read_text())
    assert info["sharding"] == "fsdp2" and info["in_sync"], info
    before, after = _adapter(sft_ckpt), _adapter(tmp_path / "rl" / "motionllm_rlvr_epoch_0.pth")
    assert max(float((after[k].float() - before[k].float()).abs().max()) for k in before) > 0


@pytest.mark.slow
def test_two_process_vq_and_evaluator_stay_in_sync(tmp_path):
    """VQ-VAE (DDP + all-reduced EMA codebook statistics) and evaluator (two DDP encoders, sharded
    loader) on 2 gloo processes: identical weights and codebooks on both ranks."""
    from prepare.make_synthetic_dataset import build_dataset
    data = tmp_path / "syn"
    build_dataset(data, num_motions=30, seed=3, progress=False)
    _torchrun(["--data-root", str(data), "--out-dir", str(tmp_path), "--exp-name", "vq", "--batch-size", "4",
               "--total-iter", "6", "--eval-iter", "3", "--print-iter", "2", "--no-progress", "--nb-code", "16",
               "--code-dim", "16", "--output-emb-width", "16", "--width", "16", "--depth", "1",
               "--warm-up-iter", "2"], tmp_path, "vq", script="train_vq.py")
    info = json.loads((tmp_path / "vq" / "distributed.json").read_text())
    assert info["world_size"] == 2 and info["in_sync"], info
    assert (tmp_path / "vq" / "net_last.pth").is_file()
    _torchrun(["--data-root", str(data), "--glove-dir", str(data / "glove"), "--checkpoints-dir", str(tmp_path / "ev"),
               "--movement-iters", "3", "--movement-batch-size", "8", "--max-epoch", "2", "--batch-size", "4",
               "--no-progress", "--eval-split", "train", "--dim-movement-enc-hidden", "16",
               "--dim-movement-latent", "16", "--dim-text-hidden", "16", "--dim-motion-hidden", "16",
               "--dim-coemb-hidden", "16"], tmp_path, "ev", script="train_evaluator.py")
    run = tmp_path / "ev" / "t2m" / "text_mot_match"
    info = json.loads((run / "distributed.json").read_text())
    assert info["world_size"] == 2 and info["in_sync"], info
    assert (run / "model" / "finest.tar").is_file()
    epochs = [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines() if '"epoch"' in x]
    assert epochs == [0, 1]  # one writer


def test_shard_is_even_and_disjoint():
    from utils.distributed import Dist

    class Fake(Dist):
        def __init__(self, rank, world):
            super().__init__()
            self.rank, self.world_size = rank, world

    items = list(range(11))
    parts = [Fake(r, 3).shard(items) for r in range(3)]
    assert [len(p) for p in parts] == [3, 3, 3]
    assert sorted(sum(parts, [])) == list(range(9))
    assert Fake(1, 3).shard(items, drop_uneven=False) == [1, 4, 7, 10]
    assert Dist().shard(items) == items and not Dist().enabled
