"""``detector`` face quality: real aligned faces score high, noise and blanks low."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.data.align import Aligner
from benchmark.data.imageio import read_image
from benchmark.quality.detector import DetectorConfidence


@pytest.fixture(scope="module")
def measure():
    m = DetectorConfidence()
    if m.available() is not None:
        pytest.skip(m.available())
    return m


def test_real_faces_score_above_noise_and_blank(measure, lfw_root):
    paths = sorted(lfw_root.glob("*/*.jpg"))[:12]
    aligner = Aligner()
    faces = np.stack([aligner.align(read_image(p))[0] for p in paths])
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, faces.shape, dtype=np.uint8)
    real, fake = measure.measure(faces), measure.measure(noise)
    blank = measure.measure(np.zeros((2, 112, 112, 3), np.uint8))
    assert real.shape == (12,) and np.all((real >= 0) & (real <= 1))
    assert np.median(real) > np.max(fake) and np.all(blank == 0)


def test_shape_is_checked(measure):
    with pytest.raises(ValueError, match="112, 112, 3"):
        measure.measure(np.zeros((1, 64, 64, 3), np.uint8))
