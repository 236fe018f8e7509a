"""Tests of benchmark.codecs.jpeg: Pillow baseline JPEG, marker parsing, entropy-coded segments."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from images import declaring, wave_image
from PIL import Image

from benchmark.codecs import CodestreamError, check_declared_size, declared_size
from benchmark.codecs.cipher import decrypt_jpeg
from benchmark.codecs.jpeg import decode_jpeg, encode_jpeg, entropy_segments, parse_jpeg


def _smooth(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return wave_image(shape, seed, noise=3.0)


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    return encode_jpeg(_smooth((112, 112)), quality=90, restart_interval=4)


@pytest.mark.parametrize("shape", [(112, 112), (112, 112, 3), (37, 53), (1, 1)])
def test_encode_decode_roundtrip_close(shape):
    img = _smooth(shape)
    data = encode_jpeg(img, quality=95)
    out = decode_jpeg(data)
    assert out.dtype == np.uint8 and out.shape == img.shape
    # lossy but close (a mean error bound, not bit-exactness)
    assert np.abs(out.astype(int) - img.astype(int)).mean() < 8
    layout = parse_jpeg(data)
    assert (layout.height, layout.width, layout.components) == (shape[0], shape[1], 3 if len(shape) == 3 else 1)
    assert 0xC0 in layout.markers  # baseline sequential frame


def test_quality_changes_size():
    img = _smooth((112, 112))
    assert len(encode_jpeg(img, quality=30)) < len(encode_jpeg(img, quality=90))


@pytest.mark.parametrize("restart", [0, 1, 3, 7])
def test_entropy_segments_and_restart_markers(restart):
    data = encode_jpeg(_smooth((112, 112, 3)), quality=90, restart_interval=restart)
    layout = parse_jpeg(data)
    segments = entropy_segments(data)
    assert len(segments) == 1 and list(layout.segments) == segments
    start, end = segments[0]
    sos = data.rfind(b"\xff\xda", 0, start)
    assert start == sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")  # right after the SOS header
    assert data[end : end + 2] == b"\xff\xd9" and end + 2 == len(data)  # up to EOI
    ecs = np.frombuffer(data[start:end], np.uint8)
    after = ecs[np.flatnonzero(ecs[:-1] == 0xFF) + 1]
    assert np.all((after == 0x00) | ((after >= 0xD0) & (after <= 0xD7)))  # only stuffing and RSTn
    rst = int(np.sum((after >= 0xD0) & (after <= 0xD7)))
    mcus = 7 * 7  # 112x112 with 4:2:0 subsampling: 16x16 MCUs
    if restart:
        assert 0xDD in layout.markers
        assert rst == (mcus - 1) // restart
    else:
        assert 0xDD not in layout.markers and rst == 0


def test_progressive_jpeg_has_one_segment_per_scan():
    buf = io.BytesIO()
    Image.fromarray(_smooth((64, 64, 3))).save(buf, format="JPEG", progressive=True, quality=80)
    data = buf.getvalue()
    segments = entropy_segments(data)
    assert len(segments) == data.count(b"\xff\xda") > 1
    assert all(a < b for a, b in segments) and all(b1 <= a2 for (_, b1), (a2, _) in zip(segments, segments[1:]))
    assert decode_jpeg(data).shape == (64, 64, 3)


def test_fill_bytes_before_markers_are_allowed(jpeg):
    # FF fill bytes may precede any marker (ITU T.81 B.1.1.2).
    soi, rest = jpeg[:2], jpeg[2:]
    padded = soi + b"\xff\xff\xff" + rest[:-2] + b"\xff\xff" + rest[-2:]
    assert len(entropy_segments(padded)) == 1
    assert parse_jpeg(padded).markers == parse_jpeg(jpeg).markers


@pytest.mark.parametrize(
    "kwargs",
    [{"quality": 0}, {"quality": 101}, {"quality": 9.5}, {"restart_interval": -1}, {"restart_interval": 70000}],
)
def test_encode_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        encode_jpeg(_smooth((16, 16)), **kwargs)


def test_encode_rejects_bad_images():
    for img in (np.zeros((8, 8), np.uint16), np.zeros((8, 8, 2), np.uint8), np.zeros((0, 4), np.uint8)):
        with pytest.raises(ValueError):
            encode_jpeg(img)


def _one_line(fn, data: bytes) -> None:
    with pytest.raises(CodestreamError) as info:
        fn(data)
    assert str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("fn", [entropy_segments, decode_jpeg])
def test_malformed_inputs(fn, jpeg):
    sos = jpeg.find(b"\xff\xda")
    sof = jpeg.find(b"\xff\xc0")
    cases = [
        b"",
        b"\xff\xd8",
        b"garbage" * 20,
        jpeg[:-2],  # no EOI
        jpeg[: len(jpeg) // 2],
        jpeg[:sos] + b"\xff\xd9",  # no scan
        jpeg[:sof] + jpeg[sof + 2 + int.from_bytes(jpeg[sof + 2 : sof + 4], "big") :],  # scan without frame
        jpeg[:2] + b"\xff\xd0" + jpeg[2:],  # RST outside a scan
        jpeg[:2] + b"\xff\xe0\x00\x01" + jpeg[2:],  # length < 2
    ]
    for data in cases:
        _one_line(fn, data)
    with pytest.raises(TypeError):
        fn("not bytes")


def test_decode_rejects_huge_frame(jpeg):
    sof = jpeg.find(b"\xff\xc0")
    forged = bytearray(jpeg)
    forged[sof + 5 : sof + 9] = (20000).to_bytes(2, "big") + (20000).to_bytes(2, "big")
    _one_line(decode_jpeg, bytes(forged))


def test_decode_writes_nothing_in_cwd(tmp_path, monkeypatch, jpeg):
    monkeypatch.chdir(tmp_path)
    decode_jpeg(jpeg)
    encode_jpeg(_smooth((16, 16)))
    assert list(tmp_path.iterdir()) == []


@settings(
    max_examples=500,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6),
    insert=st.one_of(st.none(), st.tuples(st.integers(0, 10**6), st.binary(min_size=1, max_size=8))),
    cut=st.one_of(st.none(), st.integers(0, 10**6)),
)
def test_fuzz_mutated_jpegs(jpeg, edits, insert, cut):
    # libjpeg is robust to corrupt data, so this runs in-process.
    data = bytearray(jpeg)
    for pos, value in edits:
        data[pos % len(data)] = value
    if insert is not None:
        pos = insert[0] % len(data)
        data[pos:pos] = insert[1]
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    data = bytes(data)
    for fn in (entropy_segments, decode_jpeg, lambda d: decrypt_jpeg(d, bytes(16), bytes(16), 100, 0)):
        try:
            fn(data)
        except CodestreamError as exc:
            assert "\n" not in str(exc)


def test_a_sof_declaring_a_huge_image_is_refused_from_the_header(monkeypatch):
    data = encode_jpeg(wave_image((112, 112)))
    big = declaring(data, 8000, 8000)
    assert declared_size(data) == (112, 112) and declared_size(big) == (8000, 8000)
    monkeypatch.setattr(Image, "open", lambda *a, **k: pytest.fail("the file was decoded"))
    check_declared_size(data, (112, 112))
    with pytest.raises(CodestreamError, match="declares 8000x8000 pixels, not 112x112: refused before decoding"):
        check_declared_size(big, (112, 112))
    with pytest.raises(CodestreamError, match="neither a JPEG 2000 codestream nor a JPEG file"):
        declared_size(b"GIF89a")
