"""Tests of benchmark.codecs.amplitude: syntax-compliant encryption of a baseline JPEG's amplitude bits."""

from __future__ import annotations

import io
import shutil
import subprocess

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from images import random_image
from PIL import Image

from benchmark.codecs import CodestreamError
from benchmark.codecs.amplitude import decrypt_jpeg_amplitudes, encrypt_jpeg_amplitudes, jpeg_amplitude_selection
from benchmark.codecs.cipher import (
    encrypt_jpeg,
    keystream,
    window_range,
)
from benchmark.codecs.jpeg import encode_jpeg, parse_jpeg
from benchmark.codecs.jpeg_scan import Fields, coefficient_fields, parse_scan, walk_interval

KEY = bytes(range(32))
NONCE = bytes(range(100, 116))


# --------------------------------------------------------------------------- JPEG amplitudes


def _scan_bits(data: bytes) -> tuple[np.ndarray, Fields]:
    """The scan's data bits (stuffing, fill and RST left out) and where its coefficients lie."""
    scan = parse_scan(data)
    for k, iv in enumerate(scan.intervals):  # every Huffman code decodes, every interval has its MCUs
        assert walk_interval(scan, k).kept == iv.mcus
    bits = np.unpackbits(np.frombuffer(b"".join(iv.data for iv in scan.intervals), np.uint8))
    return bits, coefficient_fields(scan)


def _expected_mask(fields: Fields, window: float, offset: float, ac_only: bool) -> np.ndarray:
    """Reference: the amplitude bits of the coefficients whose code starts in the window."""
    lo, hi = window_range(fields.nbits // 8, window, offset)
    mask = np.zeros(fields.nbits, bool)
    for code, start, size, dc in zip(fields.code, fields.start, fields.size, fields.dc):
        if 8 * lo <= code < 8 * hi and not (ac_only and dc):
            mask[start : start + size] = True
    return mask


def _check_amplitude_case(data: bytes, key: bytes, nonce: bytes, window: float, offset: float, ac_only: bool) -> None:
    enc = encrypt_jpeg_amplitudes(data, key, nonce, window, offset, ac_only=ac_only)
    assert decrypt_jpeg_amplitudes(enc, key, nonce, window, offset, ac_only=ac_only) == data
    plain, protected = parse_jpeg(data), parse_jpeg(enc)
    assert plain.markers == protected.markers
    (s0, e0), (s1, e1) = plain.segments[0], protected.segments[0]
    assert data[:s0] == enc[:s1] and data[e0:] == enc[e1:]  # headers and what follows the scan stay
    bits, fields = _scan_bits(data)
    enc_bits, enc_fields = _scan_bits(enc)  # the protected scan decodes with our own parser
    # Same symbols at the same places: every code keeps its length, so does the data.
    for name in ("code", "start", "size", "dc"):
        assert np.array_equal(getattr(fields, name), getattr(enc_fields, name)), name
    # Exactly the selected amplitude bits change, each XORed with the keystream bit of its scan position.
    mask = _expected_mask(fields, window, offset, ac_only)
    stream = np.unpackbits(keystream(key, nonce, 0, fields.nbits // 8))
    assert np.array_equal(enc_bits, bits ^ (mask & (stream == 1)))
    if mask.sum() >= 64:
        assert (enc_bits != bits).any()  # the cipher did something
    if ac_only:
        dc = np.zeros(fields.nbits, bool)
        for start, size in zip(fields.start[fields.dc], fields.size[fields.dc]):
            dc[start : start + size] = True
        assert np.array_equal(enc_bits[dc], bits[dc])  # DC differences, hence DC values, unchanged
    # Restuffed: the length changes by the change in FF data bytes, no more.
    ff = np.packbits(enc_bits) == 0xFF, np.packbits(bits) == 0xFF
    assert len(enc) - len(data) == int(ff[0].sum()) - int(ff[1].sum())
    # Standard decoders read it.
    with Image.open(io.BytesIO(enc)) as im:
        im.load()
        assert im.size == (plain.width, plain.height)
    decoded = cv2.imdecode(np.frombuffer(enc, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded is not None and decoded.shape[:2] == (plain.height, plain.width)


_SHAPES = [(8, 8), (16, 24, 3), (37, 21), (40, 33, 3), (48, 48)]


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    shape=st.sampled_from(_SHAPES),
    seed=st.integers(0, 2**16),
    smooth=st.booleans(),
    quality=st.sampled_from([30, 75, 90, 100]),
    restart=st.sampled_from([0, 1, 3]),
    key=st.binary(min_size=16, max_size=16) | st.binary(min_size=32, max_size=32),
    nonce=st.binary(min_size=16, max_size=16),
    window=st.floats(0.0, 100.0, exclude_min=True),
    share=st.floats(0.0, 1.0),
    ac_only=st.booleans(),
)
def test_amplitude_roundtrip_syntax_and_keystream(
    shape, seed, smooth, quality, restart, key, nonce, window, share, ac_only
):
    data = encode_jpeg(random_image(np.random.default_rng(seed), shape, smooth), quality, restart)
    _check_amplitude_case(data, key, nonce, window, share * (100.0 - window), ac_only)


def test_amplitude_keeps_fill_bytes():
    """Fill bytes (FF runs before a marker) are not data: they stay where they are, byte for byte."""
    data = encode_jpeg(random_image(np.random.default_rng(3), (48, 48, 3), False), 90, 2)
    filled = data.replace(b"\xff\xd1", b"\xff\xff\xff\xd1").replace(b"\xff\xd9", b"\xff\xff\xd9")
    assert filled.count(b"\xff\xff") >= 2
    enc = encrypt_jpeg_amplitudes(filled, KEY, NONCE, 100, 0)
    assert enc.count(b"\xff\xff\xff\xd1") == 1 and enc.endswith(b"\xff\xff\xd9")
    _check_amplitude_case(filled, KEY, NONCE, 100, 0, False)


def test_amplitude_stuffing_is_redone():
    """Noise coded at quality 100 has many FF data bytes: some appear, some vanish, all are stuffed."""
    data = encode_jpeg(random_image(np.random.default_rng(4), (64, 64), False), 100, 0)
    enc = encrypt_jpeg_amplitudes(data, KEY, NONCE, 100, 0)
    bits, _ = _scan_bits(data)
    enc_bits, _ = _scan_bits(enc)
    before, after = np.packbits(bits) == 0xFF, np.packbits(enc_bits) == 0xFF
    assert (before & ~after).any() and (after & ~before).any()
    _check_amplitude_case(data, KEY, NONCE, 100, 0, False)


def test_amplitude_windows_partition_the_coefficients():
    """Consecutive windows select disjoint coefficients whose union is the joined window's."""
    data = encode_jpeg(random_image(np.random.default_rng(5), (48, 48, 3), True), 90, 3)
    a, _, _ = jpeg_amplitude_selection(data, 10, 20)
    b, _, _ = jpeg_amplitude_selection(data, 15, 30)
    ab, _, _ = jpeg_amplitude_selection(data, 25, 20)
    assert not set(a.tolist()) & set(b.tolist()) and sorted(a.tolist() + b.tolist()) == ab.tolist()
    assert jpeg_amplitude_selection(data, 100, 0, ac_only=True)[0].size < jpeg_amplitude_selection(data, 100, 0)[0].size


def test_amplitude_keystream_position_is_the_bit_position():
    """A wider window encrypts each bit of a narrower one exactly as it does: one keystream bit per plaintext bit."""
    data = encode_jpeg(random_image(np.random.default_rng(6), (48, 48), True), 90, 0)
    narrow, _ = _scan_bits(encrypt_jpeg_amplitudes(data, KEY, NONCE, 10, 15))
    wide, fields = _scan_bits(encrypt_jpeg_amplitudes(data, KEY, NONCE, 30, 0))
    mask = _expected_mask(fields, 10, 15, False)
    assert mask.any() and np.array_equal(narrow[mask], wide[mask])


def test_amplitude_errors():
    with pytest.raises(CodestreamError):
        encrypt_jpeg_amplitudes(b"not a jpeg", KEY, NONCE, 100, 0)
    data = encode_jpeg(random_image(np.random.default_rng(9), (48, 48), True), 90, 0)
    progressive = io.BytesIO()
    Image.fromarray(random_image(np.random.default_rng(9), (48, 48), True)).save(
        progressive, format="JPEG", progressive=True
    )
    with pytest.raises(CodestreamError, match="^unsupported"):
        encrypt_jpeg_amplitudes(progressive.getvalue(), KEY, NONCE, 100, 0)
    with pytest.raises(ValueError):
        encrypt_jpeg_amplitudes(data, KEY[:5], NONCE, 100, 0)
    with pytest.raises(ValueError):
        encrypt_jpeg_amplitudes(data, KEY, NONCE, -1, 0)


_DJPEG = shutil.which("djpeg")


def _djpeg(data: bytes) -> tuple[int, bytes]:
    assert _DJPEG is not None
    run = subprocess.run([_DJPEG], input=data, capture_output=True, timeout=60)
    return run.returncode, run.stderr


@pytest.mark.skipif(_DJPEG is None, reason="djpeg (libjpeg-turbo) not installed")
@pytest.mark.parametrize("shape", [(112, 112), (112, 112, 3)])
@pytest.mark.parametrize("restart", [0, 7])
@pytest.mark.parametrize("window, ac_only", [(10, False), (100, False), (100, True)])
def test_djpeg_reads_amplitude_encryption_silently(shape, restart, window, ac_only):
    data = encode_jpeg(random_image(np.random.default_rng(10), shape, False), 90, restart)
    assert _djpeg(data) == (0, b"")
    enc = encrypt_jpeg_amplitudes(data, KEY, NONCE, window, 0, ac_only=ac_only)
    assert enc != data
    assert _djpeg(enc) == (0, b"")
    # The check can fail: the byte cipher of the jpeg scheme trips it on the same file.
    assert _djpeg(encrypt_jpeg(data, KEY, NONCE, window, 0)) != (0, b"")


@settings(max_examples=80, deadline=None, derandomize=True, database=None)
@given(edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6))
def test_amplitude_on_damaged_files_raises_only_codestream_errors(edits):
    """An untrusted (damaged) protected file decrypts or is refused with a CodestreamError, nothing else."""
    data = bytearray(encode_jpeg(random_image(np.random.default_rng(11), (24, 24, 3), False), 90, 2))
    for pos, value in edits:
        data[pos % len(data)] = value
    try:
        out = decrypt_jpeg_amplitudes(bytes(data), KEY, NONCE, 50, 10)
    except CodestreamError:
        return
    assert isinstance(out, bytes) and encrypt_jpeg_amplitudes(out, KEY, NONCE, 50, 10) == bytes(data)
