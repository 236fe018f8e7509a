"""Tests of benchmark.codecs.j2k: encoding, decoding, codestream parsing, packet location."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from images import declaring, random_image
from PIL import Image

from benchmark.codecs import CodestreamError, check_declared_size, declared_size
from benchmark.codecs.j2k import (
    J2KParams,
    PacketMap,
    decode_j2k,
    effective_numres,
    encode_j2k,
    locate_packets,
    parse_codestream,
)

RATIOS = (80, 40, 20, 10, 5, 1)


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    return random_image(np.random.default_rng(0), (112, 112), smooth=True)


@pytest.fixture(scope="module")
def codestream(face) -> bytes:
    return encode_j2k(face)


# --------------------------------------------------------------------------- parameters


def test_params_defaults_and_as_dict():
    p = J2KParams()
    d = p.as_dict()
    assert d == {
        "progression": "LRCP",
        "ratios": [80.0, 40.0, 20.0, 10.0, 5.0, 1.0],
        "numres": 6,
        "cbsize": [64, 64],
        "restart": False,
        "sop": True,
        "eph": True,
    }
    assert json.loads(json.dumps(d)) == d
    assert J2KParams(**d) == p  # lists from JSON/YAML give the same frozen, hashable params
    assert hash(J2KParams(**d)) == hash(p)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"progression": "XYZ"}, "progression"),
        ({"ratios": ()}, "ratios"),
        ({"ratios": (10, 20)}, "decreasing"),
        ({"ratios": (10, 10)}, "decreasing"),
        ({"ratios": (5, 0.5)}, ">= 1"),
        ({"ratios": (float("nan"),)}, ">= 1"),
        ({"numres": 0}, "numres"),
        ({"numres": 34}, "numres"),
        ({"numres": True}, "numres"),
        ({"cbsize": (64, 128)}, "cbsize"),
        ({"cbsize": (48, 48)}, "cbsize"),
        ({"cbsize": (2, 64)}, "cbsize"),
        ({"restart": 1}, "restart"),
    ],
)
def test_params_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        J2KParams(**kwargs)


@pytest.mark.parametrize("side, expected", [(112, 6), (92, 6), (32, 6), (31, 5), (16, 5), (2, 2), (1, 1)])
def test_effective_numres(side, expected):
    assert effective_numres(6, (side, 200)) == expected
    assert effective_numres(6, (200, side, 3)) == expected


# --------------------------------------------------------------------------- encode / decode


@pytest.mark.parametrize("progression", ["LRCP", "RLCP", "RPCL", "PCRL", "CPRL"])
@pytest.mark.parametrize("rgb", [False, True])
@pytest.mark.parametrize("restart", [False, True])
def test_lossless_roundtrip_and_header(progression, rgb, restart):
    rng = np.random.default_rng(1)
    img = random_image(rng, (112, 112, 3) if rgb else (112, 112), smooth=False)
    params = J2KParams(progression=progression, restart=restart)
    cs = encode_j2k(img, params)
    assert cs[:4] == b"\xff\x4f\xff\x51" and cs[-2:] == b"\xff\xd9"  # raw codestream, not JP2
    out = decode_j2k(cs)
    assert out.dtype == np.uint8 and np.array_equal(out, img)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(cs))), img)  # a second decoder agrees
    info = parse_codestream(cs)
    assert (info.width, info.height, info.components) == (112, 112, 3 if rgb else 1)
    assert (info.progression, info.layers, info.numres) == (progression, len(RATIOS), 6)
    assert info.sop and info.eph and not info.packed_headers
    assert info.cblk_style == (0x34 if restart else 0)


@pytest.mark.parametrize("shape", [(92, 112), (17, 23), (5, 7), (1, 9), (48, 64, 3)])
def test_odd_sizes_roundtrip(shape):
    img = random_image(np.random.default_rng(2), shape, smooth=True)
    cs = encode_j2k(img)
    assert np.array_equal(decode_j2k(cs), img)
    assert parse_codestream(cs).numres == effective_numres(6, shape)


def test_layers_and_lossy_ratio(face):
    one = encode_j2k(face, J2KParams(ratios=(1,)))
    assert parse_codestream(one).layers == 1 and np.array_equal(decode_j2k(one), face)
    lossy = encode_j2k(face, J2KParams(ratios=(40, 20)))
    assert len(lossy) < len(one)
    assert not np.array_equal(decode_j2k(lossy), face)
    # One layer: the progression orders differ only in the COD byte.
    a, b = (encode_j2k(face, J2KParams(ratios=(1,), progression=p)) for p in ("LRCP", "RLCP"))
    assert len(a) == len(b) and sum(x != y for x, y in zip(a, b)) <= 1


def test_encode_writes_nothing_in_cwd(tmp_path, monkeypatch, face):
    monkeypatch.chdir(tmp_path)
    encode_j2k(face)
    decode_j2k(encode_j2k(face))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "image",
    [np.zeros((8, 8), np.float32), np.zeros((8, 8, 4), np.uint8), np.zeros((8,), np.uint8), np.zeros((0, 8), np.uint8)],
)
def test_encode_rejects_bad_images(image):
    with pytest.raises(ValueError):
        encode_j2k(image)


# --------------------------------------------------------------------------- packets


def _check_packet_map(cs: bytes, pm: PacketMap, expected_packets: int) -> None:
    a = np.frombuffer(cs, np.uint8)
    assert len(pm) == expected_packets
    for arr in (pm.header_start, pm.header_end, pm.body_start, pm.body_end):
        assert arr.dtype == np.int64 and arr.shape == (expected_packets,)
    sop = pm.header_start - 6
    assert np.all(a[sop] == 0xFF) and np.all(a[sop + 1] == 0x91)
    assert np.all(a[sop + 2] == 0) and np.all(a[sop + 3] == 4)
    assert np.all(a[pm.header_end - 2] == 0xFF) and np.all(a[pm.header_end - 1] == 0x92)
    assert np.array_equal(pm.body_start, pm.header_end)
    assert np.all(pm.header_end - pm.header_start >= 3)  # at least one header byte + EPH
    # Packets tile the tile-part data without gaps: body end = next SOP.
    assert np.array_equal(pm.body_end[:-1], sop[1:])
    info = parse_codestream(cs)
    assert sop[0] == info.tile_parts[0][0] and pm.body_end[-1] == info.tile_parts[-1][1] == len(cs) - 2
    mask = pm.body_mask(len(cs))
    assert mask.dtype == bool and mask.sum() == pm.body_bytes
    assert not mask[: sop[0]].any() and not mask[-2:].any()
    # No marker inside a packet header (before EPH) or a body.
    ff = np.flatnonzero(a[:-1] == 0xFF)
    inside = mask[ff] & mask[ff + 1]
    assert np.all(a[ff[inside] + 1] <= 0x8F)


@pytest.mark.parametrize("rgb", [False, True])
@pytest.mark.parametrize("layers", [1, 3, 6])
@pytest.mark.parametrize("progression", ["LRCP", "RLCP", "RPCL"])
def test_locate_packets_counts_and_layout(rgb, layers, progression):
    img = random_image(np.random.default_rng(3), (112, 112, 3) if rgb else (112, 112), smooth=layers % 2 == 0)
    cs = encode_j2k(img, J2KParams(progression=progression, ratios=RATIOS[-layers:]))
    # One tile, one precinct per resolution: layers x resolutions x components.
    _check_packet_map(cs, locate_packets(cs), layers * 6 * (3 if rgb else 1))


def test_locate_packets_many_packets_nsop_wraps():
    # 15 layers x 6 resolutions x 3 components = 270 packets: Nsop passes 0x00FF.
    img = random_image(np.random.default_rng(4), (112, 112, 3), smooth=False)
    ratios = tuple(float(r) for r in np.geomspace(200, 1, 15))
    cs = encode_j2k(img, J2KParams(ratios=ratios))
    pm = locate_packets(cs)
    _check_packet_map(cs, pm, 270)
    assert cs[pm.header_start[255] - 2 : pm.header_start[255]] == b"\x00\xff"


@pytest.mark.parametrize("nsop", [b"\xff\x92", b"\xff\x91", b"\x91\xff", b"\xff\xff", b"\x92\xff"])
def test_locate_packets_ignores_marker_lookalikes_in_nsop(codestream, nsop):
    pm = locate_packets(codestream)
    forged = bytearray(codestream)
    for i in range(0, len(pm), 3):
        s = int(pm.header_start[i])
        forged[s - 2 : s] = nsop
        forged[s] = 0x92 if nsop[1] == 0xFF else forged[s]  # header byte after FF mimics EPH
    got = locate_packets(bytes(forged))
    for name in ("header_start", "header_end", "body_start", "body_end"):
        assert np.array_equal(getattr(got, name), getattr(pm, name))


def test_body_mask_bounds(codestream):
    pm = locate_packets(codestream)
    with pytest.raises(ValueError):
        pm.body_mask(len(codestream) - 10)
    assert pm.body_mask(len(codestream) + 5)[-5:].sum() == 0


# --------------------------------------------------------------------------- errors


def _one_line_error(fn, data: bytes, match: str | None = None) -> str:
    with pytest.raises(CodestreamError) as info:
        fn(data)
    message = str(info.value)
    assert message and "\n" not in message
    if match is not None:
        assert match in message
    return message


def test_no_sop_eph(face):
    for sop, eph in [(False, False), (True, False), (False, True)]:
        cs = encode_j2k(face, J2KParams(sop=sop, eph=eph))
        _one_line_error(locate_packets, cs, "no SOP/EPH markers")
        assert np.array_equal(decode_j2k(cs), face)  # still a valid codestream


@pytest.mark.parametrize("fn", [locate_packets, decode_j2k, parse_codestream])
def test_garbage_and_empty(fn):
    for data in [b"", b"\xff", b"\xff\x4f", b"garbage" * 50, bytes(1000), b"\xff\x4f\xff\x51" + bytes(60)]:
        _one_line_error(fn, data)
    with pytest.raises(TypeError):
        fn("not bytes")


def test_truncation_everywhere(codestream):
    # Every cut point in the headers and a spread over the data.
    n = len(codestream)
    cuts = sorted(set(range(0, 400)) | set(np.linspace(400, n - 1, 60).astype(int).tolist()))
    for cut in cuts:
        for fn in (locate_packets, decode_j2k):
            _one_line_error(fn, codestream[:cut])


def test_trailing_bytes_and_bad_psot(codestream):
    _one_line_error(locate_packets, codestream + b"\x00", "EOC")
    info = parse_codestream(codestream)
    sot = info.tile_parts[0][0]
    # find the SOT before the first tile-part's data and push Psot past the end
    sot = codestream.rfind(b"\xff\x90", 0, sot)
    forged = bytearray(codestream)
    struct.pack_into(">I", forged, sot + 6, len(codestream) * 2)
    _one_line_error(locate_packets, bytes(forged), "tile-part")
    _one_line_error(decode_j2k, bytes(forged), "tile-part")


def test_decode_rejects_unsupported_siz(codestream):
    forged = bytearray(codestream)
    forged[42] = 0x0B  # Ssiz of component 0: 12-bit
    _one_line_error(decode_j2k, bytes(forged), "8-bit")
    forged = bytearray(codestream)
    struct.pack_into(">II", forged, 8, 100_000, 112)  # Xsiz, Ysiz
    _one_line_error(decode_j2k, bytes(forged), "too large")


def test_marker_inside_packet_data_rejected(codestream):
    pm = locate_packets(codestream)
    forged = bytearray(codestream)
    mid = int((pm.body_start[5] + pm.body_end[5]) // 2)
    forged[mid : mid + 2] = b"\xff\x93"
    _one_line_error(locate_packets, bytes(forged), "unexpected marker")


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(data=st.binary(max_size=400))
def test_random_bytes_never_crash(data):
    for candidate in (data, b"\xff\x4f\xff\x51" + data, b"\xff\x4f\xff\x51" + data + b"\xff\xd9"):
        try:
            locate_packets(candidate)
        except CodestreamError as exc:
            assert "\n" not in str(exc)


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6),
    cut=st.one_of(st.none(), st.integers(0, 10**6)),
)
def test_mutated_codestreams_locate_never_crash(codestream, edits, cut):
    data = bytearray(codestream)
    for pos, value in edits:
        data[pos % len(data)] = value
    if cut is not None:
        data = data[: cut % len(data)]
    try:
        pm = locate_packets(bytes(data))
    except CodestreamError as exc:
        assert "\n" not in str(exc)
    else:
        assert np.all(pm.body_end <= len(data)) and np.all(pm.header_start < pm.header_end)


# --------------------------------------------------------------------------- fuzz (subprocess)

# Runs in a child process so that a crash in OpenJPEG (a C library) fails the
# test instead of killing pytest; the child prints the case it is on, so a
# crash or a hang names the input.
_FUZZ_CHILD = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    from benchmark.codecs import CodestreamError, check_declared_size, declared_size
    from benchmark.codecs.j2k import J2KParams, encode_j2k, decode_j2k, locate_packets, parse_codestream
    from benchmark.codecs.cipher import decrypt_j2k

    seed, count = int(sys.argv[1]), int(sys.argv[2])
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:112, :112]
    smooth = (128 + 60 * np.sin(xx / 7) + 50 * np.cos(yy / 11)).astype(np.uint8)
    bases = [
        encode_j2k(smooth, J2KParams()),
        encode_j2k(rng.integers(0, 256, (112, 112, 3), dtype=np.uint8), J2KParams(progression="RLCP", restart=True)),
        encode_j2k(np.dstack([smooth] * 3), J2KParams(progression="RPCL", ratios=(20, 5, 1))),
        encode_j2k(rng.integers(0, 256, (64, 48), dtype=np.uint8), J2KParams(ratios=(1,), restart=True)),
    ]
    maps = [locate_packets(b) for b in bases]
    mains = [parse_codestream(b).tile_parts[0][0] for b in bases]

    def mutate(i):
        b, pm, main_end = bases[i % len(bases)], maps[i % len(bases)], mains[i % len(bases)]
        a, n, kind = bytearray(b), len(b), i % 7
        if kind == 0:    # random bytes anywhere
            for p in rng.integers(0, n, rng.integers(1, 9)): a[p] = int(rng.integers(0, 256))
        elif kind == 1:  # main header bytes and bits (SIZ, COD, QCD, SOT)
            for p in rng.integers(0, main_end, rng.integers(1, 4)): a[p] ^= 1 << int(rng.integers(0, 8))
        elif kind == 2:  # truncation
            a = a[: int(rng.integers(0, n))]
        elif kind == 3:  # insertion
            p = int(rng.integers(0, n)); a[p:p] = rng.integers(0, 256, rng.integers(1, 17), dtype=np.uint8).tobytes()
        elif kind == 4:  # deletion
            p = int(rng.integers(0, n)); del a[p : p + int(rng.integers(1, 64))]
        elif kind == 5:  # packet header bytes (code-block lengths, inclusion...)
            k = int(rng.integers(0, len(pm)))
            lo, hi = int(pm.header_start[k]), int(pm.header_end[k]) - 2
            for p in rng.integers(lo, max(lo + 1, hi), rng.integers(1, 4)): a[p] = int(rng.integers(0, 256))
        else:            # body bytes (what the cipher changes), incl. FF
            body = np.flatnonzero(pm.body_mask(n))
            for p in rng.choice(body, int(rng.integers(1, 9))):
                a[p] = 0xFF if rng.random() < 0.5 else int(rng.integers(0, 256))
        return bytes(a)

    key, nonce = bytes(range(32)), bytes(16)
    errors, max_s, stats = [], 0.0, {"located": 0, "decoded": 0}
    for i in range(count):
        data = mutate(i)
        print(f"case {i}", file=sys.stderr, flush=True)
        start = time.perf_counter()
        plain = None
        steps = [("locate", lambda: locate_packets(data)), ("decrypt", lambda: decrypt_j2k(data, key, nonce, 100, 0)),
                 ("decode", lambda: decode_j2k(data))]
        for name, fn in steps:
            try:
                result = fn()
                if name == "locate":
                    stats["located"] += 1
                elif name == "decode":
                    stats["decoded"] += 1
                else:
                    plain = result
            except CodestreamError as exc:
                if "\\n" in str(exc):
                    errors.append([i, name, "multi-line message"])
            except Exception as exc:
                errors.append([i, name, f"{type(exc).__name__}: {exc}"[:200]])
        if plain is not None:
            try:
                decode_j2k(plain)
            except CodestreamError:
                pass
            except Exception as exc:
                errors.append([i, "decode decrypted", f"{type(exc).__name__}: {exc}"[:200]])
        max_s = max(max_s, time.perf_counter() - start)
    print(json.dumps({"cases": count, "errors": errors, "max_case_s": max_s, **stats}))
    """
)

# Generous bounds: a hang, not a slow machine, should trip them.
_FUZZ_CASE_LIMIT_S = 10.0
_FUZZ_TOTAL_LIMIT_S = 300


def _run_fuzz(seed: int, count: int) -> dict:
    env = dict(os.environ, PYTHONFAULTHANDLER="1")
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _FUZZ_CHILD, str(seed), str(count)],
            capture_output=True,
            text=True,
            timeout=_FUZZ_TOTAL_LIMIT_S,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr or b""
        last = (err.decode(errors="replace") if isinstance(err, bytes) else err).strip().splitlines()[-1:]
        pytest.fail(f"fuzz child hung (> {_FUZZ_TOTAL_LIMIT_S} s), last: {last}")
    last = proc.stderr.strip().splitlines()[-3:]
    assert proc.returncode == 0, f"fuzz child died with {proc.returncode} (crash?) at: {last}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_fuzz_mutated_codestreams_no_crash_no_hang():
    report = _run_fuzz(seed=2021, count=500)
    assert report["cases"] == 500
    assert report["errors"] == []
    assert report["max_case_s"] < _FUZZ_CASE_LIMIT_S
    # The mutations must reach the decoder, not only the parser's rejections.
    assert report["decoded"] > 0 and report["located"] > 0


@pytest.mark.slow
def test_fuzz_mutated_codestreams_many():
    report = _run_fuzz(seed=7, count=5000)
    assert report["errors"] == [] and report["max_case_s"] < _FUZZ_CASE_LIMIT_S


def test_a_siz_declaring_a_huge_image_is_refused_from_the_header(codestream, monkeypatch):
    import benchmark.codecs.j2k as j2k

    big = declaring(codestream, 8000, 8000)
    assert declared_size(codestream) == (112, 112) and declared_size(big) == (8000, 8000)
    monkeypatch.setattr(j2k, "import_glymur", lambda: pytest.fail("the codestream was decoded"))
    check_declared_size(codestream, (112, 112))
    with pytest.raises(CodestreamError) as info:
        check_declared_size(big, (112, 112))
    assert str(info.value) == "the header declares 8000x8000 pixels, not 112x112: refused before decoding"
