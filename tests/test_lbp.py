"""Tests of benchmark.recognizers.lbp (``lbp`` and ``mblbp``)."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.feature import local_binary_pattern

from benchmark.core.component import ParamError
from benchmark.recognizers import lbp as lbp_module
from benchmark.recognizers.lbp import (
    FACE_SIZE,
    LBPRecognizer,
    MBLBPRecognizer,
    cell_histograms,
    chi_square,
    to_grey,
    uniform_bins,
    uniform_lookup,
)

RECOGNIZER_CLASSES = [LBPRecognizer, MBLBPRecognizer]


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    """Smooth random 'faces' (not pure noise, so LBP codes are structured)."""
    rng = np.random.default_rng(1234)
    base = rng.integers(0, 256, size=(5, 28, 28, 3)).astype(np.float64)
    up = np.repeat(np.repeat(base, 4, axis=1), 4, axis=2)
    noisy = up + rng.normal(0, 6, up.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def ramp() -> np.ndarray:
    """A grey image whose level grows by 2 per column: (1, 112, 112) uint8."""
    return np.tile((np.arange(FACE_SIZE) * 2).astype(np.uint8), (FACE_SIZE, 1))[None]


# ----------------------------------------------------------------------------- uniform mapping


@pytest.mark.parametrize("points", [8, 16])
def test_uniform_lookup_counts(points):
    table = uniform_lookup(points)
    assert table.shape == (1 << points,)
    assert set(np.unique(table)) == set(range(uniform_bins(points)))
    non_uniform = uniform_bins(points) - 1
    # Every uniform pattern has its own label; all others share the last one.
    assert np.count_nonzero(table != non_uniform) == uniform_bins(points) - 1
    assert uniform_bins(8) == 59


def test_uniform_lookup_hand_cases():
    table = uniform_lookup(8)
    assert table[0] == 0  # no neighbour >= centre
    assert table[0xFF] == 57  # flat: every neighbour ties with the centre
    assert table[0b01010101] == 58  # 8 transitions: non-uniform
    # Neighbours 0, 1, 2, 6, 7 set: five ones starting at bit 6 (two
    # transitions) -> 1 + (5 - 1) * 8 + rotation (5 - first zero 3) = 35.
    assert table[0b11000111] == 35


@pytest.mark.parametrize("points,radius", [(8, 1), (8, 2), (16, 2)])
def test_uniform_lookup_matches_skimage(points, radius):
    image = np.random.default_rng(0).integers(0, 256, size=(40, 50)).astype(np.uint8)
    codes = local_binary_pattern(image, points, radius, method="default").astype(np.int64)
    labels = local_binary_pattern(image, points, radius, method="nri_uniform").astype(np.int64)
    np.testing.assert_array_equal(uniform_lookup(points)[codes], labels)


# ----------------------------------------------------------------------------- building blocks


def test_to_grey_keeps_equal_channels_and_checks_input():
    grey = np.random.default_rng(3).integers(0, 256, (2, FACE_SIZE, FACE_SIZE)).astype(np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    np.testing.assert_array_equal(to_grey(rgb), grey)
    np.testing.assert_array_equal(to_grey(grey), grey)
    with pytest.raises(ValueError, match="uint8"):
        to_grey(rgb.astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        to_grey(rgb[:, :100])


def test_cell_histograms_hand_case():
    labels = np.array([[[0, 1, 2, 2], [1, 1, 2, 2], [0, 0, 0, 0], [0, 0, 0, 1]]])
    hist = cell_histograms(labels, nbins=3, cell=2)
    expected = np.array([[1, 3, 0], [0, 0, 4], [4, 0, 0], [3, 1, 0]]) / 4.0
    assert hist.dtype == np.float32
    np.testing.assert_allclose(hist.reshape(4, 3), expected)


def test_chi_square_hand_case_and_zero_bins():
    a = np.array([[0.5, 0.5, 0.0], [0.2, 0.0, 0.8]])
    b = np.array([[1.0, 0.0, 0.0], [0.2, 0.0, 0.8]])
    # 0.25 / 1.5 + 0.25 / 0.5; the empty third bin is skipped, not NaN.
    np.testing.assert_allclose(chi_square(a, b), [0.25 / 1.5 + 0.5, 0.0])
    with pytest.raises(ValueError, match="shape"):
        chi_square(a, b[:1])


# ----------------------------------------------------------------------------- recognizers


@pytest.mark.parametrize("cls", RECOGNIZER_CLASSES)
def test_transform_shape_dtype_and_normalisation(cls, faces):
    rec = cls().fit()
    feats = rec.transform(faces)
    assert feats.shape == (len(faces), 64 * 59)
    assert feats.dtype == np.float32
    cells = feats.reshape(len(faces), 64, 59)
    assert np.all(cells >= 0)
    np.testing.assert_allclose(cells.sum(axis=2), 1.0, rtol=1e-5)


def test_feature_size_follows_params(faces):
    assert LBPRecognizer(cell=16).transform(faces[:1]).shape == (1, 49 * 59)
    assert LBPRecognizer(points=16).transform(faces[:1]).shape == (1, 64 * 243)
    assert MBLBPRecognizer(cell=28).transform(faces[:1]).shape == (1, 16 * 59)


@pytest.mark.parametrize("cls", RECOGNIZER_CLASSES)
def test_empty_batch(cls):
    feats = cls().transform(np.zeros((0, FACE_SIZE, FACE_SIZE, 3), np.uint8))
    assert feats.shape == (0, 64 * 59)


@pytest.mark.parametrize("cls", RECOGNIZER_CLASSES)
def test_identical_faces_score_zero_the_maximum(cls, faces):
    rec = cls()
    feats = rec.transform(faces)
    same = rec.compare(feats, feats)
    assert same.dtype == np.float64 and same.shape == (len(faces),)
    np.testing.assert_array_equal(same, 0.0)
    other = rec.compare(feats, np.roll(feats, 1, axis=0))
    assert np.all(other < 0)


@pytest.mark.parametrize("cls", RECOGNIZER_CLASSES)
def test_compare_is_symmetric(cls, faces):
    rec = cls()
    a = rec.transform(faces)
    b = np.roll(a, 2, axis=0)
    np.testing.assert_array_equal(rec.compare(a, b), rec.compare(b, a))


@pytest.mark.parametrize("cls", RECOGNIZER_CLASSES)
def test_compare_matches_naive_reference_across_chunks(cls, faces, monkeypatch):
    rec = cls()
    feats = rec.transform(faces).astype(np.float64)
    rng = np.random.default_rng(7)
    i, j = rng.integers(0, len(faces), 9), rng.integers(0, len(faces), 9)
    naive = []
    for p, r in zip(feats[i], feats[j]):  # reference: one pair at a time
        terms = [(x - y) ** 2 / (x + y) for x, y in zip(p, r) if x + y > 0]
        naive.append(-sum(terms))
    # Force chunks of two pairs so that chunk boundaries are exercised.
    monkeypatch.setattr(lbp_module, "_CHUNK_ELEMENTS", 2 * feats.shape[1])
    np.testing.assert_allclose(rec.compare(feats[i], feats[j]), naive, rtol=1e-5)


@pytest.mark.parametrize("cls", RECOGNIZER_CLASSES)
def test_batched_transform_equals_one_by_one(cls, faces, monkeypatch):
    # Faces labelled together must not see each other (stacking, padding).
    monkeypatch.setattr(lbp_module, "_IMAGE_BATCH", 2)
    rec = cls()
    together = rec.transform(faces)
    alone = np.concatenate([rec.transform(face[None]) for face in faces])
    np.testing.assert_array_equal(together, alone)


@pytest.mark.parametrize("cls", RECOGNIZER_CLASSES)
def test_rgb_and_grey_input_agree(cls, faces):
    grey = to_grey(faces)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    np.testing.assert_array_equal(cls().transform(rgb), cls().transform(grey))


@pytest.mark.parametrize("cls", RECOGNIZER_CLASSES)
def test_invariant_to_grey_level_scaling(cls, faces):
    # Doubling every level preserves all comparisons (exactly, in floating point).
    grey = to_grey(faces) // 2
    rec = cls()
    np.testing.assert_array_equal(rec.transform(grey), rec.transform(grey * 2))


@pytest.mark.parametrize("cls", RECOGNIZER_CLASSES)
def test_flat_face_is_all_ties(cls):
    flat = np.full((1, FACE_SIZE, FACE_SIZE, 3), 90, np.uint8)
    cells = cls().transform(flat).reshape(64, 59)
    np.testing.assert_array_equal(cells[:, 57], 1.0)  # label of the all-ones code


def test_lbp_labels_of_a_ramp():
    # Hand-computed: on a left-to-right ramp neighbours 0, 1 (right), 2 and 6
    # (same column: ties) and 7 are >= the centre -> code 0b11000111 -> 35.
    labels = LBPRecognizer()._labels(ramp())
    inner = labels[0, :, 3:-3]  # columns whose circle stays off the reflected border
    np.testing.assert_array_equal(inner, 35)


def test_mblbp_labels_of_a_ramp():
    labels = MBLBPRecognizer(block=3)._labels(ramp())
    np.testing.assert_array_equal(labels[0, :, 5:-5], 35)


def test_mblbp_matches_naive_block_means():
    rng = np.random.default_rng(11)
    grey = rng.integers(0, 256, size=(1, 30, 30)).astype(np.uint8)
    s = 3
    labels = MBLBPRecognizer(block=s)._labels(grey)
    pad = s + s // 2
    padded = np.pad(grey[0], pad, mode="symmetric").astype(np.int64)
    ring = [(0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1)]
    for r, c in [(0, 0), (0, 29), (29, 13), (15, 15), (7, 22)]:  # corners and inside

        def block_sum(dy, dx, r=r, c=c):
            top, left = r + pad + dy * s - s // 2, c + pad + dx * s - s // 2
            return padded[top : top + s, left : left + s].sum()

        centre = block_sum(0, 0)
        code = sum(1 << bit for bit, (dy, dx) in enumerate(ring) if block_sum(dy, dx) >= centre)
        assert labels[0, r, c] == uniform_lookup(8)[code], (r, c)


# ----------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    "cls,params,name",
    [
        (LBPRecognizer, {"cell": 10}, "cell"),
        (LBPRecognizer, {"cell": 2}, "cell"),
        (LBPRecognizer, {"cell": "14"}, "cell"),
        (LBPRecognizer, {"radius": 0}, "radius"),
        (LBPRecognizer, {"radius": 1.5}, "radius"),
        (LBPRecognizer, {"points": 12}, "points"),
        (LBPRecognizer, {"colour": True}, "colour"),
        (MBLBPRecognizer, {"block": 4}, "block"),
        (MBLBPRecognizer, {"block": 0}, "block"),
        (MBLBPRecognizer, {"cell": 15}, "cell"),
    ],
)
def test_invalid_params_raise(cls, params, name):
    with pytest.raises(ParamError) as info:
        cls.from_params(params)
    assert info.value.param == name


def test_invalid_params_caught_at_transform(faces):
    with pytest.raises(ParamError, match="divisor of 112"):
        LBPRecognizer(cell=10).transform(faces)


def test_defaults_and_registration():
    assert LBPRecognizer().get_params() == {"radius": 2, "points": 8, "cell": 14}
    assert MBLBPRecognizer().get_params() == {"block": 3, "cell": 14}
    assert LBPRecognizer.registry_name == "lbp"
    assert MBLBPRecognizer.registry_name == "mblbp"
    rec = LBPRecognizer()
    assert rec.fit() is rec
