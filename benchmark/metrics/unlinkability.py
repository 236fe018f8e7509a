"""Unlinkability of protected templates (ISO/IEC 24745, Gomez-Barrero et al. 2018).

Implements the local and global linkage measures of M. Gomez-Barrero, J.
Galbally, C. Rathgeb and C. Busch, "General Framework to Evaluate
Unlinkability in Biometric Template Protection Systems", IEEE TIFS 13(6),
2018, from the paper's definitions. Scores come from comparing templates of
one subject protected under *different* keys (mated, hypothesis H_m) and of
different subjects under different keys (non-mated, H_nm).

* Both densities p(s|H_m) and p(s|H_nm) are equal-width histograms on the
  same bins spanning the pooled score range. The number of bins defaults to
  ``n_mated // 10``, at most 100 and at least 10 (:func:`default_bins`).
* LR(s) = p(s|H_m) / p(s|H_nm); the bin width cancels, so LR is a ratio of
  bin frequencies.
* The local measure is D<->(s) = 2 omega LR(s) / (1 + omega LR(s)) - 1 where
  omega LR(s) > 1 and 0 elsewhere (omega = p(H_m) / p(H_nm) is the prior
  ratio). Where p(s|H_nm) = 0 and p(s|H_m) > 0, D<->(s) = 1 (the limit as
  LR -> infinity).
* The global measure D<->sys = sum over bins of p(s|H_m) D<->(s) Δs, the
  expectation of D<->(s) over *mated* scores: 0 means fully unlinkable,
  1 fully linkable.

Maximal linkability (H. Otroshi Shahreza, Y. Y. Shkel and S. Marcel,
"Measuring Linkability of Protected Biometric Templates Using Maximal
Leakage", IEEE TIFS 18, 2023) comes beside it, from the paper's definition:
the maximal leakage from the hypothesis H in {H_m, H_nm} to the score,

  L = log2 sum_s max(p(s|H_m), p(s|H_nm)) Δs  (in bits, 0 <= L <= 1),

estimated on the very same bins, so that the two measures read the same
histogram. L = log2(1 + TV) with TV the total-variation distance of the two
densities; for two unit-variance Gaussians d' apart, L = log2(2 Phi(d'/2)).
It needs no prior (omega). The authors' reference code uses 30 bins; a
figure compared with theirs must state the bins (``bins`` is reported).

Two yardsticks come with every figure (both measures):

* A permutation null: D<->sys after randomly relabelling the pooled scores
  as mated / non-mated (group sizes kept). D<->sys depends on the data only
  through the per-bin counts, and a random relabelling moves the mated bin
  counts to a multivariate hypergeometric draw from the pooled counts, so the
  null is drawn that way: exactly the shuffle's distribution, without
  touching the scores again. The histogram estimator is biased upwards on
  finite samples (noise makes some bins look mated-heavy), so a D<->sys
  inside the null band is indistinguishable from no linkage at all.
* A bootstrap percentile CI. With per-comparison subject ids, clusters of
  comparisons (by convention the probe subject of each comparison) are
  resampled, as in :mod:`benchmark.metrics.bootstrap`; each subject's per-bin counts
  are precomputed once, so a resample is a multiplicity vector times that
  matrix. Without subject ids every comparison is its own cluster; resampling
  N comparisons from the pooled N moves the joint (label, bin) counts to a
  multinomial draw, which is drawn directly. The bin edges of the full data
  are kept in every resample.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from benchmark.core.component import Interval, LinkageMetric, Nullable
from benchmark.core.registry import METRICS
from benchmark.metrics.bootstrap import _check_int, cluster_codes, percentile_interval, resample_multiplicities
from benchmark.metrics.verification import _as_scores

__all__ = [
    "MAX_DEFAULT_BINS",
    "MIN_BINS",
    "NULL_QUANTILE",
    "CI_ALPHA",
    "default_bins",
    "d_local",
    "unlinkability",
    "unlinkability_curve",
    "maximal_linkability",
    "Binned",
    "bin_scores",
    "linkage_measures",
    "UnlinkabilityMetric",
]

MIN_BINS = 10
MAX_DEFAULT_BINS = 100
# d_sys_null_high is this quantile of the permutation null.
NULL_QUANTILE = 0.95
# Bootstrap intervals are 95% percentile intervals.
CI_ALPHA = 0.05
# A dense (clusters x 2 bins) count matrix up to this many cells (32 MiB of
# float64); beyond it the matrix stays sparse.
_DENSE_CELLS = 1 << 22
# Upper bound on multiplicity cells drawn at once in the cluster bootstrap.
_CHUNK_CELLS = 1 << 22


# --------------------------------------------------------------------------- checks


def _check_omega(omega: Any) -> float:
    if isinstance(omega, bool) or not isinstance(omega, numbers.Real):
        raise ValueError(f"omega must be a finite number > 0, got {omega!r}")
    value = float(omega)
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"omega must be a finite number > 0, got {omega!r}")
    return value


def default_bins(n_mated: int) -> int:
    """The default number of bins: ``n_mated // 10``, capped at 100, at least 10.

    Args:
        n_mated: Number of mated scores.

    Returns:
        The number of bins.
    """
    return max(MIN_BINS, min(int(n_mated) // 10, MAX_DEFAULT_BINS))


def _resolve_bins(bins: Any, n_mated: int) -> int:
    if bins is None:
        return default_bins(n_mated)
    return _check_int(bins, "bins", MIN_BINS)


# --------------------------------------------------------------------------- core


class Binned(NamedTuple):
    """Scores on equal-width bins over the pooled range: each score's bin and the per-bin counts."""

    edges: np.ndarray
    mated_bin: np.ndarray  # bin index of each mated score
    nonmated_bin: np.ndarray
    mated_counts: np.ndarray  # int64 (bins,)
    nonmated_counts: np.ndarray


def bin_scores(mated: np.ndarray, nonmated: np.ndarray, bins: int) -> Binned:
    """Equal-width bins over the pooled range; bin indices computed once.

    A resample that keeps these edges (the bootstrap here and in
    :mod:`benchmark.engine.compare`) only needs the per-bin counts.
    """
    lo = min(float(mated.min()), float(nonmated.min()))
    hi = max(float(mated.max()), float(nonmated.max()))
    if lo == hi:  # a degenerate range gets a unit width around it, as numpy does
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    scale = bins / (hi - lo)

    def index(scores: np.ndarray) -> np.ndarray:
        # Scores are >= lo, so truncation is floor; the top edge is inclusive.
        return np.minimum(((scores - lo) * scale).astype(np.intp), bins - 1)

    mated_bin, nonmated_bin = index(mated), index(nonmated)
    return Binned(
        edges=edges,
        mated_bin=mated_bin,
        nonmated_bin=nonmated_bin,
        mated_counts=np.bincount(mated_bin, minlength=bins),
        nonmated_counts=np.bincount(nonmated_bin, minlength=bins),
    )


def d_local(mated_counts: np.ndarray, nonmated_counts: np.ndarray, omega: float = 1.0) -> np.ndarray:
    """Local linkage D<->(s) per bin, from per-bin counts (rows broadcast).

    Args:
        mated_counts: Mated scores per bin, shape ``(..., bins)``.
        nonmated_counts: Non-mated scores per bin, same shape.
        omega: Prior ratio p(H_m) / p(H_nm), > 0.

    Returns:
        D<->(s) in [0, 1] per bin, float64, same shape. Bins without any
        score get 0; bins with mated but no non-mated scores get 1.
    """
    cm = np.asarray(mated_counts, dtype=np.float64)
    cn = np.asarray(nonmated_counts, dtype=np.float64)
    n_m = cm.sum(axis=-1, keepdims=True)
    n_n = cn.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        # omega * LR(s) with LR a ratio of bin frequencies (the width cancels).
        x = omega * (cm * n_n) / (cn * n_m)
        # 2x / (1 + x) - 1, written as (x - 1) / (x + 1).
        local = np.where(x > 1.0, (x - 1.0) / (x + 1.0), 0.0)
    return np.where(cn == 0.0, np.where(cm > 0.0, 1.0, 0.0), local)


def _d_sys(mated_counts: np.ndarray, nonmated_counts: np.ndarray, omega: float) -> np.ndarray:
    """D<->sys per row of counts; NaN for a row without mated or non-mated scores."""
    cm = np.asarray(mated_counts, dtype=np.float64)
    cn = np.asarray(nonmated_counts, dtype=np.float64)
    n_m = cm.sum(axis=-1)
    n_n = cn.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        # sum p(s|H_m) D(s) Δs with p(s|H_m) Δs = the bin's mated frequency.
        value = (cm * d_local(cm, cn, omega)).sum(axis=-1) / n_m
    return np.where((n_m > 0) & (n_n > 0), value, np.nan)


def _max_leakage(mated_counts: np.ndarray, nonmated_counts: np.ndarray) -> np.ndarray:
    """Maximal linkability in bits per row of counts; NaN for a row without mated or non-mated scores."""
    cm = np.asarray(mated_counts, dtype=np.float64)
    cn = np.asarray(nonmated_counts, dtype=np.float64)
    n_m = cm.sum(axis=-1, keepdims=True)
    n_n = cn.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        # p(s|H) Δs is the bin's frequency under H, so the integral is a sum of frequencies.
        total = np.maximum(cm / n_m, cn / n_n).sum(axis=-1)
        # Clip: rounding can put the sum a hair below 1 (L would read -1e-16).
        value = np.log2(np.clip(total, 1.0, 2.0))
    return np.where((n_m[..., 0] > 0) & (n_n[..., 0] > 0), value, np.nan)


def linkage_measures(mated_counts: np.ndarray, nonmated_counts: np.ndarray, omega: float) -> np.ndarray:
    """D<->sys and maximal linkability of per-bin counts.

    Args:
        mated_counts: Mated scores per bin, shape ``(..., bins)``.
        nonmated_counts: Non-mated scores per bin, same shape.
        omega: Prior ratio of D<->sys, > 0.

    Returns:
        Shape ``(..., 2)``: D<->sys, then maximal linkability in bits (NaN
        where a row lacks mated or non-mated scores).
    """
    return np.stack((_d_sys(mated_counts, nonmated_counts, omega), _max_leakage(mated_counts, nonmated_counts)), -1)


def _null(binned: Binned, n_mated: int, omega: float, n_null: int, rng: np.random.Generator) -> np.ndarray:
    pooled = binned.mated_counts + binned.nonmated_counts
    # Mated counts per bin after a random relabelling of the pooled scores.
    mated = rng.multivariate_hypergeometric(pooled, n_mated, size=n_null)
    return linkage_measures(mated, pooled - mated, omega)


def _bootstrap_comparisons(binned: Binned, omega: float, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    joint = np.concatenate((binned.mated_counts, binned.nonmated_counts))
    total = int(joint.sum())
    counts = rng.multinomial(total, joint / total, size=n_boot)
    bins = binned.mated_counts.size
    return linkage_measures(counts[:, :bins], counts[:, bins:], omega)


def _cluster_counts(binned: Binned, codes: np.ndarray, n_clusters: int) -> Any:
    """(clusters x 2 bins) matrix: each cluster's mated then non-mated bin counts."""
    import scipy.sparse  # ~0.3 s to import, which a run whose metric rows are cached need not pay

    bins = binned.mated_counts.size
    columns = np.concatenate((binned.mated_bin, binned.nonmated_bin + bins))
    matrix = scipy.sparse.csr_array(
        (np.ones(columns.size), (codes, columns)), shape=(n_clusters, 2 * bins)
    )  # duplicate (cluster, column) entries are summed
    if n_clusters * 2 * bins <= _DENSE_CELLS:
        return matrix.toarray()
    return matrix


def _bootstrap_clusters(
    binned: Binned,
    codes: np.ndarray,
    n_clusters: int,
    omega: float,
    n_boot: int,
    rng: np.random.Generator,
) -> np.ndarray:
    matrix = _cluster_counts(binned, codes, n_clusters)
    bins = binned.mated_counts.size
    chunk = max(1, _CHUNK_CELLS // n_clusters)
    out = []
    for start in range(0, n_boot, chunk):  # a loop over blocks of resamples
        weights = resample_multiplicities(rng, n_clusters, min(chunk, n_boot - start))
        counts = np.asarray((matrix.T @ weights.T.astype(np.float64)).T)
        out.append(linkage_measures(counts[:, :bins], counts[:, bins:], omega))
    return np.concatenate(out) if out else np.empty((0, 2))


def _subject_codes(
    mated_subjects: Any, nonmated_subjects: Any, n_mated: int, n_nonmated: int
) -> tuple[np.ndarray, int] | None:
    if mated_subjects is None and nonmated_subjects is None:
        return None
    if mated_subjects is None or nonmated_subjects is None:
        raise ValueError("give both mated_subjects and nonmated_subjects, or neither")
    mated_ids, nonmated_ids = np.asarray(mated_subjects), np.asarray(nonmated_subjects)
    if mated_ids.shape != (n_mated,):
        raise ValueError(f"mated_subjects must have one id per mated score ({n_mated}), got shape {mated_ids.shape}")
    if nonmated_ids.shape != (n_nonmated,):
        raise ValueError(
            f"nonmated_subjects must have one id per non-mated score ({n_nonmated}), got shape {nonmated_ids.shape}"
        )
    # One code space: a subject probed in both groups is one cluster.
    return cluster_codes(np.concatenate((mated_ids, nonmated_ids)), n_mated + n_nonmated, "subjects")


# --------------------------------------------------------------------------- public API


def unlinkability(
    mated: Sequence[float] | np.ndarray,
    nonmated: Sequence[float] | np.ndarray,
    *,
    omega: float = 1.0,
    bins: int | None = None,
    n_null: int = 20,
    n_boot: int = 200,
    seed: int = 0,
    mated_subjects: Sequence[Any] | np.ndarray | None = None,
    nonmated_subjects: Sequence[Any] | np.ndarray | None = None,
) -> dict[str, float | int]:
    """Global unlinkability D<->sys and maximal linkability, with permutation nulls and bootstrap CIs.

    See the module docstring for the definitions and the resampling schemes.

    Args:
        mated: Mated scores (same subject, different keys); 1-D, finite, non-empty.
        nonmated: Non-mated scores (different subjects, different keys).
        omega: Prior ratio p(H_m) / p(H_nm), > 0.
        bins: Number of histogram bins (>= 10); None for :func:`default_bins`.
        n_null: Relabellings in the permutation null (>= 1).
        n_boot: Bootstrap resamples (>= 0; 0 leaves the CI as NaN).
        seed: Seed of the null and bootstrap draws (>= 0).
        mated_subjects: Cluster id (probe subject) of each mated score.
        nonmated_subjects: Cluster id (probe subject) of each non-mated score;
            give both or neither. Without them comparisons are resampled.

    Returns:
        ``d_sys``; ``d_sys_null`` (mean of the null) and ``d_sys_null_high``
        (its 95th percentile); ``d_sys_ci_low`` / ``d_sys_ci_high`` (95%
        percentile interval, NaN when ``n_boot`` is 0 or no resample had both
        groups); the same five for maximal linkability in bits
        (``linkability_max``, ``linkability_max_null``, …); ``omega``;
        ``bins`` (int). Python numbers throughout.

    Raises:
        ValueError: on invalid scores, subject ids or parameters.
    """
    gen, imp = _as_scores(mated, "mated"), _as_scores(nonmated, "non-mated")
    prior = _check_omega(omega)
    n_bins = _resolve_bins(bins, gen.size)
    nulls = _check_int(n_null, "n_null", 1)
    boots = _check_int(n_boot, "n_boot", 0)
    root = np.random.SeedSequence(_check_int(seed, "seed", 0))
    clusters = _subject_codes(mated_subjects, nonmated_subjects, gen.size, imp.size)

    binned = bin_scores(gen, imp, n_bins)
    d_sys = float(_d_sys(binned.mated_counts, binned.nonmated_counts, prior))
    # Independent streams: changing n_null does not change the bootstrap.
    null_rng, boot_rng = (np.random.default_rng(s) for s in root.spawn(2))
    null = _null(binned, gen.size, prior, nulls, null_rng)
    if clusters is None:
        boot = _bootstrap_comparisons(binned, prior, boots, boot_rng)
    else:
        boot = _bootstrap_clusters(binned, *clusters, prior, boots, boot_rng)
    out: dict[str, float | int] = {}
    values = (d_sys, float(_max_leakage(binned.mated_counts, binned.nonmated_counts)))
    for column, (name, value) in enumerate(zip(("d_sys", "linkability_max"), values)):
        draws = boot[:, column]
        ci_low, ci_high = percentile_interval(draws[np.isfinite(draws)], CI_ALPHA)
        out[name] = value
        out[f"{name}_null"] = float(np.mean(null[:, column]))
        out[f"{name}_null_high"] = float(np.quantile(null[:, column], NULL_QUANTILE))
        out[f"{name}_ci_low"] = ci_low
        out[f"{name}_ci_high"] = ci_high
    out["omega"] = prior
    out["bins"] = n_bins
    return out


def maximal_linkability(
    mated: Sequence[float] | np.ndarray,
    nonmated: Sequence[float] | np.ndarray,
    *,
    bins: int | None = None,
) -> float:
    """Maximal linkability in bits (Otroshi Shahreza et al. 2023), on equal-width pooled-range bins.

    Args:
        mated: Mated scores (1-D, finite, non-empty).
        nonmated: Non-mated scores (1-D, finite, non-empty).
        bins: Number of bins (>= 10); None for :func:`default_bins`
            (the authors' code uses 30).

    Returns:
        log2 of the integral of max(p(s|H_m), p(s|H_nm)), in [0, 1].

    Raises:
        ValueError: on invalid scores or parameters.
    """
    gen, imp = _as_scores(mated, "mated"), _as_scores(nonmated, "non-mated")
    binned = bin_scores(gen, imp, _resolve_bins(bins, gen.size))
    return float(_max_leakage(binned.mated_counts, binned.nonmated_counts))


def unlinkability_curve(
    mated: Sequence[float] | np.ndarray,
    nonmated: Sequence[float] | np.ndarray,
    *,
    omega: float = 1.0,
    bins: int | None = None,
) -> dict[str, Any]:
    """Densities and D<->(s) per bin, for the report's unlinkability plot.

    Args:
        mated: Mated scores (1-D, finite, non-empty).
        nonmated: Non-mated scores (1-D, finite, non-empty).
        omega: Prior ratio p(H_m) / p(H_nm), > 0.
        bins: Number of bins (>= 10); None for :func:`default_bins`.

    Returns:
        ``edges`` (bins + 1), ``mated_density``, ``nonmated_density`` (each
        integrates to 1 over the edges) and ``d_local`` (bins), lists of
        Python floats; plus ``d_sys`` and ``omega``, so the dict is the
        report's ``curves["unlinkability"]`` entry as it stands.

    Raises:
        ValueError: on invalid scores or parameters.
    """
    gen, imp = _as_scores(mated, "mated"), _as_scores(nonmated, "non-mated")
    prior = _check_omega(omega)
    binned = bin_scores(gen, imp, _resolve_bins(bins, gen.size))
    width = np.diff(binned.edges)
    return {
        "edges": binned.edges.tolist(),
        "mated_density": (binned.mated_counts / (gen.size * width)).tolist(),
        "nonmated_density": (binned.nonmated_counts / (imp.size * width)).tolist(),
        "d_local": d_local(binned.mated_counts, binned.nonmated_counts, prior).tolist(),
        "d_sys": float(_d_sys(binned.mated_counts, binned.nonmated_counts, prior)),
        "linkability_max": float(_max_leakage(binned.mated_counts, binned.nonmated_counts)),
        "omega": prior,
    }


# --------------------------------------------------------------------------- component


@METRICS.register("unlinkability")
class UnlinkabilityMetric(LinkageMetric):
    """Unlinkability D<->sys (Gomez-Barrero et al. 2018) and maximal linkability (Otroshi Shahreza et al. 2023).

    Keys: ``d_sys``, ``d_sys_null``, ``d_sys_null_high``, ``d_sys_ci_low``,
    ``d_sys_ci_high``, the same for ``linkability_max`` (bits), ``omega``,
    ``bins``. Genuine scores are the mated
    (same subject, different keys) comparisons, impostor scores the non-mated.

    Args:
        omega: Prior ratio p(H_m) / p(H_nm), > 0.
        bins: Histogram bins (>= 10), or None for min(n_mated // 10, 100), at least 10.
        n_null: Relabellings in the permutation null (>= 1).
        n_boot: Bootstrap resamples (>= 0).
        seed: Seed of the null and bootstrap draws (>= 0).
    """

    _constraints = {
        "omega": Interval(float, 0.0, None, closed="neither"),
        "bins": Nullable(Interval(int, MIN_BINS, None, closed="left")),
        "n_null": Interval(int, 1, None, closed="left"),
        "n_boot": Interval(int, 0, None, closed="left"),
        "seed": Interval(int, 0, None, closed="left"),
    }

    def __init__(
        self,
        *,
        omega: float = 1.0,
        bins: int | None = None,
        n_null: int = 20,
        n_boot: int = 200,
        seed: int = 0,
    ) -> None:
        self.omega = omega
        self.bins = bins
        self.n_null = n_null
        self.n_boot = n_boot
        self.seed = seed

    def compute(self, genuine: np.ndarray, impostor: np.ndarray) -> dict[str, float]:
        """D<->sys; the bootstrap resamples individual comparisons."""
        self.validate()
        return unlinkability(genuine, impostor, **self.get_params())

    def compute_with_subjects(
        self,
        genuine: np.ndarray,
        impostor: np.ndarray,
        genuine_subjects: Sequence[Any] | np.ndarray,
        impostor_subjects: Sequence[Any] | np.ndarray,
    ) -> dict[str, float]:
        """D<->sys; the bootstrap resamples subjects (the probe subject of each comparison)."""
        self.validate()
        return unlinkability(
            genuine,
            impostor,
            **self.get_params(),
            mated_subjects=genuine_subjects,
            nonmated_subjects=impostor_subjects,
        )

    def curve(self, genuine: np.ndarray, impostor: np.ndarray) -> dict[str, Any]:
        """The report's ``curves["unlinkability"]`` entry (see :func:`unlinkability_curve`)."""
        self.validate()
        return unlinkability_curve(genuine, impostor, omega=self.omega, bins=self.bins)
