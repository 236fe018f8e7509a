"""Tests for the tier-2 packet header parser and re-encoder."""

from __future__ import annotations

import itertools
import os
import tempfile

import numpy as np
import pytest

from benchmark.codecs import CodestreamError
from benchmark.codecs.j2k import PROGRESSION_ORDERS, J2KParams, decode_j2k, encode_j2k, locate_packets
from benchmark.codecs.jp2lib import import_glymur
from benchmark.codecs.tier2 import _BitReader, _BitWriter, _TagTree, parse_tier2, write_tier2

_PROGRESSIONS = PROGRESSION_ORDERS
_RATIOS = (80, 40, 20, 10, 5, 1)


def _image(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """A smooth gradient with texture: every sub-band gets data."""
    rng = np.random.default_rng(seed)
    h, w = shape[:2]
    base = np.add.outer(np.linspace(0, 150, h), np.linspace(0, 80, w))
    img = base[..., None] + rng.normal(0, 20, shape if len(shape) == 3 else shape + (1,))
    img = np.clip(img, 0, 255).astype(np.uint8)
    return img if len(shape) == 3 else img[..., 0]


def _cases():
    """240 codestreams: grey/RGB x 1-6 layers x 5 progressions x RESTART x two geometries."""
    geometries = [((112, 112), (64, 64)), ((37, 53), (16, 32))]
    for k, (rgb, layers, prog, restart, geo) in enumerate(
        itertools.product((False, True), range(1, 7), _PROGRESSIONS, (False, True), geometries)
    ):
        (h, w), cb = geo
        shape = (h, w, 3) if rgb else (h, w)
        params = J2KParams(progression=prog, ratios=_RATIOS[-layers:], restart=restart, cbsize=cb)
        yield k, shape, params


@pytest.fixture(scope="module")
def streams():
    return [(params, encode_j2k(_image(k, shape), params)) for k, shape, params in _cases()]


def test_round_trip_is_byte_identical_and_bodies_match_the_markers(streams):
    assert len(streams) >= 200
    for params, cs in streams:
        t2 = parse_tier2(cs)
        assert t2.restart == params.restart and t2.info.progression == params.progression
        packets = locate_packets(cs)
        np.testing.assert_array_equal([p.body_start for p in t2.packets], packets.body_start)
        np.testing.assert_array_equal([p.body_end for p in t2.packets], packets.body_end)
        for p in t2.packets:
            assert sum(c.length for c in p.contributions) == p.body_end - p.body_start
            if params.restart:
                assert all(len(c.lengths) == c.passes for c in p.contributions)
        assert write_tier2(t2, cs) == cs, params


def test_packet_order_follows_the_progression(streams):
    for params, cs in streams[:40]:
        keys = [(p.layer, p.resolution, p.component) for p in parse_tier2(cs).packets]
        sort_key = {
            "LRCP": lambda k: (k[0], k[1], k[2]),
            "RLCP": lambda k: (k[1], k[0], k[2]),
            "RPCL": lambda k: (k[1], k[2], k[0]),
            "PCRL": lambda k: (k[2], k[1], k[0]),
            "CPRL": lambda k: (k[2], k[1], k[0]),
        }[params.progression]
        assert keys == sorted(keys, key=sort_key)
        assert len(set(keys)) == len(keys)


def test_dropping_last_layers_gives_a_valid_codestream_that_decodes_like_fewer_layers():
    img = _image(7, (112, 112))
    cs = encode_j2k(img, J2KParams(ratios=(40, 10, 1)))
    t2 = parse_tier2(cs).copy()
    for p in t2.packets:
        if p.layer >= 1:
            p.contributions, p.empty = [], True
    out = write_tier2(t2, cs)
    again = parse_tier2(out)
    assert len(again.packets) == len(t2.packets)
    assert all(not p.contributions for p in again.packets if p.layer >= 1)
    # The first layer alone: about the 40:1 quality, far from lossless and far from noise.
    dec = decode_j2k(out).astype(float)
    mse = np.mean((dec - img) ** 2)
    assert 0 < mse < np.mean((img - img.mean()) ** 2)


def test_codestream_without_sop_eph_round_trips():
    img = _image(3, (40, 40, 3))
    cs = encode_j2k(img, J2KParams(sop=False, eph=False, ratios=(20, 1)))
    t2 = parse_tier2(cs)
    assert not t2.sop and not t2.eph
    assert write_tier2(t2, cs) == cs


def _glymur_stream(**kwargs) -> bytes:
    glymur = import_glymur()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "x.j2k")
        glymur.Jp2k(path, data=_image(1, (64, 64)), irreversible=False, numres=4, **kwargs)
        with open(path, "rb") as fh:
            return fh.read()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"modesw": 1, "sop": True, "eph": True},  # BYPASS
        {"tilesize": (32, 32), "sop": True, "eph": True},  # four tiles
        {"psizes": [(16, 16)], "cbsize": (8, 8), "sop": True, "eph": True},  # several precincts per resolution
    ],
)
def test_out_of_scope_codestreams_are_refused_as_unsupported(kwargs):
    with pytest.raises(CodestreamError, match="unsupported"):
        parse_tier2(_glymur_stream(**kwargs))


def test_bit_stuffing_round_trips_through_ff_bytes():
    rng = np.random.default_rng(0)
    for _ in range(50):
        bits = (rng.random(int(rng.integers(1, 200))) < 0.9).astype(int)  # many FF bytes
        w = _BitWriter()
        for b in bits:
            w.bit(int(b))
        raw = w.flush()
        assert all(raw[i + 1] < 0x80 for i in range(len(raw) - 1) if raw[i] == 0xFF)
        assert raw[-1] != 0xFF
        r = _BitReader(raw, 0, len(raw))
        assert [r.bit() for _ in bits] == bits.tolist()
        assert r.align() == len(raw)


def test_tag_tree_decodes_what_it_encodes():
    rng = np.random.default_rng(1)
    for w, h in [(1, 1), (3, 2), (5, 7)]:
        values = rng.integers(0, 6, w * h).tolist()
        enc, wr = _TagTree.for_encoding(w, h, values), _BitWriter()
        for t in range(1, 8):  # thresholds as in successive layers
            for i in range(w * h):
                enc.encode(wr, i % w, i // w, t)
        raw = wr.flush()
        dec, rd = _TagTree(w, h), _BitReader(raw, 0, len(raw))
        below = [[dec.decode(rd, i % w, i // w, t) for i in range(w * h)] for t in range(1, 8)]
        assert below == [[v < t for v in values] for t in range(1, 8)]


def test_garbage_headers_raise_codestream_error_only(streams):
    """500 corrupted codestreams: parse (and re-encode) or CodestreamError, nothing else."""
    rng = np.random.default_rng(2024)
    sources = [cs for params, cs in streams if params.ratios[-1] == 1][:24]
    outcomes = {"parsed": 0, "refused": 0}
    for case in range(500):
        cs = bytearray(sources[case % len(sources)])
        packets = locate_packets(bytes(cs))
        kind = case % 4
        if kind == 0:  # random bytes inside packet headers (EPH kept)
            for _ in range(int(rng.integers(1, 4))):
                j = int(rng.integers(len(packets)))
                lo, hi = int(packets.header_start[j]), int(packets.header_end[j]) - 2
                if hi > lo:
                    cs[int(rng.integers(lo, hi))] = int(rng.integers(256))
        elif kind == 1:  # flipped bits anywhere in the tile data
            first = int(packets.header_start[0])
            for _ in range(int(rng.integers(1, 6))):
                cs[int(rng.integers(first, len(cs) - 2))] ^= 1 << int(rng.integers(8))
        elif kind == 2:  # a header overwritten with FF/7F runs (stuffing, long comma codes)
            j = int(rng.integers(len(packets)))
            lo, hi = int(packets.header_start[j]), int(packets.header_end[j]) - 2
            cs[lo:hi] = bytes(rng.choice([0xFF, 0x7F], hi - lo).tolist())
        else:  # truncated tile data with the EOC kept
            cut = int(rng.integers(int(packets.header_start[0]), len(cs) - 2))
            cs = cs[:cut] + b"\xff\xd9"
        try:
            t2 = parse_tier2(bytes(cs))
            write_tier2(t2, bytes(cs))
            outcomes["parsed"] += 1
        except CodestreamError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0 and sum(outcomes.values()) == 500
