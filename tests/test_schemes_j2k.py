"""The registered j2k and jpeg schemes: protect, naive decode, legitimate recovery."""

from __future__ import annotations

import numpy as np
import pytest
from images import declaring

from benchmark.core.component import ParamError
from benchmark.core.keys import MasterKey
from benchmark.data.datasets.synthetic import SyntheticFaces
from schemes.codestream import _decode_chunk
from schemes.j2k import J2KScheme
from schemes.jpeg import JPEGScheme


@pytest.fixture(scope="module")
def faces():
    s = SyntheticFaces(n_subjects=2, n_images=2, seed=3).load(None)
    grey = np.repeat(s.images[..., :1], 3, axis=-1)  # a grey dataset's faces
    return grey, [f"x/{i}" for i in range(len(grey))]


KEY = MasterKey(bytes(range(32))).application("test")


@pytest.mark.parametrize(
    "scheme",
    [
        J2KScheme(progression="layer", window=4, offset=6),
        J2KScheme(progression="resolution", window=10, offset=0, restart=True),
        JPEGScheme(window=10, offset=0, restart_interval=4),
    ],
)
def test_recover_is_exact_and_naive_decode_distorts(scheme, faces):
    images, ids = faces
    protected = scheme.protect(images, KEY, ids, ids)
    assert all(isinstance(b, bytes) for b in protected)
    recovered = scheme.recover(protected, KEY, ids, ids)
    if isinstance(scheme, J2KScheme):
        assert np.array_equal(recovered, images)  # lossless: the preservation view equals baseline
    naive, failed = scheme.decode(protected)
    assert naive.shape == images.shape and not failed.any()
    assert not np.array_equal(naive, recovered)


def test_labels_follow_the_paper():
    assert J2KScheme(progression="layer", window=4, offset=6).label() == "lw4o6"
    assert J2KScheme(progression="resolution", window=0.5, offset=3).label() == "rw0.5o3"
    assert J2KScheme(restart=True).label().endswith("-restart")
    assert JPEGScheme(window=10).label() == "jw10o0"


def test_different_applications_give_different_ciphertexts(faces):
    images, ids = faces
    s = J2KScheme(window=20)
    a = s.protect(images[:1], KEY, ids[:1], ids[:1])
    b = s.protect(images[:1], MasterKey(bytes(range(32))).application("other"), ids[:1], ids[:1])
    assert a != b
    assert a == s.protect(images[:1], KEY, ids[:1], ids[:1])


def test_garbage_is_a_failure_to_acquire():
    faces, failed = J2KScheme().decode([b"garbage", b"\xff\x4f\xff\x51"])
    assert failed.all() and faces.shape == (2, 112, 112, 3)


@pytest.mark.parametrize(
    "params", [{"ratios": [10, 10, 1]}, {"ratios": [80, 40]}, {"window": 120}, {"progression": "pcrl"}]
)
def test_param_validation(params):
    with pytest.raises(ParamError):
        J2KScheme.from_params(params)


def test_key_space():
    assert J2KScheme().key_space_bits() == 256


@pytest.mark.parametrize(
    "scheme", [J2KScheme(window=4, offset=6), JPEGScheme(window=10, offset=0)], ids=["j2k", "jpeg"]
)
def test_a_sample_declaring_a_huge_image_fails_before_it_is_decoded(scheme, faces, decoder_spy):

    images, ids = faces
    good = scheme.protect(images[:1], KEY, ids[:1], ids[:1])[0]
    seen = decoder_spy(type(scheme), "decode_one")
    decoded, failed = _decode_chunk(scheme, [good, declaring(good, 8000, 8000)])
    assert failed.tolist() == [False, True] and seen == [(112, 112)]
    assert decoded.shape == (2, 112, 112, 3) and not decoded[1].any()
