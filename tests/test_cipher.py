"""Tests of benchmark.codecs.cipher: keystream, byte rule, J2K and JPEG selective encryption."""

from __future__ import annotations

import io
import math
from fractions import Fraction

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from images import random_image
from PIL import Image

from benchmark.codecs import CodestreamError
from benchmark.codecs.cipher import (
    decrypt_j2k,
    decrypt_jpeg,
    decrypt_ranges,
    encrypt_j2k,
    encrypt_jpeg,
    encrypt_ranges,
    j2k_selection,
    jpeg_selection,
    keystream,
    window_range,
)
from benchmark.codecs.j2k import J2KParams, decode_j2k, encode_j2k, locate_packets
from benchmark.codecs.jpeg import decode_jpeg, encode_jpeg, parse_jpeg

RATIOS = (80, 40, 20, 10, 5, 1)
KEY = bytes(range(32))
NONCE = bytes(range(100, 116))
FIXTURE_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]


def _ranges_mask(starts, ends, n: int) -> np.ndarray:
    mask = np.zeros(n, bool)
    for s, e in zip(starts.tolist(), ends.tolist()):
        mask[s:e] = True
    return mask


@pytest.fixture(scope="module")
def pool() -> list[bytes]:
    """30 codestreams: sizes, grey/RGB, noise/smooth, 3 progressions, 1..6 layers, RESTART on/off."""
    rng = np.random.default_rng(2021)
    shapes = [(112, 112), (112, 112, 3), (92, 112), (64, 48, 3), (33, 17)]
    out = []
    for i in range(30):
        layers = 1 + i % 6
        params = J2KParams(
            progression=("LRCP", "RLCP", "RPCL")[i % 3],
            # every 7th is lossy (final ratio 2, not 1)
            ratios=RATIOS[-layers:] if i % 7 else tuple(2 * r for r in RATIOS[-layers:]),
            restart=(i // 2) % 2 == 1,
        )
        out.append(encode_j2k(random_image(rng, shapes[i % 5], smooth=(i // 5) % 2 == 0), params))
    return out


# --------------------------------------------------------------------------- keystream


def _reference_stream(key: bytes, nonce: bytes, offset: int, length: int) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.CTR(nonce)).encryptor()
    return enc.update(bytes(offset + length))[offset:]


def test_keystream_nist_sp800_38a_f51():
    # NIST SP 800-38A, F.5.1 CTR-AES128.Encrypt: keystream = ciphertext XOR plaintext.
    key = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
    ctr = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
    pt = bytes.fromhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51")
    ct = bytes.fromhex("874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff")
    expected = bytes(a ^ b for a, b in zip(pt, ct))
    assert keystream(key, ctr, 0, 32).tobytes() == expected
    assert keystream(key, ctr, 5, 20).tobytes() == expected[5:25]  # unaligned, across the block boundary


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    key=st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    nonce=st.binary(min_size=16, max_size=16),
    offset=st.integers(0, 5000),
    length=st.integers(0, 300),
)
def test_keystream_matches_cryptography(key, nonce, offset, length):
    ks = keystream(key, nonce, offset, length)
    assert ks.dtype == np.uint8 and ks.shape == (length,)
    assert ks.tobytes() == _reference_stream(key, nonce, offset, length)


def test_keystream_large_offset_and_counter_wrap():
    offset = 10**7 + 3
    assert keystream(KEY, NONCE, offset, 40).tobytes() == _reference_stream(KEY, NONCE, offset, 40)
    # The 128-bit counter wraps like OpenSSL's: block 1 after FF..FF is 00..00.
    ecb_zero = Cipher(algorithms.AES(KEY), modes.ECB()).encryptor().update(bytes(16))
    assert keystream(KEY, b"\xff" * 16, 16, 16).tobytes() == ecb_zero
    assert keystream(KEY, b"\xff" * 16, 0, 32).tobytes() == _reference_stream(KEY, b"\xff" * 16, 0, 32)


@pytest.mark.parametrize(
    "key, nonce, offset, length",
    [
        (bytes(15), NONCE, 0, 1),
        (KEY, bytes(12), 0, 1),
        (KEY, NONCE, -1, 1),
        (KEY, NONCE, 0, -1),
        ("k" * 32, NONCE, 0, 1),
    ],
)
def test_keystream_rejects_bad_arguments(key, nonce, offset, length):
    with pytest.raises(ValueError):
        keystream(key, nonce, offset, length)


# --------------------------------------------------------------------------- window


@pytest.mark.parametrize(
    "n, window, offset, expected",
    [
        (1000, 20, 10, (100, 300)),
        (7, 50, 50, (3, 7)),  # 3.5 -> 3, 7 -> 7
        (7, 10, 0, (0, 0)),  # 0.7 -> 0: nothing
        (1000, 100, 0, (0, 1000)),
        (1000, 80, 50, (500, 1000)),  # sums above 100 are clipped
        (1000, 0, 30, (300, 300)),
        (1000, 10, 100, (1000, 1000)),
        (1000, 10, 250, (1000, 1000)),
        (0, 100, 0, (0, 0)),
        (1000, 0.1, 0.1, (1, 2)),  # exact on the float values: 0.1 is slightly above 1/10
    ],
)
def test_window_range_examples(n, window, offset, expected):
    assert window_range(n, window, offset) == expected


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    n=st.integers(0, 300),
    window=st.floats(0, 150, allow_nan=False),
    offset=st.floats(0, 150, allow_nan=False),
)
def test_window_range_semantics(n, window, offset):
    start, end = window_range(n, window, offset)
    assert 0 <= start <= end <= n
    x = Fraction(offset) * n / 100
    y = (Fraction(offset) + Fraction(window)) * n / 100
    # Byte i spans [i, i+1); it is selected exactly when its end lies in (x, y].
    selected = [i for i in range(n) if x < i + 1 <= y]
    assert list(range(start, end)) == selected


@pytest.mark.parametrize("window, offset", [(-1, 0), (10, -0.5), (math.nan, 0), (10, math.inf), (True, 0), ("5", 0)])
def test_window_range_rejects(window, offset):
    with pytest.raises(ValueError):
        window_range(100, window, offset)


# --------------------------------------------------------------------------- byte rule


def _reference_rule(data: bytes, ranges, key, nonce, decrypt: bool, after_ff_mod):
    """Byte-by-byte statement of the rule (the library's version is vectorised)."""
    ks = keystream(key, nonce, 0, len(data))
    out = bytearray(data)
    for s, e in ranges:
        for i in range(s, e):
            x, k = data[i], int(ks[i])
            if x == 0xFF:
                continue
            if i > 0 and data[i - 1] == 0xFF:
                if after_ff_mod is None or x >= after_ff_mod:
                    continue
                out[i] = (x - k) % after_ff_mod if decrypt else (x + k) % after_ff_mod
            else:
                out[i] = (x - k) % 255 if decrypt else (x + k) % 255
    return bytes(out)


_bytes_with_ff = st.lists(
    st.one_of(st.sampled_from([0xFF, 0x00, 0x7F, 0x80, 0x8F, 0x90, 0xFE]), st.integers(0, 255)),
    min_size=1,
    max_size=300,
).map(bytes)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(data=_bytes_with_ff, cuts=st.lists(st.integers(0, 300), max_size=8), mode=st.sampled_from([0x90, None]))
def test_byte_rule_matches_reference_and_inverts(data, cuts, mode):
    points = sorted({c % (len(data) + 1) for c in cuts})
    ranges = [(a, b) for a, b in zip(points[::2], points[1::2]) if b > a]
    starts = np.array([r[0] for r in ranges], np.int64)
    ends = np.array([r[1] for r in ranges], np.int64)
    enc = encrypt_ranges(data, starts, ends, KEY, NONCE, after_ff_mod=mode)
    assert enc == _reference_rule(data, ranges, KEY, NONCE, False, mode)
    assert decrypt_ranges(enc, starts, ends, KEY, NONCE, after_ff_mod=mode) == data
    a, e = np.frombuffer(data, np.uint8), np.frombuffer(enc, np.uint8)
    assert np.array_equal(a == 0xFF, e == 0xFF)  # FF never created nor removed
    after = np.flatnonzero(a[:-1] == 0xFF) + 1
    if mode is None:
        assert np.array_equal(a[after], e[after])
    else:
        assert np.all((e[after] <= 0x8F) | (e[after] == a[after]))


def _ff_in_body(cs: bytes, follower_max: int = 0x8F) -> tuple[int, np.ndarray]:
    """(offset of an FF inside a packet body whose successor is a body byte, body mask)."""
    pm = locate_packets(cs)
    a, body = np.frombuffer(cs, np.uint8), pm.body_mask(len(cs))
    ff = np.flatnonzero((a[:-1] == 0xFF) & body[:-1] & body[1:] & (a[1:] <= follower_max))
    assert ff.size, "test codestream has no FF inside a packet body"
    return int(ff[0]), body


def test_edge_ff_just_before_the_window(pool):
    cs = pool[1]
    p, _ = _ff_in_body(cs)
    enc = encrypt_ranges(cs, np.array([p + 1]), np.array([p + 40]), KEY, NONCE)
    k = int(keystream(KEY, NONCE, p + 1, 1)[0])
    assert enc[p] == 0xFF and enc[p + 1] == (cs[p + 1] + k) % 0x90  # the mod-0x90 rule, not mod 255
    assert decrypt_ranges(enc, np.array([p + 1]), np.array([p + 40]), KEY, NONCE) == cs


def test_edge_ff_last_in_window(pool):
    cs = pool[1]
    p, _ = _ff_in_body(cs)
    enc = encrypt_ranges(cs, np.array([p - 30]), np.array([p + 1]), KEY, NONCE)
    assert enc[p] == 0xFF and enc[p + 1] == cs[p + 1]  # successor is outside: untouched
    assert enc[p + 1 :] == cs[p + 1 :]
    assert decrypt_ranges(enc, np.array([p - 30]), np.array([p + 1]), KEY, NONCE) == cs


def test_edge_ff_ending_a_body(pool):
    cs = pool[0]
    pm = locate_packets(cs)
    forged = bytearray(cs)
    i = int(np.argmax(pm.body_end - pm.body_start > 2))
    forged[int(pm.body_end[i]) - 1] = 0xFF  # body ends in FF, the next SOP follows: FF FF 91
    forged = bytes(forged)
    got = locate_packets(forged)
    assert np.array_equal(got.body_end, pm.body_end) and np.array_equal(got.body_start, pm.body_start)
    enc = encrypt_j2k(forged, KEY, NONCE, 100, 0)
    assert enc[int(pm.body_end[i]) - 1] == 0xFF and enc[int(pm.body_end[i]) : int(pm.body_end[i]) + 2] == b"\xff\x91"
    assert decrypt_j2k(enc, KEY, NONCE, 100, 0) == forged


# --------------------------------------------------------------------------- J2K properties


_percent = st.one_of(st.sampled_from([0.0, 100.0]), st.integers(0, 100).map(float), st.floats(0, 100, allow_nan=False))


def _j2k_cases(n_pool: int):
    return st.tuples(
        st.integers(0, n_pool - 1),
        st.binary(min_size=32, max_size=32),
        st.binary(min_size=16, max_size=16),
        _percent,
        _percent,
    )


def _check_j2k_case(cs: bytes, key: bytes, nonce: bytes, window: float, offset: float) -> None:
    enc = encrypt_j2k(cs, key, nonce, window, offset)
    assert len(enc) == len(cs)
    assert decrypt_j2k(enc, key, nonce, window, offset) == cs
    n = len(cs)
    a, e = np.frombuffer(cs, np.uint8), np.frombuffer(enc, np.uint8)
    pm, pm_enc = locate_packets(cs), locate_packets(enc)
    for name in ("header_start", "header_end", "body_start", "body_end"):
        assert np.array_equal(getattr(pm, name), getattr(pm_enc, name))
    # What may change: packet-body bytes inside the window, nothing else.
    body = pm.body_mask(n)
    start, end = window_range(n, window, offset)
    in_window = np.zeros(n, bool)
    in_window[start:end] = True
    selected = _ranges_mask(*j2k_selection(cs, window, offset), n)
    assert np.array_equal(selected, body & in_window)
    assert np.array_equal(a[~selected], e[~selected])
    if selected.sum() >= 16:
        assert not np.array_equal(a[selected], e[selected])
    # Format compliance: no FF90..FFFF inside a body, FF positions unchanged.
    assert np.array_equal(a == 0xFF, e == 0xFF)
    ff = np.flatnonzero(e[:-1] == 0xFF)
    inside = body[ff] & body[ff + 1]
    assert np.all(e[ff[inside] + 1] <= 0x8F)
    # Decodable by two independent decoders.
    out = decode_j2k(enc)
    assert out.dtype == np.uint8
    with Image.open(io.BytesIO(enc)) as im:
        im.load()


def _run_j2k_property(pool: list[bytes], examples: int) -> int:
    count = 0

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None, suppress_health_check=FIXTURE_OK)
    @given(case=_j2k_cases(len(pool)))
    def check(case):
        nonlocal count
        count += 1
        index, key, nonce, window, offset = case
        _check_j2k_case(pool[index], key, nonce, window, offset)

    check()
    return count


def test_j2k_roundtrip_compliance_decodability_1000(pool):
    # About 10 s on 2 cores: light enough for the default suite.
    assert _run_j2k_property(pool, 1000) >= 1000


def test_pool_members_parse_and_decode(pool):
    for cs in pool:
        assert len(locate_packets(cs)) > 0
        assert decode_j2k(cs).dtype == np.uint8


def test_low_seven_bits_rule_would_create_markers(pool):
    """The rule "encrypt the low 7 bits of a byte after FF" is not compliant.

    OpenJPEG legally writes FF 80..FF 8F in packet bodies; keeping the top
    bit and changing the low 7 bits turns them into FF 90..FF FF, i.e. false
    markers. The mod-0x90 rule never does.
    """
    legal_high = naive_markers = ours_markers = broken = 0
    for cs in pool:
        pm = locate_packets(cs)
        a, n = np.frombuffer(cs, np.uint8), len(cs)
        body = pm.body_mask(n)
        ff = np.flatnonzero((a[:-1] == 0xFF) & body[:-1] & body[1:])
        legal_high += int(np.sum((a[ff + 1] >= 0x80) & (a[ff + 1] <= 0x8F)))
        ks = keystream(KEY, NONCE, 0, n)
        naive = np.frombuffer(encrypt_j2k(cs, KEY, NONCE, 100, 0), np.uint8).copy()
        after = ff + 1
        naive[after] = (a[after] & 0x80) | ((a[after].astype(np.int16) + ks[after]) & 0x7F)
        naive_markers += int(np.sum(naive[after] >= 0x90))
        ours = np.frombuffer(encrypt_j2k(cs, KEY, NONCE, 100, 0), np.uint8)
        ours_markers += int(np.sum(ours[after] >= 0x90))
        try:
            broken += not np.array_equal(locate_packets(naive.tobytes()).body_end, pm.body_end)
        except CodestreamError:
            broken += 1
    assert legal_high > 0, "pool lacks FF 80..8F in bodies: the demonstration needs them"
    assert naive_markers > 0 and broken > 0
    assert ours_markers == 0


def test_j2k_keys_and_nonces_matter(pool):
    cs = pool[0]
    base = encrypt_j2k(cs, KEY, NONCE, 100, 0)
    assert encrypt_j2k(cs, KEY, NONCE, 100, 0) == base  # deterministic
    assert encrypt_j2k(cs, bytes(32), NONCE, 100, 0) != base
    assert encrypt_j2k(cs, KEY, bytes(16), 100, 0) != base
    assert decrypt_j2k(base, bytes(32), NONCE, 100, 0) != cs
    # Keystream is indexed by absolute offset: a sub-window encrypts exactly
    # like the full window does on those bytes.
    part = encrypt_j2k(cs, KEY, NONCE, 30, 40)
    sel = _ranges_mask(*j2k_selection(cs, 30, 40), len(cs))
    assert np.array_equal(np.frombuffer(part, np.uint8)[sel], np.frombuffer(base, np.uint8)[sel])


def test_j2k_errors(pool):
    with pytest.raises(CodestreamError):
        encrypt_j2k(pool[0][:-100], KEY, NONCE, 100, 0)
    face = random_image(np.random.default_rng(5), (112, 112), smooth=True)
    with pytest.raises(CodestreamError, match="no SOP/EPH"):
        encrypt_j2k(encode_j2k(face, J2KParams(sop=False)), KEY, NONCE, 100, 0)
    with pytest.raises(ValueError):
        encrypt_j2k(pool[0], KEY[:10], NONCE, 100, 0)
    with pytest.raises(ValueError):
        encrypt_j2k(pool[0], KEY, NONCE[:8], 100, 0)
    with pytest.raises(ValueError):
        decrypt_j2k(pool[0], KEY, NONCE, -5, 0)


# --------------------------------------------------------------------------- JPEG


@pytest.fixture(scope="module")
def jpeg_pool() -> list[bytes]:
    rng = np.random.default_rng(7)
    out = []
    for i, shape in enumerate([(112, 112), (112, 112, 3), (37, 53), (64, 48, 3)]):
        for restart in (0, 1, 5):
            img = random_image(rng, shape, smooth=i % 2 == 0)
            out.append(encode_jpeg(img, quality=(90, 50)[restart % 2], restart_interval=restart))
    return out


def _check_jpeg_case(data: bytes, key: bytes, nonce: bytes, window: float, offset: float) -> None:
    enc = encrypt_jpeg(data, key, nonce, window, offset)
    assert len(enc) == len(data)
    assert decrypt_jpeg(enc, key, nonce, window, offset) == data
    plain, protected = parse_jpeg(data), parse_jpeg(enc)
    assert plain == protected  # same markers, same segments
    a, e = np.frombuffer(data, np.uint8), np.frombuffer(enc, np.uint8)
    n = len(data)
    selected = _ranges_mask(*jpeg_selection(data, window, offset), n)
    ecs = _ranges_mask(np.array([s for s, _ in plain.segments]), np.array([t for _, t in plain.segments]), n)
    assert not (selected & ~ecs).any()  # only entropy-coded bytes
    total = int(ecs.sum())
    start, end = window_range(total, window, offset)
    assert selected.sum() == end - start  # the window is a share of the entropy-coded bytes
    assert np.array_equal(a[~selected], e[~selected])
    assert np.array_equal(a == 0xFF, e == 0xFF)
    after = np.flatnonzero(a[:-1] == 0xFF) + 1
    assert np.array_equal(a[after], e[after])  # stuffing and RSTn untouched
    assert decode_jpeg(enc).shape == decode_jpeg(data).shape
    with Image.open(io.BytesIO(enc)) as im:
        im.load()


@settings(max_examples=120, deadline=None, derandomize=True, database=None, suppress_health_check=FIXTURE_OK)
@given(
    case=st.tuples(
        st.integers(0, 11), st.binary(min_size=16, max_size=16), st.binary(min_size=16, max_size=16), _percent, _percent
    )
)
def test_jpeg_roundtrip_compliance_decodability(jpeg_pool, case):
    index, key, nonce, window, offset = case
    _check_jpeg_case(jpeg_pool[index], key, nonce, window, offset)


def test_jpeg_full_window_scrambles_the_image():
    img = random_image(np.random.default_rng(8), (112, 112), smooth=True)
    data = encode_jpeg(img, 90)
    protected = decode_jpeg(encrypt_jpeg(data, KEY, NONCE, 100, 0))
    plain = decode_jpeg(data)
    assert np.abs(protected.astype(int) - plain.astype(int)).mean() > np.abs(plain.astype(int) - img.astype(int)).mean()


def test_jpeg_errors():
    with pytest.raises(CodestreamError):
        encrypt_jpeg(b"\xff\xd8\xff\xdb\x00", KEY, NONCE, 100, 0)
    with pytest.raises(CodestreamError):
        decrypt_jpeg(b"not a jpeg", KEY, NONCE, 100, 0)
