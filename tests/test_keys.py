"""Tests for benchmark.core.keys: derivation, independence, safe repr, key sources."""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import struct
import warnings

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark.core.keys import (
    KeyFilePermissionWarning,
    KeySourceError,
    MasterKey,
    hkdf_sha256,
    load_master_key,
    looks_like_key,
)

KEY = bytes(range(32))
OTHER = bytes(range(1, 33))


def _hkdf_reference(ikm: bytes, info: bytes, length: int, salt: bytes = b"") -> bytes:
    """RFC 5869 written out with the hmac module, independent of `cryptography`."""
    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    out, block = b"", b""
    for i in range(1, -(-length // 32) + 1):
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
    return out[:length]


def _derivation_info(kind: bytes, app_id: str, label: str) -> bytes:
    app = app_id.encode()
    return b"facesec/v1/" + kind + b"\x00" + struct.pack(">I", len(app)) + app + label.encode()


# --------------------------------------------------------------------------- HKDF known answers


def test_hkdf_rfc5869_test_case_1():
    okm = hkdf_sha256(bytes([0x0B] * 22), bytes(range(0xF0, 0xFA)), 42, salt=bytes(range(0x0D)))
    assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")


def test_hkdf_rfc5869_test_case_3_no_salt_no_info():
    okm = hkdf_sha256(bytes([0x0B] * 22), b"", 42)
    assert okm.hex() == ("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8")


def test_derivation_tree_matches_an_independent_hmac_computation():
    app_key = _hkdf_reference(KEY, b"facesec/app/demo", 32)
    app = MasterKey(KEY).application("demo")
    aes_info = _derivation_info(b"derive", "demo", "jpeg2000/aes")
    assert app.derive("jpeg2000/aes", 32) == _hkdf_reference(app_key, aes_info, 32)
    assert app.derive("x", 100) == _hkdf_reference(app_key, _derivation_info(b"derive", "demo", "x"), 100)
    seed_bytes = _hkdf_reference(app_key, _derivation_info(b"seed", "demo", "noise/pattern"), 16)
    assert app.seed("noise/pattern") == int.from_bytes(seed_bytes, "big")
    prefix = _hkdf_reference(app_key, _derivation_info(b"nonce", "demo", "s1/1.pgm"), 12)
    assert app.nonce("s1/1.pgm") == prefix + bytes(4)


# --------------------------------------------------------------------------- determinism, independence


def test_derivation_is_deterministic():
    a, b = MasterKey(KEY).application("app"), MasterKey(KEY).application("app")
    assert a == b and a.key_id == b.key_id
    assert a.derive("l") == b.derive("l")
    assert a.seed("l") == b.seed("l")
    assert a.nonce("s") == b.nonce("s")


def test_application_ids_give_independent_keys():
    master = MasterKey(KEY)
    apps = [master.application(f"app-{i}") for i in range(20)]
    assert len({a.derive("l") for a in apps}) == 20
    assert len({a.seed("l") for a in apps}) == 20
    assert len({a.nonce("s") for a in apps}) == 20
    assert len({a.key_id for a in apps}) == 20


def test_master_keys_give_independent_application_keys():
    assert MasterKey(KEY).application("a").derive("l") != MasterKey(OTHER).application("a").derive("l")


def test_labels_and_kinds_are_separated():
    app = MasterKey(KEY).application("a")
    assert app.derive("x") != app.derive("y")
    # A seed is not a prefix of the derived bytes with the same label.
    assert app.seed("x") != int.from_bytes(app.derive("x", 16), "big")
    # Length-prefixed app ids: ("a", "b/c") and ("a/b", "c") never collide.
    master = MasterKey(KEY)
    assert master.application("a").derive("b/c") != master.application("a/b").derive("c")


def test_derive_lengths_and_limits():
    app = MasterKey(KEY).application("a")
    assert len(app.derive("l", 1)) == 1 and len(app.derive("l", 8160)) == 8160
    with pytest.raises(ValueError):
        app.derive("l", 0)
    with pytest.raises(ValueError):
        app.derive("l", 8161)


def test_seed_is_a_128_bit_int():
    seeds = [MasterKey(KEY).application("a").seed(f"subject/{i}") for i in range(50)]
    assert all(isinstance(s, int) and 0 <= s < 2**128 for s in seeds)
    assert max(seeds).bit_length() > 120  # uses the whole range, not a truncated int


def test_nonce_layout_and_uniqueness_across_samples_and_apps():
    master = MasterKey(KEY)
    nonces = {master.application(app).nonce(f"s{i}") for app in ("a", "b") for i in range(500)}
    assert len(nonces) == 1000
    for n in nonces:
        assert len(n) == 16 and n[-4:] == bytes(4)


def test_nonce_is_a_valid_ctr_block_and_keystreams_differ_per_sample():
    app = MasterKey(KEY).application("a")
    aes_key = app.derive("jpeg2000/aes", 32)
    plain = bytes(64)

    def encrypt(sample: str) -> bytes:
        enc = Cipher(algorithms.AES(aes_key), modes.CTR(app.nonce(sample))).encryptor()
        return enc.update(plain) + enc.finalize()

    assert encrypt("s1") == encrypt("s1")
    assert encrypt("s1") != encrypt("s2")


def test_application_rejects_empty_id():
    with pytest.raises(ValueError):
        MasterKey(KEY).application("")


# --------------------------------------------------------------------------- no key material in repr, pickle


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_repr_never_shows_key_bytes(key):
    master = MasterKey(key)
    app = master.application("a")
    for text in (repr(master), str(master), f"{master}", repr(app), str(app)):
        assert key.hex() not in text and key.hex().upper() not in text
        assert repr(key) not in text
        assert app._key.hex() not in text
    assert master.key_id in repr(master)
    assert len(master.key_id) == 16 and int(master.key_id, 16) >= 0


def test_ephemeral_key_is_flagged_and_reported_as_ephemeral():
    a, b = MasterKey.random(), MasterKey.random()
    assert a.ephemeral and a.source == "ephemeral"
    assert a != b
    assert a.report_id == "ephemeral" and "ephemeral" in repr(a)
    stored = MasterKey(KEY)
    assert stored.report_id == stored.key_id and stored.ephemeral is False


def test_keys_pickle_for_worker_processes():
    master = MasterKey(KEY)
    copy = pickle.loads(pickle.dumps(master))
    assert copy == master and copy.application("a").derive("l") == master.application("a").derive("l")
    app = master.application("a")
    app_copy = pickle.loads(pickle.dumps(app))
    assert app_copy == app and app_copy.nonce("s") == app.nonce("s")
    assert KEY.hex() not in repr(copy)


def test_wrong_length_raw_key_is_rejected_without_content():
    with pytest.raises(KeySourceError) as info:
        MasterKey(KEY[:31])
    assert KEY[:31].hex() not in str(info.value)


# --------------------------------------------------------------------------- key files


def _write(path, data: bytes, mode: int = 0o600):
    path.write_bytes(data)
    os.chmod(path, mode)
    return path


def _assert_safe_message(exc: BaseException, secret: bytes, name: str):
    text = str(exc)
    assert "\n" not in text
    assert name in text
    # Not even an 8-character piece of the content, as text or as hex.
    for shown in (secret.strip().decode("latin-1"), secret.hex()):
        for i in range(0, len(shown) - 7):
            assert shown[i : i + 8] not in text


def test_key_file_raw_bytes(tmp_path):
    key = MasterKey.from_file(_write(tmp_path / "k", KEY))
    assert key == MasterKey(KEY) and key.source == "file" and not key.ephemeral


@pytest.mark.parametrize("text", [KEY.hex(), KEY.hex() + "\n", "  " + KEY.hex().upper() + "\r\n"])
def test_key_file_hex_text(tmp_path, text):
    assert MasterKey.from_file(_write(tmp_path / "k", text.encode())) == MasterKey(KEY)


@pytest.mark.parametrize(
    "content",
    [
        KEY[:31],  # too short
        KEY + b"\x00",  # 33 raw bytes
        KEY.hex()[:-2].encode(),  # 62 hex digits
        (KEY.hex() + "ab").encode(),  # 66 hex digits
        ("zz" + KEY.hex()[2:]).encode(),  # 64 characters, not hex
        KEY.hex().encode() + b"\xff",  # not ASCII
        b"",
    ],
)
def test_malformed_key_file_is_one_line_naming_the_file(tmp_path, content):
    path = _write(tmp_path / "facesec.key", content)
    with pytest.raises(KeySourceError) as info:
        MasterKey.from_file(path)
    _assert_safe_message(info.value, content, "facesec.key")
    assert info.value.__context__ is None  # no chained exception carrying the content


def test_missing_key_file_and_directory(tmp_path):
    with pytest.raises(KeySourceError, match="not found") as info:
        MasterKey.from_file(tmp_path / "absent.key")
    assert "absent.key" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(KeySourceError, match="not a regular file"):
        MasterKey.from_file(tmp_path)


def test_large_key_file_is_rejected_without_reading(tmp_path):
    path = _write(tmp_path / "big.key", b"a" * 10_000)
    with pytest.raises(KeySourceError, match="big.key"):
        MasterKey.from_file(path)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_group_or_world_readable_key_file_warns_but_loads(tmp_path):
    path = _write(tmp_path / "k", KEY, 0o644)
    with pytest.warns(KeyFilePermissionWarning, match="chmod 600") as record:
        key = MasterKey.from_file(path)
    assert key == MasterKey(KEY)
    assert all(KEY.hex() not in str(w.message) for w in record)
    private = _write(tmp_path / "p", KEY, 0o600)
    with warnings.catch_warnings():
        warnings.simplefilter("error", KeyFilePermissionWarning)
        MasterKey.from_file(private)


# --------------------------------------------------------------------------- environment and resolution


def test_key_from_environment(monkeypatch):
    monkeypatch.setenv("FACESEC_TEST_KEY", KEY.hex() + "\n")
    key = MasterKey.from_env("FACESEC_TEST_KEY")
    assert key == MasterKey(KEY) and key.source == "env"


@pytest.mark.parametrize("value", [KEY.hex()[:-1], "g" * 64, KEY.hex() + "00", "secret-passphrase"])
def test_malformed_environment_key_names_the_variable_only(monkeypatch, value):
    monkeypatch.setenv("FACESEC_TEST_KEY", value)
    with pytest.raises(KeySourceError) as info:
        MasterKey.from_env("FACESEC_TEST_KEY")
    _assert_safe_message(info.value, value.encode(), "FACESEC_TEST_KEY")


def test_raw_bytes_are_not_accepted_from_the_environment(monkeypatch):
    monkeypatch.setenv("FACESEC_TEST_KEY", "a" * 32)  # 32 characters: a raw key in a file, not here
    with pytest.raises(KeySourceError, match="64 hex digits"):
        MasterKey.from_env("FACESEC_TEST_KEY")


def test_unset_environment_variable(monkeypatch):
    monkeypatch.delenv("FACESEC_TEST_KEY", raising=False)
    with pytest.raises(KeySourceError, match="FACESEC_TEST_KEY: not set"):
        MasterKey.from_env("FACESEC_TEST_KEY")


def test_load_master_key_resolution(tmp_path, monkeypatch):
    path = _write(tmp_path / "k", KEY)
    monkeypatch.setenv("FACESEC_TEST_KEY", OTHER.hex())
    assert load_master_key(file=path) == MasterKey(KEY)
    assert load_master_key(env="FACESEC_TEST_KEY") == MasterKey(OTHER)
    assert load_master_key(random=True).ephemeral
    assert load_master_key(seed=3) == MasterKey.evaluation(3)
    for bad in ({"file": path, "env": "FACESEC_TEST_KEY"}, {}, {"seed": 1, "random": True}):
        with pytest.raises(KeySourceError, match="exactly one key source"):
            load_master_key(**bad)


def test_evaluation_keys_are_public_and_reproducible():
    a, b = MasterKey.evaluation(0), MasterKey.evaluation(0)
    assert a == b and a.key_id == b.key_id and a != MasterKey.evaluation(1)
    assert a.source == "seed" and a.seed == 0 and not a.ephemeral
    assert a.application("x").derive("l") == b.application("x").derive("l")
    for bad in (-1, 1.5, True, "0"):
        with pytest.raises(ValueError):
            MasterKey.evaluation(bad)


def test_key_source_error_is_a_key_error_without_quotes():
    exc = KeySourceError("x: not a key")
    assert isinstance(exc, KeyError) and str(exc) == "x: not a key"


# --------------------------------------------------------------------------- keys never echoed


def test_looks_like_key():
    assert looks_like_key(KEY.hex()) and looks_like_key(b"x" + KEY.hex().encode())
    assert not looks_like_key("FACESEC_MASTER_KEY") and not looks_like_key("keys/master.key") and not looks_like_key(7)


def test_a_key_given_as_file_or_variable_name_is_not_repeated(tmp_path, monkeypatch):
    pasted = KEY.hex()
    monkeypatch.chdir(tmp_path)
    for load in (MasterKey.from_file, MasterKey.from_env):
        with pytest.raises(KeySourceError) as info:
            load(pasted)
        assert pasted not in str(info.value) and pasted[:16] not in str(info.value)
        assert "hidden" in str(info.value)
