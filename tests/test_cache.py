"""Cache keys and atomic writes (code versions: test_codeversion.py)."""

from __future__ import annotations

import os
import stat

import numpy as np

from benchmark.core.cache import Cache, atomic_write_text, hash_array, hash_json


def test_key_depends_on_everything():
    base = Cache.key("embed", {"a": 1}, ["x"], "v1")
    assert base == Cache.key("embed", {"a": 1}, ["x"], "v1")
    assert base != Cache.key("score", {"a": 1}, ["x"], "v1")
    assert base != Cache.key("embed", {"a": 2}, ["x"], "v1")
    assert base != Cache.key("embed", {"a": 1}, ["y"], "v1")
    assert base != Cache.key("embed", {"a": 1}, ["x"], "v2")


def test_hash_json_is_order_independent():
    assert hash_json({"a": 1, "b": [1, 2]}) == hash_json({"b": [1, 2], "a": 1})


def test_hash_array_sees_dtype_and_shape():
    a = np.zeros(4, np.uint8)
    assert hash_array(a) != hash_array(a.astype(np.int8))
    assert hash_array(a) != hash_array(a.reshape(2, 2))


def test_save_load_round_trip(tmp_path):
    c = Cache(tmp_path)
    arrays = {"x": np.arange(5, dtype=np.float32)}
    c.save("s", "k", arrays, {"n": 5})
    got = c.load("s", "k")
    assert got is not None and np.array_equal(got[0]["x"], arrays["x"]) and got[1] == {"n": 5}
    assert not list(tmp_path.rglob("*.tmp"))


def test_damaged_entry_is_a_miss(tmp_path):
    c = Cache(tmp_path)
    c.save("s", "k", {"x": np.arange(3)}, {})
    (tmp_path / "s" / "k.npz").write_bytes(b"broken")
    assert c.load("s", "k") is None


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    p = tmp_path / "f.txt"
    atomic_write_text(p, "old")
    import benchmark.core.cache as cache_mod

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(cache_mod.os, "replace", boom)
    try:
        atomic_write_text(p, "new")
    except OSError:
        pass
    assert p.read_text() == "old"
    assert not list(tmp_path.glob(".f.txt.*"))


def test_shared_outputs_follow_the_umask_and_private_ones_stay_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "report.html", "x", shared=True)
        atomic_write_text(tmp_path / "entry.json", "x")
        os.umask(0o007)
        atomic_write_text(tmp_path / "group.csv", "x", shared=True)
    finally:
        os.umask(old)
    mode = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert mode == {"report.html": 0o644, "entry.json": 0o600, "group.csv": 0o660}
