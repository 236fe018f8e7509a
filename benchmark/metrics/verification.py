"""Biometric verification metrics over genuine (mated) and impostor scores.

Scores are similarities: a comparison is *accepted* iff ``score >= threshold``,
so ties at the threshold are accepted. For a threshold ``t``

* FMR(t)  = #{impostor >= t} / n_impostor  (false match rate),
* FNMR(t) = #{genuine  <  t} / n_genuine   (false non-match rate).

Every metric derives from one empirical ROC built by sorting the scores once
(O(n log n), no Python loop over thresholds). Its operating points are the
distinct observed scores, in ascending order, followed by one *reject-all*
point just above the largest score (FMR = 0, FNMR = 1). The observed-score grid
is the one pyeer and scikit-learn use; the extra point makes an FMR of 0
reachable even when the largest score is an impostor score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from benchmark.core.component import InstanceOf, Interval, Metric, ParamError
from benchmark.core.registry import METRICS

__all__ = [
    "DEFAULT_TARGETS",
    "eer",
    "fnmr_at_fmr",
    "det_curve",
    "d_prime",
    "score_histogram",
    "compute_all",
    "target_key",
    "EERMetric",
    "FNMRAtFMRMetric",
    "DPrimeMetric",
]

DEFAULT_TARGETS: tuple[float, ...] = (0.01, 0.001, 0.0001)


class _Roc(NamedTuple):
    """Empirical ROC: ascending thresholds with FMR/FNMR at each."""

    thresholds: np.ndarray
    fmr: np.ndarray  # non-increasing
    fnmr: np.ndarray  # non-decreasing
    n_genuine: int
    n_impostor: int


# --------------------------------------------------------------------------- input checks


def _as_scores(values: Any, name: str) -> np.ndarray:
    """``values`` as a non-empty, finite, 1-D float64 array, else ValueError."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} scores are not numeric: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} scores must be a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} scores are empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} scores contain {int(np.sum(~np.isfinite(arr)))} non-finite value(s)")
    return arr


def _check_target(target: Any) -> float:
    if isinstance(target, bool) or not isinstance(target, (int, float, np.integer, np.floating)):
        raise ValueError(f"target FMR must be a number in [0, 1], got {target!r}")
    value = float(target)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"target FMR must be in [0, 1], got {target!r}")
    return value


def _check_count(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------- core


def _roc(genuine: np.ndarray, impostor: np.ndarray) -> _Roc:
    """The empirical ROC of validated score arrays (see the module docstring)."""
    gen = np.sort(genuine)
    imp = np.sort(impostor)
    stacked = np.concatenate((gen, imp))
    # Two sorted runs: a stable (timsort) argsort merges them in linear time,
    # and its indices say which scores are genuine.
    order = np.argsort(stacked, kind="stable")
    merged = stacked[order]
    is_genuine = order < gen.size
    first = np.flatnonzero(np.concatenate(([True], merged[1:] != merged[:-1])))
    # Scores below the first occurrence of each distinct value.
    genuine_below: np.ndarray = (np.cumsum(is_genuine) - is_genuine)[first]
    impostor_below = first - genuine_below

    observed = merged[first]
    thresholds = np.append(observed, np.nextafter(observed[-1], np.inf))
    false_non_match = np.append(genuine_below, gen.size)
    false_match = np.append(imp.size - impostor_below, 0)
    return _Roc(
        thresholds=thresholds,
        fmr=false_match / imp.size,
        fnmr=false_non_match / gen.size,
        n_genuine=int(gen.size),
        n_impostor=int(imp.size),
    )


def _eer_from_roc(roc: _Roc) -> float:
    """EER where the ROC, linear between operating points, crosses FMR = FNMR.

    ``fmr - fnmr`` is non-increasing, 1 at the lowest threshold and -1 at the
    reject-all point, so the first index ``k`` with ``fmr - fnmr <= 0`` exists
    and ``k >= 1``. The crossing on the segment (k-1, k) lies in
    ``[max(fnmr[k-1], fmr[k]), min(fmr[k-1], fnmr[k])]``, which is inside the
    FVC2000 interval [EER_low, EER_high] at either end point (the interval
    pyeer reports), so this EER never disagrees with that convention.
    """
    diff = roc.fmr - roc.fnmr
    k = int(np.searchsorted(-diff, 0.0, side="left"))
    if diff[k] == 0.0:
        return float(roc.fmr[k])
    before, after = diff[k - 1], diff[k]
    weight = before / (before - after)
    value = roc.fmr[k - 1] + weight * (roc.fmr[k] - roc.fmr[k - 1])
    # Rounding may leave the exact bracket by an ulp; keep the guarantee above.
    low = max(roc.fnmr[k - 1], roc.fmr[k])
    high = min(roc.fmr[k - 1], roc.fnmr[k])
    return float(min(max(value, low), high))


def _operating_point(roc: _Roc, target: float) -> tuple[float, float]:
    """(FNMR, threshold) at the lowest ROC threshold with FMR <= target."""
    # fmr is non-increasing and ends at 0, so such an index always exists.
    k = int(np.searchsorted(-roc.fmr, -target, side="left"))
    return float(roc.fnmr[k]), float(roc.thresholds[k])


def _d_prime(genuine: np.ndarray, impostor: np.ndarray) -> float:
    spread = math.sqrt((float(np.var(genuine)) + float(np.var(impostor))) / 2.0)
    distance = abs(float(np.mean(genuine)) - float(np.mean(impostor)))
    if spread == 0.0:
        return math.inf if distance > 0.0 else 0.0
    return distance / spread


# --------------------------------------------------------------------------- public API


def eer(genuine: Sequence[float] | np.ndarray, impostor: Sequence[float] | np.ndarray) -> float:
    """Equal error rate.

    The value where the empirical ROC, joined linearly between consecutive
    operating points, crosses FMR = FNMR. It always lies inside the FVC2000
    interval [EER_low, EER_high] (Maio et al., 2002) that pyeer reports; unlike
    that interval's midpoint it does not jump when one score moves across
    another. Perfectly separated scores give 0.0, perfectly inverted ones 1.0.

    Args:
        genuine: Mated comparison scores (1-D, finite, non-empty).
        impostor: Non-mated comparison scores (1-D, finite, non-empty).

    Returns:
        The EER in [0, 1].

    Raises:
        ValueError: if either score set is not a non-empty finite 1-D array.
    """
    gen, imp = _as_scores(genuine, "genuine"), _as_scores(impostor, "impostor")
    return _eer_from_roc(_roc(gen, imp))


def fnmr_at_fmr(
    genuine: Sequence[float] | np.ndarray,
    impostor: Sequence[float] | np.ndarray,
    target: float,
) -> tuple[float, float]:
    """FNMR at the lowest threshold whose FMR does not exceed ``target``.

    Ties at the threshold are accepted, so the returned threshold is strictly
    above every impostor score that would push the FMR over ``target``; it is
    the smallest observed score that satisfies the constraint, and recomputing
    ``mean(impostor >= threshold)`` from the raw scores gives at most
    ``target``. Any threshold between the offending impostor score and this
    one gives the same FMR and FNMR on these scores.

    When no observed score satisfies the constraint (the largest score is an
    impostor score and the ties there alone exceed ``target``), the threshold
    is the next float above the largest score: everything is rejected, so
    FNMR = 1.0 and FMR = 0. With fewer than ``1 / target`` impostors the only
    attainable FMR <= target is 0; the result is then exact for these scores
    but says little about the true rate at ``target`` (by the rule of three,
    about ``3 / target`` impostors are needed for that).

    Args:
        genuine: Mated comparison scores (1-D, finite, non-empty).
        impostor: Non-mated comparison scores (1-D, finite, non-empty).
        target: The FMR not to exceed, in [0, 1].

    Returns:
        ``(fnmr, threshold)`` as Python floats.

    Raises:
        ValueError: on invalid scores or a target outside [0, 1].
    """
    value = _check_target(target)
    gen, imp = _as_scores(genuine, "genuine"), _as_scores(impostor, "impostor")
    return _operating_point(_roc(gen, imp), value)


def det_curve(
    genuine: Sequence[float] | np.ndarray,
    impostor: Sequence[float] | np.ndarray,
    max_points: int = 200,
) -> dict[str, list[float]]:
    """Points of the DET curve, ready for probit (normal-deviate) axes.

    Rates of exactly 0 or 1 have no probit value, so each rate is clipped to
    half a count from the ends (``[0.5 / n, 1 - 0.5 / n]`` with ``n`` the size
    of its score set): the curve's ends stay visible, one half-step beyond the
    smallest non-zero rate the data can show. Repeated points are dropped, and
    when more than ``max_points`` remain they are thinned to points evenly
    spaced along the curve's length in probit space, keeping both ends.

    Args:
        genuine: Mated comparison scores (1-D, finite, non-empty).
        impostor: Non-mated comparison scores (1-D, finite, non-empty).
        max_points: Upper bound on the number of points returned (>= 2).

    Returns:
        ``{"fmr": [...], "fnmr": [...]}``, Python floats, ordered by
        decreasing threshold (FMR ascending, FNMR descending).

    Raises:
        ValueError: on invalid scores or ``max_points``.
    """
    limit = _check_count(max_points, "max_points", 2)
    gen, imp = _as_scores(genuine, "genuine"), _as_scores(impostor, "impostor")
    roc = _roc(gen, imp)
    fmr_floor, fnmr_floor = 0.5 / roc.n_impostor, 0.5 / roc.n_genuine
    fmr = np.clip(roc.fmr[::-1], fmr_floor, 1.0 - fmr_floor)
    fnmr = np.clip(roc.fnmr[::-1], fnmr_floor, 1.0 - fnmr_floor)

    changed = np.ones(fmr.size, dtype=bool)
    changed[1:] = (fmr[1:] != fmr[:-1]) | (fnmr[1:] != fnmr[:-1])
    fmr, fnmr = fmr[changed], fnmr[changed]

    if fmr.size > limit:
        # Imported here: scipy.special costs ~0.2 s to import, and a warm run
        # (metric rows cached) never thins a curve.
        from scipy.special import ndtri

        x, y = ndtri(fmr), ndtri(fnmr)
        length = np.concatenate(([0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))))
        wanted = np.linspace(0.0, length[-1], limit)
        index = np.unique(np.minimum(np.searchsorted(length, wanted), fmr.size - 1))
        # wanted[0] = 0 keeps the first point; rounding in the cumulative sum
        # could make the last target land short of the end, so pin it.
        index[-1] = fmr.size - 1
        fmr, fnmr = fmr[index], fnmr[index]
    return {"fmr": fmr.tolist(), "fnmr": fnmr.tolist()}


def d_prime(genuine: Sequence[float] | np.ndarray, impostor: Sequence[float] | np.ndarray) -> float:
    """Decidability index d' = |mu_g - mu_i| / sqrt((var_g + var_i) / 2).

    Variances are population variances (ddof=0), as in pyeer. When both
    variances are zero the index is ``inf`` if the means differ and 0.0 if
    they do not.

    Raises:
        ValueError: on invalid scores.
    """
    gen, imp = _as_scores(genuine, "genuine"), _as_scores(impostor, "impostor")
    return _d_prime(gen, imp)


def score_histogram(
    genuine: Sequence[float] | np.ndarray,
    impostor: Sequence[float] | np.ndarray,
    bins: int = 50,
) -> dict[str, list[float]]:
    """Density histograms of both score sets over shared bin edges.

    Args:
        genuine: Mated comparison scores (1-D, finite, non-empty).
        impostor: Non-mated comparison scores (1-D, finite, non-empty).
        bins: Number of equal-width bins spanning all scores (>= 1).

    Returns:
        ``{"edges": [bins + 1 floats], "genuine": [bins densities],
        "impostor": [bins densities]}``; each density integrates to 1.

    Raises:
        ValueError: on invalid scores or ``bins``.
    """
    count = _check_count(bins, "bins", 1)
    gen, imp = _as_scores(genuine, "genuine"), _as_scores(impostor, "impostor")
    edges = np.histogram_bin_edges(np.concatenate((gen, imp)), bins=count)
    gen_density, _ = np.histogram(gen, bins=edges, density=True)
    imp_density, _ = np.histogram(imp, bins=edges, density=True)
    return {"edges": edges.tolist(), "genuine": gen_density.tolist(), "impostor": imp_density.tolist()}


def target_key(target: float) -> str:
    """Key suffix for a target FMR: the shortest exact decimal (0.0001 -> '0.0001').

    ``repr`` of a float round-trips, so distinct targets never share a key.
    """
    return repr(float(target))


def compute_all(
    genuine: Sequence[float] | np.ndarray,
    impostor: Sequence[float] | np.ndarray,
    targets: Sequence[float] = DEFAULT_TARGETS,
) -> dict[str, float | int]:
    """Every scalar metric in one flat dict, sharing one sort of the scores.

    Keys: ``eer``; ``fnmr_at_fmr_<t>`` and ``threshold_at_fmr_<t>`` for each
    target ``t`` (suffix from :func:`target_key`, e.g. ``fnmr_at_fmr_0.0001``);
    ``d_prime``; ``n_genuine`` and ``n_impostor`` (ints). Values are plain
    Python numbers.

    Raises:
        ValueError: on invalid scores or targets.
    """
    values = [_check_target(t) for t in targets]
    gen, imp = _as_scores(genuine, "genuine"), _as_scores(impostor, "impostor")
    roc = _roc(gen, imp)
    result: dict[str, float | int] = {"eer": _eer_from_roc(roc)}
    result.update(_operating_points(roc, values))
    result["d_prime"] = _d_prime(gen, imp)
    result["n_genuine"] = roc.n_genuine
    result["n_impostor"] = roc.n_impostor
    return result


def _operating_points(roc: _Roc, targets: Sequence[float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for target in targets:  # a handful of targets, not a loop over thresholds
        fnmr, threshold = _operating_point(roc, target)
        out[f"fnmr_at_fmr_{target_key(target)}"] = fnmr
        out[f"threshold_at_fmr_{target_key(target)}"] = threshold
    return out


# --------------------------------------------------------------------------- components


@METRICS.register("eer")
class EERMetric(Metric):
    """Equal error rate (ROC crossing of FMR and FNMR); key ``eer``."""

    _constraints = {}

    def __init__(self) -> None:
        pass

    def compute(self, genuine: np.ndarray, impostor: np.ndarray) -> dict[str, float]:
        self.validate()
        return {"eer": eer(genuine, impostor)}


@METRICS.register("fnmr_at_fmr")
class FNMRAtFMRMetric(Metric):
    """FNMR and threshold at target FMRs; keys ``fnmr_at_fmr_<t>``, ``threshold_at_fmr_<t>``.

    Args:
        targets: Target FMRs, each in (0, 1), distinct, at least one.
    """

    _constraints = {
        "targets": InstanceOf((list, tuple), item=Interval(float, 0.0, 1.0, closed="neither")),
    }

    def __init__(self, *, targets: Sequence[float] = DEFAULT_TARGETS) -> None:
        self.targets = targets

    def _validate_extra(self) -> None:
        if len(self.targets) == 0:
            raise ParamError("targets", self.targets, "is empty (give at least one target FMR)")
        keys = [target_key(t) for t in self.targets]
        if len(set(keys)) != len(keys):
            raise ParamError("targets", self.targets, "has duplicate targets")

    def compute(self, genuine: np.ndarray, impostor: np.ndarray) -> dict[str, float]:
        self.validate()
        gen, imp = _as_scores(genuine, "genuine"), _as_scores(impostor, "impostor")
        return _operating_points(_roc(gen, imp), [float(t) for t in self.targets])


@METRICS.register("d_prime")
class DPrimeMetric(Metric):
    """Decidability index d' between genuine and impostor scores; key ``d_prime``."""

    _constraints = {}

    def __init__(self) -> None:
        pass

    def compute(self, genuine: np.ndarray, impostor: np.ndarray) -> dict[str, float]:
        self.validate()
        return {"d_prime": d_prime(genuine, impostor)}
