"""JPEG 2000 tier-2: packet header parsing and re-encoding (ISO/IEC 15444-1 Annex B.10).

:func:`parse_tier2` decodes every packet header of a codestream: for each
packet (layer, resolution, component, precinct) and each code-block of its
precinct, whether the code-block is included, how many coding passes it
adds, the codeword segment lengths and where its bytes lie in the packet
body. :func:`write_tier2` writes the packets back (headers re-encoded from
the, possibly edited, :class:`Tier2`; bodies copied from the source
codestream) and fixes the tile-part length, so code-block contributions can
be left out while the codestream stays valid.

Header coding follows the standard (and OpenJPEG bit for bit): bit-stuffing
after an FF byte (the next byte carries 7 bits), tag trees for inclusion and
zero bit-planes, the codeword for the number of passes, Lblock increments in
comma code, one length per codeword segment (one per pass with RESTART,
code-block style 0x04; ERTERM and SEGMARK do not touch tier 2), empty
packets (first bit 0), SOP and EPH. Re-encoding an unchanged parse gives
byte-identical packets, as OpenJPEG writes them.

Scope: one tile in one tile-part, one precinct per resolution (the default
maximal precincts, or user precincts at least as large), progressions LRCP,
RLCP, RPCL, PCRL and CPRL, no COC/POC/PPM/PPT/PLT/TLM/PLM segments, no
BYPASS or HT code-block styles. Anything else raises
``CodestreamError("unsupported: ...")``. Input is untrusted: malformed
headers raise :class:`CodestreamError` and every loop is bounded by the data.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace

from benchmark.codecs import MAX_SIDE, CodestreamError
from benchmark.codecs.j2k import CodestreamInfo, _as_bytes, _segment, parse_codestream

__all__ = [
    "Contribution",
    "Packet",
    "BandGrid",
    "Tier2",
    "parse_tier2",
    "write_tier2",
    "packet_order",
]

_SOT, _SOD, _SOP, _EPH = 0xFF90, 0xFF93, 0xFF91, 0xFF92
_COD, _COC, _POC, _TLM, _PLM, _PLT, _PPM, _PPT = 0xFF52, 0xFF53, 0xFF5F, 0xFF55, 0xFF57, 0xFF58, 0xFF60, 0xFF61
_UNSUPPORTED_MAIN = {_COC: "COC", _POC: "POC", _TLM: "TLM", _PLM: "PLM", _PPM: "PPM"}
# Markers a tile-part header may hold without changing tier 2 (QCD/QCC/RGN/COM).
_TILE_HEADER_OK = {0xFF5C, 0xFF5D, 0xFF5E, 0xFF64}

_STYLE_BYPASS, _STYLE_RESTART = 0x01, 0x04
_STYLE_HT = 0xC0  # Part-15 high-throughput / mixed modes
# OpenJPEG's cap on passes in one codeword segment without RESTART/BYPASS.
_MAX_SEGMENT_PASSES = 109
_MAX_LENGTH_BITS = 32  # OpenJPEG refuses longer length fields
_MAX_ZERO_BITPLANES = 74  # a 38-bit component with 31 guard bits + 5 levels, with room
_UNKNOWN = 1 << 30  # tag-tree value not (yet) known / never included
# Bounds that keep a forged SIZ/COD from costing memory or time before the
# data runs out: faces have a few dozen code-blocks.
_MAX_CODEBLOCKS = 1 << 18


# --------------------------------------------------------------------------- data model


@dataclass(frozen=True)
class Contribution:
    """What one packet adds to one code-block.

    Attributes:
        band: Sub-band index within the resolution (0 = LL at resolution 0,
            else 0 = HL, 1 = LH, 2 = HH).
        block: Code-block index within the band, raster order.
        passes: Coding passes added (> 0: the code-block is included).
        lengths: Byte length of each codeword segment (one per pass with
            RESTART, else usually one per contribution).
        start: Absolute offset of the contribution's first body byte in the
            parsed codestream (the bytes that :func:`write_tier2` copies).
    """

    band: int
    block: int
    passes: int
    lengths: tuple[int, ...]
    start: int

    @property
    def length(self) -> int:
        """Total bytes of the contribution."""
        return int(sum(self.lengths))

    @property
    def end(self) -> int:
        """One past the last body byte."""
        return self.start + self.length


@dataclass
class Packet:
    """One packet and the code-block contributions it carries (header order).

    Offsets are absolute and half-open; ``header_start`` is after the SOP
    segment, ``header_end`` after EPH (when present), the body runs
    ``[body_start, body_end)``. ``empty`` is the header's first bit being 0;
    a packet that is not empty may still include no code-block (OpenJPEG
    writes those), which :func:`write_tier2` reproduces.
    """

    layer: int
    resolution: int
    component: int
    precinct: int
    header_start: int
    header_end: int
    body_start: int
    body_end: int
    contributions: list[Contribution] = field(default_factory=list)
    empty: bool = False


@dataclass(frozen=True)
class BandGrid:
    """Code-block grid of one sub-band of one resolution of one component."""

    component: int
    resolution: int
    band: int
    width: int  # code-blocks across
    height: int  # code-blocks down

    @property
    def count(self) -> int:
        return self.width * self.height


@dataclass
class Tier2:
    """A parsed single-tile codestream: packets and per code-block state.

    Attributes:
        info: Main-header facts (:func:`~benchmark.codecs.j2k.parse_codestream`).
        restart: Code-block style RESTART (one length per pass).
        sop: SOP marker segments precede the packets.
        eph: EPH markers end the packet headers.
        sot: Offset of the SOT marker of the tile-part.
        data_start: First byte after SOD.
        data_end: One past the tile-part's last byte.
        grids: (component, resolution) -> the :class:`BandGrid` of each band.
        zero_bitplanes: (component, resolution, band) -> decoded tag tree
            node values per level (leaves first), ``2**30`` where unknown;
            the leaves are the zero bit-planes of the included code-blocks.
        packets: Every packet in codestream order.
    """

    info: CodestreamInfo
    restart: bool
    sop: bool
    eph: bool
    sot: int
    data_start: int
    data_end: int
    grids: dict[tuple[int, int], list[BandGrid]]
    zero_bitplanes: dict[tuple[int, int, int], list[list[int]]]
    packets: list[Packet]

    def copy(self) -> Tier2:
        """A copy whose packet list and contribution lists can be edited."""
        packets = [replace(p, contributions=list(p.contributions)) for p in self.packets]
        return replace(self, packets=packets)


# --------------------------------------------------------------------------- bit I/O


class _BitReader:
    """Packet-header bits (B.10.1): after an FF byte only the 7 low bits count."""

    __slots__ = ("data", "pos", "end", "last", "ct")

    def __init__(self, data: bytes, pos: int, end: int):
        self.data, self.pos, self.end = data, pos, end
        self.last, self.ct = 0, 0

    def bit(self) -> int:
        if self.ct == 0:
            if self.pos >= self.end:
                raise CodestreamError(f"malformed JPEG 2000 packet header: runs past byte {self.end}")
            stuffed = self.last == 0xFF
            self.last = self.data[self.pos]
            if stuffed and self.last >= 0x80:
                raise CodestreamError(
                    f"malformed JPEG 2000 packet header: byte 0x{self.last:02X} after FF at byte {self.pos}"
                )
            self.pos += 1
            self.ct = 7 if stuffed else 8
        self.ct -= 1
        return (self.last >> self.ct) & 1

    def bits(self, n: int) -> int:
        v = 0
        for _ in range(n):
            v = (v << 1) | self.bit()
        return v

    def align(self) -> int:
        """Skip to the byte boundary (and the stuffed byte after a final FF); the new position."""
        if self.last == 0xFF:
            if self.pos >= self.end:
                raise CodestreamError(f"malformed JPEG 2000 packet header: runs past byte {self.end}")
            self.pos += 1
        self.ct, self.last = 0, 0
        return self.pos


class _BitWriter:
    """Inverse of :class:`_BitReader`, byte for byte as OpenJPEG's ``opj_bio``."""

    __slots__ = ("out", "buf", "ct")

    def __init__(self) -> None:
        self.out = bytearray()
        self.buf, self.ct = 0, 8

    def _byteout(self) -> None:
        self.buf = (self.buf << 8) & 0xFFFF
        self.ct = 7 if self.buf == 0xFF00 else 8
        self.out.append(self.buf >> 8)

    def bit(self, b: int) -> None:
        if self.ct == 0:
            self._byteout()
        self.ct -= 1
        self.buf |= (b & 1) << self.ct

    def bits(self, value: int, n: int) -> None:
        for k in range(n - 1, -1, -1):
            self.bit(value >> k)

    def flush(self) -> bytes:
        self._byteout()
        if self.ct == 7:  # the last byte was FF: a zero byte follows
            self._byteout()
        return bytes(self.out)


def _floorlog2(n: int) -> int:
    return max(int(n), 1).bit_length() - 1


def _put_numpasses(w: _BitWriter, n: int) -> None:
    # Table B.4.
    if n == 1:
        w.bit(0)
    elif n == 2:
        w.bits(0b10, 2)
    elif n <= 5:
        w.bits(0b1100 | (n - 3), 4)
    elif n <= 36:
        w.bits(0x1E0 | (n - 6), 9)
    elif n <= 164:
        w.bits(0xFF80 | (n - 37), 16)
    else:
        raise CodestreamError(f"unsupported: {n} coding passes in one packet (at most 164)")


def _get_numpasses(r: _BitReader) -> int:
    if not r.bit():
        return 1
    if not r.bit():
        return 2
    n = r.bits(2)
    if n != 3:
        return 3 + n
    n = r.bits(5)
    if n != 31:
        return 6 + n
    return 37 + r.bits(7)


# --------------------------------------------------------------------------- tag trees


def _tree_shapes(width: int, height: int) -> list[tuple[int, int]]:
    """(width, height) of each tag-tree level, leaves first, down to a single root."""
    shapes = [(width, height)]
    while width * height > 1:
        width, height = (width + 1) // 2, (height + 1) // 2
        shapes.append((width, height))
    return shapes


class _TagTree:
    """Tag tree (B.10.2) with OpenJPEG's decode/encode state (value, low, known per node)."""

    __slots__ = ("shapes", "value", "low", "known")

    def __init__(self, width: int, height: int, levels: list[list[int]] | None = None):
        self.shapes = _tree_shapes(width, height)
        if levels is None:
            self.value = [[_UNKNOWN] * (w * h) for w, h in self.shapes]
        else:
            self.value = [list(v) for v in levels]
        self.low = [[0] * (w * h) for w, h in self.shapes]
        self.known = [[False] * (w * h) for w, h in self.shapes]

    @classmethod
    def for_encoding(
        cls, width: int, height: int, leaves: list[int], pinned: list[list[int]] | None = None
    ) -> _TagTree:
        """A tree whose inner nodes hold the minimum of their leaves.

        ``pinned`` (node values decoded from the source, ``_UNKNOWN`` where
        not decoded) lowers nodes whose minimum involves leaves that are
        unknown here, so that an unchanged tree re-encodes bit for bit.
        """
        tree = cls(width, height)
        tree.value[0] = list(leaves)
        for k in range(1, len(tree.shapes)):
            cw, _ = tree.shapes[k - 1]
            w, h = tree.shapes[k]
            below, cur = tree.value[k - 1], [_UNKNOWN] * (w * h)
            ch = len(below) // cw if cw else 0
            for y in range(ch):
                for x in range(cw):
                    i = (y >> 1) * w + (x >> 1)
                    cur[i] = min(cur[i], below[y * cw + x])
            tree.value[k] = cur
        if pinned is not None:
            tree.value = [[min(a, b) for a, b in zip(lv, pv)] for lv, pv in zip(tree.value, pinned)]
        return tree

    def _path(self, leaf_x: int, leaf_y: int) -> list[tuple[int, int]]:
        """(level, index) from the root down to the leaf."""
        return [(k, (leaf_y >> k) * self.shapes[k][0] + (leaf_x >> k)) for k in range(len(self.shapes) - 1, -1, -1)]

    def decode(self, r: _BitReader, x: int, y: int, threshold: int) -> bool:
        """Whether the leaf's value is below ``threshold``, reading the bits needed."""
        low = 0
        v = _UNKNOWN
        for k, i in self._path(x, y):
            if low > self.low[k][i]:
                self.low[k][i] = low
            else:
                low = self.low[k][i]
            v = self.value[k][i]
            while low < threshold and low < v:
                if r.bit():
                    v = self.value[k][i] = low
                else:
                    low += 1
            self.low[k][i] = low
        return v < threshold

    def encode(self, w: _BitWriter, x: int, y: int, threshold: int) -> None:
        low = 0
        for k, i in self._path(x, y):
            if low > self.low[k][i]:
                self.low[k][i] = low
            else:
                low = self.low[k][i]
            while low < threshold:
                if low >= self.value[k][i]:
                    if not self.known[k][i]:
                        w.bit(1)
                        self.known[k][i] = True
                    break
                w.bit(0)
                low += 1
            self.low[k][i] = low


# --------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class _Coding:
    scod: int
    progression: int
    layers: int
    numres: int
    xcb: int
    ycb: int
    style: int
    precincts: tuple[tuple[int, int], ...]  # (PPx, PPy) per resolution


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _read_cod(data: bytes, pos: int, nxt: int) -> _Coding:
    scod, prog, layers, _mct, ndecomp, xcb, ycb, style, _tr = struct.unpack_from(">BBHBBBBBB", data, pos + 4)
    if scod & 1:
        raw = data[pos + 14 : nxt]
        pp = tuple((b & 0x0F, b >> 4) for b in raw)
    else:
        pp = ((15, 15),) * (ndecomp + 1)
    return _Coding(scod, prog, layers, ndecomp + 1, xcb + 2, ycb + 2, style, pp)


def _band_grids(coding: _Coding, comp_box: tuple[int, int, int, int], component: int) -> dict[int, list[BandGrid]]:
    """Code-block grid of each band of each resolution (B.5-B.7), one precinct per resolution.

    Returns:
        resolution -> band grids; resolutions without a precinct are left out.

    Raises:
        CodestreamError: a resolution with more than one precinct.
    """
    x0, y0, x1, y1 = comp_box
    nl = coding.numres - 1
    out: dict[int, list[BandGrid]] = {}
    for r in range(coding.numres):
        scale = 1 << (nl - r)
        rx0, ry0, rx1, ry1 = (_ceil_div(v, scale) for v in (x0, y0, x1, y1))
        ppx, ppy = coding.precincts[r]
        npx = _ceil_div(rx1, 1 << ppx) - (rx0 >> ppx) if rx1 > rx0 else 0
        npy = _ceil_div(ry1, 1 << ppy) - (ry0 >> ppy) if ry1 > ry0 else 0
        if npx * npy == 0:
            continue
        if npx * npy != 1:
            raise CodestreamError(f"unsupported: {npx * npy} precincts in resolution {r} (one per resolution only)")
        xcb = min(coding.xcb, ppx - (1 if r else 0))
        ycb = min(coding.ycb, ppy - (1 if r else 0))
        if r == 0:
            bands = [(0, 0, nl)]
        else:
            nb = nl - r + 1
            bands = [(1, 0, nb), (0, 1, nb), (1, 1, nb)]
        grids = []
        for b, (xob, yob, nb) in enumerate(bands):
            half = (1 << (nb - 1)) if nb else 0
            bx0, bx1 = (_ceil_div(v - half * xob, 1 << nb) for v in (x0, x1))
            by0, by1 = (_ceil_div(v - half * yob, 1 << nb) for v in (y0, y1))
            w = _ceil_div(bx1, 1 << xcb) - (bx0 >> xcb) if bx1 > bx0 else 0
            h = _ceil_div(by1, 1 << ycb) - (by0 >> ycb) if by1 > by0 else 0
            if w == 0 or h == 0:
                w = h = 0
            grids.append(BandGrid(component, r, b, w, h))
        out[r] = grids
    return out


def packet_order(progression: str, layers: int, present: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """(layer, resolution, component) of each packet in codestream order.

    With one tile and one precinct per resolution, position-driven orders
    reduce to nested loops: RPCL is R-C-L, PCRL and CPRL are C-R-L (every
    precinct has its origin at the tile origin, where the position loop
    visits it first).

    Args:
        progression: One of LRCP, RLCP, RPCL, PCRL, CPRL.
        layers: Number of quality layers.
        present: The (component, resolution) pairs that have a precinct.
    """
    have = set(present)
    comps = sorted({c for c, _ in have})
    ress = sorted({r for _, r in have})
    order: list[tuple[int, int, int]] = []
    if progression == "LRCP":
        order = [(ly, r, c) for ly in range(layers) for r in ress for c in comps]
    elif progression == "RLCP":
        order = [(ly, r, c) for r in ress for ly in range(layers) for c in comps]
    elif progression == "RPCL":
        order = [(ly, r, c) for r in ress for c in comps for ly in range(layers)]
    elif progression in ("PCRL", "CPRL"):
        order = [(ly, r, c) for c in comps for r in ress for ly in range(layers)]
    else:
        raise CodestreamError(f"unsupported: progression {progression!r}")
    return [(ly, r, c) for ly, r, c in order if (c, r) in have]


# --------------------------------------------------------------------------- parsing


def _headers(data: bytes, info: CodestreamInfo) -> tuple[_Coding, int, int]:
    """Main COD, and the SOT offset and its tile-part header checks; scope errors raised here."""
    if info.tiles != 1 or len(info.tile_parts) != 1:
        raise CodestreamError(f"unsupported: {info.tiles} tiles in {len(info.tile_parts)} tile-parts (one only)")
    if info.packed_headers:
        raise CodestreamError("unsupported: packed packet headers (PPM/PPT)")
    _, pos = _segment(data, 2, len(data), "main header")
    coding = None
    while True:
        marker, nxt = _segment(data, pos, len(data), "main header")
        if marker == _SOT:
            break
        if marker in _UNSUPPORTED_MAIN:
            raise CodestreamError(f"unsupported: {_UNSUPPORTED_MAIN[marker]} segment in the main header")
        if marker == _COD:
            coding = _read_cod(data, pos, nxt)
        pos = nxt
    sot = pos
    hpos = sot + 12
    while True:
        marker, nxt = _segment(data, hpos, len(data), "tile-part header")
        if marker == _SOD:
            break
        if marker not in _TILE_HEADER_OK:
            raise CodestreamError(f"unsupported: marker 0x{marker:04X} in the tile-part header")
        hpos = nxt
    assert coding is not None  # parse_codestream guarantees a main COD
    if coding.style & _STYLE_BYPASS:
        raise CodestreamError("unsupported: code-block style BYPASS (0x01)")
    if coding.style & _STYLE_HT:
        raise CodestreamError(f"unsupported: code-block style 0x{coding.style:02X} (high-throughput)")
    return coding, sot, nxt


def _siz_boxes(data: bytes, components: int) -> list[tuple[int, int, int, int]]:
    """Tile-component box (x0, y0, x1, y1) of each component; the single tile is the image area."""
    xsiz, ysiz, xo, yo = struct.unpack_from(">IIII", data, 8)
    boxes = []
    for c in range(components):
        xr, yr = data[43 + 3 * c], data[44 + 3 * c]
        boxes.append((_ceil_div(xo, xr), _ceil_div(yo, yr), _ceil_div(xsiz, xr), _ceil_div(ysiz, yr)))
    return boxes


class _BlockState:
    __slots__ = ("included", "lblock", "seg_passes")

    def __init__(self) -> None:
        self.included = False
        self.lblock = 3
        self.seg_passes = 0  # passes in the open codeword segment (no RESTART)


def _segment_split(state: _BlockState, passes: int, restart: bool) -> list[int]:
    """Passes in each codeword segment that a contribution of ``passes`` passes touches."""
    if restart:
        return [1] * passes
    out = []
    left = passes
    while left > 0:
        room = _MAX_SEGMENT_PASSES - state.seg_passes
        take = min(room, left)
        out.append(take)
        left -= take
        state.seg_passes += take
        if state.seg_passes == _MAX_SEGMENT_PASSES:
            state.seg_passes = 0
    return out


def _read_packet_header(
    r: _BitReader,
    layer: int,
    grids: list[BandGrid],
    incl: list[_TagTree],
    imsb: list[_TagTree],
    states: list[list[_BlockState]],
    restart: bool,
) -> list[tuple[int, int, int, tuple[int, ...]]] | None:
    """(band, block, passes, lengths) of every included code-block, header order; None: empty packet."""
    if not r.bit():
        return None
    out = []
    for g in grids:
        for idx in range(g.count):
            x, y = idx % g.width, idx // g.width
            st = states[g.band][idx]
            if st.included:
                inc = r.bit()
            else:
                inc = incl[g.band].decode(r, x, y, layer + 1)
            if not inc:
                continue
            if not st.included:
                i = 0
                while not imsb[g.band].decode(r, x, y, i):
                    i += 1
                    if i > _MAX_ZERO_BITPLANES + 1:
                        raise CodestreamError("malformed JPEG 2000 packet header: implausible zero bit-planes")
                st.included = True
            passes = _get_numpasses(r)
            while r.bit():
                st.lblock += 1
                if st.lblock > _MAX_LENGTH_BITS:
                    raise CodestreamError("malformed JPEG 2000 packet header: Lblock beyond 32 bits")
            lengths = []
            for seg in _segment_split(st, passes, restart):
                nbits = st.lblock + _floorlog2(seg)
                if nbits > _MAX_LENGTH_BITS:
                    raise CodestreamError("malformed JPEG 2000 packet header: segment length beyond 32 bits")
                lengths.append(r.bits(nbits))
            out.append((g.band, idx, passes, tuple(lengths)))
    return out


def parse_tier2(codestream: bytes) -> Tier2:
    """Parse every packet header of a single-tile codestream.

    Args:
        codestream: Raw JPEG 2000 codestream (plaintext headers; bodies may
            be encrypted, they are not looked at).

    Returns:
        The :class:`Tier2`.

    Raises:
        CodestreamError: malformed data, or ``"unsupported: ..."`` outside
            the scope in the module docstring.
    """
    data = _as_bytes(codestream)
    info = parse_codestream(data)
    coding, sot, data_start = _headers(data, info)
    data_end = info.tile_parts[0][1]
    restart = bool(coding.style & _STYLE_RESTART)
    sop, eph = bool(coding.scod & 0x02), bool(coding.scod & 0x04)

    if max(info.width, info.height) > MAX_SIDE:
        raise CodestreamError(f"unsupported: image of {info.width}x{info.height} (limit {MAX_SIDE} a side)")
    grids: dict[tuple[int, int], list[BandGrid]] = {}
    for c, box in enumerate(_siz_boxes(data, info.components)):
        for r, g in _band_grids(coding, box, c).items():
            grids[(c, r)] = g
    if sum(g.count for gs in grids.values() for g in gs) > _MAX_CODEBLOCKS:
        raise CodestreamError(f"unsupported: more than {_MAX_CODEBLOCKS} code-blocks")
    # Every packet takes at least one byte.
    if len(grids) * coding.layers > data_end - data_start:
        raise CodestreamError(
            f"malformed JPEG 2000 packet data: {len(grids) * coding.layers} packets in {data_end - data_start} bytes"
        )
    incl = {k: [_TagTree(g.width, g.height) for g in gs] for k, gs in grids.items()}
    imsb = {k: [_TagTree(g.width, g.height) for g in gs] for k, gs in grids.items()}
    states = {k: [[_BlockState() for _ in range(g.count)] for g in gs] for k, gs in grids.items()}

    packets: list[Packet] = []
    pos = data_start
    for layer, res, comp in packet_order(info.progression, coding.layers, list(grids)):
        key = (comp, res)
        if sop and data[pos : pos + 2] == b"\xff\x91":
            if pos + 6 > data_end or data[pos + 2 : pos + 4] != b"\x00\x04":
                raise CodestreamError(f"malformed JPEG 2000 packet data: bad SOP segment at byte {pos}")
            pos += 6
        reader = _BitReader(data, pos, data_end)
        blocks = _read_packet_header(reader, layer, grids[key], incl[key], imsb[key], states[key], restart)
        header_end = reader.align()
        if eph:
            if data[header_end : header_end + 2] != b"\xff\x92":
                raise CodestreamError(f"malformed JPEG 2000 packet data: no EPH marker at byte {header_end}")
            header_end += 2
        start = header_end
        contributions = []
        for band, idx, passes, lengths in blocks or ():
            contributions.append(Contribution(band, idx, passes, lengths, start))
            start += sum(lengths)
        if start > data_end:
            raise CodestreamError(
                f"malformed JPEG 2000 packet data: packet at byte {pos} has a body beyond the tile-part end"
            )
        packets.append(Packet(layer, res, comp, 0, pos, header_end, header_end, start, contributions, blocks is None))
        pos = start
    if pos != data_end:
        raise CodestreamError(
            f"malformed JPEG 2000 packet data: packets end at byte {pos}, the tile-part at byte {data_end}"
        )
    zbp = {(c, r, b): tree.value for (c, r), trees in imsb.items() for b, tree in enumerate(trees)}
    return Tier2(info, restart, sop, eph, sot, data_start, data_end, grids, zbp, packets)


# --------------------------------------------------------------------------- writing


def _check_contribution(c: Contribution, grid: BandGrid, restart: bool, n: int) -> None:
    if not 0 <= c.block < grid.count:
        raise CodestreamError(f"tier-2 edit: code-block {c.block} is off band {c.band}'s grid")
    if c.passes < 0 or any(x < 0 for x in c.lengths) or c.start < 0 or c.end > n:
        raise CodestreamError("tier-2 edit: negative passes/lengths or bytes outside the codestream")
    if restart and c.passes and len(c.lengths) != c.passes:
        raise CodestreamError("tier-2 edit: with RESTART each pass needs its own length")


def _write_packet_header(
    w: _BitWriter,
    layer: int,
    grids: list[BandGrid],
    by_block: dict[tuple[int, int], Contribution],
    incl: list[_TagTree],
    imsb: list[_TagTree],
    states: list[list[_BlockState]],
    restart: bool,
    empty: bool,
) -> None:
    if empty and not by_block:
        w.bit(0)
        return
    w.bit(1)
    for g in grids:
        for idx in range(g.count):
            x, y = idx % g.width, idx // g.width
            st = states[g.band][idx]
            c = by_block.get((g.band, idx))
            if st.included:
                w.bit(1 if c is not None else 0)
            else:
                incl[g.band].encode(w, x, y, layer + 1)
            if c is None:
                continue
            if not st.included:
                imsb[g.band].encode(w, x, y, _UNKNOWN)
                st.included = True
            _put_numpasses(w, c.passes)
            segs = _segment_split(st, c.passes, restart)
            if len(segs) != len(c.lengths):
                raise CodestreamError(
                    f"tier-2 edit: {c.passes} passes make {len(segs)} codeword segments, got {len(c.lengths)} lengths"
                )
            # Smallest Lblock increment that fits every length (as OpenJPEG chooses it).
            need = max(x.bit_length() - _floorlog2(n) for x, n in zip(c.lengths, segs))
            inc = max(0, need - st.lblock)
            w.bits((1 << (inc + 1)) - 2, inc + 1)  # comma code: inc ones, then a zero
            st.lblock += inc
            if st.lblock > _MAX_LENGTH_BITS:
                raise CodestreamError("tier-2 edit: a segment length needs more than 32 bits")
            for length, n in zip(c.lengths, segs):
                w.bits(length, st.lblock + _floorlog2(n))


def write_tier2(tier2: Tier2, codestream: bytes) -> bytes:
    """Write the packets of ``tier2`` into a valid codestream.

    Every packet keeps its place; headers are re-encoded from the
    contributions (those with ``passes == 0`` are left out, and a packet left
    with none becomes an empty packet), bodies are the concatenated bytes
    ``codestream[start:start + length]`` of the kept contributions, SOP
    sequence numbers run from 0 and the tile-part length (Psot) is fixed.

    Args:
        tier2: A parse of ``codestream`` (see :meth:`Tier2.copy` to edit one).
        codestream: The codestream that ``tier2`` was parsed from.

    Returns:
        The new codestream.

    Raises:
        CodestreamError: an edit that cannot be coded (contributions out of
            order or off the grid, lengths that do not match the passes).
    """
    data = _as_bytes(codestream)
    n = len(data)
    leaves: dict[tuple[int, int], list[list[int]]] = {
        k: [[_UNKNOWN] * g.count for g in gs] for k, gs in tier2.grids.items()
    }
    for p in tier2.packets:
        if (p.component, p.resolution) not in tier2.grids:
            raise CodestreamError("tier-2 edit: packet of a resolution without precinct")
        grids = tier2.grids[(p.component, p.resolution)]
        for c in p.contributions:
            if not 0 <= c.band < len(grids):
                raise CodestreamError(f"tier-2 edit: band {c.band} does not exist")
            _check_contribution(c, grids[c.band], tier2.restart, n)
            if c.passes:
                lv = leaves[(p.component, p.resolution)][c.band]
                lv[c.block] = min(lv[c.block], p.layer)

    incl = {
        k: [_TagTree.for_encoding(g.width, g.height, lv) for g, lv in zip(gs, leaves[k])]
        for k, gs in tier2.grids.items()
    }
    imsb = {
        k: [
            _TagTree.for_encoding(
                g.width,
                g.height,
                tier2.zero_bitplanes[(k[0], k[1], g.band)][0],
                tier2.zero_bitplanes[(k[0], k[1], g.band)],
            )
            for g in gs
        ]
        for k, gs in tier2.grids.items()
    }
    states = {k: [[_BlockState() for _ in range(g.count)] for g in gs] for k, gs in tier2.grids.items()}

    out = bytearray(data[: tier2.data_start])
    for seq, p in enumerate(tier2.packets):
        key = (p.component, p.resolution)
        kept = [c for c in p.contributions if c.passes]
        by_block = {(c.band, c.block): c for c in kept}
        order = [(g.band, i) for g in tier2.grids[key] for i in range(g.count)]
        rank = {bk: i for i, bk in enumerate(order)}
        if len(by_block) != len(kept) or [rank[(c.band, c.block)] for c in kept] != sorted(
            rank[(c.band, c.block)] for c in kept
        ):
            raise CodestreamError("tier-2 edit: contributions of a packet must be distinct and in header order")
        if tier2.sop:
            out += struct.pack(">HHH", _SOP, 4, seq & 0xFFFF)
        w = _BitWriter()
        _write_packet_header(
            w, p.layer, tier2.grids[key], by_block, incl[key], imsb[key], states[key], tier2.restart, p.empty
        )
        out += w.flush()
        if tier2.eph:
            out += b"\xff\x92"
        for c in kept:
            out += data[c.start : c.end]
    out += data[tier2.data_end :]
    psot = struct.unpack_from(">I", data, tier2.sot + 6)[0]
    if psot:
        struct.pack_into(">I", out, tier2.sot + 6, len(out) - (n - tier2.data_end) - tier2.sot)
    return bytes(out)
