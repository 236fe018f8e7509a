"""Row metrics of :mod:`benchmark.engine.evaluate`: SAR thresholds are those of the system that scored the view."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.engine.evaluate import EvalSettings, ViewScores, row_metrics
from benchmark.engine.views import View
from benchmark.metrics.irreversibility import SAR_TARGETS
from benchmark.metrics.verification import EERMetric, eer, target_key

N_IMPOSTOR = 200_000  # impostors of each baseline: 200 beyond the 0.1 % threshold


def _view_scores(rng: np.random.Generator, genuine: tuple[float, float], impostor: tuple[float, float]) -> ViewScores:
    """Normal mated and non-mated scores (mean, sd) of 40 probe subjects."""
    gen = rng.normal(*genuine, 2_000)
    imp = rng.normal(*impostor, N_IMPOSTOR)
    scores = np.concatenate([gen, imp])
    mated = np.arange(scores.size) < gen.size
    subjects = rng.integers(0, 40, scores.size)
    return ViewScores(scores, mated, subjects, np.arange(scores.size), 0, np.zeros(0, np.int64))


def _row(view_scores: ViewScores, baseline: ViewScores) -> dict:
    settings = EvalSettings(n_boot=0)
    base_values, _ = row_metrics(
        View("baseline", "baseline", "none", {}, "none", []), baseline, None, [EERMetric()], settings, {}
    )
    view = View("strength:finetune", "strength", "s", {}, "finetune", [])
    values, _ = row_metrics(view, view_scores, (baseline, base_values), [EERMetric()], settings, {})
    return values


def test_sar_threshold_is_at_its_fmr_on_the_scale_of_the_model_that_scored_the_view():
    """A fine-tuned model scores on another scale than the pretrained one: its own baseline sets the threshold.

    The threshold recorded with the SAR must give the target FMR (within
    sampling error) on fresh impostor scores of the model that scored the
    view; the pretrained model's threshold on those scores is nowhere near it.
    """
    rng = np.random.default_rng(0)
    pretrained = _view_scores(rng, (0.6, 0.1), (0.0, 0.1))
    tuned_baseline = _view_scores(rng, (0.8, 0.05), (0.3, 0.05))
    tuned_strength = _view_scores(rng, (0.7, 0.05), (0.3, 0.05))
    fresh = rng.normal(0.3, 0.05, 1_000_000)  # impostors of the fine-tuned model never used for any threshold
    own = _row(tuned_strength, tuned_baseline)
    other = _row(tuned_strength, pretrained)
    for t in SAR_TARGETS:
        k = target_key(t)
        # FMR of a threshold set at the (1 - t) quantile of N impostors, measured on M fresh ones: binomial errors.
        tolerance = 4 * np.sqrt(t * (1 - t) * (1 / N_IMPOSTOR + 1 / fresh.size))
        threshold = own[f"sar_threshold_at_fmr_{k}"]
        assert abs(np.mean(fresh >= threshold) - t) <= tolerance, (t, np.mean(fresh >= threshold))
        achieved = own[f"sar_threshold_fmr_at_fmr_{k}"]
        assert achieved == np.mean(tuned_baseline.impostor() >= threshold) and t - tolerance <= achieved <= t
        assert own[f"sar_at_fmr_{k}"] == np.mean(tuned_strength.genuine() >= threshold)
        # What a pretrained threshold does to the fine-tuned model's scores: far from the FMR it names.
        assert np.mean(fresh >= other[f"sar_threshold_at_fmr_{k}"]) > 100 * t
    assert own["delta_eer"] == pytest.approx(
        eer(tuned_strength.genuine(), tuned_strength.impostor())
        - eer(tuned_baseline.genuine(), tuned_baseline.impostor())
    )
