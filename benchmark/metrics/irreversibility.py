"""Irreversibility metrics (ISO/IEC 24745): attack success and reconstruction quality.

* :func:`sar` — success attack rate: the share of attacked mated comparisons
  that the *unprotected* system accepts at its operating threshold for a
  target FMR. The threshold is set on the baseline (unprotected) impostor
  scores with :func:`benchmark.metrics.verification.fnmr_at_fmr`, so its rule (FMR <= target,
  ties at the threshold accepted) is exactly the one behind the baseline's
  ``threshold_at_fmr_<t>``.
* :func:`psnr` and :func:`ssim` — how close attacked images are to the
  originals (uint8 (N, 112, 112, 3)).

Conventions: PSNR of two identical images is ``+inf`` (the mean squared error
is 0). Per-image arrays keep the ``inf``; means are taken over finite values
only and the identical ones are counted in ``n_identical`` (a mean with no
finite value is ``inf``, which results.json writes as null, like every
non-finite number). SSIM is always finite.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmark.metrics.bootstrap import cluster_bootstrap
from benchmark.metrics.verification import fnmr_at_fmr, target_key

__all__ = [
    "SAR_TARGETS",
    "sar",
    "sar_all",
    "operating_threshold",
    "sar_ci",
    "quality_ci",
    "psnr",
    "ssim",
    "reconstruction_quality",
    "per_image_quality",
    "summarise_quality",
    "psnr_gain",
]

SAR_TARGETS: tuple[float, ...] = (0.001, 0.0001)

# SSIM as skimage.metrics.structural_similarity computes it with its defaults
# (Wang et al. 2004 constants, 7x7 uniform window, sample covariance).
_SSIM_WIN = 7
_SSIM_K1, _SSIM_K2 = 0.01, 0.03
_DATA_RANGE = 255.0
_SSIM_CHUNK = 64  # images per batch: bounds memory to tens of MB


# --------------------------------------------------------------------------- SAR


def _as_1d(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} scores must be a 1-D array, got shape {arr.shape}")
    return arr


def sar(
    attacked_mated_scores: Sequence[float] | np.ndarray,
    baseline_impostor_scores: Sequence[float] | np.ndarray,
    target_fmr: float,
    *,
    baseline_mated_scores: Sequence[float] | np.ndarray | None = None,
    n_failed: int = 0,
) -> dict[str, float]:
    """Success attack rate at the baseline threshold for ``target_fmr``.

    The threshold is the one :func:`benchmark.metrics.verification.fnmr_at_fmr` returns: the
    smallest observed score whose FMR on the baseline impostor scores does not
    exceed ``target_fmr``. Observed scores are the baseline impostor scores and
    either ``baseline_mated_scores`` (then the threshold equals the baseline
    row's ``threshold_at_fmr_<t>``) or, by default, the attacked mated scores
    themselves. The default gives the *most lenient* threshold meeting the FMR
    target, hence the largest SAR any such threshold allows: attacked scores
    strictly above the last impostor score that breaks the target are
    accepted. That upper bound is the conservative figure for a security
    claim; with ``baseline_mated_scores`` the SAR can only be lower or equal.

    Args:
        attacked_mated_scores: Scores of attacked probes against their mated
            (same subject) unprotected references.
        baseline_impostor_scores: Non-mated scores of the unprotected system.
        target_fmr: FMR the operating threshold must not exceed, in [0, 1].
        baseline_mated_scores: Mated scores of the unprotected system, to use
            its exact threshold; None to use the most lenient one (above).
        n_failed: Mated attack attempts with no score (the attacked sample
            failed to decode: a failure to acquire), counted as rejected.

    Returns:
        ``{"sar": float, "threshold": float}``.

    Raises:
        ValueError: on invalid scores, target or ``n_failed``, or when there is
            no attempt at all.
    """
    if isinstance(n_failed, bool) or not isinstance(n_failed, (int, np.integer)) or n_failed < 0:
        raise ValueError(f"n_failed must be an integer >= 0, got {n_failed!r}")
    attacked = _as_1d(attacked_mated_scores, "attacked mated")
    impostor = _as_1d(baseline_impostor_scores, "baseline impostor")
    if attacked.size + n_failed == 0:
        raise ValueError("attacked mated scores are empty and no failed attempt was counted")
    if not np.all(np.isfinite(attacked)):
        raise ValueError("attacked mated scores contain non-finite values")
    if baseline_mated_scores is not None:
        grid = _as_1d(baseline_mated_scores, "baseline mated")
    elif attacked.size:
        grid = attacked
    else:
        # Only failures: any valid threshold gives SAR 0; impostors fix one.
        grid = impostor
    # fnmr_at_fmr validates scores and target; only its threshold is used.
    _, threshold = fnmr_at_fmr(grid, impostor, target_fmr)
    accepted = int(np.count_nonzero(attacked >= threshold))
    return {"sar": accepted / (attacked.size + int(n_failed)), "threshold": threshold}


def sar_all(
    attacked_mated_scores: Sequence[float] | np.ndarray,
    baseline_impostor_scores: Sequence[float] | np.ndarray,
    targets: Sequence[float] = SAR_TARGETS,
    *,
    baseline_mated_scores: Sequence[float] | np.ndarray | None = None,
    n_failed: int = 0,
) -> dict[str, float]:
    """:func:`sar` at each target, as flat result keys.

    Keys: ``sar_at_fmr_<t>`` and ``sar_threshold_at_fmr_<t>`` with the suffix
    of :func:`benchmark.metrics.verification.target_key` (e.g. ``sar_at_fmr_0.0001``).
    """
    out: dict[str, float] = {}
    for target in targets:  # a handful of targets
        r = sar(
            attacked_mated_scores,
            baseline_impostor_scores,
            target,
            baseline_mated_scores=baseline_mated_scores,
            n_failed=n_failed,
        )
        out[f"sar_at_fmr_{target_key(target)}"] = r["sar"]
        out[f"sar_threshold_at_fmr_{target_key(target)}"] = r["threshold"]
    return out


def operating_threshold(grid: np.ndarray, impostor: np.ndarray, target: float) -> float:
    """The threshold :func:`~benchmark.metrics.verification.fnmr_at_fmr` gives, in linear time.

    ``fnmr_at_fmr(grid, impostor, target)[1]``: the smallest observed score
    (of ``grid`` and ``impostor``) whose FMR on ``impostor`` is at most
    ``target``, else the reject-all point above every score. With ``m`` the
    largest impostor count the target allows, a score qualifies exactly when
    it lies above the ``(m + 1)``-th largest impostor score, so one partial
    sort replaces the full ROC; bootstrap resamples call this many times.

    Args:
        grid: Non-empty finite scores that, with the impostors, form the candidate thresholds.
        impostor: Non-empty finite impostor scores.
        target: FMR in [0, 1].
    """
    n = impostor.size
    # The largest count c with c / n <= target, in the float arithmetic of the ROC.
    m = min(int(math.floor(target * n)), n)
    while m < n and (m + 1) / n <= target:
        m += 1
    while m > 0 and m / n > target:
        m -= 1
    if m >= n:
        return float(min(grid.min(), impostor.min()))
    cut = np.partition(impostor, n - 1 - m)[n - 1 - m]
    above = [a[a > cut] for a in (grid, impostor)]
    candidates = [float(a.min()) for a in above if a.size]
    if candidates:
        return min(candidates)
    return float(np.nextafter(max(grid.max(), impostor.max()), np.inf))


def sar_ci(
    attacked_mated: np.ndarray,
    impostor: np.ndarray,
    targets: Sequence[float],
    *,
    attacked_clusters: np.ndarray,
    impostor_clusters: np.ndarray,
    failed_clusters: np.ndarray,
    baseline_mated: np.ndarray | None = None,
    baseline_mated_clusters: np.ndarray | None = None,
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, tuple[float, float]]:
    """Subject-resampling bootstrap CIs of :func:`sar` at each target.

    One resample draws subjects (clusters) with replacement and takes, for
    every drawn subject, its attacked mated scores, its failed attacked
    attempts, the impostor scores that set the threshold and (when given)
    the mated scores of the threshold's system: the threshold is
    re-estimated in every resample, so its own uncertainty is in the
    interval.

    Args:
        attacked_mated: Scores of attacked mated comparisons.
        impostor: Impostor scores of the system whose threshold is used.
        targets: Target FMRs.
        attacked_clusters: Cluster code of each attacked score.
        impostor_clusters: Cluster code of each impostor score.
        failed_clusters: Cluster code of each failed attacked attempt (counted as rejected).
        baseline_mated: Mated scores of the threshold's system, as :func:`sar`'s
            ``baseline_mated_scores``; None for the most lenient threshold.
        baseline_mated_clusters: Their cluster codes.
        n_boot: Resamples.
        seed: Seed of the resampling.
        alpha: One minus the coverage.

    Returns:
        ``{"sar_at_fmr_<t>": (low, high)}``.
    """
    attacked = np.asarray(attacked_mated, dtype=np.float64)
    imp = np.asarray(impostor, dtype=np.float64)
    grid_scores = None if baseline_mated is None else np.asarray(baseline_mated, dtype=np.float64)
    groups = [attacked_clusters, impostor_clusters, failed_clusters]
    if grid_scores is not None:
        groups.append(np.asarray(baseline_mated_clusters))

    def stat(index: list[np.ndarray]) -> dict[str, float]:
        a, i = attacked[index[0]], imp[index[1]]
        attempts = a.size + index[2].size
        if attempts == 0 or i.size == 0:
            return {}
        grid = grid_scores[index[3]] if grid_scores is not None else a
        if grid.size == 0:
            grid = i
        out = {}
        for target in targets:
            threshold = operating_threshold(grid, i, float(target))
            out[f"sar_at_fmr_{target_key(target)}"] = int(np.count_nonzero(a >= threshold)) / attempts
        return out

    return cluster_bootstrap(groups, stat, n_boot=n_boot, seed=seed, alpha=alpha)


def quality_ci(
    quality: dict[str, np.ndarray],
    clusters: np.ndarray,
    *,
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, tuple[float, float]]:
    """Subject-resampling bootstrap CIs of the mean PSNR and SSIM (:func:`summarise_quality`).

    Args:
        quality: :func:`per_image_quality` arrays.
        clusters: Cluster (subject) code of each sample.
        n_boot: Resamples.
        seed: Seed of the resampling.
        alpha: One minus the coverage.

    Returns:
        ``{"psnr": (low, high), "ssim": (low, high)}`` (keys only when defined).
    """
    keep = ~np.asarray(quality["failed"], dtype=bool)
    psnr_values, ssim_values = quality["psnr"], quality["ssim"]

    def stat(index: list[np.ndarray]) -> dict[str, float]:
        idx = index[0][keep[index[0]]]
        if idx.size == 0:
            return {}
        return {"psnr": _finite_mean(psnr_values[idx]), "ssim": float(ssim_values[idx].mean())}

    return cluster_bootstrap([clusters], stat, n_boot=n_boot, seed=seed, alpha=alpha)


# --------------------------------------------------------------------------- image similarity


def _image_pair(originals: Any, attacked: Any) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(originals), np.asarray(attacked)
    for name, arr in (("originals", a), ("attacked", b)):
        if arr.dtype != np.uint8 or arr.ndim != 4:
            raise ValueError(f"{name} must be uint8 (N, H, W, C), got {arr.dtype} {arr.shape}")
    if a.shape != b.shape:
        raise ValueError(f"originals {a.shape} and attacked {b.shape} differ in shape")
    if min(a.shape[1:3]) < _SSIM_WIN:
        raise ValueError(f"images must be at least {_SSIM_WIN}x{_SSIM_WIN}, got {a.shape[1:3]}")
    return a, b


def _finite_mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    if finite.size:
        return float(finite.mean())
    return float("inf") if values.size else float("nan")


def psnr(originals: np.ndarray, attacked: np.ndarray) -> dict[str, Any]:
    """Peak signal-to-noise ratio (data range 255), per image and mean.

    Same values as ``skimage.metrics.peak_signal_noise_ratio(a, b,
    data_range=255)`` per image, computed for all images at once.

    Args:
        originals: uint8 (N, H, W, C).
        attacked: uint8, same shape.

    Returns:
        ``{"per_image": float64 (N,) in dB (inf where identical), "mean": mean
        over finite values, "n_identical": int}``.
    """
    a, b = _image_pair(originals, attacked)
    squared = np.empty(a.shape[0], dtype=np.int64)
    for start in range(0, a.shape[0], _SSIM_CHUNK):  # batches bound memory
        diff = a[start : start + _SSIM_CHUNK].astype(np.int32) - b[start : start + _SSIM_CHUNK]
        # Exact: at most 255**2 per value, summed in int64.
        squared[start : start + len(diff)] = np.einsum("nhwc,nhwc->n", diff, diff, dtype=np.int64)
    mse = squared / float(np.prod(a.shape[1:]))
    with np.errstate(divide="ignore"):
        values = 10.0 * np.log10(_DATA_RANGE**2 / mse)
    return {"per_image": values, "mean": _finite_mean(values), "n_identical": int(np.count_nonzero(mse == 0))}


def _window_sums(planes: np.ndarray) -> np.ndarray:
    """Sums over every 7x7 window lying inside each int32 (m, H, W) plane.

    Exact integer arithmetic: a running sum along rows (cumulative sum, then
    differences), then the seven row offsets added up. int32 cannot overflow:
    a row sum of squares is at most 112 * 255**2 < 2**31.
    """
    w = _SSIM_WIN
    m, height, width = planes.shape
    cum = np.cumsum(planes, axis=2, dtype=np.int32)
    rows = np.empty((m, height, width - w + 1), dtype=np.int32)
    rows[:, :, 0] = cum[:, :, w - 1]
    np.subtract(cum[:, :, w:], cum[:, :, :-w], out=rows[:, :, 1:])
    sums = rows[:, : height - w + 1].copy()
    for offset in range(1, w):  # seven window rows, not a loop over pixels
        sums += rows[:, offset : offset + height - w + 1]
    return sums.astype(np.int64)


def _ssim_batch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean SSIM of each image pair of a uint8 (n, H, W, C) batch.

    skimage's structural_similarity (defaults, ``data_range=255``) computes
    the SSIM map with a 7x7 uniform filter over reflected borders, then
    averages it with 3 pixels cropped at each border: exactly the positions
    whose window lies inside the image. So only those windows are summed
    here, in integers, and means, sample variances and covariances follow
    from exact integer numerators (``(49 * sum_xy - sum_x * sum_y) / (49 * 48)``);
    the values agree with skimage to rounding. Channels are averaged, as
    skimage does with ``channel_axis``.
    """
    n, height, width, channels = a.shape
    x = np.moveaxis(a, 3, 1).reshape(n * channels, height, width).astype(np.int32)
    y = np.moveaxis(b, 3, 1).reshape(n * channels, height, width).astype(np.int32)
    sx, sy = _window_sums(x), _window_sums(y)
    sxx, syy, sxy = _window_sums(x * x), _window_sums(y * y), _window_sums(x * y)
    k = _SSIM_WIN * _SSIM_WIN
    mean_norm, cov_norm = float(k * k), float(k * (k - 1))
    c1, c2 = (_SSIM_K1 * _DATA_RANGE) ** 2, (_SSIM_K2 * _DATA_RANGE) ** 2
    numerator = (2 * (sx * sy) / mean_norm + c1) * (2 * (k * sxy - sx * sy) / cov_norm + c2)
    denominator = ((sx * sx + sy * sy) / mean_norm + c1) * ((k * sxx - sx * sx + k * syy - sy * sy) / cov_norm + c2)
    per_plane = (numerator / denominator).mean(axis=(1, 2))
    return per_plane.reshape(n, channels).mean(axis=1)


def ssim(originals: np.ndarray, attacked: np.ndarray) -> dict[str, Any]:
    """Structural similarity, per image and mean.

    Same values (to rounding) as ``skimage.metrics.structural_similarity(a,
    b, channel_axis=-1, data_range=255)`` per image, vectorised over batches.
    Where every image of a batch has equal channels in both arrays (grey
    faces stored as RGB) only one channel is computed: the per-channel SSIMs
    are then equal.

    Returns:
        ``{"per_image": float64 (N,) in [-1, 1], "mean": float}`` (mean NaN
        for no image).
    """
    a, b = _image_pair(originals, attacked)
    values = np.empty(a.shape[0], dtype=np.float64)
    for start in range(0, a.shape[0], _SSIM_CHUNK):  # batches bound memory, not a pixel loop
        ca, cb = a[start : start + _SSIM_CHUNK], b[start : start + _SSIM_CHUNK]
        if ca.shape[3] > 1 and _grey(ca) and _grey(cb):
            ca, cb = ca[..., :1], cb[..., :1]
        values[start : start + len(ca)] = _ssim_batch(ca, cb)
    return {"per_image": values, "mean": float(values.mean()) if values.size else float("nan")}


def _grey(images: np.ndarray) -> bool:
    """True when every pixel has equal channels."""
    first = images[..., 0]
    return all(np.array_equal(images[..., c], first) for c in range(1, images.shape[3]))


def per_image_quality(
    originals: np.ndarray, attacked: np.ndarray, failed: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """PSNR and SSIM of each attacked image against its original.

    Args:
        originals: uint8 (N, H, W, C) unprotected images.
        attacked: uint8 (N, H, W, C) images the attack produced.
        failed: bool (N,) failures to acquire: NaN in both arrays.

    Returns:
        ``{"psnr": float64 (N,) (inf where identical), "ssim": float64 (N,),
        "failed": bool (N,)}``.
    """
    a, b = _image_pair(originals, attacked)
    mask = np.zeros(len(a), dtype=bool) if failed is None else np.asarray(failed, dtype=bool)
    if mask.shape != (len(a),):
        raise ValueError(f"failed must be a bool array of shape ({len(a)},), got {mask.shape}")
    keep = ~mask
    out = {"psnr": np.full(len(a), np.nan), "ssim": np.full(len(a), np.nan), "failed": mask}
    out["psnr"][keep] = psnr(a[keep], b[keep])["per_image"]
    out["ssim"][keep] = ssim(a[keep], b[keep])["per_image"]
    return out


def reconstruction_quality(
    originals: np.ndarray, attacked: np.ndarray, failed: np.ndarray | None = None
) -> dict[str, float | int]:
    """Mean PSNR and SSIM of attacked images that decoded, as flat result keys.

    Args:
        originals: uint8 (N, H, W, C) unprotected images.
        attacked: uint8 (N, H, W, C) images the attack produced.
        failed: bool (N,) failures to acquire, left out of the means.

    Returns:
        ``{"psnr": float, "ssim": float, "n_psnr_identical": int,
        "n_quality_failed": int}`` (means NaN when every image failed).
    """
    return summarise_quality(per_image_quality(originals, attacked, failed))


def summarise_quality(quality: dict[str, np.ndarray]) -> dict[str, float | int]:
    """The result keys of :func:`reconstruction_quality` from :func:`per_image_quality` arrays."""
    keep = ~quality["failed"]
    p, s = quality["psnr"][keep], quality["ssim"][keep]
    return {
        "psnr": _finite_mean(p) if p.size else float("nan"),
        "ssim": float(s.mean()) if s.size else float("nan"),
        "n_psnr_identical": int(np.count_nonzero(np.isposinf(p))),
        "n_quality_failed": int(quality["failed"].sum()),
    }


def psnr_gain(attacked: np.ndarray, reference: np.ndarray) -> dict[str, float | int]:
    """Per-image PSNR of one attack against another (e.g. concealment vs naive), paired on each sample.

    A ranking of attacks by mean PSNR can hide images where the better
    attack loses; this counts them. Only samples both attacks decoded (PSNR
    not NaN) are compared; ``inf`` (identical to the original) compares as
    the larger PSNR, and the dB gains are taken where both are finite.

    Args:
        attacked: float (N,) per-image PSNR of the attack being judged
            (:func:`per_image_quality`; NaN where it failed).
        reference: float (N,) per-image PSNR of the attack it is compared with.

    Returns:
        ``{"psnr_gain": mean dB gain, "psnr_gain_min": worst per-image gain,
        "better_rate": share of compared samples with a higher PSNR,
        "n_better": int, "n_worse": int, "n_compared": int}`` (NaN gains and
        rate when nothing is compared).
    """
    pa, pr = np.asarray(attacked, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if pa.shape != pr.shape or pa.ndim != 1:
        raise ValueError(f"attacked {pa.shape} and reference {pr.shape} must be 1-D of one length")
    keep = ~(np.isnan(pa) | np.isnan(pr))
    pa, pr = pa[keep], pr[keep]
    better, worse = int(np.count_nonzero(pa > pr)), int(np.count_nonzero(pa < pr))
    finite = np.isfinite(pa) & np.isfinite(pr)
    gains = pa[finite] - pr[finite]
    nan = float("nan")
    return {
        "psnr_gain": float(gains.mean()) if gains.size else nan,
        "psnr_gain_min": float(gains.min()) if gains.size else nan,
        "better_rate": better / pa.size if pa.size else nan,
        "n_better": better,
        "n_worse": worse,
        "n_compared": int(pa.size),
    }
