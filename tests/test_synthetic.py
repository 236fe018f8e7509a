"""Tests of benchmark.data.datasets.synthetic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmark.core.component import ParamError
from benchmark.data.datasets.synthetic import SIZE, SyntheticFaces
from benchmark.metrics.verification import eer
from benchmark.recognizers.lbp import LBPRecognizer, MBLBPRecognizer

# Acceptance band for the lbp EER on the default set: neither trivial nor hopeless.
EER_LOW, EER_HIGH = 0.01, 0.20


def load(**params):
    return SyntheticFaces.from_params(params).load(None)


def all_pairs_eer(recognizer, samples) -> float:
    """EER over every mated and every non-mated pair of ``samples``."""
    feats = recognizer.transform(samples.images)
    subjects = np.asarray(samples.subjects)
    i, j = np.triu_indices(len(subjects), k=1)
    step = 8192  # bounds the gathered feature pairs to a few hundred MB
    scores = np.concatenate(
        [recognizer.compare(feats[i[k : k + step]], feats[j[k : k + step]]) for k in range(0, len(i), step)]
    )
    mated = subjects[i] == subjects[j]
    return eer(scores[mated], scores[~mated])


def test_samples_shape_ids_and_flags():
    samples = load(n_subjects=3, n_images=2, seed=5)
    assert len(samples) == 6
    assert samples.images.shape == (6, SIZE, SIZE, 3)
    assert samples.images.dtype == np.uint8
    assert samples.ids == ["s000/00", "s000/01", "s001/00", "s001/01", "s002/00", "s002/01"]
    assert samples.subjects == ["s000", "s000", "s001", "s001", "s002", "s002"]
    assert samples.aligned and samples.demo
    assert samples.paths is None


def test_root_is_ignored():
    a = SyntheticFaces(n_subjects=2, n_images=1).load(Path("/nonexistent/anywhere"))
    b = SyntheticFaces(n_subjects=2, n_images=1).load(None)
    np.testing.assert_array_equal(a.images, b.images)


def test_same_seed_same_bytes_other_seed_other_bytes():
    a = load(n_subjects=3, n_images=2, seed=7)
    b = load(n_subjects=3, n_images=2, seed=7)
    c = load(n_subjects=3, n_images=2, seed=8)
    assert a.images.tobytes() == b.images.tobytes()
    assert a.ids == c.ids
    assert a.images.tobytes() != c.images.tobytes()


def test_samples_do_not_depend_on_set_size():
    small = load(n_subjects=2, n_images=2, seed=3)
    large = load(n_subjects=3, n_images=3, seed=3)
    keep = [large.ids.index(sample_id) for sample_id in small.ids]
    np.testing.assert_array_equal(large.images[keep], small.images)


def test_every_image_is_distinct():
    images = load(n_subjects=3, n_images=3, seed=0).images.reshape(9, -1)
    assert len({row.tobytes() for row in images}) == 9


def test_faces_are_darker_at_the_eyes_than_on_the_cheeks():
    # A coarse face-likeness check at the alignment template: the eye band
    # (rows around y = 51) holds dark irises, pupils and lids; the cheeks
    # below (rows 70-80, beside the nose) are plain skin.
    grey = load(n_subjects=6, n_images=2, seed=1).images.mean(axis=-1)
    eyes = grey[:, 46:58, 28:48].min(axis=(1, 2))
    cheeks = grey[:, 70:80, 20:36].mean(axis=(1, 2))
    assert np.all(eyes < cheeks - 40)


@pytest.mark.parametrize(
    "params,name",
    [
        ({"n_subjects": 0}, "n_subjects"),
        ({"n_images": 2.5}, "n_images"),
        ({"seed": -1}, "seed"),
        ({"size": 112}, "size"),
    ],
)
def test_invalid_params_raise(params, name):
    with pytest.raises(ParamError) as info:
        SyntheticFaces.from_params(params)
    assert info.value.param == name


def test_defaults_and_registration():
    assert SyntheticFaces().get_params() == {"n_subjects": 40, "n_images": 10, "seed": 0, "first_subject": 0}
    assert SyntheticFaces.registry_name == "synthetic"


@pytest.fixture(scope="module")
def default_set():
    return SyntheticFaces().load(None)


def test_lbp_eer_on_default_set_is_moderate(default_set):
    assert EER_LOW <= all_pairs_eer(LBPRecognizer(), default_set) <= EER_HIGH


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lbp_eer_is_moderate_for_other_seeds(seed):
    samples = SyntheticFaces(seed=seed).load(None)
    assert EER_LOW <= all_pairs_eer(LBPRecognizer(), samples) <= EER_HIGH


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_mblbp_eer_is_moderate(seed):
    samples = SyntheticFaces(seed=seed).load(None)
    assert EER_LOW <= all_pairs_eer(MBLBPRecognizer(), samples) <= EER_HIGH


def test_first_subject_continues_the_same_generator():
    # An attacker's own faces: subjects 3 and 4 of the generator, the same faces as in a larger set.
    later = load(n_subjects=2, n_images=2, seed=3, first_subject=3)
    large = load(n_subjects=5, n_images=2, seed=3)
    assert later.ids == ["s003/00", "s003/01", "s004/00", "s004/01"]
    assert later.subjects == ["s003", "s003", "s004", "s004"]
    np.testing.assert_array_equal(later.images, large.images[6:])
