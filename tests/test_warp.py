"""Tests for the `warp` (mesh warping, with its presets) and `remap` (block re-mapping) schemes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmark.core.component import ParamError
from benchmark.core.keys import MasterKey
from benchmark.core.registry import SCHEMES
from schemes.warp import (
    SEED_BITS,
    WARP_QUANTUM,
    RemapScheme,
    WarpScheme,
    block_mapping,
    displacement_field,
    warp_grid,
)

MASTER = MasterKey(bytes(range(32)))
APP = MASTER.application("warp-test")
PRESETS = {"warp_8_4": (8, 4.0), "warp_16_6": (16, 6.0), "warp_20_9": (20, 9.0), "warp_20_25": (20, 25.0)}


def _faces(n: int, seed: int = 0, grey: bool = True) -> np.ndarray:
    # Smooth random images: bilinear resampling of white noise would hide
    # too little structure to tell transforms apart by correlation.
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (n, 15, 15, 1 if grey else 3))
    y = np.linspace(0, 14, 112)
    i0 = np.minimum(np.floor(y).astype(int), 13)
    f = (y - i0)[:, None]
    rows = coarse[:, i0] * (1 - f)[None, :, :, None] + coarse[:, i0 + 1] * f[None, :, :, None]
    img = rows[:, :, i0] * (1 - f.T)[None, :, :, None] + rows[:, :, i0 + 1] * f.T[None, :, :, None]
    img = np.rint(img).astype(np.uint8)
    return np.repeat(img, 3, axis=3) if grey else img


def _protect(scheme, images, key=APP, subjects=None):
    n = len(images)
    subjects = [f"s{i % 3}" for i in range(n)] if subjects is None else subjects
    return scheme.protect(images, key, [f"id{i}" for i in range(n)], subjects)


def _jacobian_det(field: np.ndarray) -> np.ndarray:
    """Determinant of the sampling map pixel -> pixel + field (finite differences)."""
    dy_dy, dy_dx = np.gradient(field[0])
    dx_dy, dx_dx = np.gradient(field[1])
    return (1 + dy_dy) * (1 + dx_dx) - dy_dx * dx_dy


# --------------------------------------------------------------------------- registration


def test_registered_as_cancelable_schemes():
    assert SCHEMES.get("warp") is WarpScheme and SCHEMES.get("remap") is RemapScheme
    for name in ("warp", "remap", *PRESETS):
        cls = SCHEMES.get(name)
        assert cls.domain == "cancelable"
        assert name in SCHEMES.names()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_resolve_with_the_papers_defaults(name):
    cls = SCHEMES.get(name)
    cell, displacement = PRESETS[name]
    assert issubclass(cls, WarpScheme)
    assert cls.param_defaults() == {"cell": cell, "displacement": displacement, "per_subject": False}
    scheme = cls.from_params({})
    assert scheme.label() == name
    # A preset is the generic scheme with other defaults: same transform.
    images = _faces(2)
    np.testing.assert_array_equal(
        _protect(scheme, images), _protect(WarpScheme(cell=cell, displacement=displacement), images)
    )


def test_labels_name_every_variant():
    assert WarpScheme(cell=16, displacement=6).label() == "warp_16_6"
    assert WarpScheme(cell=12, displacement=2.5, per_subject=True).label() == "warp_12_2.5_subject"
    assert RemapScheme(block=28).label() == "remap_28"
    assert RemapScheme(block=16, many_to_one=True, per_subject=True).label() == "remap_16_m2o_subject"


# --------------------------------------------------------------------------- params


@pytest.mark.parametrize(
    "params, name",
    [
        ({"displacement": -0.5}, "displacement"),
        ({"displacement": float("nan")}, "displacement"),
        ({"cell": 0}, "cell"),
        ({"cell": 8.0}, "cell"),
        ({"cell": 200}, "cell"),
        ({"per_subject": 1}, "per_subject"),
    ],
)
def test_warp_params_validated(params, name):
    with pytest.raises(ParamError) as info:
        WarpScheme.from_params(params)
    assert info.value.param == name


@pytest.mark.parametrize(
    "params, name",
    [
        ({"block": 20}, "block"),
        ({"block": 0}, "block"),
        ({"many_to_one": "yes"}, "many_to_one"),
    ],
)
def test_remap_params_validated(params, name):
    with pytest.raises(ParamError) as info:
        RemapScheme.from_params(params)
    assert info.value.param == name


def test_remap_block_must_divide_the_face_and_the_message_lists_divisors():
    with pytest.raises(ParamError, match=r"does not divide 112 .*28"):
        RemapScheme(block=20).validate()
    for block in (8, 16, 28):
        RemapScheme(block=block).validate()


def test_cell_that_does_not_divide_112_gets_a_centred_grid():
    assert warp_grid(16) == (7, -0.5)  # exactly the face, [-0.5, 111.5]
    cells, origin = warp_grid(20)
    assert cells == 6 and origin == -4.5  # 120 pixels, 4 beyond each edge
    assert origin + cells * 20 - 111.5 == pytest.approx(-0.5 - origin)


def test_images_checked():
    with pytest.raises(ValueError, match="uint8"):
        WarpScheme().protect(np.zeros((1, 112, 112, 3), np.float32), APP, ["a"], ["s"])
    with pytest.raises(ValueError, match="subjects"):
        RemapScheme().protect(_faces(2), APP, ["a", "b"], ["s"])
    assert _protect(WarpScheme(), _faces(0)).shape == (0, 112, 112, 3)


# --------------------------------------------------------------------------- warp


def test_zero_displacement_is_the_identity_exactly():
    images = _faces(3, grey=False)
    for cell in (8, 20):
        np.testing.assert_array_equal(_protect(WarpScheme(cell=cell, displacement=0.0), images), images)
        assert not displacement_field(APP.seed("warp/field"), cell, 0.0).any()


@pytest.mark.parametrize(
    "scheme",
    [WarpScheme(), RemapScheme(block=16), RemapScheme(block=8, many_to_one=True)],
    ids=["warp", "remap", "remap_m2o"],
)
def test_same_key_same_transform_new_application_another(scheme):
    images = _faces(4)
    out = _protect(scheme, images)
    assert out.shape == images.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, _protect(scheme, images, key=MASTER.application("warp-test")))
    assert not np.array_equal(out, images)
    assert not np.array_equal(out, _protect(scheme, images, key=MASTER.application("warp-test-renewed")))


def test_field_offsets_are_quantised_and_bounded():
    seed = APP.seed("warp/field")
    for cell, d in PRESETS.values():
        field = displacement_field(seed, cell, d)
        assert field.shape == (2, 112, 112)
        # Bilinear weights are convex: pixel offsets stay within the vertex range.
        assert np.abs(field).max() <= d + 1e-9
        assert np.abs(field).max() > d / 2  # the range is used, not a tiny fraction of it
    # Cell 16: pixel centres sit at multiples of 1/32 cell from the vertices, so
    # bilinear weights are multiples of 1/1024 and, with offsets in steps of
    # q = 1/32, every pixel offset is a whole multiple of q/1024.
    scaled = displacement_field(seed, 16, 6.0) / (WARP_QUANTUM / 1024)
    np.testing.assert_allclose(scaled, np.round(scaled), atol=1e-6)


def test_new_key_gives_an_independent_field():
    a = displacement_field(MASTER.application("a").seed("warp/field"), 16, 6.0)
    b = displacement_field(MASTER.application("b").seed("warp/field"), 16, 6.0)
    assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.3


def test_warp_moves_content_by_the_field():
    # A horizontal ramp: the warped value at a pixel is (about) its sampled x position.
    ramp = np.tile(np.arange(112, dtype=np.uint8) * 2, (112, 1))
    images = np.repeat(ramp[None, :, :, None], 3, axis=3)
    scheme = WarpScheme(cell=16, displacement=5.0)
    out = _protect(scheme, images)[0, :, :, 0].astype(float) / 2
    sample_x = np.clip(np.arange(112)[None, :] + scheme.field(APP)[1], 0, 111)
    # Away from the clamped border the ramp is linear, so bilinear sampling is exact up to rounding.
    inner = (sample_x > 0) & (sample_x < 111)
    assert np.abs(out - sample_x)[inner].max() <= 0.5 + 1 / 16


def test_folding_mesh_when_displacement_exceeds_the_cell():
    seed = APP.seed("warp/field")
    # Offsets of adjacent vertices differ by at most 2D, so the map's partial
    # derivatives stay within 2D/B of the identity's: no fold while 2D/B < 1/2.
    assert (_jacobian_det(displacement_field(seed, 16, 3.9)) > 0).all()
    assert (_jacobian_det(displacement_field(seed, 20, 25.0)) < 0).any()
    images = _faces(3)
    out = _protect(SCHEMES.get("warp_20_25")(), images)
    assert out.shape == images.shape and out.dtype == np.uint8
    assert not np.array_equal(out, images)


@pytest.mark.parametrize(
    "scheme", [SCHEMES.get("warp_16_6")(), RemapScheme(block=8, many_to_one=True)], ids=["warp", "remap"]
)
def test_grey_stays_grey(scheme):
    out = _protect(scheme, _faces(3, grey=True))
    np.testing.assert_array_equal(out[..., 0], out[..., 1])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


@pytest.mark.parametrize("scheme_cls, params", [(WarpScheme, {}), (RemapScheme, {"block": 16})], ids=["warp", "remap"])
def test_per_subject_changes_the_transform_between_subjects_only(scheme_cls, params):
    face = _faces(1)
    images = np.repeat(face, 4, axis=0)
    subjects = ["alice", "alice", "bob", "carol"]
    out = _protect(scheme_cls(per_subject=True, **params), images, subjects=subjects)
    np.testing.assert_array_equal(out[0], out[1])
    assert not np.array_equal(out[0], out[2]) and not np.array_equal(out[2], out[3])
    # A subject's transform does not depend on who else is in the batch.
    alone = _protect(scheme_cls(per_subject=True, **params), images[2:3], subjects=["bob"])
    np.testing.assert_array_equal(out[2:3], alone)
    # Without per_subject every subject shares one transform.
    shared = _protect(scheme_cls(**params), images, subjects=subjects)
    assert all(np.array_equal(shared[0], s) for s in shared[1:])


# --------------------------------------------------------------------------- remap


@pytest.mark.parametrize("block", [8, 16, 28])
def test_one_to_one_remap_is_a_block_permutation_and_inverts_exactly(block):
    scheme = RemapScheme(block=block)
    images = _faces(3, grey=False)
    subjects = ["s0", "s1", "s2"]
    out = _protect(scheme, images, subjects=subjects)
    side = 112 // block

    def tiles(a):
        return (
            a.reshape(len(a), side, block, side, block, 3).transpose(0, 1, 3, 2, 4, 5).reshape(len(a), side * side, -1)
        )

    mapping = scheme.mapping(APP)
    assert sorted(mapping.tolist()) == list(range(side * side))
    np.testing.assert_array_equal(tiles(out), tiles(images)[:, mapping])
    # Same multiset of pixels, different arrangement.
    np.testing.assert_array_equal(np.sort(out.reshape(3, -1), axis=1), np.sort(images.reshape(3, -1), axis=1))
    np.testing.assert_array_equal(scheme.inverse(out, APP, subjects), images)


def test_per_subject_remap_inverts_with_the_subjects():
    scheme = RemapScheme(block=16, per_subject=True)
    images = _faces(4)
    subjects = ["a", "b", "a", "c"]
    np.testing.assert_array_equal(scheme.inverse(_protect(scheme, images, subjects=subjects), APP, subjects), images)


def test_many_to_one_duplicates_blocks_and_cannot_be_inverted():
    scheme = RemapScheme(block=16, many_to_one=True)
    mapping = scheme.mapping(APP)
    assert mapping.min() >= 0 and mapping.max() < 49
    assert len(np.unique(mapping)) < len(mapping)  # some source shown twice, some never
    out = _protect(scheme, _faces(1))
    tiles = out.reshape(1, 7, 16, 7, 16, 3).transpose(0, 1, 3, 2, 4, 5).reshape(49, -1)
    assert len(np.unique(tiles, axis=0)) < 49
    with pytest.raises(ValueError, match="cannot be inverted"):
        scheme.inverse(out, APP, ["s0"])


def test_block_mapping_is_seeded():
    np.testing.assert_array_equal(block_mapping(7, 16, False), block_mapping(7, 16, False))
    assert not np.array_equal(block_mapping(7, 16, False), block_mapping(8, 16, False))


def test_cached_transforms_are_read_only():
    with pytest.raises(ValueError):
        RemapScheme().mapping(APP)[0] = 1


# --------------------------------------------------------------------------- keys, decode


def test_key_space_counts_the_transform_family():
    # warp: 2 axes x (ceil(112/B)+1)^2 vertices, 2*32*D+1 offsets each.
    assert WarpScheme(cell=16, displacement=6).transform_space_bits() == pytest.approx(2 * 64 * math.log2(385))
    assert WarpScheme(cell=20, displacement=9).transform_space_bits() == pytest.approx(2 * 49 * math.log2(577))
    assert WarpScheme(displacement=0).transform_space_bits() == 0 == WarpScheme(displacement=0).key_space_bits()
    assert WarpScheme().transform_space_bits() > SEED_BITS == WarpScheme().key_space_bits()  # the seed caps it
    # remap: log2(n!) one-to-one, n log2 n many-to-one.
    assert RemapScheme(block=28).key_space_bits() == pytest.approx(math.log2(math.factorial(16)))
    assert RemapScheme(block=28, many_to_one=True).key_space_bits() == pytest.approx(64.0)
    assert RemapScheme(block=16).transform_space_bits() == pytest.approx(math.log2(math.factorial(49)))
    assert RemapScheme(block=16).key_space_bits() == SEED_BITS < RemapScheme(block=16).transform_space_bits()
    assert RemapScheme(block=112).key_space_bits() == 0


@pytest.mark.parametrize("scheme", [WarpScheme(), RemapScheme()], ids=["warp", "remap"])
def test_decode_shows_the_image_and_no_recovery(scheme):
    protected = _protect(scheme, _faces(2))
    images, failed = scheme.decode(protected)
    np.testing.assert_array_equal(images, protected)
    assert failed.dtype == bool and failed.shape == (2,) and not failed.any()
    with pytest.raises(NotImplementedError, match="cancelable"):
        scheme.recover(protected, APP, ["a", "b"], ["s", "s"])
