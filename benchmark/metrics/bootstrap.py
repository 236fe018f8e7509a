"""Cluster (subject) bootstrap confidence intervals for verification metrics.

Comparisons that share a subject are not independent: one subject with poor
images drags all of its mated scores down together. Resampling individual
comparisons therefore understates the uncertainty of every figure computed
from them. Here the resampling unit is a *cluster* of comparisons, by
convention the **probe subject** of each comparison (each comparison belongs
to exactly one cluster, so a cluster is the set of comparisons its subject
was probed in). A bootstrap resample draws as many clusters as there are,
uniformly with replacement, and takes *all* comparisons of each drawn cluster,
repeated by how often the cluster was drawn.

Confidence intervals are Efron percentile intervals: the ``alpha / 2`` and
``1 - alpha / 2`` quantiles (linear interpolation) of the statistic over the
resamples. A resample in which a statistic is undefined is dropped *for that
statistic only*: a resample with no mated or no non-mated comparison is
dropped for every statistic (the statistic is not even called), and a value
that comes back ``None`` or non-finite is dropped for its key. When no
resample is left for a key its interval is ``(nan, nan)``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "cluster_codes",
    "resample_multiplicities",
    "percentile_interval",
    "paired_delta_ci",
    "subject_bootstrap",
    "cluster_bootstrap",
    "add_ci",
]

Stat = Callable[[np.ndarray, np.ndarray], Mapping[str, Any]]


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_alpha(alpha: Any) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}")
    return float(alpha)


def cluster_codes(clusters: Sequence[Any] | np.ndarray, n: int, name: str = "clusters") -> tuple[np.ndarray, int]:
    """Dense integer codes ``0 .. n_clusters - 1`` for per-comparison cluster ids.

    Args:
        clusters: One cluster id per comparison (any sortable ids: ints, strings).
        n: The expected number of comparisons.
        name: Name used in error messages.

    Returns:
        ``(codes, n_clusters)``: an ``intp`` array of length ``n`` and the
        number of distinct ids.

    Raises:
        ValueError: if ``clusters`` is not 1-D of length ``n``.
    """
    arr = np.asarray(clusters)
    if arr.ndim != 1 or arr.size != n:
        raise ValueError(f"{name} must be 1-D with one id per comparison ({n}), got shape {arr.shape}")
    if n == 0:
        return np.zeros(0, dtype=np.intp), 0
    uniques, codes = np.unique(arr, return_inverse=True)
    return codes.ravel().astype(np.intp, copy=False), int(uniques.size)


def resample_multiplicities(rng: np.random.Generator, n_clusters: int, size: int) -> np.ndarray:
    """How often each cluster is drawn, for ``size`` bootstrap resamples.

    Each resample draws ``n_clusters`` clusters uniformly with replacement;
    row ``r`` counts the draws of each cluster in resample ``r`` (each row
    sums to ``n_clusters``).

    Args:
        rng: The random generator (advanced in place).
        n_clusters: Number of clusters (>= 1).
        size: Number of resamples.

    Returns:
        An ``int64`` array of shape ``(size, n_clusters)``.
    """
    draws = rng.integers(0, n_clusters, size=(size, n_clusters))
    # Offset row r by r * n_clusters so one bincount counts every row at once.
    draws += np.arange(size, dtype=draws.dtype)[:, None] * n_clusters
    counts = np.bincount(draws.ravel(), minlength=size * n_clusters)
    return counts.reshape(size, n_clusters)


def percentile_interval(values: Sequence[float] | np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    """Efron percentile interval of bootstrap replicates.

    Args:
        values: Finite bootstrap replicates (may be empty).
        alpha: One minus the coverage, in (0, 1).

    Returns:
        ``(low, high)`` as Python floats; ``(nan, nan)`` when ``values`` is empty.
    """
    level = _check_alpha(alpha)
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0:
        return math.nan, math.nan
    low, high = np.quantile(arr, [level / 2.0, 1.0 - level / 2.0])
    return float(low), float(high)


def _finite_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))


def subject_bootstrap(
    scores: Sequence[float] | np.ndarray,
    mated: Sequence[bool] | np.ndarray,
    clusters: Sequence[Any] | np.ndarray,
    stat: Stat,
    *,
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, tuple[float, float]]:
    """Percentile confidence intervals of ``stat`` under cluster resampling.

    See the module docstring for the resampling scheme and for how undefined
    resamples are dropped. The statistic is called on the full data once, to
    fix the keys, and then once per usable resample; results are identical
    for identical inputs and ``seed``.

    Args:
        scores: Comparison scores (1-D, finite).
        mated: Per comparison, True for a mated (genuine) comparison.
        clusters: Per comparison, its cluster id (the probe subject).
        stat: ``stat(genuine, impostor) -> {key: value}``, e.g.
            :func:`benchmark.metrics.verification.compute_all`. Keys whose value on the
            full data is not a finite real number get no interval.
        n_boot: Number of resamples (>= 0; 0 gives ``(nan, nan)`` intervals).
        seed: Seed of the resampling generator.
        alpha: One minus the coverage of the intervals, in (0, 1).

    Returns:
        ``{key: (low, high)}`` for each numeric key of ``stat``'s result.

    Raises:
        ValueError: on mismatched lengths, non-finite scores, bad parameters,
            or data without a mated or without a non-mated comparison.
    """
    boots = _check_int(n_boot, "n_boot", 0)
    level = _check_alpha(alpha)
    _check_int(seed, "seed", 0)
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1 or not np.all(np.isfinite(values)):
        raise ValueError("scores must be a 1-D array of finite numbers")
    labels = np.asarray(mated)
    if labels.shape != values.shape or labels.dtype != np.bool_:
        raise ValueError(f"mated must be a boolean array of shape {values.shape}, got {labels.dtype} {labels.shape}")
    codes, n_clusters = cluster_codes(clusters, values.size)
    if not labels.any() or labels.all():
        raise ValueError("the data need at least one mated and one non-mated comparison")

    keys = [k for k, v in stat(values[labels], values[~labels]).items() if _finite_number(v)]
    replicates: dict[str, list[float]] = {k: [] for k in keys}
    rng = np.random.default_rng(seed)
    positions = np.arange(values.size)
    for _ in range(boots):
        weight = resample_multiplicities(rng, n_clusters, 1)[0]
        # Every comparison of a drawn cluster, repeated by the cluster's draw
        # count. Order does not matter to a statistic of two score sets.
        index = np.repeat(positions, weight[codes])
        chosen, is_mated = values[index], labels[index]
        if not is_mated.any() or is_mated.all():
            continue
        result = stat(chosen[is_mated], chosen[~is_mated])
        for key in keys:
            value = result.get(key)
            if value is not None and _finite_number(value):
                replicates[key].append(float(value))
    return {key: percentile_interval(replicates[key], level) for key in keys}


def cluster_bootstrap(
    groups: Sequence[np.ndarray],
    stat: Callable[[list[np.ndarray]], Mapping[str, Any]],
    *,
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, tuple[float, float]]:
    """Percentile CIs of a statistic of several arrays resampled by the same clusters.

    The clusters are the ids found in any group. Each resample draws as many
    clusters with replacement (as :func:`subject_bootstrap`) and gives
    ``stat`` one index array per group:
    every element of a drawn cluster, repeated by its draw count. All groups
    share the draw, so a statistic that combines arrays (attacked scores
    against the threshold set by impostor scores of the same subjects, say)
    is resampled as one experiment. Keys whose value is missing or not finite
    in a resample are dropped from it (see the module docstring).

    Args:
        groups: Per group, the cluster id (an integer, e.g. a subject code) of each element.
        stat: ``stat([index into group 0, index into group 1, ...]) -> {key: value}``.
        n_boot: Number of resamples (>= 0; 0 gives no key).
        seed: Seed of the resampling generator.
        alpha: One minus the coverage of the intervals, in (0, 1).

    Returns:
        ``{key: (low, high)}`` for every key ``stat`` returned a finite number for.
    """
    boots = _check_int(n_boot, "n_boot", 0)
    level = _check_alpha(alpha)
    _check_int(seed, "seed", 0)
    ids = [np.asarray(g, dtype=np.int64).ravel() for g in groups]
    present = np.unique(np.concatenate(ids)) if ids else np.zeros(0, np.int64)
    n_clusters = int(present.size)
    codes = [np.searchsorted(present, g).astype(np.intp) for g in ids]
    positions = [np.arange(c.size) for c in codes]
    replicates: dict[str, list[float]] = {}
    rng = np.random.default_rng(seed)
    for _ in range(boots if n_clusters > 0 else 0):
        weight = resample_multiplicities(rng, n_clusters, 1)[0]
        index = [np.repeat(pos, weight[c]) for pos, c in zip(positions, codes)]
        for key, value in stat(index).items():
            if _finite_number(value):
                replicates.setdefault(key, []).append(float(value))
    return {key: percentile_interval(values, level) for key, values in replicates.items()}


def add_ci(metrics: Mapping[str, Any], cis: Mapping[str, tuple[float, float]]) -> dict[str, Any]:
    """A copy of ``metrics`` with ``<key>_ci_low`` / ``<key>_ci_high`` added.

    Every key of ``cis`` gets its two bounds, whether or not ``metrics`` has
    the key itself; a non-finite bound becomes ``None`` (JSON has no NaN, and
    the report shows ``None`` as undefined).

    Args:
        metrics: Metric values, e.g. from :func:`benchmark.metrics.verification.compute_all`.
        cis: Intervals, e.g. from :func:`subject_bootstrap`.

    Returns:
        A new dict; ``metrics`` is not modified.
    """
    out = dict(metrics)
    for key, (low, high) in cis.items():
        out[f"{key}_ci_low"] = float(low) if _finite_number(low) else None
        out[f"{key}_ci_high"] = float(high) if _finite_number(high) else None
    return out


def paired_delta_ci(
    scores: np.ndarray,
    reference_scores: np.ndarray,
    mated: np.ndarray,
    clusters: Sequence[Any] | np.ndarray,
    stat: Callable[[np.ndarray, np.ndarray], float],
    *,
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """CI of ``stat(view) - stat(reference)`` over the same comparisons.

    Both score arrays cover the same comparisons (same order, same labels),
    and each resample draws the same clusters for both, so a view identical
    to its reference gets the interval (0, 0) rather than the reference's
    own sampling spread.
    """
    boots = _check_int(n_boot, "n_boot", 0)
    a = np.asarray(scores, dtype=np.float64)
    b = np.asarray(reference_scores, dtype=np.float64)
    labels = np.asarray(mated, dtype=bool)
    if a.shape != b.shape or a.shape != labels.shape:
        raise ValueError("scores, reference_scores and mated must have one shape")
    codes, n_clusters = cluster_codes(clusters, a.size)
    rng = np.random.default_rng(seed)
    positions = np.arange(a.size)
    deltas: list[float] = []
    for _ in range(boots):
        index = np.repeat(positions, resample_multiplicities(rng, n_clusters, 1)[0][codes])
        m = labels[index]
        if not m.any() or m.all():
            continue
        d = stat(a[index][m], a[index][~m]) - stat(b[index][m], b[index][~m])
        if _finite_number(d):
            deltas.append(float(d))
    return percentile_interval(deltas, alpha)
