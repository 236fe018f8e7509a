"""Tests for the `conceal-mcu` attack on selectively encrypted JPEG."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from images import wave_image
from PIL import Image
from scipy.ndimage import binary_dilation

from attacks.conceal_jpeg import STAT_KEYS, ConcealMCUAttack, conceal_jpeg, plan_concealment
from attacks.naive import NaiveAttack
from benchmark.codecs import CodestreamError
from benchmark.codecs.cipher import encrypt_jpeg, jpeg_selection
from benchmark.codecs.jpeg import decode_jpeg, encode_jpeg
from benchmark.codecs.jpeg_scan import parse_scan
from benchmark.core.keys import MasterKey
from benchmark.core.registry import ATTACKS
from schemes.jpeg import JPEGScheme

_KEY, _NONCE = bytes(range(32)), bytes(range(16))


def _image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return wave_image(shape, seed, noise=10.0)


def _mcu_masks(plain: bytes, window: float, offset: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel masks of the flat (concealed) MCUs of each cut interval and of the resynchronised MCUs."""
    scan = parse_scan(plain)
    starts, ends = jpeg_selection(plain, window, offset)
    cuts = plan_concealment(scan, int(starts.min()), int(ends.max())) if starts.size else {}
    flat, tail = np.zeros((len(cuts), scan.mcus), bool), np.zeros(scan.mcus, bool)
    for i, (k, cut) in enumerate(cuts.items()):
        iv = scan.intervals[k]
        n = cut.tail.mcus if cut.tail else 0
        flat[i, iv.first_mcu + cut.kept : iv.first_mcu + iv.mcus - n] = True
        tail[iv.first_mcu + iv.mcus - n : iv.first_mcu + iv.mcus] = True

    def pixels(mcus: np.ndarray) -> np.ndarray:
        mask = np.kron(mcus.reshape(scan.mcu_rows, scan.mcu_cols), np.ones(scan.mcu_size, bool))
        return mask[: scan.height, : scan.width]

    return np.stack([pixels(f) for f in flat]), pixels(tail)


def _dilate(mask: np.ndarray) -> np.ndarray:
    """Grow by one pixel, diagonals included: 4:2:0 chroma upsampling blends that far."""
    return binary_dilation(mask, structure=np.ones((3, 3), bool))


_CASES = [
    (shape, restart, window, offset)
    for shape in ((112, 112), (112, 112, 3))
    for restart in (0, 7)
    for window, offset in ((5.0, 0.0), (5.0, 30.0), (10.0, 50.0), (1.0, 99.0))
]


@pytest.mark.parametrize("shape, restart, window, offset", _CASES)
def test_concealment_keeps_plaintext_flattens_the_lost_mcus_and_shifts_the_resynced_ones(
    shape, restart, window, offset
):
    plain = encode_jpeg(_image(shape), quality=90, restart_interval=restart)
    protected = encrypt_jpeg(plain, _KEY, _NONCE, window, offset)
    out, stats = conceal_jpeg(protected, window, offset)
    # Only plaintext survives: the protected and the plain file rewrite alike.
    assert out == conceal_jpeg(plain, window, offset)[0]
    assert out[: parse_scan(out).segment[0]] == plain[: parse_scan(plain).segment[0]]
    decoded, reference = decode_jpeg(out).astype(int), decode_jpeg(plain).astype(int)
    flats, tail = _mcu_masks(plain, window, offset)
    flat = flats.any(axis=0)
    assert flat.any() and not (flat & tail).any()
    if len(shape) == 3:
        # 4:2:0 chroma upsampling blends one pixel across MCU edges.
        inner = [~_dilate(~f) for f in flats]
        tail_in, kept = ~_dilate(~tail), ~_dilate(flat | tail)
    else:
        inner, tail_in, kept = list(flats), tail, ~(flat | tail)
    assert np.array_equal(decoded[kept], reference[kept])
    # The lost MCUs of an interval are flat: each channel at one level.
    for f in inner:
        assert not f.any() or np.ptp(decoded[f], axis=0).max() <= 1
    # Resynchronised MCUs are the plaintext ones up to a DC shift per channel
    # (libjpeg's integer IDCT rounds it +-1 per component, and colour
    # conversion adds up to three of those; clipped pixels are left out).
    if tail_in.any():
        shift = decoded[tail_in] - reference[tail_in]
        inside = (
            np.all(
                (decoded[tail_in] > 0)
                & (decoded[tail_in] < 255)
                & (reference[tail_in] > 0)
                & (reference[tail_in] < 255),
                axis=-1,
            )
            if len(shape) == 3
            else (
                (decoded[tail_in] > 0)
                & (decoded[tail_in] < 255)
                & (reference[tail_in] > 0)
                & (reference[tail_in] < 255)
            )
        )
        assert np.ptp(shift[inside], axis=0).max() <= (4 if len(shape) == 3 else 2)
    assert flat.sum() == stats["mcus_greyed"] * np.prod(parse_scan(plain).mcu_size)
    assert tail.sum() == stats["mcus_resynced"] * np.prod(parse_scan(plain).mcu_size)
    assert stats["intervals_hit"] >= 1 and stats["bytes_dropped"] > 0
    if restart == 0 and offset + window < 50:
        # Without restart markers the whole rest of the scan follows the window.
        assert stats["mcus_resynced"] > stats["mcus_greyed"]


@pytest.mark.parametrize("restart", [0, 7])
def test_restart_intervals_outside_the_window_are_copied(restart):
    plain = encode_jpeg(_image((112, 112, 3)), quality=90, restart_interval=restart)
    out, stats = conceal_jpeg(encrypt_jpeg(plain, _KEY, _NONCE, 3.0, 40.0), 3.0, 40.0)
    scan, rewritten = parse_scan(plain), parse_scan(out)
    lo, hi = (int(x[0]) for x in jpeg_selection(plain, 3.0, 40.0))
    same = [plain[a.start : a.end] == out[b.start : b.end] for a, b in zip(scan.intervals, rewritten.intervals)]
    hit = [a.start < hi and a.end > lo for a in scan.intervals]
    assert same == [not h for h in hit]
    assert stats["intervals_hit"] == sum(hit)
    if restart:
        assert len(rewritten.intervals) == len(scan.intervals) == 7 and sum(same) > 0


def test_empty_window_changes_nothing():
    plain = encode_jpeg(_image((112, 112, 3)), quality=90, restart_interval=7)
    out, stats = conceal_jpeg(plain, 0.0, 10.0)
    assert out == plain and stats == dict.fromkeys(STAT_KEYS, 0)


def _protect(faces, **params):
    images, ids, subjects = faces
    scheme = JPEGScheme(**params)
    return scheme, scheme.protect(images, MasterKey(bytes(range(32))).application("conceal-mcu"), ids, subjects)


def test_registered_with_stated_knowledge():
    assert ATTACKS.get("conceal-mcu") is ConcealMCUAttack
    assert "no key" in ConcealMCUAttack.knowledge and "Kerckhoffs" in ConcealMCUAttack.knowledge
    assert ConcealMCUAttack().get_params() == {}


@pytest.mark.parametrize("restart", [0, 7])
def test_attack_matches_the_plaintext_outside_the_concealed_mcus(faces, restart):
    scheme, protected = _protect(faces, quality=90, restart_interval=restart, window=4.0, offset=20.0)
    attack = ConcealMCUAttack()
    images, failed, counters = attack.attack(protected, scheme)
    naive, naive_failed, _ = NaiveAttack().attack(protected, scheme)
    assert not failed.any() and not naive_failed.any()
    assert images.shape == (len(protected), 112, 112, 3) and images.dtype == np.uint8
    assert set(counters) == set(STAT_KEYS)
    assert all(v.shape == (len(protected),) and v.dtype == np.int64 for v in counters.values())
    assert np.all(counters["mcus_greyed"] > 0)
    for face, image in zip(faces[0], images):
        plain = scheme.encode(face)
        flats, tail = _mcu_masks(plain, 4.0, 20.0)
        kept = ~_dilate(flats.any(axis=0) | tail)
        reference = scheme.decode_one(plain)
        reference = reference if reference.ndim == 3 else np.repeat(reference[..., None], 3, axis=2)
        assert np.array_equal(image[kept], reference[kept])
    # the naive decode of the same samples differs where the concealment greys
    assert not np.array_equal(images, naive)


def test_undecodable_samples_are_flagged_not_raised(faces):
    scheme, protected = _protect(faces, window=4.0, offset=6.0)
    buf = io.BytesIO()
    Image.fromarray(faces[0][0]).save(buf, format="JPEG", progressive=True)
    blobs = [protected[0], b"not a jpeg", buf.getvalue(), protected[1][: len(protected[1]) // 2]]
    attack = ConcealMCUAttack()
    images, failed, counters = attack.attack(blobs, scheme)
    assert failed.tolist() == [False, True, True, True]
    assert images.shape == (4, 112, 112, 3) and np.all(images[1:] == 0)
    assert np.all(counters["mcus_greyed"][1:] == 0)


_BASES = [
    encode_jpeg(_image((32, 48, 3), 1), quality=85, restart_interval=2),
    encode_jpeg(_image((24, 24), 2), quality=95),
]


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(
    st.sampled_from(_BASES),
    st.lists(st.tuples(st.integers(2, 1200), st.integers(0, 255)), max_size=4),
    st.booleans(),
    st.integers(4, 1200),
    st.floats(0, 60),
    st.floats(0, 100),
)
def test_fuzz_concealment_raises_only_codestream_errors(base, edits, truncate, cut, window, offset):
    data = bytearray(base[:cut] if truncate else base)
    for pos, value in edits:
        if pos < len(data):
            data[pos] = value
    try:
        out, stats = conceal_jpeg(bytes(data), window, offset)
    except CodestreamError:
        return
    assert all(v >= 0 for v in stats.values())
    parse_scan(out)
