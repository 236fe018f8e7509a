"""Cache keys and atomic writes (code versions: test_codeversion.py)."""

from __future__ import annotations

import os
import stat
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmark.core.cache import ENTRY_SUFFIX, Cache, atomic_write_text, hash_array, hash_json


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
    (tmp_path / "s" / f"k{ENTRY_SUFFIX}").write_bytes(b"broken")
    assert c.load("s", "k") is None and c.damaged == [tmp_path / "s" / f"k{ENTRY_SUFFIX}"]


_ENTRY = {"x": np.arange(40, dtype=np.int32).reshape(8, 5), "y": np.linspace(0, 1, 7)}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_truncated_or_bit_flipped_entries_are_recomputed_never_read(tmp_path, data):
    c = Cache(tmp_path)
    c.save("s", "k", _ENTRY, {"n": 5})
    path = tmp_path / "s" / f"k{ENTRY_SUFFIX}"
    blob = bytearray(path.read_bytes())
    if data.draw(st.booleans(), label="truncate"):
        damaged = bytes(blob[: data.draw(st.integers(0, len(blob) - 1), label="length")])
    else:
        i = data.draw(st.integers(0, len(blob) - 1), label="byte")
        blob[i] ^= 1 << data.draw(st.integers(0, 7), label="bit")
        damaged = bytes(blob)
    path.write_bytes(damaged)
    assert c.load("s", "k") is None
    c.save("s", "k", _ENTRY, {"n": 5})  # what a run does next: recompute and store
    arrays, meta = c.load("s", "k")
    assert meta == {"n": 5} and all(np.array_equal(arrays[k], v) for k, v in _ENTRY.items())


def test_meta_name_is_reserved(tmp_path):
    with pytest.raises(ValueError, match="reserved"):
        Cache(tmp_path).save("s", "k", {"__meta__": np.zeros(1)}, {})


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


def test_swapped_or_moved_entries_are_recomputed_never_read(tmp_path, caplog):
    c = Cache(tmp_path)
    a, b = {"x": np.arange(3)}, {"x": np.arange(3) + 10}
    c.save("metrics", "ka", a, {"n": 1})
    c.save("metrics", "kb", b, {"n": 2})
    c.save("score", "ka", b, {"n": 3})
    pa, pb = (tmp_path / "metrics" / f"{k}{ENTRY_SUFFIX}" for k in ("ka", "kb"))
    blob_a, blob_b = pa.read_bytes(), pb.read_bytes()
    pa.write_bytes(blob_b)
    pb.write_bytes(blob_a)
    (tmp_path / "score" / f"ka{ENTRY_SUFFIX}").write_bytes(blob_a)  # same key, another stage
    with caplog.at_level("WARNING", logger="facesec.cache"):
        assert c.load("metrics", "ka") is None and c.load("metrics", "kb") is None and c.load("score", "ka") is None
    assert c.damaged == [pa, pb, tmp_path / "score" / f"ka{ENTRY_SUFFIX}"]
    assert sum("moved or swapped" in r.getMessage() for r in caplog.records) == 3
    # Put back where they belong, they read again.
    pa.write_bytes(blob_a)
    arrays, meta = c.load("metrics", "ka")
    assert meta == {"n": 1} and np.array_equal(arrays["x"], a["x"])


def test_entries_of_the_unbound_format_are_misses(tmp_path):
    import hashlib
    import io

    buf = io.BytesIO()
    np.savez(buf, x=np.arange(3), __meta__=np.frombuffer(b"{}", dtype=np.uint8))
    body = buf.getvalue()
    path = tmp_path / "s" / f"k{ENTRY_SUFFIX}"
    path.parent.mkdir()
    path.write_bytes(body + hashlib.sha256(body).digest() + b"FSC1")  # intact, as the old code wrote it
    c = Cache(tmp_path)
    assert c.load("s", "k") is None and c.damaged == []


_PROTOCOL = """\
name: swap
dataset:
  name: synthetic
  params: {n_subjects: 8, n_images: 4, seed: 1}
  folds: 2
  seed: 0
recognizers:
  - {name: lbp, params: {radius: 2}}
  - {name: mblbp}
metrics: [eer, d_prime]
"""


def _run_outputs(protocol, out, cache: Cache) -> tuple[dict, dict[str, bytes]]:
    import json

    from benchmark.engine.pipeline import RunOptions, run_protocol
    from benchmark.engine.protocol import load_protocol

    run_protocol(load_protocol(protocol, []), RunOptions(out=out, cache=cache, workers=1))
    results = json.loads((out / "results.json").read_text())
    results.pop("provenance")
    return results, {p.name: p.read_bytes() for p in sorted((out / "scores").iterdir())}


def test_a_run_over_swapped_entries_equals_a_clean_run(tmp_path, caplog):
    protocol = tmp_path / "swap.yaml"
    protocol.write_text(_PROTOCOL)
    clean = _run_outputs(protocol, tmp_path / "clean", Cache(tmp_path / "cache"))
    swapped = []
    for stage in ("metrics", "score"):
        first, second = sorted((tmp_path / "cache" / stage).glob(f"*{ENTRY_SUFFIX}"))[:2]
        a, b = first.read_bytes(), second.read_bytes()
        first.write_bytes(b)
        second.write_bytes(a)
        swapped += [first, second]
    cache = Cache(tmp_path / "cache")
    with caplog.at_level("WARNING", logger="facesec.cache"):
        again = _run_outputs(protocol, tmp_path / "again", cache)
    assert again == clean
    assert sorted(cache.damaged) == sorted(swapped)
    assert sum("moved or swapped" in r.getMessage() for r in caplog.records) == len(swapped)


def _unwritable(tmp_path, case: str) -> Cache:
    """A cache that cannot be written, in one of three ways."""
    root = tmp_path / "cache"
    if case == "root-is-a-file":
        root.write_bytes(b"not a folder")
    elif case == "entry-is-a-folder":
        (root / "s" / f"k0{ENTRY_SUFFIX}").mkdir(parents=True)
    else:
        root.mkdir()
        root.chmod(0o555)
        if os.access(root, os.W_OK):  # root (the user) ignores permissions
            pytest.skip("permissions do not bind this user")
    return Cache(root)


@pytest.mark.parametrize("case", ["root-is-a-file", "entry-is-a-folder", "read-only"])
def test_an_unwritable_cache_warns_once_and_stores_nothing(tmp_path, caplog, case):
    cache = _unwritable(tmp_path, case)
    with caplog.at_level("WARNING", logger="facesec.cache"):
        for i in range(3):
            assert cache.load("s", f"k{i}") is None
            cache.save("s", f"k{i}", {"x": np.arange(3)}, {})
    warned = [r.getMessage() for r in caplog.records if "cannot be written" in r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith(f"cache {cache.root} cannot be written (")
    assert cache.unwritable is not None and cache.stored() == []
    assert not cache.has("s", "k1") and cache.load("s", "k1") is None


@pytest.mark.parametrize("case", ["root-is-a-file", "entry-is-a-folder"])
def test_a_run_over_an_unwritable_cache_equals_a_clean_run(tmp_path, caplog, case):
    protocol = tmp_path / "p.yaml"
    protocol.write_text(_PROTOCOL)
    clean = _run_outputs(protocol, tmp_path / "clean", Cache(tmp_path / "clean-cache"))
    root = tmp_path / "cache"
    if case == "root-is-a-file":
        root.write_bytes(b"not a folder")
    else:  # every entry the run will look for is a folder
        for entry in (tmp_path / "clean-cache").rglob(f"*{ENTRY_SUFFIX}"):
            (root / entry.relative_to(tmp_path / "clean-cache")).mkdir(parents=True)
    cache = Cache(root)
    with caplog.at_level("WARNING", logger="facesec.cache"):
        again = _run_outputs(protocol, tmp_path / "again", cache)
    assert again == clean
    assert sum("cannot be written" in r.getMessage() for r in caplog.records) == 1


def _aged(cache: Cache, stage: str, key: str, days_ago: float, size: int = 100) -> None:
    """An entry of ``size`` payload bytes, last used ``days_ago`` days ago."""
    cache.save(stage, key, {"x": np.zeros(size, np.uint8)}, {})
    when = time.time() - days_ago * 86400
    os.utime(cache.root / stage / f"{key}{ENTRY_SUFFIX}", (when, when))


def test_usage_counts_entries_and_bytes_per_stage(tmp_path):
    c = Cache(tmp_path)
    _aged(c, "embed", "a", 3)
    _aged(c, "embed", "b", 1)
    _aged(c, "score", "c", 2)
    (tmp_path / "embed" / ".b.entry.in-flight.tmp").write_bytes(b"half")  # a write in flight: not an entry
    usage = c.usage()
    assert list(usage) == ["embed", "score", "total"]
    sizes = {p.stem: p.stat().st_size for p in tmp_path.rglob(f"*{ENTRY_SUFFIX}")}
    assert (usage["embed"].entries, usage["embed"].bytes) == (2, sizes["a"] + sizes["b"])
    assert (usage["total"].entries, usage["total"].bytes) == (3, sum(sizes.values()))
    assert usage["total"].oldest == pytest.approx(time.time() - 3 * 86400, abs=60)
    assert Cache(tmp_path / "absent").usage()["total"].entries == 0


def test_a_read_entry_counts_as_used_now(tmp_path):
    c = Cache(tmp_path)
    _aged(c, "s", "k", 40)
    assert c.load("s", "k") is not None
    assert c.prune(older_than=30 * 86400) == [] and c.load("s", "k") is not None


def test_prune_by_age_then_by_size_least_recently_used_first(tmp_path):
    c = Cache(tmp_path)
    for key, days in (("old", 40), ("mid", 20), ("new", 10), ("now", 0)):
        _aged(c, "s", key, days, size=1000)
    leftover = tmp_path / "s" / ".x.entry.abc.tmp"  # a write whose writer died 50 days ago
    leftover.write_bytes(b"partial")
    os.utime(leftover, (time.time() - 50 * 86400,) * 2)
    one = (tmp_path / "s" / f"now{ENTRY_SUFFIX}").stat().st_size
    dry = c.prune(older_than=30 * 86400, max_bytes=2 * one, dry_run=True)
    # By age: the leftover and "old"; then by size, least recently used first: "mid".
    assert [e.path.name for e in dry] == [leftover.name, f"old{ENTRY_SUFFIX}", f"mid{ENTRY_SUFFIX}"]
    assert len(list((tmp_path / "s").iterdir())) == 5  # a dry run removes nothing
    gone = c.prune(older_than=30 * 86400, max_bytes=2 * one)
    assert [e.path for e in gone] == [e.path for e in dry]
    # What is left is whole: every kept entry still loads; every pruned one is a plain miss, never damaged.
    assert c.load("s", "new") is not None and c.load("s", "now") is not None
    assert c.load("s", "old") is None and c.load("s", "mid") is None and c.damaged == []
    assert (tmp_path / "s").is_dir()  # stage folders stay: a run may be writing into one


def test_prune_leaves_young_temp_files_of_writes_in_flight(tmp_path):
    c = Cache(tmp_path)
    _aged(c, "s", "k", 5)
    young = tmp_path / "s" / ".k2.entry.abc.tmp"
    young.write_bytes(b"being written")
    assert [e.path.name for e in c.prune(max_bytes=0)] == [f"k{ENTRY_SUFFIX}"] and young.exists()
