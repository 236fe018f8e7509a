"""Scores and metrics of one (recognizer, view): the metrics of a row of results.json.

Performance metrics get subject-resampling bootstrap CIs; linkability
metrics (:class:`~benchmark.core.component.LinkageMetric`) compute theirs
with the probe subjects; every protected view adds ΔEER against the baseline
of the same recognizer. Strength views add the success attack rate (SAR) at
the baseline's thresholds (a fine-tuned recognizer's views, those of a
recognizer attack, are measured against *its* baseline: plain vs plain
through the fine-tuned model, never the pretrained model's thresholds on
another model's scores), and the renewal view the SAR of a revoked
template against the renewed system's own thresholds, both with CIs; the
image quality of an attack's output (PSNR, SSIM, with CIs) is per view
(:func:`quality_metrics`).

Linkability is not computed on the renewal view: its mated scores compare
an old template with a re-issued one, so a D↔sys there would count old
templates that score far *below* the impostors (useless to an attacker) as
"linkable"; cross-key linkability is the ``linkage`` view's job.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.core.cache import hash_array, hash_json
from benchmark.core.codeversion import code_version
from benchmark.core.component import LinkageMetric, Metric
from benchmark.engine.results import jsonable
from benchmark.engine.stages import Engine, ImageSet
from benchmark.engine.views import View
from benchmark.metrics.bootstrap import add_ci, paired_delta_ci, subject_bootstrap
from benchmark.metrics.irreversibility import SAR_TARGETS, quality_ci, sar, sar_ci, summarise_quality
from benchmark.metrics.verification import det_curve, eer, score_histogram, target_key

__all__ = [
    "ViewScores",
    "EvalSettings",
    "score_view",
    "row_metrics",
    "row_curves",
    "quality_metrics",
    "quality_distribution",
]

Features = Callable[[ImageSet], tuple[str, np.ndarray]]
Scorer = Callable[[tuple[str, np.ndarray], tuple[str, np.ndarray], np.ndarray, np.ndarray], np.ndarray]


@dataclass
class EvalSettings:
    """Bootstrap settings shared by every row."""

    n_boot: int = 200
    seed: int = 0


@dataclass
class ViewScores:
    """Scores of one view; comparisons with a failure to acquire are dropped.

    Subjects are dense codes over the dataset's subjects (shared by every
    view, so paired resampling draws the same subjects in two views).
    """

    scores: np.ndarray
    mated: np.ndarray
    probe_subject: np.ndarray
    index: np.ndarray  # comparison indices kept (into the dataset's list)
    n_fta: int  # comparisons dropped for a failure to acquire
    fta_mated_subject: np.ndarray  # probe subject of each mated comparison dropped for a FTA

    @property
    def n_fta_mated(self) -> int:
        return int(self.fta_mated_subject.size)

    def genuine(self) -> np.ndarray:
        return self.scores[self.mated]

    def impostor(self) -> np.ndarray:
        return self.scores[~self.mated]

    def content_hash(self) -> str:
        """Hash of everything the metrics read (a cache input)."""
        parts = [
            hash_array(a) for a in (self.scores, self.mated, self.probe_subject, self.index, self.fta_mated_subject)
        ]
        return hash_json({"arrays": parts, "n_fta": self.n_fta})


def score_view(
    view: View,
    features: Features,
    score: Scorer,
    probe: np.ndarray,
    reference: np.ndarray,
    mated: np.ndarray,
    subject_codes: np.ndarray,
) -> ViewScores:
    """Score every part of a view and assemble them in comparison order."""
    scores = np.full(mated.size, np.nan)
    used = np.zeros(mated.size, bool)
    fta = np.zeros(mated.size, bool)
    for part in view.parts:
        idx = np.flatnonzero(part.mask)
        failed = part.probe_set.failed[probe[idx]] | part.ref_set.failed[reference[idx]]
        fta[idx[failed]] = True
        idx = idx[~failed]
        scores[idx] = score(features(part.probe_set), features(part.ref_set), probe[idx], reference[idx])
        used[idx] = True
    keep = np.flatnonzero(used)
    return ViewScores(
        scores[keep],
        mated[keep],
        subject_codes[probe[keep]],
        keep,
        int(fta.sum()),
        subject_codes[probe[np.flatnonzero(fta & mated)]],
    )


def _performance(vs: ViewScores, perf: Sequence[Metric], settings: EvalSettings) -> dict[str, Any]:
    def stat(genuine: np.ndarray, impostor: np.ndarray) -> dict[str, float]:
        out: dict[str, float] = {}
        for m in perf:
            out.update(m.compute(genuine, impostor))
        return {k: v for k, v in out.items() if not k.startswith("threshold_")}

    values: dict[str, Any] = {}
    for m in perf:
        values.update(m.compute(vs.genuine(), vs.impostor()))
    if settings.n_boot > 0:
        cis = subject_bootstrap(vs.scores, vs.mated, vs.probe_subject, stat, n_boot=settings.n_boot, seed=settings.seed)
        values = add_ci(values, cis)
    return values


def _linkability(vs: ViewScores, link: Sequence[LinkageMetric]) -> tuple[dict[str, Any], dict | None]:
    values: dict[str, Any] = {}
    curve = None
    for m in link:
        values.update(
            m.compute_with_subjects(
                vs.genuine(), vs.impostor(), vs.probe_subject[vs.mated], vs.probe_subject[~vs.mated]
            )
        )
        curve = m.curve(vs.genuine(), vs.impostor())
    return values, curve


def _sar(vs: ViewScores, system: ViewScores | None, settings: EvalSettings) -> dict[str, Any]:
    """SAR of the view's mated scores at the thresholds of ``system`` (None: the view's own impostors).

    With ``system`` the baseline (strength views), its exact thresholds are
    used (the baseline row's ``threshold_at_fmr_<t>``); on the view's own
    impostors (renewal), the most lenient threshold meeting each FMR target,
    which gives the largest SAR any such threshold allows. Each target also
    records the threshold (``sar_threshold_at_fmr_<t>``) and the FMR it gives
    on those impostors (``sar_threshold_fmr_at_fmr_<t>``, at most ``t``).
    """
    attacked = vs.genuine()
    # The system whose impostors set the threshold, and its mated scores when they fix the grid.
    ref = vs if system is None else system
    impostor = ref.impostor()
    grid = None if system is None else system.genuine()
    if attacked.size + vs.n_fta_mated == 0 or impostor.size == 0:
        return {}
    out: dict[str, Any] = {}
    for t in SAR_TARGETS:
        res = sar(attacked, impostor, t, baseline_mated_scores=grid, n_failed=vs.n_fta_mated)
        out[f"sar_at_fmr_{target_key(t)}"] = res["sar"]
        # The threshold and the FMR it gives on the impostors that set it: a
        # check that "SAR at FMR t" is at FMR t for the scores it was set on.
        out[f"sar_threshold_at_fmr_{target_key(t)}"] = res["threshold"]
        out[f"sar_threshold_fmr_at_fmr_{target_key(t)}"] = float(np.mean(impostor >= res["threshold"]))
    out["n_sar_impostor"] = int(impostor.size)
    if settings.n_boot > 0:
        cis = sar_ci(
            attacked,
            impostor,
            SAR_TARGETS,
            attacked_clusters=vs.probe_subject[vs.mated],
            impostor_clusters=ref.probe_subject[~ref.mated],
            failed_clusters=vs.fta_mated_subject,
            baseline_mated=grid,
            baseline_mated_clusters=None if system is None else system.probe_subject[system.mated],
            n_boot=settings.n_boot,
            seed=settings.seed,
        )
        out = add_ci(out, cis)
    return out


def _delta_eer(vs: ViewScores, baseline: ViewScores, delta: float, settings: EvalSettings) -> dict[str, float]:
    """ΔEER with a paired bootstrap CI over the comparisons both views scored."""
    out = {"delta_eer": delta}
    common, iv, ib = np.intersect1d(vs.index, baseline.index, return_indices=True)
    mated = vs.mated[iv]
    if settings.n_boot > 0 and mated.any() and not mated.all():
        low, high = paired_delta_ci(
            vs.scores[iv],
            baseline.scores[ib],
            mated,
            vs.probe_subject[iv],
            eer,
            n_boot=settings.n_boot,
            seed=settings.seed,
        )
        out.update(delta_eer_ci_low=low, delta_eer_ci_high=high)
    return out


def row_metrics(
    view: View,
    vs: ViewScores,
    baseline: tuple[ViewScores, dict[str, Any]] | None,
    metrics: Sequence[Metric],
    settings: EvalSettings,
    extras: dict[str, Any],
) -> tuple[dict[str, Any], dict | None]:
    """Flat metrics of one row and its linkability curve (if computed).

    Args:
        view: The view scored.
        vs: Its scores.
        baseline: The baseline row of the system that scores the view (scores and metrics), None for the
            baseline itself: the recognizer's, or for a fine-tuned recognizer's view (``view.model``) its own
            baseline, plain vs plain through the fine-tuned model, so that its SAR thresholds and ΔEER come
            from scores on its own scale.
        metrics: The protocol's metric components.
        settings: Bootstrap settings.
        extras: Per-view values computed once for all recognizers (image quality, key space...).
    """
    perf = [m for m in metrics if not isinstance(m, LinkageMetric)]
    link = [m for m in metrics if isinstance(m, LinkageMetric)] if view.kind != "renewal" else []
    values = _performance(vs, perf, settings)
    link_values, curve = _linkability(vs, link)
    values.update(link_values)
    if baseline is not None:
        base_vs, base_values = baseline
        if base_values.get("eer") is not None and values.get("eer") is not None:
            values.update(_delta_eer(vs, base_vs, float(values["eer"]) - float(base_values["eer"]), settings))
        if view.kind == "strength":
            values.update(_sar(vs, base_vs, settings))
    if view.kind == "renewal":
        values.update(_sar(vs, None, settings))
    values.update(extras)
    values.update(n_genuine=int(vs.mated.sum()), n_impostor=int((~vs.mated).sum()), n_fta=vs.n_fta)
    return values, curve


def metrics_stage(
    engine: Engine,
    label: str,
    view: View,
    vs: ViewScores,
    baseline: tuple[ViewScores, dict[str, Any]] | None,
    metrics: Sequence[Metric],
    settings: EvalSettings,
    extras: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """:func:`row_metrics` and :func:`row_curves` of one row, cached like any stage.

    The bootstrap CIs make metrics the slowest part of a rerun whose scores
    all come from the cache; keyed by the scores' content, the baseline row,
    the metric components, the bootstrap settings and this code, a row is
    recomputed only when one of them changes.

    Returns:
        ``(values, curves)`` as JSON-ready dicts (the row's ``metrics`` and ``curves``).
    """
    inputs = [vs.content_hash()]
    if baseline is not None:
        inputs += [baseline[0].content_hash(), hash_json(jsonable(baseline[1]))]
    params = {
        "view": {"kind": view.kind, "name": view.name},
        "metrics": [{"class": type(m).__qualname__, "params": m.get_params()} for m in metrics],
        "settings": {"n_boot": settings.n_boot, "seed": settings.seed},
        "extras": jsonable(extras),
    }

    def compute() -> tuple[dict[str, np.ndarray], dict]:
        values, curve = row_metrics(view, vs, baseline, metrics, settings, extras)
        return {}, {"values": jsonable(values), "curves": jsonable(row_curves(vs, curve))}

    code = code_version(sys.modules[__name__], *(type(m) for m in metrics))
    _, _, meta = engine.run("metrics", label, params, inputs, code, compute)
    return meta["values"], meta["curves"]


def row_curves(vs: ViewScores, linkability_curve: dict | None) -> dict[str, Any]:
    """The ``curves`` entry of a row: DET points, score histograms, linkability curve."""
    curves: dict[str, Any] = {}
    if vs.mated.any() and (~vs.mated).any():
        curves["det"] = det_curve(vs.genuine(), vs.impostor())
        curves["hist"] = score_histogram(vs.genuine(), vs.impostor())
    if linkability_curve is not None:
        curves["unlinkability"] = linkability_curve
    return curves


def quality_metrics(
    quality: dict[str, np.ndarray], sample_subjects: np.ndarray, settings: EvalSettings
) -> dict[str, Any]:
    """Mean PSNR and SSIM of an attack's output with subject-resampling CIs.

    Args:
        quality: Per-image arrays (:func:`~benchmark.metrics.irreversibility.per_image_quality`).
        sample_subjects: Dense subject code of each sample.
        settings: Bootstrap settings.
    """
    values: dict[str, Any] = dict(summarise_quality(quality))
    if settings.n_boot > 0:
        values = add_ci(values, quality_ci(quality, sample_subjects, n_boot=settings.n_boot, seed=settings.seed))
    return values


def quality_distribution(values: np.ndarray, bins: int = 20) -> dict[str, Any]:
    """Summary and histogram of face-quality scores (NaN = failed sample).

    Bins span [0, 1] when every score lies there (the usual range of a
    confidence), else the observed range.
    """
    v = np.asarray(values, np.float64)
    ok = v[np.isfinite(v)]
    lo, hi = (0.0, 1.0) if ok.size == 0 or (ok.min() >= 0 and ok.max() <= 1) else (float(ok.min()), float(ok.max()))
    counts, edges = np.histogram(ok, bins=bins, range=(lo, hi if hi > lo else lo + 1))
    return {
        "n": int(ok.size),
        "failed": int(v.size - ok.size),
        "mean": float(ok.mean()) if ok.size else None,
        "median": float(np.median(ok)) if ok.size else None,
        "hist": {"edges": edges.tolist(), "counts": counts.tolist()},
    }
