"""Text-to-motion metrics (docs/evaluation.md §2): R-precision, MM-Dist, FID,
diversity, multimodality and the 20-replication mean ± 95% interval.

All functions take numpy arrays of embeddings (rows = samples) and explicit
``numpy.random.Generator`` objects, so every number is reproducible from a seed.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
from scipy import linalg


def euclidean_distance_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """dist[i, j] = ||a_i - b_j||, via sqrt(-2 a b^T + |a|^2 + |b|^2) (negative round-off clipped)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    d2 = -2 * a @ b.T + (a * a).sum(1, keepdims=True) + (b * b).sum(1)[None]
    return np.sqrt(np.maximum(d2, 0.0))


def calculate_top_k(dist: np.ndarray, top_k: int = 3) -> np.ndarray:
    """Row i is a hit at k if column i is among the k smallest distances (cumulative over k)."""
    n = dist.shape[0]
    ranks = np.argsort(dist, axis=1)
    target = np.arange(n)[:, None]
    hits = ranks[:, :top_k] == target
    return np.cumsum(hits, axis=1) > 0


def matching_metrics(text_emb: np.ndarray, motion_emb: np.ndarray, batch_size: int = 32, top_k: int = 3,
                     rows: str = "text") -> dict:
    """R-precision top-1..k and MM-Dist over consecutive batches of ``batch_size`` matched pairs.

    The remainder (N mod batch_size) is dropped, as the drop_last loaders of the protocol do.
    ``rows='text'``: each text ranks the motions of its batch (t2m protocol); ``rows='motion'``:
    each motion ranks the captions (TM2T m2t orientation).
    """
    text_emb, motion_emb = np.asarray(text_emb), np.asarray(motion_emb)
    if text_emb.shape != motion_emb.shape:
        raise ValueError(f"text and motion embeddings differ in shape: {text_emb.shape} vs {motion_emb.shape}")
    n = (len(text_emb) // batch_size) * batch_size
    if n == 0:
        raise ValueError(f"need at least {batch_size} matched pairs for R-precision, got {len(text_emb)}")
    hits = np.zeros(top_k)
    trace = 0.0
    for s in range(0, n, batch_size):
        t, m = text_emb[s:s + batch_size], motion_emb[s:s + batch_size]
        dist = euclidean_distance_matrix(t, m) if rows == "text" else euclidean_distance_matrix(m, t)
        hits += calculate_top_k(dist, top_k).sum(0)
        trace += np.trace(dist)
    out = {f"R_precision_top{k + 1}": hits[k] / n for k in range(top_k)}
    out["MM_Dist"] = trace / n
    out["n"] = n
    return out


def activation_statistics(acts: np.ndarray):
    acts = np.asarray(acts, dtype=np.float64)
    if acts.ndim != 2 or len(acts) < 2:
        raise ValueError(f"need a (N>=2, E) activation matrix, got shape {acts.shape}")
    return acts.mean(0), np.cov(acts, rowvar=False)


def _sqrtm(a: np.ndarray) -> np.ndarray:
    out = linalg.sqrtm(a)
    return out[0] if isinstance(out, tuple) else out


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """FID between two Gaussians (scipy sqrtm; retried with eps*I when not finite; the real part
    is kept when the imaginary part of the diagonal is negligible)."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError("the two distributions have different dimensions")
    diff = mu1 - mu2
    covmean = _sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = _sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"FID: imaginary component {np.max(np.abs(covmean.imag))} in sqrtm")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def calculate_fid(acts_gt: np.ndarray, acts_gen: np.ndarray) -> float:
    return frechet_distance(*activation_statistics(acts_gt), *activation_statistics(acts_gen))


def calculate_diversity(acts: np.ndarray, times: int, rng: np.random.Generator) -> float:
    """Mean distance between ``times`` random pairs (two index sets, each without replacement)."""
    acts = np.asarray(acts, dtype=np.float64)
    if len(acts) < times:
        raise ValueError(f"diversity needs at least {times} samples, got {len(acts)}")
    first = rng.choice(len(acts), times, replace=False)
    second = rng.choice(len(acts), times, replace=False)
    return float(np.linalg.norm(acts[first] - acts[second], axis=1).mean())


def diversity_times(n: int, default: int = 300) -> int:
    """300 pairs, or 100 when fewer than 300 samples exist (the T2M-GPT rule), capped at n."""
    return default if n > default else min(100, n)


def calculate_multimodality(acts: np.ndarray, times: int, rng: np.random.Generator) -> float:
    """acts (N captions, R repeats, E): mean distance between ``times`` pairs of generations of the
    same caption; the two index subsets are drawn once and shared by all captions."""
    acts = np.asarray(acts, dtype=np.float64)
    if acts.ndim != 3:
        raise ValueError(f"multimodality needs (captions, repeats, dim) activations, got {acts.shape}")
    if acts.shape[1] < times:
        raise ValueError(f"multimodality needs at least {times} repeats per caption, got {acts.shape[1]}")
    first = rng.choice(acts.shape[1], times, replace=False)
    second = rng.choice(acts.shape[1], times, replace=False)
    return float(np.linalg.norm(acts[:, first] - acts[:, second], axis=2).mean())


def mean_ci(values: Iterable[float]) -> tuple[float, float]:
    """Mean and the 95% interval half-width 1.96·std/√n (population std, as the protocol)."""
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        raise ValueError("no values to aggregate")
    return float(v.mean()), float(1.96 * v.std() / np.sqrt(v.size))


def aggregate_replications(reps: list[dict]) -> dict:
    """[{metric: value} per replication] -> {metric: {"mean", "ci", "values"}} (numeric keys only)."""
    if not reps:
        raise ValueError("no replications to aggregate")
    out = {}
    for key in reps[0]:
        vals = [r[key] for r in reps if isinstance(r.get(key), (int, float, np.floating)) and not isinstance(r.get(key), bool)]
        if len(vals) == len(reps):
            m, ci = mean_ci(vals)
            out[key] = {"mean": m, "ci": ci, "values": [float(x) for x in vals]}
    return out


def format_mean_ci(mean: float, ci: float, digits: int = 3) -> str:
    """'0.511±.003' in the style of the papers."""
    ci_s = f"{ci:.{digits}f}"
    if ci_s.startswith("0."):
        ci_s = ci_s[1:]
    return f"{mean:.{digits}f}±{ci_s}"
