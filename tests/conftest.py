import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("MORL_THREADS", "1")  # tiny models: one pinned thread per process (also the subprocesses)
import utils.threads  # noqa: E402,F401  (before torch)

os.environ.setdefault("MPLBACKEND", "Agg")
# nothing in the suite may reach a model hub: fail fast instead of waiting on the network
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _find_shared_reference():
    """The real reference files live in ../shared/reference next to the checkout."""
    for base in [ROOT, *ROOT.parents]:
        cand = base / "shared" / "reference"
        if cand.is_dir():
            return cand
        cand = base.parent / "shared" / "reference"
        if cand.is_dir():
            return cand
    env = os.environ.get("MORL_SHARED_REFERENCE")
    return Path(env) if env else None


@pytest.fixture(scope="session")
def reference_dir():
    ref = _find_shared_reference()
    if ref is None or not (ref / "humanml3d_sample").is_dir():
        pytest.skip("shared/reference not found (set MORL_SHARED_REFERENCE)")
    return ref


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """The suite's models are tiny: one intra-op thread avoids oversubscription on 2-core CI machines
    (several torch processes with 2 spinning threads each slowed tiny-model steps by 100x)."""
    import torch
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


def build_tiny_lm_assets(root, num_motions=20, seed=0, pretrain_steps=150):
    """A small synthetic dataset and a tiny Qwen2 backbone (BPE on its captions) under ``root``:
    the shared starting point of the MotionLLM / GRPO / pipeline tests. Returns (data, backbone)."""
    from prepare.make_synthetic_dataset import build_dataset
    from prepare.make_tiny_backbone import build_tiny_backbone
    data, backbone = root / "syn", root / "bb"
    build_dataset(data, num_motions=num_motions, seed=seed, progress=False)
    build_tiny_backbone(backbone, tokenizer="bpe", data_root=data, hidden_size=64, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, intermediate_size=128, verbose=False,
                        pretrain_steps=pretrain_steps)
    return data, backbone


def train_tiny_vq(data, root, iters, nb_code=32, batch_size=8, *extra):
    """A tiny VQ-VAE (width / code dim 16, depth 1) trained for ``iters`` steps into ``root/vq``; ``extra``
    flags go to train_vq.py as they are. Returns the run folder."""
    import train_vq
    train_vq.main(["--data-root", str(data), "--out-dir", str(root), "--exp-name", "vq", "--batch-size",
                   str(batch_size), "--total-iter", str(iters), "--eval-iter", str(iters), "--no-progress",
                   "--nb-code", str(nb_code), "--code-dim", "16", "--output-emb-width", "16", "--width", "16",
                   "--depth", "1", *extra])
    return root / "vq"


def build_tiny_rl_assets(root, num_motions=40, seed=1, pretrain_steps=50, vq_iters=4, evaluator_iters=5,
                         cot_records=24):
    """:func:`build_tiny_lm_assets` plus a tiny VQ-VAE, evaluator and CoT records (train split): what
    the SFT -> RLVR tests start from. Returns a dict of paths (data, backbone, vq, evaluator, cot)."""
    import train_evaluator
    from prepare.build_cot import main as build_cot_main

    data, bb = build_tiny_lm_assets(root, num_motions=num_motions, seed=seed, pretrain_steps=pretrain_steps)
    vq = train_tiny_vq(data, root, vq_iters) / "net_last.pth"
    train_evaluator.main(["--data-root", str(data), "--glove-dir", str(data / "glove"), "--checkpoints-dir",
                          str(root / "ev"), "--movement-iters", str(evaluator_iters), "--max-epoch", "1",
                          "--no-progress", "--eval-split", "train", "--dim-movement-enc-hidden", "16",
                          "--dim-movement-latent", "16", "--dim-text-hidden", "16", "--dim-motion-hidden", "16",
                          "--dim-coemb-hidden", "16"])
    build_cot_main(["--vq-ckpt", str(vq), "--data-root", str(data), "--out-dir", str(root / "cot"),
                    "--split", "train", "--captions-per-item", "1", "--max-records", str(cot_records), "--no-progress"])
    return {"data": data, "backbone": bb, "vq": vq, "evaluator": root / "ev" / "t2m" / "text_mot_match",
            "cot": root / "cot"}
