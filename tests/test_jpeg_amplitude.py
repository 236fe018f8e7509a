"""The registered jpeg-amplitude scheme: names, harness keying, protect/recover, which attacks apply."""

from __future__ import annotations

import numpy as np
import pytest
from images import wave_image

from attacks.conceal_jpeg import ConcealMCUAttack
from attacks.inpaint import InpaintAttack
from attacks.naive import NaiveAttack
from benchmark.codecs.jpeg import decode_jpeg, encode_jpeg
from benchmark.codecs.jpeg_scan import coefficient_fields, parse_scan
from benchmark.core.component import ByteCipherScheme, ParamError
from benchmark.core.keys import MasterKey
from benchmark.core.registry import SCHEMES
from schemes.jpeg import JPEGScheme
from schemes.jpeg_amplitude import JPEGAmplitudeScheme

KEY = MasterKey(bytes(range(32))).application("test")


@pytest.fixture(scope="module")
def faces():
    rgb = np.stack([wave_image((112, 112, 3), seed) for seed in range(2)])
    grey = np.repeat(wave_image((112, 112), 5)[None, ..., None], 3, axis=-1)  # a grey dataset's face
    images = np.concatenate([rgb, grey])
    return images, [f"s/{i}" for i in range(len(images))]


@pytest.mark.parametrize(
    "params, name",
    [
        ({"window": 10, "offset": 0}, "ja10o0"),
        ({"window": 10, "offset": 0, "coefficients": "ac"}, "ja10o0-ac"),
        ({"window": 2.5, "offset": 3, "restart_interval": 7}, "ja2.5o3-ri7"),
        (
            {"window": 100, "offset": 0, "coefficients": "ac", "restart_interval": 4, "quality": 75},
            "ja100o0-ac-ri4-q75",
        ),
    ],
)
def test_names(params, name):
    scheme = JPEGAmplitudeScheme.from_params(params)
    assert scheme.label() == name
    back = JPEGAmplitudeScheme.from_name(name)
    assert back is not None and back.get_params() == scheme.get_params()
    # What is encrypted is in the paper name (a sidecar keeps only it and the encoder settings).
    assert scheme.paper_name() == name.split("-ri")[0].split("-q")[0]
    assert JPEGScheme.from_name(name) is None and JPEGAmplitudeScheme.from_name(name.replace("ja", "jw", 1)) is None


@pytest.mark.parametrize(
    "params", [{"coefficients": "dc"}, {"window": 0}, {"window": 60, "offset": 50}, {"quality": 0}]
)
def test_params_are_validated(params):
    with pytest.raises(ParamError):
        JPEGAmplitudeScheme.from_params(params)


def test_registered_beside_jpeg():
    assert SCHEMES.get("jpeg-amplitude") is JPEGAmplitudeScheme and SCHEMES.get("jpeg") is JPEGScheme
    assert JPEGAmplitudeScheme.codec == JPEGScheme.codec == "jpeg"
    # Its own AES keys: a keystream is never shared with the byte cipher of the jpeg scheme.
    assert JPEGAmplitudeScheme(window=10).aes_key(KEY) != JPEGScheme(window=10).aes_key(KEY)
    assert JPEGAmplitudeScheme(quality=75).aes_key(KEY) != JPEGAmplitudeScheme().aes_key(KEY)


@pytest.mark.parametrize(
    "scheme",
    [
        JPEGAmplitudeScheme(window=10, offset=0),
        JPEGAmplitudeScheme(window=100, offset=0, coefficients="ac", restart_interval=7),
    ],
    ids=lambda s: s.label(),
)
def test_recover_is_exact_and_naive_decode_distorts(scheme, faces):
    images, ids = faces
    protected = scheme.protect(images, KEY, ids, ids)
    plain = [scheme.encode(img if img.std(axis=-1).any() else img[..., 0]) for img in images]
    aes = scheme.aes_key(KEY)
    assert [scheme.decrypt(b, aes, KEY.nonce(i)) for b, i in zip(protected, ids)] == plain  # byte exact
    recovered = scheme.recover(protected, KEY, ids, ids)
    expected = np.stack([np.broadcast_to(np.atleast_3d(decode_jpeg(p)), (112, 112, 3)) for p in plain])
    assert np.array_equal(recovered, expected)
    naive, failed = scheme.decode(protected)
    assert not failed.any()
    for before, after in zip(plain, protected):
        a, b = coefficient_fields(parse_scan(before)), coefficient_fields(parse_scan(after))
        assert np.array_equal(a.code, b.code) and np.array_equal(a.size, b.size)
    assert all(not np.array_equal(n, r) for n, r in zip(naive, recovered))


def test_ac_only_keeps_the_coarse_image(faces):
    """AC only leaves every block's mean level: the naive decode is much nearer the face than with DC."""
    images, ids = faces
    err = {}
    for coefficients in ("all", "ac"):
        scheme = JPEGAmplitudeScheme(window=100, offset=0, coefficients=coefficients)
        naive, _ = scheme.decode(scheme.protect(images, KEY, ids, ids))
        blocks = (naive.astype(float) - images).reshape(len(images), 14, 8, 14, 8, 3).mean(axis=(2, 4))
        err[coefficients] = np.abs(blocks).mean()
    assert err["ac"] < 5 < err["all"]


def test_attacks_that_apply():
    scheme = JPEGAmplitudeScheme(window=10)
    assert not isinstance(scheme, ByteCipherScheme) and isinstance(JPEGScheme(), ByteCipherScheme)
    assert NaiveAttack().incompatibility(scheme) is None
    assert InpaintAttack().incompatibility(scheme) is None  # learns from the naive decode
    problem = ConcealMCUAttack().incompatibility(scheme)
    assert problem is not None and "ByteCipherScheme" in problem and "\n" not in problem
    assert ConcealMCUAttack().incompatibility(JPEGScheme(window=10)) is None
    with pytest.raises(ValueError, match="cannot attack"):
        ConcealMCUAttack().attack([encode_jpeg(np.zeros((16, 16), np.uint8))], scheme)
