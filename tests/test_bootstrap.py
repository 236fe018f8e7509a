"""Tests for benchmark.metrics.bootstrap (subject/cluster bootstrap CIs)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark.metrics.bootstrap import (
    add_ci,
    cluster_codes,
    percentile_interval,
    resample_multiplicities,
    subject_bootstrap,
)
from benchmark.metrics.verification import compute_all


def _data(seed: int = 0, n_subjects: int = 60, per_subject: int = 40, d: float = 2.0):
    """Scores of ``n_subjects`` probe subjects, a quarter of each one's comparisons mated."""
    rng = np.random.default_rng(seed)
    clusters = np.repeat(np.arange(n_subjects), per_subject)
    mated = np.tile(np.arange(per_subject) < per_subject // 4, n_subjects)
    offset = rng.normal(0.0, 0.3, n_subjects)[clusters]  # subject effect: correlated scores
    scores = rng.normal(0.0, 1.0, clusters.size) + offset + d * mated
    return scores, mated, clusters


def _mean_stat(genuine, impostor):
    return {"gen_mean": float(np.mean(genuine)), "imp_mean": float(np.mean(impostor))}


def test_deterministic_given_seed():
    scores, mated, clusters = _data()
    first = subject_bootstrap(scores, mated, clusters, compute_all, n_boot=50, seed=5)
    assert first == subject_bootstrap(scores, mated, clusters, compute_all, n_boot=50, seed=5)
    other = subject_bootstrap(scores, mated, clusters, compute_all, n_boot=50, seed=6)
    assert other["eer"] != first["eer"]


def test_ci_contains_point_estimate():
    scores, mated, clusters = _data(seed=1)
    point = compute_all(scores[mated], scores[~mated])
    cis = subject_bootstrap(scores, mated, clusters, compute_all, n_boot=200, seed=0)
    assert set(cis) == set(point)
    for key in ("eer", "d_prime", "fnmr_at_fmr_0.01"):
        low, high = cis[key]
        assert low <= point[key] <= high
        assert low < high


def test_one_cluster_collapses_to_point():
    scores, mated, _ = _data(seed=2)
    point = compute_all(scores[mated], scores[~mated])
    cis = subject_bootstrap(scores, mated, np.zeros(scores.size, dtype=int), compute_all, n_boot=20)
    for key, (low, high) in cis.items():
        assert low == pytest.approx(point[key]) and high == pytest.approx(point[key])


def test_resamples_whole_clusters():
    # Cluster c's mated scores all equal c, so a resample holding cluster c
    # k times holds exactly k * size_c copies of the value c.
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 6, 25)
    clusters = np.repeat(np.arange(25), sizes)
    scores = clusters.astype(float)
    mated = np.ones(clusters.size, dtype=bool)
    # One impostor comparison per cluster, so no resample lacks impostors.
    first_of_cluster = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    mated[first_of_cluster] = False
    gen_sizes = sizes - 1
    seen = []

    def stat(genuine, impostor):
        values, counts = np.unique(genuine, return_counts=True)
        multiplicity = counts / gen_sizes[values.astype(int)]
        assert np.all(multiplicity == np.round(multiplicity))
        # Clusters drawn: impostor values name them, one per draw.
        assert np.sum(counts) == np.sum(gen_sizes[impostor.astype(int)])
        seen.append(impostor.size)
        return {"n": float(genuine.size)}

    subject_bootstrap(scores, mated, clusters, stat, n_boot=30, seed=1)
    assert len(seen) == 31  # the full data, then every resample
    assert set(seen) == {25}  # each resample draws as many clusters as there are


def test_cluster_ci_wider_than_comparison_ci():
    # Strong subject effect: 30 independent units, not 1200 comparisons.
    rng = np.random.default_rng(4)
    clusters = np.repeat(np.arange(30), 40)
    mated = np.tile(np.arange(40) < 10, 30)
    scores = rng.normal(0.0, 1.0, 30)[clusters] + 0.1 * rng.normal(size=clusters.size) + mated
    by_subject = subject_bootstrap(scores, mated, clusters, _mean_stat, n_boot=300)
    by_comparison = subject_bootstrap(scores, mated, np.arange(clusters.size), _mean_stat, n_boot=300)
    for key in ("gen_mean", "imp_mean"):
        wide = by_subject[key][1] - by_subject[key][0]
        narrow = by_comparison[key][1] - by_comparison[key][0]
        assert wide > 3 * narrow


def test_undefined_resamples_dropped():
    # Two clusters, one all mated, one all non-mated: a resample has both
    # groups only when it draws both clusters (half of the time).
    scores = np.array([2.0, 2.5, 3.0, 0.0, 0.5])
    mated = np.array([True, True, True, False, False])
    clusters = np.array(["a", "a", "a", "b", "b"])
    calls = []

    def stat(genuine, impostor):
        assert genuine.size and impostor.size
        calls.append(1)
        return {"gen_mean": float(np.mean(genuine)), "nan": math.nan, "none": None, "label": "x"}

    cis = subject_bootstrap(scores, mated, clusters, stat, n_boot=40, seed=0)
    assert 1 < len(calls) < 41
    # Keys undefined on the full data get no interval.
    assert set(cis) == {"gen_mean"}
    assert cis["gen_mean"] == (2.5, 2.5)


def test_key_undefined_in_every_resample_gives_nan():
    scores, mated, clusters = _data(seed=5, n_subjects=10)
    state = {"first": True}

    def stat(genuine, impostor):
        value = 1.0 if state.pop("first", False) else math.inf
        return {"flaky": value, "gen_mean": float(np.mean(genuine))}

    cis = subject_bootstrap(scores, mated, clusters, stat, n_boot=10)
    assert all(math.isnan(v) for v in cis["flaky"])
    assert all(math.isfinite(v) for v in cis["gen_mean"])


def test_n_boot_zero():
    scores, mated, clusters = _data(seed=6, n_subjects=5)
    cis = subject_bootstrap(scores, mated, clusters, _mean_stat, n_boot=0)
    assert set(cis) == {"gen_mean", "imp_mean"}
    assert all(math.isnan(v) for pair in cis.values() for v in pair)


def test_validation():
    scores, mated, clusters = _data(seed=7, n_subjects=5)
    with pytest.raises(ValueError, match="mated"):
        subject_bootstrap(scores, mated[:-1], clusters, _mean_stat)
    with pytest.raises(ValueError, match="mated"):
        subject_bootstrap(scores, mated.astype(int), clusters, _mean_stat)
    with pytest.raises(ValueError, match="clusters"):
        subject_bootstrap(scores, mated, clusters[:-1], _mean_stat)
    with pytest.raises(ValueError, match="finite"):
        subject_bootstrap(np.append(scores[:-1], np.nan), mated, clusters, _mean_stat)
    with pytest.raises(ValueError, match="non-mated"):
        subject_bootstrap(scores, np.ones_like(mated), clusters, _mean_stat)
    for kwargs, name in (
        ({"n_boot": -1}, "n_boot"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.0}, "alpha"),
        ({"seed": -1}, "seed"),
    ):
        with pytest.raises(ValueError, match=name):
            subject_bootstrap(scores, mated, clusters, _mean_stat, **kwargs)


def test_alpha_narrows_interval():
    scores, mated, clusters = _data(seed=8)
    wide = subject_bootstrap(scores, mated, clusters, _mean_stat, n_boot=100, alpha=0.05)["gen_mean"]
    narrow = subject_bootstrap(scores, mated, clusters, _mean_stat, n_boot=100, alpha=0.5)["gen_mean"]
    assert wide[0] < narrow[0] < narrow[1] < wide[1]


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_clusters=st.integers(1, 50), size=st.integers(0, 20))
def test_resample_multiplicities(seed, n_clusters, size):
    counts = resample_multiplicities(np.random.default_rng(seed), n_clusters, size)
    assert counts.shape == (size, n_clusters)
    assert np.all(counts >= 0)
    assert np.all(counts.sum(axis=1) == n_clusters)


def test_resample_multiplicities_uniform():
    counts = resample_multiplicities(np.random.default_rng(0), 10, 5000)
    # Each cluster is drawn once per resample on average (Binomial(10, 0.1)).
    np.testing.assert_allclose(counts.mean(axis=0), 1.0, atol=0.05)


def test_cluster_codes():
    codes, n = cluster_codes(["b", "a", "b", "c"], 4)
    assert n == 3 and codes.tolist() == [1, 0, 1, 2]
    with pytest.raises(ValueError, match="one id per comparison"):
        cluster_codes([1, 2], 3)


def test_percentile_interval():
    assert percentile_interval(np.arange(101.0), alpha=0.1) == (5.0, 95.0)
    low, high = percentile_interval([])
    assert math.isnan(low) and math.isnan(high)


def test_add_ci():
    metrics = {"eer": 0.1, "d_prime": 2.0}
    out = add_ci(metrics, {"eer": (0.08, 0.12), "d_prime": (math.nan, 2.5), "other": (1, 2)})
    assert metrics == {"eer": 0.1, "d_prime": 2.0}  # not modified
    assert out == {
        "eer": 0.1,
        "d_prime": 2.0,
        "eer_ci_low": 0.08,
        "eer_ci_high": 0.12,
        "d_prime_ci_low": None,
        "d_prime_ci_high": 2.5,
        "other_ci_low": 1.0,
        "other_ci_high": 2.0,
    }
