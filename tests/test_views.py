"""Image sets and views of a scheme."""

from __future__ import annotations

import numpy as np

from attacks.naive import NaiveAttack
from benchmark.core.cache import Cache
from benchmark.core.keys import MasterKey
from benchmark.engine.stages import Engine, ImageSet, pack_protected, unpack_protected
from benchmark.engine.views import APP_A, APP_B, APP_RENEWED, AttackInstance, SchemeContext, key_binding, scheme_views
from schemes.noise import NoiseScheme


def test_pack_round_trip_images_and_bytes():
    imgs = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    assert np.array_equal(unpack_protected(pack_protected(imgs)), imgs)
    blobs = [b"", b"\xff\x4f\xff\x51", b"abc"]
    assert unpack_protected(pack_protected(blobs)) == blobs


def _ctx(tmp_path, mated):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(6, 112, 112, 3), dtype=np.uint8)
    plain = ImageSet("plain", "plainkey", images, np.zeros(6, bool))
    attack = AttackInstance("naive", NaiveAttack())
    return SchemeContext(
        Engine(Cache(tmp_path)),
        "noise",
        NoiseScheme(sigma=10.0),
        {"sigma": 10.0},
        [attack],
        MasterKey(bytes(range(32))),
        key_binding("fingerprint"),
        plain,
        [f"s{i}" for i in range(6)],
        ["a", "a", "b", "b", "c", "c"],
        mated,
    )


def test_cancelable_scheme_views(tmp_path):
    mated = np.array([True, False, True, False])
    views = {v.name: v for v in scheme_views(_ctx(tmp_path, mated))}
    assert set(views) == {"preservation", "renewal", "strength:naive", "linkage:naive"}
    pres = views["preservation"].parts[0]
    assert pres.probe_set is pres.ref_set and pres.probe_set.name.endswith(APP_A)
    ren = views["renewal"].parts
    assert ren[0].probe_set.name.endswith(APP_A) and ren[0].ref_set.name.endswith(APP_RENEWED)
    assert np.array_equal(ren[0].mask, mated) and np.array_equal(ren[1].mask, ~mated)
    link = views["linkage:naive"].parts[0]
    assert link.probe_set.name.endswith(f"{APP_A}:naive") and link.ref_set.name.endswith(f"{APP_B}:naive")
    assert not np.array_equal(link.probe_set.images, link.ref_set.images)  # independent keys
    strength = views["strength:naive"].parts[0]
    assert strength.ref_set.name == "plain"
    assert views["strength:naive"].knowledge and views["strength:naive"].reference
    assert views["strength:naive"].attacked is strength.probe_set
    assert [v.kind for v in views.values()] == ["preservation", "renewal", "strength", "linkage"]


def test_views_are_cached(tmp_path):
    mated = np.array([True, False])
    scheme_views(_ctx(tmp_path, mated))
    ctx = _ctx(tmp_path, mated)
    scheme_views(ctx)
    assert all(r.hit for r in ctx.engine.records)


def test_key_binding_depends_on_the_dataset_only():
    assert key_binding("a") == key_binding("a") != key_binding("b")
    assert len(key_binding("a")) == 16
