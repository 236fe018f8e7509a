"""Tests for benchmark.metrics.unlinkability (Gomez-Barrero et al. 2018, D<->sys)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark.core.component import ParamError
from benchmark.core.registry import METRICS
from benchmark.metrics.unlinkability import (
    UnlinkabilityMetric,
    _bootstrap_clusters,
    _d_sys,
    bin_scores,
    d_local,
    default_bins,
    maximal_linkability,
    unlinkability,
    unlinkability_curve,
)

KEYS = {
    "d_sys",
    "d_sys_null",
    "d_sys_null_high",
    "d_sys_ci_low",
    "d_sys_ci_high",
    "linkability_max",
    "linkability_max_null",
    "linkability_max_null_high",
    "linkability_max_ci_low",
    "linkability_max_ci_high",
    "omega",
    "bins",
}


def _gaussians(d: float, seed: int, n_mated: int = 10_000, n_nonmated: int = 100_000):
    rng = np.random.default_rng(seed)
    return rng.normal(d, 1.0, n_mated), rng.normal(0.0, 1.0, n_nonmated)


# --------------------------------------------------------------------------- known distributions


@pytest.mark.parametrize(("d", "expected"), [(0.5, 0.13), (1.0, 0.29), (2.0, 0.61), (4.0, 0.95), (8.0, 1.00)])
def test_known_gaussians(d, expected):
    mated, nonmated = _gaussians(d, seed=1)
    result = unlinkability(mated, nonmated, n_boot=0)
    assert result["bins"] == 100 and result["omega"] == 1.0
    assert result["d_sys"] == pytest.approx(expected, abs=0.03)


@pytest.mark.parametrize(("omega", "expected"), [(0.1, 0.01), (10.0, 0.84)])
def test_known_gaussians_prior_ratio(omega, expected):
    mated, nonmated = _gaussians(1.0, seed=2)
    result = unlinkability(mated, nonmated, omega=omega, n_boot=0)
    assert result["omega"] == omega
    assert result["d_sys"] == pytest.approx(expected, abs=0.03)


def test_matches_numpy_histogram_densities():
    # Independent binning (np.histogram, density=True) and the paper's formulas literally.
    mated, nonmated = _gaussians(1.5, seed=3, n_mated=3000, n_nonmated=20_000)
    edges = np.histogram_bin_edges(np.concatenate((mated, nonmated)), bins=37)
    p_m, _ = np.histogram(mated, edges, density=True)
    p_n, _ = np.histogram(nonmated, edges, density=True)
    omega = 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        lr = p_m / p_n
        local = np.where(omega * lr > 1, 2 * omega * lr / (1 + omega * lr) - 1, 0.0)
    local = np.where((p_n == 0) & (p_m > 0), 1.0, local)
    expected = float(np.sum(p_m * local * np.diff(edges)))
    got = unlinkability(mated, nonmated, omega=omega, bins=37, n_boot=0)["d_sys"]
    assert got == pytest.approx(expected, rel=1e-9)


# --------------------------------------------------------------------------- maximal linkability


def _max_leakage_gaussians(d: float) -> float:
    """Closed form for unit-variance Gaussians d' apart: log2(1 + TV) with TV = 2 Phi(d'/2) - 1."""
    phi = 0.5 * (1.0 + math.erf(d / 2.0 / math.sqrt(2.0)))
    return math.log2(2.0 * phi)


@pytest.mark.parametrize("d", [0.5, 1.0, 2.0, 4.0, 8.0])
def test_maximal_linkability_known_gaussians(d):
    mated, nonmated = _gaussians(d, seed=1)
    result = unlinkability(mated, nonmated, n_boot=0)
    expected = _max_leakage_gaussians(d)
    assert result["linkability_max"] == pytest.approx(expected, abs=0.02)
    assert maximal_linkability(mated, nonmated) == result["linkability_max"]
    # Both measures are 0 for indistinguishable and 1 for separated densities, and grow with d'.
    assert 0.0 <= result["linkability_max"] <= 1.0


def test_maximal_linkability_matches_authors_formula():
    # The paper's estimator written literally: log2(sum_i max(p_m, p_nm) * width) with np.histogram densities.
    mated, nonmated = _gaussians(1.5, seed=4, n_mated=3000, n_nonmated=20_000)
    edges = np.histogram_bin_edges(np.concatenate((mated, nonmated)), bins=30)
    p_m, _ = np.histogram(mated, edges, density=True)
    p_n, _ = np.histogram(nonmated, edges, density=True)
    expected = math.log2(float(np.sum(np.maximum(p_m, p_n)) * (edges[1] - edges[0])))
    assert maximal_linkability(mated, nonmated, bins=30) == pytest.approx(expected, rel=1e-9)


def test_maximal_linkability_bounds_and_ci():
    assert unlinkability(np.linspace(10, 11, 200), np.linspace(0, 1, 2000), n_boot=0)["linkability_max"] == 1.0
    same = unlinkability(np.full(50, 0.3), np.full(80, 0.3), n_boot=10)
    assert same["linkability_max"] == 0.0
    mated, nonmated = _gaussians(2.0, seed=5, n_mated=2000, n_nonmated=20_000)
    result = unlinkability(mated, nonmated, n_boot=100, n_null=50)
    assert result["linkability_max_ci_low"] <= result["linkability_max"] <= result["linkability_max_ci_high"]
    assert result["linkability_max_null_high"] < result["linkability_max_ci_low"]


# --------------------------------------------------------------------------- local measure


def test_d_local_rules():
    mated = np.array([0, 5, 5, 10, 0, 30])
    nonmated = np.array([0, 0, 10, 10, 40, 0])
    # n_m = 50, n_nn = 60: LR = (c_m / 50) / (c_nn / 60).
    got = d_local(mated, nonmated, omega=1.0)
    lr_third = (5 / 50) / (10 / 60)  # 0.6 -> omega LR <= 1 -> 0
    lr_fourth = (10 / 50) / (10 / 60)  # 1.2 -> (1.2 - 1) / 2.2
    assert lr_third < 1
    np.testing.assert_allclose(got, [0.0, 1.0, 0.0, (lr_fourth - 1) / (lr_fourth + 1), 0.0, 1.0])
    # omega scales LR: with omega = 2 the third bin becomes linkable.
    assert d_local(mated, nonmated, omega=2.0)[2] == pytest.approx((1.2 - 1) / 2.2)


def test_disjoint_scores_fully_linkable():
    result = unlinkability(np.linspace(10, 11, 200), np.linspace(0, 1, 2000), n_boot=20)
    assert result["d_sys"] == 1.0
    assert result["d_sys_ci_low"] == result["d_sys_ci_high"] == 1.0


def test_constant_scores_do_not_break_binning():
    result = unlinkability(np.full(50, 0.3), np.full(80, 0.3), n_boot=10)
    # One occupied bin with omega * LR = 1: nothing is linkable.
    assert result["d_sys"] == 0.0


# --------------------------------------------------------------------------- bins


@pytest.mark.parametrize(
    ("n_mated", "bins"), [(1, 10), (99, 10), (100, 10), (150, 15), (999, 99), (1000, 100), (10**6, 100)]
)
def test_default_bins_rule(n_mated, bins):
    assert default_bins(n_mated) == bins
    rng = np.random.default_rng(0)
    assert unlinkability(rng.normal(size=n_mated), rng.normal(size=50), n_boot=0)["bins"] == bins


def test_explicit_bins_and_validation():
    mated, nonmated = _gaussians(1.0, seed=0, n_mated=300, n_nonmated=600)
    assert unlinkability(mated, nonmated, bins=12, n_boot=0)["bins"] == 12
    for bad in (9, 0, 12.0, True):
        with pytest.raises(ValueError, match="bins"):
            unlinkability(mated, nonmated, bins=bad)
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="omega"):
            unlinkability(mated, nonmated, omega=bad)
    with pytest.raises(ValueError, match="n_null"):
        unlinkability(mated, nonmated, n_null=0)
    with pytest.raises(ValueError, match="n_boot"):
        unlinkability(mated, nonmated, n_boot=-1)
    with pytest.raises(ValueError, match="empty"):
        unlinkability([], nonmated)
    with pytest.raises(ValueError, match="non-finite"):
        unlinkability(mated, np.append(nonmated, np.nan))


def test_subject_ids_validation():
    mated, nonmated = _gaussians(1.0, seed=0, n_mated=30, n_nonmated=60)
    with pytest.raises(ValueError, match="both"):
        unlinkability(mated, nonmated, mated_subjects=np.zeros(30))
    with pytest.raises(ValueError, match="mated_subjects"):
        unlinkability(mated, nonmated, mated_subjects=np.zeros(29), nonmated_subjects=np.zeros(60))
    with pytest.raises(ValueError, match="nonmated_subjects"):
        unlinkability(mated, nonmated, mated_subjects=np.zeros(30), nonmated_subjects=np.zeros(61))


# --------------------------------------------------------------------------- permutation null


def test_identical_distributions_within_null_band():
    # Identical distributions: the observed D<->sys is exchangeable with the
    # null draws, so it exceeds the null's 95th percentile in ~5-10% of data
    # sets. Over 20 data sets, more than 6 exceedances has probability < 0.3%.
    exceed, gaps = 0, []
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        result = unlinkability(rng.normal(size=2000), rng.normal(size=20_000), n_null=200, n_boot=0, seed=seed)
        exceed += result["d_sys"] > result["d_sys_null_high"]
        gaps.append(result["d_sys"] - result["d_sys_null"])
        assert result["d_sys_null"] <= result["d_sys_null_high"]
    assert exceed <= 6
    # And on average the observed value sits on the null mean.
    assert abs(np.mean(gaps)) < 0.01


def test_separated_distributions_far_above_null():
    mated, nonmated = _gaussians(1.0, seed=5, n_mated=2000, n_nonmated=20_000)
    result = unlinkability(mated, nonmated, n_boot=0)
    assert result["d_sys"] > 3 * result["d_sys_null_high"]


def test_hypergeometric_null_matches_explicit_shuffles():
    # The null draws bin counts from the shuffle's exact distribution; check
    # its mean against literal label shuffles of the scores.
    mated, nonmated = _gaussians(0.3, seed=6, n_mated=150, n_nonmated=600)
    pooled = np.concatenate((mated, nonmated))
    rng = np.random.default_rng(0)
    explicit = []
    for _ in range(2000):
        perm = rng.permutation(pooled.size)
        b = bin_scores(pooled[perm[:150]], pooled[perm[150:]], 15)
        # Same pooled range, so the same edges as the unshuffled data.
        explicit.append(float(_d_sys(b.mated_counts, b.nonmated_counts, 1.0)))
    null = unlinkability(mated, nonmated, bins=15, n_null=2000, n_boot=0)
    assert null["d_sys_null"] == pytest.approx(np.mean(explicit), abs=0.005)
    assert null["d_sys_null_high"] == pytest.approx(np.quantile(explicit, 0.95), abs=0.01)


# --------------------------------------------------------------------------- bootstrap


def test_deterministic_given_seed():
    mated, nonmated = _gaussians(1.0, seed=7, n_mated=1000, n_nonmated=5000)
    subjects_m = np.arange(1000) % 50
    subjects_n = np.arange(5000) % 50
    for kwargs in ({}, {"mated_subjects": subjects_m, "nonmated_subjects": subjects_n}):
        first = unlinkability(mated, nonmated, seed=3, **kwargs)
        assert first == unlinkability(mated, nonmated, seed=3, **kwargs)
        other = unlinkability(mated, nonmated, seed=4, **kwargs)
        assert other["d_sys"] == first["d_sys"]
        assert other["d_sys_ci_low"] != first["d_sys_ci_low"]
        assert set(first) == KEYS
        assert all(type(first[k]) is float for k in KEYS - {"bins"}) and type(first["bins"]) is int


@pytest.mark.parametrize("with_subjects", [False, True])
def test_ci_contains_point_estimate(with_subjects):
    mated, nonmated = _gaussians(2.0, seed=8, n_mated=5000, n_nonmated=50_000)
    kwargs = {}
    if with_subjects:
        kwargs = {"mated_subjects": np.arange(5000) % 200, "nonmated_subjects": np.arange(50_000) % 200}
    result = unlinkability(mated, nonmated, **kwargs)
    assert result["d_sys_ci_low"] < result["d_sys"] < result["d_sys_ci_high"]
    assert result["d_sys_ci_high"] - result["d_sys_ci_low"] < 0.1


def test_one_subject_ci_collapses():
    # Every resample draws the single subject once: the full data again.
    mated, nonmated = _gaussians(1.0, seed=9, n_mated=500, n_nonmated=2000)
    result = unlinkability(mated, nonmated, mated_subjects=["s"] * 500, nonmated_subjects=["s"] * 2000)
    assert result["d_sys_ci_low"] == pytest.approx(result["d_sys"], rel=1e-12)
    assert result["d_sys_ci_high"] == pytest.approx(result["d_sys"], rel=1e-12)


def test_subject_resampling_widens_ci_for_correlated_scores():
    # 40 subjects, each contributing 50 copies of one mated and one non-mated
    # score: 40 independent units, not 2000. Resampling comparisons would see
    # 2000 and give a far narrower interval.
    rng = np.random.default_rng(10)
    mated = np.repeat(rng.normal(1.0, 1.0, 40), 50)
    nonmated = np.repeat(rng.normal(0.0, 1.0, 40), 50)
    subjects = np.repeat(np.arange(40), 50)
    per_comparison = unlinkability(mated, nonmated, bins=10, n_boot=300)
    per_subject = unlinkability(
        mated, nonmated, bins=10, n_boot=300, mated_subjects=subjects, nonmated_subjects=subjects
    )
    width = lambda r: r["d_sys_ci_high"] - r["d_sys_ci_low"]  # noqa: E731
    assert width(per_subject) > 3 * width(per_comparison)


def test_multinomial_shortcut_matches_per_comparison_clusters():
    # Without subject ids the bootstrap draws the joint (label, bin) counts
    # from a multinomial; it must agree in distribution with treating every
    # comparison as its own cluster.
    mated, nonmated = _gaussians(1.0, seed=11, n_mated=400, n_nonmated=1600)
    shortcut = unlinkability(mated, nonmated, bins=20, n_boot=2000)
    binned = bin_scores(mated, nonmated, 20)
    explicit = _bootstrap_clusters(binned, np.arange(2000), 2000, 1.0, 2000, np.random.default_rng(0))
    for column, name in enumerate(("d_sys", "linkability_max")):
        assert shortcut[f"{name}_ci_low"] == pytest.approx(np.quantile(explicit[:, column], 0.025), abs=0.01)
        assert shortcut[f"{name}_ci_high"] == pytest.approx(np.quantile(explicit[:, column], 0.975), abs=0.01)


def test_sparse_cluster_path_matches_dense(monkeypatch):
    import benchmark.metrics.unlinkability as U

    mated, nonmated = _gaussians(1.0, seed=12, n_mated=600, n_nonmated=3000)
    kwargs = {"mated_subjects": np.arange(600) % 37, "nonmated_subjects": np.arange(3000) % 37}
    dense = unlinkability(mated, nonmated, **kwargs)
    monkeypatch.setattr(U, "_DENSE_CELLS", 0)
    monkeypatch.setattr(U, "_CHUNK_CELLS", 37 * 7)  # several chunks, the last partial
    # Chunking changes the draws' grouping but not the generator stream.
    assert unlinkability(mated, nonmated, **kwargs) == pytest.approx(dense)


def test_n_boot_zero_leaves_nan_ci():
    mated, nonmated = _gaussians(1.0, seed=0, n_mated=100, n_nonmated=300)
    result = unlinkability(mated, nonmated, n_boot=0)
    assert math.isnan(result["d_sys_ci_low"]) and math.isnan(result["d_sys_ci_high"])


# --------------------------------------------------------------------------- properties


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_mated=st.integers(1, 300),
    n_nonmated=st.integers(1, 300),
    shift=st.floats(-3, 3),
    omega_low=st.floats(0.01, 10),
    factor=st.floats(1, 10),
)
def test_properties(seed, n_mated, n_nonmated, shift, omega_low, factor):
    rng = np.random.default_rng(seed)
    mated = np.round(rng.normal(shift, 1.0, n_mated), 2)  # rounding makes ties likely
    nonmated = np.round(rng.normal(0.0, 1.0, n_nonmated), 2)
    low = unlinkability(mated, nonmated, omega=omega_low, n_null=3, n_boot=5, seed=seed % 1000)
    high = unlinkability(mated, nonmated, omega=omega_low * factor, n_null=3, n_boot=5)
    for result in (low, high):
        for key in ("d_sys", "d_sys_null", "d_sys_null_high"):
            assert 0.0 <= result[key] <= 1.0
    # D<->(s) is non-decreasing in omega in every bin, hence so is D<->sys.
    assert high["d_sys"] >= low["d_sys"] - 1e-12
    # Only the bin counts matter, not the order of the scores.
    shuffled = unlinkability(rng.permutation(mated), rng.permutation(nonmated), omega=omega_low, n_boot=0)
    assert shuffled["d_sys"] == low["d_sys"]


# --------------------------------------------------------------------------- curve


def test_curve():
    mated, nonmated = _gaussians(1.0, seed=13, n_mated=2000, n_nonmated=8000)
    curve = unlinkability_curve(mated, nonmated, omega=2.0)
    assert set(curve) == {"edges", "mated_density", "nonmated_density", "d_local", "d_sys", "linkability_max", "omega"}
    edges = np.asarray(curve["edges"])
    assert edges.size == default_bins(2000) + 1
    for key in ("mated_density", "nonmated_density", "d_local"):
        assert len(curve[key]) == edges.size - 1
        assert all(type(v) is float for v in curve[key])
    for key in ("mated_density", "nonmated_density"):
        assert np.sum(np.asarray(curve[key]) * np.diff(edges)) == pytest.approx(1.0)
    local = np.asarray(curve["d_local"])
    assert np.all((local >= 0) & (local <= 1))
    # Mated scores sit high, so linkage is higher at the top of the range.
    centres = (edges[1:] + edges[:-1]) / 2
    assert local[centres > 2.0].mean() > local[centres < 0.0].mean() + 0.5
    assert curve["d_sys"] == unlinkability(mated, nonmated, omega=2.0, n_boot=0)["d_sys"]
    assert curve["d_sys"] == pytest.approx(
        np.sum(np.asarray(curve["mated_density"]) * local * np.diff(edges)), rel=1e-9
    )
    assert curve["omega"] == 2.0


# --------------------------------------------------------------------------- component


def test_component_registered_and_validated():
    assert METRICS.get("unlinkability") is UnlinkabilityMetric
    metric = UnlinkabilityMetric.from_params({"omega": 2, "bins": None, "n_null": 5, "n_boot": 10, "seed": 1})
    assert metric.get_params() == {"omega": 2, "bins": None, "n_null": 5, "n_boot": 10, "seed": 1}
    for params, name in (
        ({"omega": 0.0}, "omega"),
        ({"bins": 9}, "bins"),
        ({"bins": True}, "bins"),
        ({"n_null": 0}, "n_null"),
        ({"n_boot": -1}, "n_boot"),
        ({"seed": -1}, "seed"),
    ):
        with pytest.raises(ParamError) as info:
            UnlinkabilityMetric.from_params(params)
        assert info.value.param == name
    assert UnlinkabilityMetric._constraints["bins"].describe() == "[10, inf) or null"


def test_component_compute():
    mated, nonmated = _gaussians(1.0, seed=14, n_mated=1000, n_nonmated=4000)
    metric = UnlinkabilityMetric(n_boot=50, seed=2)
    plain = metric.compute(mated, nonmated)
    assert plain == unlinkability(mated, nonmated, n_boot=50, seed=2)
    subjects_m, subjects_n = np.arange(1000) % 30, np.arange(4000) % 30
    clustered = metric.compute_with_subjects(mated, nonmated, subjects_m, subjects_n)
    assert clustered == unlinkability(
        mated, nonmated, n_boot=50, seed=2, mated_subjects=subjects_m, nonmated_subjects=subjects_n
    )
    assert clustered["d_sys"] == plain["d_sys"] and set(clustered) == KEYS
    assert metric.curve(mated, nonmated) == unlinkability_curve(mated, nonmated)
    assert UnlinkabilityMetric(omega=3.0, bins=12).curve(mated, nonmated) == unlinkability_curve(
        mated, nonmated, omega=3.0, bins=12
    )
