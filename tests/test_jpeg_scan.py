"""Tests of benchmark.codecs.jpeg_scan: MCU walking and rewriting of baseline JPEG scans."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from images import wave_image
from PIL import Image

from benchmark.codecs import CodestreamError
from benchmark.codecs.jpeg import decode_jpeg, encode_jpeg, parse_jpeg
from benchmark.codecs.jpeg_scan import (
    Cut,
    coefficient_fields,
    parse_scan,
    reencode_jpeg,
    replace_data,
    walk_interval,
    write_scan,
)


def _image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return wave_image(shape, seed, noise=12.0)


@pytest.mark.parametrize("shape", [(112, 112), (112, 112, 3), (37, 53, 3), (1, 1)])
@pytest.mark.parametrize("quality", [30, 75, 100])
@pytest.mark.parametrize("restart", [0, 1, 7])
def test_reencode_roundtrip_is_exact(shape, quality, restart):
    data = encode_jpeg(_image(shape), quality=quality, restart_interval=restart)
    out = reencode_jpeg(data)
    assert np.array_equal(decode_jpeg(out), decode_jpeg(data))
    # libjpeg pads with 1-bits as the walker does, so even the bytes agree.
    assert out == data


@pytest.mark.parametrize("restart", [0, 5])
def test_walk_consumes_each_interval_up_to_its_padding(restart):
    data = encode_jpeg(_image((112, 112, 3)), quality=90, restart_interval=restart)
    scan = parse_scan(data)
    assert sum(iv.mcus for iv in scan.intervals) == scan.mcus
    for k, iv in enumerate(scan.intervals):
        cut = walk_interval(scan, k)
        nbits = 8 * len(iv.data)
        assert cut.kept == iv.mcus and nbits - 8 < cut.bits <= nbits
        # the padding after the last MCU is 1-bits
        tail = np.unpackbits(np.frombuffer(iv.data, np.uint8))[cut.bits :]
        assert np.all(tail == 1)


@pytest.mark.parametrize(
    "shape, cols, rows, size, blocks",
    [
        ((112, 112, 3), 7, 7, (16, 16), (0, 0, 0, 0, 1, 2)),
        ((112, 112), 14, 14, (8, 8), (0,)),
        ((37, 53, 3), 4, 3, (16, 16), (0, 0, 0, 0, 1, 2)),
    ],
)
def test_scan_geometry(shape, cols, rows, size, blocks):
    scan = parse_scan(encode_jpeg(_image(shape), quality=80, restart_interval=3))
    assert (scan.mcu_cols, scan.mcu_rows, scan.mcu_size, scan.blocks) == (cols, rows, size, blocks)
    assert (scan.height, scan.width) == shape[:2]
    assert len(scan.intervals) == -(-cols * rows // 3) and scan.restart_interval == 3
    assert [iv.first_mcu for iv in scan.intervals] == list(range(0, cols * rows, 3))
    assert [c.tq for c in scan.components] == ([0, 1, 1] if len(shape) == 3 else [0])


def test_offsets_point_at_the_unstuffed_bytes():
    data = encode_jpeg(_image((112, 112, 3)), quality=100, restart_interval=4)
    scan = parse_scan(data)
    raw = np.frombuffer(data, np.uint8)
    for iv in scan.intervals:
        assert np.array_equal(raw[iv.offsets], np.frombuffer(iv.data, np.uint8))
        assert np.all(np.diff(iv.offsets) >= 1) and iv.start <= iv.offsets[0] and iv.offsets[-1] < iv.end
    assert any(0xFF in iv.data for iv in scan.intervals)  # stuffing was exercised


@pytest.mark.parametrize("shape", [(112, 112), (112, 112, 3)])
@pytest.mark.parametrize("restart", [0, 7])
def test_all_grey_scan_decodes_to_128(shape, restart):
    data = encode_jpeg(_image(shape), quality=90, restart_interval=restart)
    scan = parse_scan(data)
    zero = Cut(0, 0, (0,) * len(scan.components))
    out = write_scan(data, scan, {k: zero for k in range(len(scan.intervals))})
    assert np.all(decode_jpeg(out) == 128)
    assert out[: scan.segment[0]] == data[: scan.segment[0]]  # headers unchanged


@pytest.mark.parametrize("keep", [1, 57, 150])
def test_grey_after_a_kept_prefix_resets_the_dc_predictor(keep):
    img = _image((112, 112))
    data = encode_jpeg(img, quality=90)
    scan = parse_scan(data)
    iv = scan.intervals[0]
    full = walk_interval(scan, 0)
    stop = int(iv.offsets[len(iv.data) * keep // scan.mcus])
    cut = walk_interval(scan, 0, stop=stop)
    assert 0 < cut.kept < scan.mcus and any(cut.preds)
    # every kept MCU ends in a byte before stop; the next one does not
    assert int(iv.offsets[(cut.bits - 1) >> 3]) < stop
    out = decode_jpeg(write_scan(data, scan, {0: cut}))
    plain = decode_jpeg(data)
    kept = np.zeros(scan.mcus, bool)
    kept[: cut.kept] = True
    mask = np.kron(kept.reshape(scan.mcu_rows, scan.mcu_cols), np.ones(scan.mcu_size, bool))
    assert np.array_equal(out[mask], plain[mask])
    assert np.all(out[~mask] == 128)
    assert full.kept == scan.mcus


def _with_byte(data: bytes, pos: int, value: int) -> bytes:
    return data[:pos] + bytes([value]) + data[pos + 1 :]


def test_out_of_scope_files_are_unsupported():
    img = _image((64, 64, 3))
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", progressive=True, quality=80)
    with pytest.raises(CodestreamError, match="unsupported"):
        parse_scan(buf.getvalue())
    data = encode_jpeg(img, quality=80)
    sof = data.index(b"\xff\xc0")
    with pytest.raises(CodestreamError, match="unsupported: arithmetic"):
        parse_scan(_with_byte(data, sof + 1, 0xC9))
    with pytest.raises(CodestreamError, match="unsupported: 12-bit"):
        parse_scan(_with_byte(data, sof + 4, 12))
    assert parse_scan(_with_byte(data, sof + 1, 0xC1)).mcus == 16  # extended sequential is in scope


def test_corrupt_plaintext_is_an_error_but_not_past_the_stop():
    data = encode_jpeg(_image((112, 112)), quality=90)
    scan = parse_scan(data)
    iv = scan.intervals[0]
    # Runs of 1-bits (0xFE avoids creating markers) are no valid sequence of codes.
    pos = int(iv.offsets[len(iv.data) // 2])
    bad = data[:pos] + b"\xfe" * 8 + data[pos + 8 :]
    broken = parse_scan(bad)
    with pytest.raises(CodestreamError, match="malformed JPEG: .* in MCU"):
        walk_interval(broken, 0)
    cut = walk_interval(broken, 0, stop=pos)
    assert 0 < cut.kept < scan.mcus
    assert cut == walk_interval(scan, 0, stop=pos)


_BASES = [
    encode_jpeg(_image((24, 40, 3), 1), quality=85, restart_interval=2),
    encode_jpeg(_image((24, 24), 2), quality=95),
    encode_jpeg(_image((16, 16, 3), 3), quality=60),
]


@st.composite
def _mutated(draw) -> bytes:
    """A valid file with a few random edits: scan or header bytes, garbage segments, cuts."""
    data = bytearray(draw(st.sampled_from(_BASES)))
    for _ in range(draw(st.integers(1, 3))):
        if len(data) < 4:
            break
        sos = data.find(b"\xff\xda")
        sos = sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big") if sos > 2 else len(data) // 2
        kind = draw(st.sampled_from(["scan", "scan", "header", "segment", "truncate", "insert", "delete"]))
        low = sos if kind == "scan" else 2
        high = sos if kind in ("header", "segment") else len(data) - 1
        pos = draw(st.integers(min(low, high), high))
        if kind in ("scan", "header"):
            data[pos] = draw(st.integers(0, 255))
        elif kind == "segment":
            body = draw(st.binary(max_size=40))
            marker = draw(st.sampled_from([0xC0, 0xC1, 0xC4, 0xDD, 0xDA, 0xDB, 0xFE]))
            data[pos:pos] = bytes((0xFF, marker)) + (len(body) + 2).to_bytes(2, "big") + body
        elif kind == "truncate":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=12))
        else:
            del data[pos : pos + draw(st.integers(1, 16))]
    return bytes(data)


@settings(max_examples=600, deadline=None, derandomize=True, database=None)
@given(_mutated(), st.integers(0, 1500))
def test_fuzz_only_codestream_errors(data, stop):
    try:
        scan = parse_scan(data)
        reencode_jpeg(data)
    except CodestreamError:
        pass
    else:
        assert len(scan.intervals) >= 1
    try:
        scan = parse_scan(data)
    except CodestreamError:
        return
    cuts = {}
    for k in range(len(scan.intervals)):
        try:
            cuts[k] = walk_interval(scan, k, stop=stop)
        except CodestreamError:
            pass
    try:
        out = write_scan(data, scan, cuts)
    except CodestreamError:
        return
    parse_scan(out)  # a rewrite is always a well-formed single-scan file


@pytest.mark.parametrize("shape", [(112, 112), (112, 112, 3)])
@pytest.mark.parametrize("offset", [0.0, 30.0])
def test_resync_finds_true_mcu_boundaries_after_encrypted_bytes(shape, offset):
    from benchmark.codecs.cipher import encrypt_jpeg, jpeg_selection
    from benchmark.codecs.jpeg_scan import _Chains, resync_tail

    plain = encode_jpeg(_image(shape), quality=90)
    protected = encrypt_jpeg(plain, bytes(range(32)), bytes(range(16)), 5.0, offset)
    scan, truth = parse_scan(protected), parse_scan(plain)
    # Every true block start of the plain scan, and the blocks from it to the end.
    chains = _Chains(truth, truth.intervals[0])
    chains.run((0, 0))
    iv = scan.intervals[0]
    hi = int(jpeg_selection(protected, 5.0, offset)[1].max())
    after = int(np.searchsorted(iv.offsets, hi))
    tail = resync_tail(scan, 0, 8 * after, 1)
    assert tail is not None and tail.start >= 8 * after
    assert chains.to_end[(tail.start, 0)] == tail.mcus * len(scan.blocks)
    assert tail.end == chains.main[-1][0] and len(tail.level) == len(scan.components)
    assert tail.mcus > scan.mcus // 2  # the scan goes on well past a 5 % window


# ---------------------------------------------------------------- coefficient fields and replacing data


def _amplitude(bits: np.ndarray, start: int, size: int) -> int:
    """The value a category-``size`` amplitude codes (JPEG F.2.2.1: leading 0 means negative)."""
    if size == 0:
        return 0
    v = int("".join(map(str, bits[start : start + size])), 2)
    return v if v >> (size - 1) else v - (1 << size) + 1


@pytest.mark.parametrize("shape", [(112, 112), (112, 112, 3)])
@pytest.mark.parametrize("restart", [0, 5])
def test_coefficient_fields_tile_the_scan(shape, restart):
    data = encode_jpeg(_image(shape), quality=90, restart_interval=restart)
    scan = parse_scan(data)
    f = coefficient_fields(scan)
    assert f.nbits == 8 * sum(len(iv.data) for iv in scan.intervals)
    assert int(f.dc.sum()) == scan.mcus * len(scan.blocks)  # one DC difference per block
    assert (~f.dc).sum() > 0 and np.all(f.size[~f.dc] >= 1) and np.all(f.size <= 11)
    # Each amplitude follows its code and ends before the next code starts.
    assert np.all(f.code < f.start) and np.all(f.start - f.code <= 16)
    assert np.all(f.start[:-1] + f.size[:-1] <= f.code[1:]) and f.start[-1] + f.size[-1] <= f.nbits


def test_coefficient_fields_of_a_flat_image_are_one_dc_step():
    scan = parse_scan(encode_jpeg(np.full((48, 64), 180, np.uint8), quality=90))
    f = coefficient_fields(scan)
    assert f.dc.all() and f.dc.size == scan.mcus  # no AC coefficient at all
    assert f.size[0] > 0 and not f.size[1:].any()  # the first block moves the predictor, the rest repeat it


def test_dc_amplitudes_give_the_block_means():
    """The DC values read from the amplitude bits are the decoded blocks' mean levels (right bits, right sign)."""
    img = _image((64, 64))
    img = (img.astype(int) // 2 + 64).astype(np.uint8)  # no clipping, so block means are exact
    data = encode_jpeg(img, quality=75)
    scan = parse_scan(data)
    f = coefficient_fields(scan)
    bits = np.unpackbits(np.frombuffer(scan.intervals[0].data, np.uint8))
    dc = np.cumsum([_amplitude(bits, s, n) for s, n in zip(f.start[f.dc], f.size[f.dc])])
    with Image.open(io.BytesIO(data)) as im:
        q = im.quantization[0][0]
    means = decode_jpeg(data).reshape(8, 8, 8, 8).mean(axis=(1, 3)).ravel()
    assert np.abs(means - (128 + dc * q / 8)).max() < 1.0


@pytest.mark.parametrize("restart", [0, 3])
def test_replace_data_restuffs_and_keeps_markers(restart):
    data = encode_jpeg(_image((48, 48, 3)), quality=100, restart_interval=restart)
    scan = parse_scan(data)
    old = b"".join(iv.data for iv in scan.intervals)
    assert replace_data(data, scan, old) == data
    rng = np.random.default_rng(1)
    new = rng.integers(0, 256, len(old), dtype=np.uint8)
    new[rng.random(len(old)) < 0.05] = 0xFF  # many FF data bytes: each must be stuffed
    out = replace_data(data, scan, new.tobytes())
    back = parse_scan(out)
    assert b"".join(iv.data for iv in back.intervals) == new.tobytes()
    assert len(back.intervals) == len(scan.intervals) and parse_jpeg(out).markers == parse_jpeg(data).markers
    assert out[: scan.segment[0]] == data[: scan.segment[0]] and out[back.segment[1] :] == data[scan.segment[1] :]
    assert len(out) - len(data) == int((new == 0xFF).sum()) - old.count(b"\xff")
    assert replace_data(out, back, old) == data
    with pytest.raises(ValueError, match="bytes"):
        replace_data(data, scan, old[:-1])


def test_replace_data_refuses_fill_before_stuffed_data():
    """``FF FF 00`` parses (a fill byte, then a stuffed FF) but a new byte in place of the FF would make a marker."""
    data = encode_jpeg(_image((48, 48)), quality=100)
    scan = parse_scan(data)
    i = data.index(b"\xff\x00", scan.segment[0])
    odd = data[:i] + b"\xff" + data[i:]
    odd_scan = parse_scan(odd)
    assert odd_scan.intervals[0].data == scan.intervals[0].data
    with pytest.raises(CodestreamError, match=rf"^unsupported: fill byte before stuffed data at byte {i} "):
        replace_data(odd, odd_scan, bytes(len(scan.intervals[0].data)))
