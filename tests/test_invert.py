"""Tests for the `invert` attack (the key-knowing attacker) and the schemes' inverses it uses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from attacks.invert import InvertAttack
from attacks.naive import NaiveAttack
from benchmark.core.cache import Cache
from benchmark.core.component import KeyedAttack
from benchmark.core.keys import MasterKey
from benchmark.core.registry import ATTACKS, SCHEMES
from benchmark.engine.protocol import ProtocolError, load_protocol
from benchmark.engine.stages import Engine, ImageSet, attack_stage
from benchmark.engine.views import APP_A, AttackInstance, SchemeContext, key_binding, scheme_views
from schemes.noise import NoiseScheme
from schemes.warp import RemapScheme

MASTER = MasterKey(bytes(range(32)))
KEY, OTHER = MASTER.application("victim"), MASTER.application("someone-else")
PRESETS = ("warp_8_4", "warp_16_6", "warp_20_9", "warp_20_25")

# The smooth test face: 127.5 + A sin(k x + phi) + A sin(k y + psi) per channel. Its second
# directional derivative is at most M = A k^2 in any direction.
AMPLITUDE, WAVELENGTH = 50.0, 56.0
CURVATURE = AMPLITUDE * (2 * math.pi / WAVELENGTH) ** 2


def _smooth(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:112, 0:112].astype(float)
    k = 2 * math.pi / WAVELENGTH
    phase = rng.uniform(0, 2 * math.pi, (n, 2, 3))
    img = 127.5 + AMPLITUDE * (
        np.sin(k * x[None, ..., None] + phase[:, None, None, 0])
        + np.sin(k * y[None, ..., None] + phase[:, None, None, 1])
    )
    return np.rint(img).astype(np.uint8)


def _ids(n: int) -> tuple[list[str], list[str]]:
    return [f"id{i}" for i in range(n)], [f"s{i % 3}" for i in range(n)]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def _longest_edge(field: np.ndarray) -> float:
    """Longest edge of the protected pixel grid's triangles carried to the positions the warp samples.

    Edges join each pixel to its right, lower and lower-left neighbours (the
    two triangles of each square of four pixels); positions clamped to the face.
    """
    pos = np.clip(np.mgrid[0:112, 0:112] + field, 0, 111)
    edges = [pos[:, :, 1:] - pos[:, :, :-1], pos[:, 1:, :] - pos[:, :-1, :], pos[:, 1:, :-1] - pos[:, :-1, 1:]]
    return max(float(np.sqrt((e**2).sum(0)).max()) for e in edges)


def _bound(field: np.ndarray) -> float:
    """Worst error of a pixel the inverse interpolates, on the smooth face F with I = round(F).

    I vs F (0.5), rounding of the protected face (0.5) and of the output (0.5); OpenCV's bilinear
    sampling of I: the rounding of I (0.5), its interpolation error on F, at most M/8 per axis with
    unit spacing (M/4), its 15-bit fixed-point weights (0.05); then linear interpolation of the
    scattered samples within a triangle of longest edge h: at most M h^2 / 2.
    """
    h = _longest_edge(field)
    return 2.0 + 0.05 + CURVATURE / 4 + CURVATURE * h**2 / 2


@pytest.mark.parametrize("name", PRESETS)
def test_invert_undoes_every_warp_preset_within_interpolation_error(name):
    scheme = SCHEMES.get(name).from_params({})
    images = _smooth(3)
    ids, subjects = _ids(3)
    protected = scheme.protect(images, KEY, ids, subjects)
    result = InvertAttack().attack_with_key(protected, scheme, KEY, ids, subjects)
    bound = _bound(scheme.field(KEY))
    # Every pixel farther from the border than D is inside the carried mesh (its border moved by at
    # most D), so it is interpolated, never filled; only that strip may be lost.
    d = int(scheme.displacement)
    interior = (slice(None), slice(d + 1, 111 - d), slice(d + 1, 111 - d))
    error = np.abs(result.images.astype(int) - images.astype(int))
    assert error[interior].max() <= bound
    strip = 112**2 - (112 - 2 * (d + 1)) ** 2
    assert result.counters["filled_pixels"].shape == (3,)
    assert 0 <= result.counters["filled_pixels"].min() and result.counters["filled_pixels"].max() <= strip
    assert not result.failed.any()
    # A wrong key does not invert: no better than not inverting at all, and far below the right key.
    wrong = InvertAttack().attack_with_key(protected, scheme, OTHER, ids, subjects).images
    right = _psnr(result.images, images)
    assert _psnr(wrong, images) < _psnr(protected, images) + 1.0
    assert _psnr(wrong, images) < right - 10.0


def test_invert_derives_the_transform_per_subject_as_protect_does():
    scheme = SCHEMES.get("warp_16_6").from_params({"per_subject": True})
    images = _smooth(6, seed=1)
    ids, subjects = _ids(6)
    protected = scheme.protect(images, KEY, ids, subjects)
    inverted = scheme.invert(protected, KEY, ids, subjects)[0]
    # Every subject gets its own field: inverting with one subject's field for all fails on the others.
    shared = scheme.invert(protected, KEY, ids, ["s0"] * 6)[0]
    d = int(scheme.displacement)
    inner = (slice(None), slice(d + 1, 111 - d), slice(d + 1, 111 - d))
    err = np.abs(inverted.astype(int) - images)[inner].reshape(6, -1).max(1)
    err_shared = np.abs(shared.astype(int) - images)[inner].reshape(6, -1).max(1)
    others = np.array([s != "s0" for s in subjects])
    bound = max(_bound(scheme.field(KEY, s)) for s in set(subjects))
    assert err.max() <= bound and (err_shared[others] > bound).all()
    np.testing.assert_array_equal(err_shared[~others], err[~others])


@pytest.mark.parametrize("block", [8, 16, 28])
@pytest.mark.parametrize("per_subject", [False, True])
def test_invert_undoes_a_one_to_one_remap_exactly(block, per_subject):
    scheme = RemapScheme(block=block, per_subject=per_subject)
    images = np.random.default_rng(block).integers(0, 256, (5, 112, 112, 3), dtype=np.uint8)
    ids, subjects = _ids(5)
    protected = scheme.protect(images, KEY, ids, subjects)
    result = InvertAttack().attack_with_key(protected, scheme, KEY, ids, subjects)
    np.testing.assert_array_equal(result.images, images)
    assert (result.counters["filled_pixels"] == 0).all()
    assert _psnr(InvertAttack().attack_with_key(protected, scheme, OTHER, ids, subjects).images, images) < 15.0


def _tiles16(a: np.ndarray) -> np.ndarray:
    """The 49 blocks of 16 x 16 pixels of each face, in row-major block order."""
    return a.reshape(len(a), 7, 16, 7, 16, 3).transpose(0, 1, 3, 2, 4, 5).reshape(len(a), 49, 16, 16, 3)


def test_invert_of_a_many_to_one_remap_keeps_what_survives_and_counts_what_is_lost():
    scheme = RemapScheme(block=16, many_to_one=True)
    images = np.random.default_rng(3).integers(0, 256, (4, 112, 112, 3), dtype=np.uint8)
    ids, subjects = _ids(4)
    protected = scheme.protect(images, KEY, ids, subjects)
    result = InvertAttack().attack_with_key(protected, scheme, KEY, ids, subjects)
    mapping = scheme.mapping(KEY)
    lost = sorted(set(range(49)) - set(mapping.tolist()))
    assert lost  # sources drawn with replacement: some block is missing
    assert (result.counters["filled_pixels"] == len(lost) * 16 * 16).all()
    kept = sorted(set(mapping.tolist()))
    np.testing.assert_array_equal(_tiles16(result.images)[:, kept], _tiles16(images)[:, kept])
    assert not np.array_equal(_tiles16(result.images)[:, lost], _tiles16(images)[:, lost])


def test_invert_is_a_key_knowing_attack_and_refuses_what_is_not_a_cancelable_template():
    assert ATTACKS.get("invert") is InvertAttack and issubclass(InvertAttack, KeyedAttack)
    attack = InvertAttack()
    assert "victim's key" in attack.knowledge
    with pytest.raises(TypeError, match="attack_with_key"):
        attack.attack(np.zeros((1, 112, 112, 3), np.uint8), RemapScheme())
    j2k = SCHEMES.get("j2k").from_params({"window": 4, "offset": 6})
    assert attack.incompatibility(j2k).startswith("not a cancelable template")
    # A cancelable scheme without an inverse (additive noise) is refused by the contract.
    assert "InvertibleScheme" in attack.incompatibility(NoiseScheme())
    assert attack.incompatibility(RemapScheme()) is None


def test_protocol_validation_refuses_invert_on_an_encryption_scheme(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        "name: p\ndataset: {name: synthetic}\nrecognizers: [lbp]\n"
        "schemes: [warp_16_6, {name: j2k, params: {window: 4, offset: 6}}]\nattacks: [naive, invert]\n"
    )
    with pytest.raises(ProtocolError, match=r"attacks\[1\].*invert cannot attack scheme .*not a cancelable template"):
        load_protocol(path)


def test_the_attack_stage_hands_the_key_to_a_keyed_attack_only(tmp_path):
    engine, scheme = Engine(Cache(tmp_path)), RemapScheme()
    images = np.random.default_rng(0).integers(0, 256, (2, 112, 112, 3), dtype=np.uint8)
    ids, subjects = _ids(2)
    protected = scheme.protect(images, KEY, ids, subjects)
    with pytest.raises(TypeError, match="key-knowing"):
        attack_stage(engine, "x", InvertAttack(), scheme, "pk", protected)
    with pytest.raises(TypeError, match="key-knowing"):
        attack_stage(engine, "x", NaiveAttack(), scheme, "pk", protected, (KEY, ids, subjects))
    out = attack_stage(engine, "x", InvertAttack(), scheme, "pk", protected, (KEY, ids, subjects))
    np.testing.assert_array_equal(out.images, images)


def test_scheme_views_give_invert_the_victims_key(tmp_path):
    images = _smooth(6, seed=2)
    ids, subjects = [f"id{i}" for i in range(6)], ["a", "a", "b", "b", "c", "c"]
    ctx = SchemeContext(
        Engine(Cache(tmp_path)),
        "remap_28",
        RemapScheme(),
        {},
        [AttackInstance("naive", NaiveAttack()), AttackInstance("invert", InvertAttack())],
        MASTER,
        key_binding("fingerprint"),
        ImageSet("plain", "plainkey", images, np.zeros(6, bool)),
        ids,
        subjects,
        np.array([True, False]),
    )
    views = {v.name: v for v in scheme_views(ctx)}
    strength = views["strength:invert"]
    assert strength.key_known and not views["strength:naive"].key_known
    assert strength.knowledge == InvertAttack.knowledge
    # Key A's protected faces, inverted with key A: the plain faces back (a one-to-one re-mapping).
    assert strength.parts[0].probe_set.name.endswith(f"{APP_A}:invert")
    np.testing.assert_array_equal(strength.attacked.images, images)
    np.testing.assert_array_equal(views["linkage:invert"].parts[0].ref_set.images, images)


REFINE_PROTOCOL = """\
name: refine
dataset:
  name: synthetic
  params: {n_subjects: 12, n_images: 2, seed: 2}
  folds: 4
  test_folds: [0]
  seed: 0
recognizers: [{name: lbp, params: {radius: 2}}]
schemes: [{name: remap, params: {block: 16}}]
attacks:
  - naive
  - invert
  - {name: inpaint, params: {input: invert, depth: 1, width: 2, max_epochs: 1, batch_size: 8, device: cpu}}
attacker: {source: folds, keys_per_face: 2, faces_per_key: 4}
views: [strength]
metrics: [eer]
bootstrap: {n_boot: 0}
"""


def test_inpaint_refines_the_inversion_trained_under_keys_the_attacker_holds(tmp_path, monkeypatch):
    """``inpaint(invert)``: the attacker inverts its own faces with its own keys, the victims' with theirs."""
    import json

    from attacks.inpaint import InpaintAttack
    from benchmark.engine.pipeline import RunOptions, run_protocol

    seen: list[tuple[np.ndarray, np.ndarray]] = []
    real_fit = InpaintAttack.fit

    def spying_fit(self, inputs, originals, **kwargs):
        seen.append((inputs, originals))
        return real_fit(self, inputs, originals, **kwargs)

    monkeypatch.setattr(InpaintAttack, "fit", spying_fit)
    path = tmp_path / "p.yaml"
    path.write_text(REFINE_PROTOCOL)
    res = run_protocol(load_protocol(path), RunOptions(out=tmp_path / "out", cache=Cache(tmp_path / "c"), workers=1))
    results = json.loads(res.results_path.read_text())
    rows = {r["view"]: r for r in results["rows"] if r["recognizer"] == "lbp"}
    chain = rows["strength:inpaint(invert)"]
    assert chain["key_known"] is True and rows["strength:invert"]["key_known"] is True
    assert "key_known" not in rows["strength:naive"]
    (model,) = [m for m in results["trained_models"] if m["attack"] == "inpaint(invert)"]
    assert "victim's key" in chain["attacker_knowledge"]
    # A one-to-one re-mapping inverts exactly under the right key: every training input is its original,
    # under each of the attacker's keys (several per face, a new one every 4 faces).
    ((inputs, originals),) = seen
    assert len(inputs) > 8
    np.testing.assert_array_equal(inputs, originals)
    assert model["scheme"] == "remap_16"
