"""Scores and metrics of one (recognizer, view): the rows of results.json.

Performance metrics get subject-resampling bootstrap CIs; unlinkability is
computed with its permutation null and CI; strength views add SAR at the
baseline's thresholds and PSNR/SSIM of the attack output; every protected
view adds ΔEER against the baseline of the same recognizer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from benchmark.engine.views import ImageSet, View

__all__ = ["ViewScores", "EvalSettings", "score_view", "row_metrics"]

SAR_TARGETS = (0.001, 0.0001)


@dataclass
class EvalSettings:
    """Bootstrap settings shared by every row."""

    n_boot: int = 200
    seed: int = 0


@dataclass
class ViewScores:
    """Scores of one view; comparisons with a failure to acquire are dropped."""

    scores: np.ndarray
    mated: np.ndarray
    probe_subject: np.ndarray
    index: np.ndarray  # comparison indices kept (into the dataset's list)
    n_fta: int  # comparisons dropped for a failure to acquire
    n_fta_mated: int = 0

    def genuine(self) -> np.ndarray:
        return self.scores[self.mated]

    def impostor(self) -> np.ndarray:
        return self.scores[~self.mated]


def score_view(
    view: View,
    features: Callable[[ImageSet], tuple[str, np.ndarray]],
    score: Callable[[tuple[str, np.ndarray], tuple[str, np.ndarray], np.ndarray, np.ndarray], np.ndarray],
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
        scores[keep], mated[keep], subject_codes[probe[keep]], keep, int(fta.sum()), int((fta & mated).sum())
    )


def _split_metrics(metric_instances: list) -> tuple[list, list]:
    link = [m for m in metric_instances if hasattr(m.component, "compute_with_subjects")]
    perf = [m for m in metric_instances if not hasattr(m.component, "compute_with_subjects")]
    return perf, link


def _performance(vs: ViewScores, perf: list, settings: EvalSettings) -> dict[str, Any]:
    from benchmark.metrics.bootstrap import add_ci, subject_bootstrap

    def stat(genuine: np.ndarray, impostor: np.ndarray) -> dict[str, float]:
        out: dict[str, float] = {}
        for m in perf:
            out.update(m.component.compute(genuine, impostor))
        return {k: v for k, v in out.items() if not k.startswith("threshold_")}

    values: dict[str, Any] = {}
    for m in perf:
        values.update(m.component.compute(vs.genuine(), vs.impostor()))
    if settings.n_boot > 0:
        cis = subject_bootstrap(vs.scores, vs.mated, vs.probe_subject, stat, n_boot=settings.n_boot, seed=settings.seed)
        values = add_ci(values, cis)
    return values


def _linkability(vs: ViewScores, link: list) -> tuple[dict[str, Any], dict | None]:
    values: dict[str, Any] = {}
    curve = None
    for m in link:
        values.update(
            m.component.compute_with_subjects(
                vs.genuine(), vs.impostor(), vs.probe_subject[vs.mated], vs.probe_subject[~vs.mated]
            )
        )
        curve = m.component.curve(vs.genuine(), vs.impostor())
    return values, curve


def _sar(vs: ViewScores, baseline: ViewScores) -> dict[str, float]:
    from benchmark.metrics.irreversibility import sar
    from benchmark.metrics.verification import target_key

    out: dict[str, float] = {}
    for t in SAR_TARGETS:
        # The baseline row's own threshold; a failed attack counts as rejected.
        res = sar(vs.genuine(), baseline.impostor(), t, baseline_mated_scores=baseline.genuine(),
                  n_failed=vs.n_fta_mated)
        out[f"sar_at_fmr_{target_key(t)}"] = res["sar"]
    return out


def _delta_eer(vs: ViewScores, baseline: ViewScores, delta: float, settings: EvalSettings) -> dict[str, float]:
    """ΔEER with a paired bootstrap CI over the comparisons both views scored."""
    from benchmark.metrics.bootstrap import paired_delta_ci
    from benchmark.metrics.verification import eer

    out = {"delta_eer": delta}
    common, iv, ib = np.intersect1d(vs.index, baseline.index, return_indices=True)
    mated = vs.mated[iv]
    if settings.n_boot > 0 and mated.any() and not mated.all():
        low, high = paired_delta_ci(vs.scores[iv], baseline.scores[ib], mated, vs.probe_subject[iv], eer,
                                    n_boot=settings.n_boot, seed=settings.seed)
        out.update(delta_eer_ci_low=low, delta_eer_ci_high=high)
    return out


def row_metrics(
    view: View,
    vs: ViewScores,
    baseline: ViewScores | None,
    baseline_eer: float | None,
    metric_instances: list,
    settings: EvalSettings,
    extras: dict[str, float],
) -> tuple[dict[str, Any], dict | None]:
    """Flat metrics of one row and its unlinkability curve (if computed)."""
    perf, link = _split_metrics(metric_instances)
    values = _performance(vs, perf, settings)
    link_values, curve = _linkability(vs, link)
    values.update(link_values)
    if baseline is not None and baseline_eer is not None and values.get("eer") is not None:
        values.update(_delta_eer(vs, baseline, float(values["eer"]) - float(baseline_eer), settings))
    if view.name.startswith("strength:") and baseline is not None:
        values.update(_sar(vs, baseline))
    values.update(extras)
    values.update(n_genuine=int(vs.mated.sum()), n_impostor=int((~vs.mated).sum()), n_fta=vs.n_fta)
    return values, curve
