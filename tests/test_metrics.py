"""t2m metrics: FID closed form, R-precision, MM-Dist, diversity, multimodality, intervals."""
import numpy as np
import pytest
from scipy import linalg

from utils.metrics import (aggregate_replications, calculate_diversity, calculate_fid, calculate_multimodality,
                           calculate_top_k, euclidean_distance_matrix, format_mean_ci, frechet_distance,
                           matching_metrics, mean_ci)


def test_fid_two_gaussians_closed_form():
    rng = np.random.default_rng(0)
    d = 6
    a = rng.standard_normal((d, d))
    s1 = a @ a.T + np.eye(d)
    b = rng.standard_normal((d, d))
    s2 = b @ b.T + 0.5 * np.eye(d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)
    # diagonal case by hand: sum (sqrt(v1) - sqrt(v2))^2
    v1, v2 = np.array([1.0, 4.0]), np.array([9.0, 1.0])
    assert frechet_distance(np.zeros(2), np.diag(v1), np.ones(2), np.diag(v2)) == pytest.approx(
        2 + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2))
    # sampled Gaussians approach the closed form
    x = rng.multivariate_normal(mu1, s1, 20000)
    y = rng.multivariate_normal(mu2, s2, 20000)
    assert calculate_fid(x, y) == pytest.approx(expected, rel=0.05)


def test_fid_gt_vs_gt_is_zero_and_shift_is_visible():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 8))
    assert abs(calculate_fid(x, x)) < 1e-6
    assert calculate_fid(x, x + 1.0) == pytest.approx(8.0, rel=1e-6)


def test_r_precision_identical_embeddings_is_one():
    rng = np.random.default_rng(2)
    e = rng.standard_normal((96, 16))
    res = matching_metrics(e, e, batch_size=32)
    assert res["R_precision_top1"] == res["R_precision_top3"] == 1.0
    assert res["MM_Dist"] == pytest.approx(0.0, abs=1e-6) and res["n"] == 96


def test_r_precision_random_is_near_chance_and_drop_last():
    rng = np.random.default_rng(3)
    t, m = rng.standard_normal((32 * 200 + 7, 8)), rng.standard_normal((32 * 200 + 7, 8))
    res = matching_metrics(t, m)
    assert res["n"] == 6400
    assert res["R_precision_top1"] == pytest.approx(1 / 32, abs=0.01)
    assert res["R_precision_top3"] == pytest.approx(3 / 32, abs=0.015)
    with pytest.raises(ValueError, match="at least 32"):
        matching_metrics(t[:10], m[:10])
    with pytest.raises(ValueError, match="differ in shape"):
        matching_metrics(t[:64], m[:64, :4])


def test_top_k_and_distance_matrix():
    dist = np.array([[0.1, 0.2, 0.3], [0.0, 0.5, 0.4], [0.3, 0.2, 0.1]])
    hits = calculate_top_k(dist, 3)
    assert hits.tolist() == [[True, True, True], [False, False, True], [True, True, True]]
    a, b = np.array([[0.0, 0.0], [3.0, 4.0]]), np.array([[0.0, 0.0]])
    assert euclidean_distance_matrix(a, b)[:, 0].tolist() == [0.0, 5.0]
    # motion-row orientation transposes the problem
    rng = np.random.default_rng(4)
    t, m = rng.standard_normal((64, 4)), rng.standard_normal((64, 4))
    assert matching_metrics(t, m, rows="motion")["MM_Dist"] == pytest.approx(matching_metrics(t, m)["MM_Dist"])


def test_diversity_and_multimodality():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1000, 10))
    # E||a-b|| for independent standard normals in 10-d is about sqrt(2*10) minus a little
    div = calculate_diversity(x, 300, np.random.default_rng(0))
    assert 4.0 < div < 4.6
    assert calculate_diversity(x, 300, np.random.default_rng(0)) == div  # seeded
    same = np.repeat(rng.standard_normal((20, 1, 10)), 30, axis=1)
    assert calculate_multimodality(same, 10, np.random.default_rng(0)) == 0.0
    spread = same + rng.standard_normal((20, 30, 10))
    assert calculate_multimodality(spread, 10, np.random.default_rng(0)) > 3.0
    with pytest.raises(ValueError, match="at least 300"):
        calculate_diversity(x[:50], 300, rng)


def test_confidence_interval_and_format():
    vals = [1.0, 2.0, 3.0, 4.0]
    m, ci = mean_ci(vals)
    assert m == 2.5 and ci == pytest.approx(1.96 * np.std(vals) / 2)
    agg = aggregate_replications([{"a": 1.0, "b": "x"}, {"a": 3.0, "b": "y"}])
    assert set(agg) == {"a"} and agg["a"]["mean"] == 2.0
    assert format_mean_ci(0.5112, 0.0031) == "0.511±.003"
