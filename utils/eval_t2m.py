"""Ground-truth passes of the t2m protocol (docs/evaluation.md §2.1–2.6) on a dataset in the HumanML3D layout."""
from __future__ import annotations

import numpy as np
import torch

from dataset.dataset_TM_eval import Text2MotionEvalDataset, get_t2m_eval_loader
from dataset.humanml3d import HumanML3DReader
from utils.metrics import aggregate_replications, calculate_diversity, calculate_fid, diversity_times, matching_metrics


@torch.no_grad()
def gt_pass(wrapper, dataset: Text2MotionEvalDataset, seed: int, batch_size: int = 32):
    """One pass over the GT loader (batch 32, shuffled, drop_last, fresh crops and captions):
    returns (text embeddings, motion embeddings) as numpy arrays, rows matched."""
    dataset.reset_rng(seed)
    loader = get_t2m_eval_loader(dataset, batch_size=batch_size, seed=seed)
    texts, motions = [], []
    for word_embs, pos_ohot, _, sent_len, motion, m_len, _ in loader:
        t, m = wrapper.get_co_embeddings(word_embs, pos_ohot, sent_len, motion, m_len)
        texts.append(t.cpu().numpy())
        motions.append(m.cpu().numpy())
    if not texts:
        raise ValueError(f"the evaluation split has fewer than {batch_size} items")
    return np.concatenate(texts), np.concatenate(motions)


def build_eval_dataset(wrapper, data_root, w_vectorizer, split="test", dataname="t2m", seed=0, progress=False):
    reader = HumanML3DReader(data_root, split, dataname, progress=progress)
    return Text2MotionEvalDataset(reader, w_vectorizer, wrapper.mean, wrapper.std, dataname=dataname, seed=seed)


def evaluate_real_motion(wrapper, data_root, w_vectorizer, split="test", replications=20, seed=0,
                         dataname="t2m", batch_size=32, dataset=None) -> dict:
    """The "Real motion" row: R-precision, MM-Dist, diversity, and FID between two independent
    GT passes (the T2M convention, ≈0 but not 0), each over ``replications`` seeded runs."""
    ds = dataset or build_eval_dataset(wrapper, data_root, w_vectorizer, split, dataname, seed)
    reps = []
    for r in range(replications):
        rng = np.random.default_rng([seed, r])
        t, m = gt_pass(wrapper, ds, seed=seed * 1000 + 2 * r, batch_size=batch_size)
        _, m2 = gt_pass(wrapper, ds, seed=seed * 1000 + 2 * r + 1, batch_size=batch_size)
        res = matching_metrics(t, m, batch_size)
        res.pop("n")
        res["FID"] = calculate_fid(m2, m)
        res["Diversity"] = calculate_diversity(m, diversity_times(len(m)), rng)
        reps.append(res)
    return aggregate_replications(reps)
