"""Tests for benchmark.metrics.irreversibility: SAR, PSNR, SSIM."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from benchmark.metrics.irreversibility import (
    SAR_TARGETS,
    per_image_quality,
    psnr,
    psnr_gain,
    reconstruction_quality,
    sar,
    sar_all,
    ssim,
    summarise_quality,
)

# --------------------------------------------------------------------------- SAR by hand

IMPOSTOR = np.arange(1.0, 11.0)  # 1, 2, ..., 10
ATTACKED = np.array([8.5, 9.5, 9.2, 5.0, 12.0])


def test_sar_hand_computed():
    # FMR <= 0.1 allows at most one of ten impostors at or above the threshold:
    # FMR(9) = 0.2, FMR(10) = 0.1, so any threshold in (9, 10] qualifies and the
    # smallest observed score there is the attacked 9.2. Accepted: 9.2, 9.5, 12.
    r = sar(ATTACKED, IMPOSTOR, 0.1)
    assert r == {"sar": 0.6, "threshold": 9.2}


def test_sar_with_the_baseline_threshold():
    # Baseline mated scores 9.7 and 15: the baseline threshold is 9.7; only 12 passes.
    r = sar(ATTACKED, IMPOSTOR, 0.1, baseline_mated_scores=[9.7, 15.0])
    assert r == {"sar": 0.2, "threshold": 9.7}


def test_sar_failures_count_as_rejected():
    assert sar(ATTACKED, IMPOSTOR, 0.1, n_failed=5)["sar"] == 0.3
    only_failures = sar([], IMPOSTOR, 0.1, n_failed=3)
    assert only_failures["sar"] == 0.0 and np.mean(IMPOSTOR >= only_failures["threshold"]) <= 0.1


def test_sar_target_zero_rejects_scores_up_to_the_largest_impostor():
    r = sar([10.0, 10.5, 3.0], IMPOSTOR, 0.0)
    assert r["threshold"] == 10.5 and r["sar"] == pytest.approx(1 / 3)
    assert sar([10.0], IMPOSTOR, 0.0)["threshold"] > 10.0  # reject-all point


def test_sar_all_result_keys():
    out = sar_all(ATTACKED, IMPOSTOR)
    assert set(out) == {
        "sar_at_fmr_0.001",
        "sar_at_fmr_0.0001",
        "sar_threshold_at_fmr_0.001",
        "sar_threshold_at_fmr_0.0001",
    }
    assert SAR_TARGETS == (0.001, 0.0001)
    # Ten impostors cannot reach FMR 0.001 except at FMR 0: above the largest impostor.
    assert out["sar_at_fmr_0.001"] == 0.2 and out["sar_threshold_at_fmr_0.001"] == 12.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"attacked_mated_scores": [], "baseline_impostor_scores": IMPOSTOR, "target_fmr": 0.1},
        {"attacked_mated_scores": ATTACKED, "baseline_impostor_scores": [], "target_fmr": 0.1},
        {"attacked_mated_scores": ATTACKED, "baseline_impostor_scores": IMPOSTOR, "target_fmr": 1.5},
        {"attacked_mated_scores": [np.nan], "baseline_impostor_scores": IMPOSTOR, "target_fmr": 0.1},
        {"attacked_mated_scores": ATTACKED, "baseline_impostor_scores": IMPOSTOR, "target_fmr": 0.1, "n_failed": -1},
        {"attacked_mated_scores": [[1.0]], "baseline_impostor_scores": IMPOSTOR, "target_fmr": 0.1},
    ],
)
def test_sar_rejects_bad_input(kwargs):
    with pytest.raises(ValueError):
        sar(**kwargs)


scores = st.lists(st.integers(0, 20).map(float), min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(attacked=scores, impostor=scores, baseline=scores, target=st.sampled_from([0.0, 0.01, 0.1, 0.25, 0.5, 1.0]))
def test_sar_threshold_is_exactly_fmr_at_most_target(attacked, impostor, baseline, target):
    attacked, impostor = np.array(attacked), np.array(impostor)
    r = sar(attacked, impostor, target)
    t = r["threshold"]
    # Recomputed from the raw scores: FMR(t) <= target ...
    assert np.mean(impostor >= t) <= target
    # ... and every lower observed score breaks the target.
    observed = np.concatenate((attacked, impostor))
    for lower in np.unique(observed[observed < t]):
        assert np.mean(impostor >= lower) > target
    assert r["sar"] == np.mean(attacked >= t)
    # The default is the most lenient valid threshold: the baseline's is never kinder.
    assert sar(attacked, impostor, target, baseline_mated_scores=baseline)["sar"] <= r["sar"]


# --------------------------------------------------------------------------- PSNR


def test_psnr_hand_computed():
    a = np.zeros((2, 112, 112, 3), np.uint8)
    b = a.copy()
    b[0, 5, 7, 1] = 10  # one value off by 10
    b[1] = 255  # every value off by 255: MSE = 255**2, PSNR = 0 dB
    out = psnr(a, b)
    expected = 10 * math.log10(255**2 * (112 * 112 * 3) / 100)
    assert out["per_image"][0] == pytest.approx(expected, rel=1e-12)
    assert out["per_image"][1] == 0.0
    assert out["mean"] == pytest.approx(expected / 2, rel=1e-12)
    assert out["n_identical"] == 0


def test_psnr_identical_is_inf_and_left_out_of_the_mean():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (3, 112, 112, 3), dtype=np.uint8)
    b = a.copy()
    b[1] = 255 - a[1]
    out = psnr(a, b)
    assert math.isinf(out["per_image"][0]) and math.isinf(out["per_image"][2])
    assert out["n_identical"] == 2 and out["mean"] == out["per_image"][1]
    assert math.isinf(psnr(a, a)["mean"])
    assert math.isnan(psnr(a[:0], a[:0])["mean"])


def test_psnr_matches_skimage():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (5, 112, 112, 3), dtype=np.uint8)
    b = np.clip(a + rng.normal(0, 25, a.shape), 0, 255).astype(np.uint8)
    expected = [peak_signal_noise_ratio(x, y, data_range=255) for x, y in zip(a, b)]
    np.testing.assert_allclose(psnr(a, b)["per_image"], expected, rtol=1e-12)


# --------------------------------------------------------------------------- SSIM


def test_ssim_identical_is_one():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (3, 112, 112, 3), dtype=np.uint8)
    out = ssim(a, a)
    np.testing.assert_allclose(out["per_image"], 1.0, rtol=0, atol=1e-12)
    assert out["mean"] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("grey", [True, False])
def test_ssim_matches_skimage(grey):
    rng = np.random.default_rng(3)
    shape = (6, 112, 112, 1 if grey else 3)
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    b = np.clip(a + rng.normal(0, 30, shape), 0, 255).astype(np.uint8)
    if grey:
        a, b = np.repeat(a, 3, axis=3), np.repeat(b, 3, axis=3)
    expected = [structural_similarity(x, y, channel_axis=-1, data_range=255) for x, y in zip(a, b)]
    np.testing.assert_allclose(ssim(a, b)["per_image"], expected, rtol=0, atol=1e-10)


def test_ssim_batches_mixing_grey_and_colour():
    # More images than one batch, a colour image in the second batch only.
    rng = np.random.default_rng(4)
    a = np.repeat(rng.integers(0, 256, (70, 112, 112, 1), dtype=np.uint8), 3, axis=3)
    b = np.clip(a + rng.normal(0, 20, (70, 112, 112, 1)), 0, 255).astype(np.uint8)
    b[66, ..., 2] = 0
    picks = [0, 63, 64, 66, 69]
    expected = [structural_similarity(a[i], b[i], channel_axis=-1, data_range=255) for i in picks]
    np.testing.assert_allclose(ssim(a, b)["per_image"][picks], expected, rtol=0, atol=1e-10)


def test_ssim_orders_by_distortion():
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (1, 112, 112, 3), dtype=np.uint8)
    mild = np.clip(a + rng.normal(0, 5, a.shape), 0, 255).astype(np.uint8)
    strong = np.clip(a + rng.normal(0, 60, a.shape), 0, 255).astype(np.uint8)
    assert 1.0 > ssim(a, mild)["mean"] > ssim(a, strong)["mean"]


@pytest.mark.parametrize(
    "a, b",
    [
        (np.zeros((1, 112, 112, 3), np.uint8), np.zeros((1, 112, 112, 3), np.float64)),
        (np.zeros((1, 112, 112, 3), np.uint8), np.zeros((2, 112, 112, 3), np.uint8)),
        (np.zeros((112, 112, 3), np.uint8), np.zeros((112, 112, 3), np.uint8)),
        (np.zeros((1, 5, 5, 3), np.uint8), np.zeros((1, 5, 5, 3), np.uint8)),
    ],
)
def test_image_metrics_reject_bad_input(a, b):
    with pytest.raises(ValueError):
        psnr(a, b)
    with pytest.raises(ValueError):
        ssim(a, b)


def test_reconstruction_quality_leaves_failures_out():
    rng = np.random.default_rng(6)
    a = rng.integers(0, 256, (4, 112, 112, 3), dtype=np.uint8)
    b = a.copy()
    b[1] = 0  # a failure to acquire: its image must not count
    b[2] = np.clip(a[2] + rng.normal(0, 10, a[2].shape), 0, 255).astype(np.uint8)
    out = reconstruction_quality(a, b, failed=np.array([False, True, False, False]))
    assert out["n_quality_failed"] == 1 and out["n_psnr_identical"] == 2
    assert out["psnr"] == pytest.approx(peak_signal_noise_ratio(a[2], b[2], data_range=255))
    assert out["ssim"] == pytest.approx((2 + structural_similarity(a[2], b[2], channel_axis=-1, data_range=255)) / 3)
    with pytest.raises(ValueError, match="failed"):
        reconstruction_quality(a, b, failed=np.array([True]))


def _noisy(a: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(a + rng.normal(0, sigma, a.shape), 0, 255).astype(np.uint8)


def test_per_image_quality_and_its_summary():
    rng = np.random.default_rng(9)
    a = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    b = np.stack([a[0], _noisy(a[1], 10, 1), _noisy(a[2], 20, 2)])
    q = per_image_quality(a, b, np.array([False, False, True]))
    assert q["psnr"][0] == np.inf and np.isnan(q["psnr"][2]) and np.isnan(q["ssim"][2])
    assert q["psnr"][1] == pytest.approx(peak_signal_noise_ratio(a[1], b[1], data_range=255))
    assert summarise_quality(q) == reconstruction_quality(a, b, np.array([False, False, True]))
    assert summarise_quality(q)["psnr"] == q["psnr"][1] and summarise_quality(q)["n_psnr_identical"] == 1


def test_psnr_gain_pairs_images():
    gain = psnr_gain(np.array([30.0, 20.0, np.inf, 25.0, np.nan]), np.array([25.0, 22.0, 30.0, np.inf, 10.0]))
    # Images 2 and 3 have no finite gain; image 4 failed for the attack.
    assert gain["psnr_gain"] == pytest.approx(np.mean([5.0, -2.0])) and gain["psnr_gain_min"] == -2.0
    assert (gain["n_better"], gain["n_worse"], gain["n_compared"]) == (2, 2, 4)
    assert gain["better_rate"] == 0.5


def test_psnr_gain_with_nothing_compared_and_bad_input():
    empty = psnr_gain(np.array([np.nan, 3.0]), np.array([1.0, np.nan]))
    assert empty["n_compared"] == 0 and math.isnan(empty["psnr_gain"]) and math.isnan(empty["better_rate"])
    with pytest.raises(ValueError, match="one length"):
        psnr_gain(np.ones(2), np.ones(3))
