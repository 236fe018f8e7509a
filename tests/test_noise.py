"""Tests for the `noise` reference scheme."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from benchmark.core.component import ParamError
from benchmark.core.keys import MasterKey
from benchmark.core.registry import SCHEMES
from schemes.noise import NoiseScheme

MASTER = MasterKey(bytes(range(32)))
APP = MASTER.application("noise-test")


def _faces(n: int, seed: int = 0, grey: bool = True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if grey:
        return np.repeat(rng.integers(0, 256, (n, 112, 112, 1), dtype=np.uint8), 3, axis=3)
    return rng.integers(0, 256, (n, 112, 112, 3), dtype=np.uint8)


def _protect(scheme, images, key=APP, subjects=None):
    n = len(images)
    subjects = [f"s{i % 3}" for i in range(n)] if subjects is None else subjects
    return scheme.protect(images, key, [f"id{i}" for i in range(n)], subjects)


def test_registered_as_cancelable_scheme():
    assert SCHEMES.get("noise") is NoiseScheme
    assert NoiseScheme.domain == "cancelable"
    assert "not a protection" in NoiseScheme.summary().lower()


def test_shape_dtype_and_determinism():
    images = _faces(5)
    out = _protect(NoiseScheme(), images)
    assert out.shape == images.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, _protect(NoiseScheme(), images, key=MASTER.application("noise-test")))
    assert not np.array_equal(out, images)


def test_new_application_id_renews_the_pattern():
    images = np.full((1, 112, 112, 3), 128, np.uint8)
    a = _protect(NoiseScheme(), images, key=MASTER.application("a")).astype(int) - 128
    b = _protect(NoiseScheme(), images, key=MASTER.application("b")).astype(int) - 128
    assert not np.array_equal(a, b)
    # Independent patterns: nearly uncorrelated over 12544 pixels.
    assert abs(np.corrcoef(a[0, ..., 0].ravel(), b[0, ..., 0].ravel())[0, 1]) < 0.05


def test_pattern_is_gaussian_with_sigma():
    images = np.full((1, 112, 112, 3), 128, np.uint8)  # far from clipping at sigma 20
    noise = _protect(NoiseScheme(sigma=20.0), images).astype(float)[0, ..., 0] - 128
    # 12544 samples: the std estimate is within ~1% of 20; rounding adds 1/12 variance.
    assert abs(noise.std() - 20.0) < 0.8
    assert abs(noise.mean()) < 0.8


def test_one_pattern_per_application_by_default():
    images = np.full((4, 112, 112, 3), 100, np.uint8)
    out = _protect(NoiseScheme(), images, subjects=["a", "b", "c", "d"])
    assert all(np.array_equal(out[0], out[i]) for i in range(1, 4))


def test_per_subject_patterns():
    images = np.full((4, 112, 112, 3), 100, np.uint8)
    out = _protect(NoiseScheme(per_subject=True), images, subjects=["a", "b", "a", "c"])
    assert np.array_equal(out[0], out[2])
    assert not np.array_equal(out[0], out[1]) and not np.array_equal(out[1], out[3])
    # Batch result equals protecting each image on its own (order-free gather).
    for i, s in enumerate(["a", "b", "a", "c"]):
        alone = _protect(NoiseScheme(per_subject=True), images[i : i + 1], subjects=[s])
        np.testing.assert_array_equal(out[i : i + 1], alone)


def test_grey_stays_grey():
    out = _protect(NoiseScheme(sigma=50.0), _faces(3, grey=True))
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 0], out[..., 2])


def test_colour_channels_share_the_pattern():
    flat = np.zeros((1, 112, 112, 3), np.uint8)
    flat[..., 0], flat[..., 1], flat[..., 2] = 60, 120, 180
    out = _protect(NoiseScheme(sigma=10.0), flat).astype(int)
    np.testing.assert_array_equal(out[..., 1] - 120, out[..., 0] - 60)
    np.testing.assert_array_equal(out[..., 2] - 180, out[..., 0] - 60)


@settings(max_examples=25, deadline=None)
@given(hnp.arrays(np.uint8, (2, 112, 112, 3), elements=st.integers(0, 255)))
def test_sigma_zero_is_identity(images):
    np.testing.assert_array_equal(_protect(NoiseScheme(sigma=0.0), images), images)


@settings(max_examples=25, deadline=None)
@given(
    sigma=st.floats(0.0, 255.0),
    base=st.integers(0, 255),
    delta=st.integers(0, 255),
)
def test_protection_is_monotone_in_the_pixel_value(sigma, base, delta):
    # Same key, pixel-wise: clip(round(x + p)) is non-decreasing in x.
    low = np.full((1, 112, 112, 3), base, np.uint8)
    high = np.full((1, 112, 112, 3), min(255, base + delta), np.uint8)
    scheme = NoiseScheme(sigma=sigma)
    assert np.all(_protect(scheme, low) <= _protect(scheme, high))


def test_empty_batch():
    out = _protect(NoiseScheme(per_subject=True), np.zeros((0, 112, 112, 3), np.uint8), subjects=[])
    assert out.shape == (0, 112, 112, 3) and out.dtype == np.uint8


@pytest.mark.parametrize(
    "params",
    [
        {"sigma": -1.0},
        {"sigma": 256.0},
        {"sigma": "20"},
        {"sigma": True},
        {"sigma": float("nan")},
        {"per_subject": "yes"},
        {"blend": 0.5},
    ],
)
def test_parameter_validation(params):
    with pytest.raises(ParamError):
        NoiseScheme.from_params(params)


def test_invalid_params_are_caught_at_protect_time():
    with pytest.raises(ParamError):
        _protect(NoiseScheme(sigma=-5.0), _faces(1))


def test_init_only_stores_params():
    scheme = NoiseScheme(sigma=3, per_subject=True)
    assert scheme.get_params() == {"sigma": 3, "per_subject": True}
    assert NoiseScheme.from_params({"sigma": 3}).sigma == 3  # ints are valid numbers


@pytest.mark.parametrize(
    "images",
    [np.zeros((1, 112, 112), np.uint8), np.zeros((1, 112, 112, 3), np.float32), np.zeros((1, 64, 64, 3), np.uint8)],
)
def test_wrong_images_are_rejected(images):
    with pytest.raises(ValueError, match="uint8"):
        _protect(NoiseScheme(), images)


def test_subjects_must_match_images():
    with pytest.raises(ValueError, match="subjects"):
        NoiseScheme().protect(_faces(2), APP, ["a", "b"], ["s"])


def test_decode_shows_the_noisy_image_and_never_fails():
    protected = _protect(NoiseScheme(), _faces(3))
    images, failed = NoiseScheme().decode(protected)
    np.testing.assert_array_equal(images, protected)
    assert failed.dtype == bool and failed.shape == (3,) and not failed.any()


def test_no_recovery_path():
    with pytest.raises(NotImplementedError, match="cancelable"):
        NoiseScheme().recover(_faces(1), APP, ["id0"], ["s0"])


def test_key_space_is_the_derived_seed_size():
    assert NoiseScheme().key_space_bits() == 128.0
