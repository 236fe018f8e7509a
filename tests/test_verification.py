"""Tests of benchmark.metrics.verification: against pyeer, properties, components, input errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

# pyeer/__init__.py imports nothing, so this does not pull in pyeer.eer_info
# (which needs pkg_resources, gone from recent setuptools).
from pyeer.eer_stats import calculate_roc, get_decidability_value, get_eer_values, get_fmr_op

from benchmark.core.component import ParamError
from benchmark.core.registry import METRICS
from benchmark.metrics import verification as metrics
from benchmark.metrics.verification import compute_all, d_prime, det_curve, eer, fnmr_at_fmr, score_histogram

TARGETS = (0.1, 0.01, 0.001, 0.0001, 0.0)


def _gaussian(rng, n_gen, n_imp, shift=2.0):
    return rng.normal(shift, 1.0, n_gen), rng.normal(0.0, 1.0, n_imp)


def _make_scores(seed: int, kind: str, n_gen: int, n_imp: int):
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        return _gaussian(rng, n_gen, n_imp)
    if kind == "rounded":  # many ties, both within and across the two sets
        gen, imp = _gaussian(rng, n_gen, n_imp, shift=1.5)
        return np.round(gen * 4) / 4, np.round(imp * 4) / 4
    if kind == "integer":  # very few distinct levels
        return rng.integers(3, 11, n_gen).astype(float), rng.integers(0, 7, n_imp).astype(float)
    if kind == "binary":
        return rng.integers(0, 2, n_gen).astype(float), (rng.random(n_imp) < 0.2).astype(float)
    if kind == "same":  # no separation at all
        return rng.normal(0, 1, n_gen), rng.normal(0, 1, n_imp)
    if kind == "inverted":  # genuine scores mostly below impostor ones
        gen, imp = _gaussian(rng, n_gen, n_imp, shift=-1.0)
        return gen, imp
    if kind == "constant":  # every score equal: pyeer finds no crossing
        return np.full(n_gen, 0.5), np.full(n_imp, 0.5)
    raise AssertionError(kind)


PYEER_CASES = [
    (0, "gaussian", 50, 500),
    (1, "gaussian", 200, 2000),
    (2, "gaussian", 1000, 10000),
    (3, "gaussian", 3000, 30000),
    (4, "gaussian", 3, 7),
    (5, "gaussian", 1, 1),
    (6, "rounded", 300, 3000),
    (7, "rounded", 20, 40),
    (8, "integer", 500, 5000),
    (9, "binary", 100, 1000),
    (10, "same", 400, 400),
    (11, "inverted", 100, 300),
    (12, "constant", 5, 9),
]


def _pyeer_roc(gen, imp):
    thresholds, fmr, fnmr = calculate_roc(gen, imp)
    return np.asarray(thresholds), np.asarray(fmr, dtype=float), np.asarray(fnmr, dtype=float)


@pytest.mark.parametrize(("seed", "kind", "n_gen", "n_imp"), PYEER_CASES)
def test_roc_matches_pyeer(seed, kind, n_gen, n_imp):
    """Our operating points are pyeer's, plus the reject-all point pyeer omits."""
    gen, imp = _make_scores(seed, kind, n_gen, n_imp)
    thresholds, fmr, fnmr = _pyeer_roc(gen, imp)
    roc = metrics._roc(gen, imp)
    np.testing.assert_array_equal(roc.thresholds[:-1], thresholds)
    np.testing.assert_array_equal(roc.fmr[:-1], fmr)
    np.testing.assert_array_equal(roc.fnmr[:-1], fnmr)
    assert (roc.fmr[-1], roc.fnmr[-1]) == (0.0, 1.0)
    assert roc.thresholds[-1] > max(gen.max(), imp.max())


@pytest.mark.parametrize(("seed", "kind", "n_gen", "n_imp"), PYEER_CASES)
def test_eer_within_pyeer_interval(seed, kind, n_gen, n_imp):
    """Our EER lies in pyeer's [EER_low, EER_high], the ROC's own resolution there."""
    gen, imp = _make_scores(seed, kind, n_gen, n_imp)
    _, fmr, fnmr = _pyeer_roc(gen, imp)
    # pyeer's ROC stops at the largest score; with the reject-all point
    # (FMR 0, FNMR 1) added, its crossing search always succeeds instead of
    # warning and returning 1 (the "constant" case).
    _, low, high, _ = get_eer_values(np.append(fmr, 0.0), np.append(fnmr, 1.0))
    # No extra tolerance: the containment holds exactly, not just up to rounding.
    assert low <= eer(gen, imp) <= high


@pytest.mark.parametrize(("seed", "kind", "n_gen", "n_imp"), PYEER_CASES)
@pytest.mark.parametrize("target", TARGETS)
def test_fnmr_at_fmr_against_pyeer(seed, kind, n_gen, n_imp, target):
    gen, imp = _make_scores(seed, kind, n_gen, n_imp)
    thresholds, fmr, fnmr = _pyeer_roc(gen, imp)
    ours_fnmr, ours_threshold = fnmr_at_fmr(gen, imp, target)

    # pyeer's closest operating point (its FNMR@FMR). When it respects the
    # target it is ours exactly; when it overshoots the target FMR it accepts
    # more, so its FNMR can only be lower.
    index, pyeer_fnmr = get_fmr_op(fmr, fnmr, target)
    if fmr[index] <= target:
        assert (ours_fnmr, ours_threshold) == (pyeer_fnmr, thresholds[index])
    else:
        assert pyeer_fnmr <= ours_fnmr

    # Ours is pyeer's first operating point that respects the target, or
    # reject-all when none does.
    allowed = np.flatnonzero(fmr <= target)
    if allowed.size:
        assert (ours_fnmr, ours_threshold) == (fnmr[allowed[0]], thresholds[allowed[0]])
    else:
        assert ours_fnmr == 1.0
        assert ours_threshold > max(gen.max(), imp.max())


@pytest.mark.parametrize(("seed", "kind", "n_gen", "n_imp"), PYEER_CASES)
def test_d_prime_matches_pyeer(seed, kind, n_gen, n_imp):
    gen, imp = _make_scores(seed, kind, n_gen, n_imp)
    gstd, istd = np.std(gen), np.std(imp)
    if gstd == 0 and istd == 0:  # pyeer returns a conventional 1 there
        assert d_prime(gen, imp) == (math.inf if gen.mean() != imp.mean() else 0.0)
    else:
        expected = get_decidability_value(gen.mean(), gstd, imp.mean(), istd)
        assert d_prime(gen, imp) == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------- properties

_score = st.one_of(
    st.floats(-100, 100, allow_nan=False, allow_infinity=False),
    st.integers(-4, 4).map(float),  # forces ties
)
_scores = st.lists(_score, min_size=1, max_size=60).map(np.array)
_target = st.floats(0.0, 1.0)


@settings(max_examples=200, deadline=None)
@given(_scores, _scores)
def test_eer_in_unit_interval(gen, imp):
    assert 0.0 <= eer(gen, imp) <= 1.0


@settings(max_examples=100, deadline=None)
@given(_scores, _scores, st.floats(0.001, 10))
def test_perfect_separation(imp, spread, gap):
    gen = imp.max() + gap + np.abs(spread)
    assert eer(gen, imp) == 0.0
    assert eer(imp, gen) == 1.0
    assert fnmr_at_fmr(gen, imp, 0.0)[0] == 0.0


@settings(max_examples=300, deadline=None)
@given(_scores, _scores, _target)
def test_operating_point_from_raw_scores(gen, imp, target):
    fnmr, threshold = fnmr_at_fmr(gen, imp, target)
    assert np.count_nonzero(imp >= threshold) / imp.size <= target
    assert fnmr == np.count_nonzero(gen < threshold) / gen.size
    # Lowest: every observed score below the threshold lets too many impostors in.
    everything = np.concatenate((gen, imp))
    lower = np.unique(everything[everything < threshold])
    fmr_lower = np.count_nonzero(imp[None, :] >= lower[:, None], axis=1) / imp.size
    assert np.all(fmr_lower > target)
    # Above every score only when no observed score meets the target.
    if threshold > everything.max():
        assert fnmr == 1.0
        assert np.count_nonzero(imp >= everything.max()) / imp.size > target


@settings(max_examples=200, deadline=None)
@given(_scores, _scores, st.lists(_target, min_size=2, max_size=6))
def test_fnmr_monotone_in_target(gen, imp, targets):
    targets = sorted(targets)
    points = [fnmr_at_fmr(gen, imp, t) for t in targets]
    fnmrs = [p[0] for p in points]
    thresholds = [p[1] for p in points]
    assert fnmrs == sorted(fnmrs, reverse=True)
    assert thresholds == sorted(thresholds, reverse=True)


# --------------------------------------------------------------------------- compute_all


def test_compute_all_keys_and_types():
    gen, imp = _make_scores(0, "gaussian", 100, 1000)
    result = compute_all(gen, imp)
    assert list(result) == [
        "eer",
        "fnmr_at_fmr_0.01",
        "threshold_at_fmr_0.01",
        "fnmr_at_fmr_0.001",
        "threshold_at_fmr_0.001",
        "fnmr_at_fmr_0.0001",
        "threshold_at_fmr_0.0001",
        "d_prime",
        "n_genuine",
        "n_impostor",
    ]
    assert (result["n_genuine"], result["n_impostor"]) == (100, 1000)
    assert type(result["n_genuine"]) is int and type(result["n_impostor"]) is int
    for key, value in result.items():
        if not key.startswith("n_"):
            assert type(value) is float, key
    assert result["eer"] == eer(gen, imp)
    assert (result["fnmr_at_fmr_0.001"], result["threshold_at_fmr_0.001"]) == fnmr_at_fmr(gen, imp, 0.001)
    assert result["d_prime"] == d_prime(gen, imp)


def test_target_key_is_exact_and_distinct():
    assert [metrics.target_key(t) for t in (0.01, 0.001, 0.0001, 1e-5)] == ["0.01", "0.001", "0.0001", "1e-05"]
    assert metrics.target_key(np.float64(0.001)) == "0.001"
    assert metrics.target_key(0.00123456789) != metrics.target_key(0.0012345679)


# --------------------------------------------------------------------------- curves


def test_det_curve_points():
    gen, imp = _make_scores(2, "gaussian", 1000, 10000)
    curve = det_curve(gen, imp, max_points=50)
    fmr, fnmr = np.array(curve["fmr"]), np.array(curve["fnmr"])
    assert 2 <= fmr.size <= 50 and fmr.size == fnmr.size
    assert all(type(v) is float for v in curve["fmr"] + curve["fnmr"])
    assert np.all((fmr > 0) & (fmr < 1) & (fnmr > 0) & (fnmr < 1))
    assert np.all(np.diff(fmr) >= 0) and np.all(np.diff(fnmr) <= 0)
    # Both ends survive thinning, clipped half a count inside (0, 1).
    assert (fmr[0], fnmr[0]) == (0.5 / imp.size, 1 - 0.5 / gen.size)
    assert (fmr[-1], fnmr[-1]) == (1 - 0.5 / imp.size, 0.5 / gen.size)


def test_det_curve_keeps_every_point_when_few():
    gen, imp = np.array([0.2, 0.6, 0.9]), np.array([0.1, 0.3, 0.5, 0.7])
    curve = det_curve(gen, imp, max_points=200)
    # 7 distinct scores + reject-all = 8 operating points, none repeated.
    assert len(curve["fmr"]) == 8


@settings(max_examples=100, deadline=None)
@given(_scores, _scores, st.integers(2, 30))
def test_det_curve_bounded(gen, imp, max_points):
    curve = det_curve(gen, imp, max_points=max_points)
    assert 1 <= len(curve["fmr"]) <= max_points
    assert all(0 < v < 1 for v in curve["fmr"] + curve["fnmr"])


def test_score_histogram_densities():
    gen, imp = _make_scores(1, "gaussian", 200, 2000)
    hist = score_histogram(gen, imp, bins=20)
    edges = np.array(hist["edges"])
    assert edges.size == 21 and len(hist["genuine"]) == len(hist["impostor"]) == 20
    assert edges[0] == min(gen.min(), imp.min()) and edges[-1] == max(gen.max(), imp.max())
    widths = np.diff(edges)
    for name in ("genuine", "impostor"):
        assert all(type(v) is float for v in hist[name])
        assert float(np.sum(np.array(hist[name]) * widths)) == pytest.approx(1.0)


def test_score_histogram_constant_scores():
    hist = score_histogram([1.0, 1.0], [1.0], bins=4)
    assert len(hist["edges"]) == 5 and sum(hist["genuine"]) > 0


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("genuine", "impostor", "message"),
    [
        ([], [0.1], "genuine scores are empty"),
        ([0.1], np.array([]), "impostor scores are empty"),
        ([[0.1, 0.2]], [0.1], "1-D"),
        (0.5, [0.1], "1-D"),
        ([0.1, float("nan")], [0.1], "non-finite"),
        ([0.1], [float("inf")], "non-finite"),
        (["a"], [0.1], "not numeric"),
    ],
)
def test_bad_scores(genuine, impostor, message):
    for fn in (eer, d_prime, compute_all, det_curve, score_histogram, lambda g, i: fnmr_at_fmr(g, i, 0.01)):
        with pytest.raises(ValueError, match=message) as info:
            fn(genuine, impostor)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("target", [-0.1, 1.5, float("nan"), "0.01", True, None])
def test_bad_target(target):
    with pytest.raises(ValueError, match="target FMR"):
        fnmr_at_fmr([0.5], [0.1], target)
    with pytest.raises(ValueError, match="target FMR"):
        compute_all([0.5], [0.1], targets=(0.01, target))


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"max_points": 1}, "max_points"), ({"max_points": 2.5}, "max_points")]
)
def test_bad_det_points(kwargs, message):
    with pytest.raises(ValueError, match=message):
        det_curve([0.5], [0.1], **kwargs)


@pytest.mark.parametrize("bins", [0, 3.0, True])
def test_bad_bins(bins):
    with pytest.raises(ValueError, match="bins"):
        score_histogram([0.5], [0.1], bins=bins)


# --------------------------------------------------------------------------- components


def test_metrics_registered():
    assert {"eer", "fnmr_at_fmr", "d_prime"} <= set(METRICS.names())
    assert METRICS.get("eer").param_names() == []
    assert METRICS.get("fnmr_at_fmr").param_names() == ["targets"]


def test_components_match_compute_all():
    gen, imp = _make_scores(8, "integer", 300, 3000)
    expected = compute_all(gen, imp, targets=(0.05, 0.001))
    merged = {}
    for name, params in [("eer", {}), ("fnmr_at_fmr", {"targets": [0.05, 0.001]}), ("d_prime", {})]:
        part = METRICS.get(name).from_params(params).compute(gen, imp)
        assert set(part).isdisjoint(merged)
        merged.update(part)
    assert merged == {k: v for k, v in expected.items() if not k.startswith("n_")}


def test_fnmr_at_fmr_default_targets():
    component = METRICS.get("fnmr_at_fmr").from_params({})
    gen, imp = _make_scores(0, "gaussian", 50, 500)
    keys = set(component.compute(gen, imp))
    assert keys == {f"{p}_at_fmr_{t}" for p in ("fnmr", "threshold") for t in ("0.01", "0.001", "0.0001")}


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ([0.0], "not in"),
        ([0.01, 1.0], "not in"),
        ([True], "not a finite number"),
        (["0.01"], "not a finite number"),
        (0.01, "is not list or tuple"),
        ([], "is empty"),
        ([0.01, 0.01], "duplicate"),
    ],
)
def test_fnmr_at_fmr_bad_targets(targets, message):
    cls = METRICS.get("fnmr_at_fmr")
    with pytest.raises(ParamError, match=message) as info:
        cls.from_params({"targets": targets})
    assert info.value.param == "targets"
    # Built directly, the component still refuses to compute.
    with pytest.raises(ParamError):
        cls(targets=targets).compute(np.array([0.5]), np.array([0.1]))


def test_unknown_metric_param():
    with pytest.raises(ParamError, match="unknown parameter"):
        METRICS.get("eer").from_params({"targets": [0.1]})


def test_component_bad_scores():
    with pytest.raises(ValueError, match="empty"):
        METRICS.get("eer")().compute(np.array([]), np.array([0.1]))
