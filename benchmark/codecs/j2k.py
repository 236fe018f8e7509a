"""JPEG 2000 codestreams: encoding, defensive decoding and packet location.

Codestreams are raw JPEG 2000 Part-1 codestreams (``.j2k``: SOC ... EOC, no
JP2 boxes), coded with the reversible 5/3 wavelet by OpenJPEG through glymur
(always imported via :func:`benchmark.codecs.jp2lib.import_glymur`). With SOP and EPH
markers on, every packet reads

    FF91 0004 Nsop | packet header ... FF92 | packet body

inside the tile-part data (after SOD, up to the tile-part end given by Psot).
Packet headers and bodies are bit-stuffed: an FF byte in them is always
followed by a byte <= 0x8F, so any FF followed by 0x90..0xFE there is a
marker and the packets are found by scanning for FF91/FF92 alone
(:func:`locate_packets`), without decoding a single packet header.

The parsers treat their input as untrusted: every read is bounds-checked,
every loop advances, and a malformed codestream raises
:class:`~benchmark.codecs.CodestreamError` (one line), nothing else.
"""

from __future__ import annotations

import math
import os
import struct
import tempfile
import warnings
from dataclasses import dataclass

import numpy as np

from benchmark.codecs import MAX_SIDE, CodestreamError, check_image
from benchmark.codecs.jp2lib import import_glymur

__all__ = [
    "CodestreamError",
    "J2KParams",
    "PacketMap",
    "CodestreamInfo",
    "PROGRESSION_ORDERS",
    "DEFAULT_RATIOS",
    "MAX_SIDE",
    "encode_j2k",
    "decode_j2k",
    "locate_packets",
    "parse_codestream",
    "effective_numres",
]

#: Packet progression orders, in the order of their Part-1 COD code.
PROGRESSION_ORDERS = ("LRCP", "RLCP", "RPCL", "PCRL", "CPRL")
#: Compression ratios of the quality layers: coarsest first, the last (1) lossless.
DEFAULT_RATIOS: tuple[float, ...] = (80, 40, 20, 10, 5, 1)
# Faces are ~112 pixels wide; refusing anything above this keeps a forged SIZ
# from making OpenJPEG allocate gigabytes before it finds the data missing.
_MAX_LAYERS = 100  # glymur's tcp_rates array holds 100 entries

# glymur ``modesw`` bits (OpenJPEG cblk style): 4 RESTART (TERMALL),
# 16 ERTERM (SEGTERM), 32 SEGMARK (SEGSYM).
_RESTART_MODES = 4 | 16 | 32

_SOC, _SIZ, _COD, _QCD = 0xFF4F, 0xFF51, 0xFF52, 0xFF5C
_SOT, _SOD, _EOC, _SOP, _EPH = 0xFF90, 0xFF93, 0xFFD9, 0xFF91, 0xFF92
_PPM, _PPT = 0xFF60, 0xFF61
# Delimiting markers that carry no length field; anything else in a header
# must be a marker segment FFxx Lxx (Lxx >= 2). FF30..FF3F are reserved
# stand-alone markers (no segment).
_NO_LENGTH = {_SOC, _SOD, _EOC, _EPH}


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class J2KParams:
    """Coding parameters of :func:`encode_j2k`.

    Attributes:
        progression: Packet progression order: ``"LRCP"`` (layer first),
            ``"RLCP"`` (resolution first), ``"RPCL"``, ``"PCRL"`` or ``"CPRL"``.
        ratios: Compression ratio of each quality layer, strictly decreasing,
            each >= 1; a final ratio of 1 makes the last layer lossless.
        numres: Number of resolution levels (wavelet decompositions + 1); lowered
            automatically for images too small for it (see :func:`effective_numres`).
        cbsize: Code-block size (height, width): powers of two in [4, 1024]
            with an area of at most 4096.
        restart: Code-block style RESTART + ERTERM + SEGMARK (error resilience).
        sop: Write an SOP marker before every packet (needed by :func:`locate_packets`).
        eph: Write an EPH marker after every packet header (needed by :func:`locate_packets`).
    """

    progression: str = "LRCP"
    ratios: tuple[float, ...] = DEFAULT_RATIOS
    numres: int = 6
    cbsize: tuple[int, int] = (64, 64)
    restart: bool = False
    sop: bool = True
    eph: bool = True

    def __post_init__(self) -> None:
        # Lists from YAML/JSON become tuples so that the parameters stay hashable.
        object.__setattr__(self, "ratios", tuple(float(r) for r in self.ratios))
        object.__setattr__(self, "cbsize", tuple(int(c) for c in self.cbsize))
        if self.progression not in PROGRESSION_ORDERS:
            raise ValueError(f"progression: {self.progression!r} is not one of {', '.join(PROGRESSION_ORDERS)}")
        r = self.ratios
        if not 1 <= len(r) <= _MAX_LAYERS:
            raise ValueError(f"ratios: 1 to {_MAX_LAYERS} layers allowed, got {len(r)}")
        if not all(math.isfinite(x) and x >= 1 for x in r):
            raise ValueError(f"ratios: every ratio must be a finite number >= 1, got {list(r)}")
        if any(a <= b for a, b in zip(r, r[1:])):
            raise ValueError(f"ratios: must be strictly decreasing (coarsest layer first), got {list(r)}")
        if isinstance(self.numres, bool) or not isinstance(self.numres, int) or not 1 <= self.numres <= 33:
            raise ValueError(f"numres: {self.numres!r} is not an integer in [1, 33]")
        h, w = self.cbsize if len(self.cbsize) == 2 else (0, 0)
        pow2 = all(4 <= c <= 1024 and c & (c - 1) == 0 for c in (h, w))
        if not pow2 or h * w > 4096:
            raise ValueError(f"cbsize: {self.cbsize} must be two powers of two in [4, 1024] with area <= 4096")
        for name in ("restart", "sop", "eph"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: must be true or false")

    def as_dict(self) -> dict:
        """JSON-ready parameters, for provenance."""
        return {
            "progression": self.progression,
            "ratios": list(self.ratios),
            "numres": self.numres,
            "cbsize": list(self.cbsize),
            "restart": self.restart,
            "sop": self.sop,
            "eph": self.eph,
        }


def effective_numres(numres: int, shape: tuple[int, ...]) -> int:
    """Resolution levels actually used for an image of ``shape`` (H, W[, C]).

    OpenJPEG refuses ``numres`` levels unless the smaller image side is at
    least ``2 ** (numres - 1)``; the count is lowered to the largest that fits
    (112x112 keeps 6; 16x16 gets 5).
    """
    return max(1, min(int(numres), min(int(shape[0]), int(shape[1])).bit_length()))


# --------------------------------------------------------------------------- encode / decode


def _scratch_dir() -> str | None:
    # glymur reads and writes files only; RAM-backed /dev/shm keeps that off disk.
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


def encode_j2k(image: np.ndarray, params: J2KParams = J2KParams()) -> bytes:
    """Code an image as a raw JPEG 2000 codestream (reversible 5/3, one tile).

    Args:
        image: uint8 (H, W) grey or (H, W, 3) RGB (coded with the reversible
            colour transform).
        params: Coding parameters; with the default final ratio 1 the
            codestream decodes back to ``image`` exactly.

    Returns:
        The codestream bytes (SOC ... EOC).

    Raises:
        ValueError: on an unsupported image.
    """
    img = check_image(image)
    glymur = import_glymur()
    with tempfile.TemporaryDirectory(prefix="facesec-j2k-", dir=_scratch_dir()) as tmp:
        path = os.path.join(tmp, "image.j2k")  # the .j2k suffix makes glymur write a raw codestream
        glymur.Jp2k(
            path,
            data=img,
            cratios=list(params.ratios),
            irreversible=False,
            prog=params.progression,
            numres=effective_numres(params.numres, img.shape),
            cbsize=params.cbsize,
            modesw=_RESTART_MODES if params.restart else 0,
            sop=params.sop,
            eph=params.eph,
        )
        with open(path, "rb") as fh:
            return fh.read()


def decode_j2k(codestream: bytes) -> np.ndarray:
    """Decode a codestream written by :func:`encode_j2k` (or any 8-bit grey/RGB one).

    The codestream is validated by :func:`parse_codestream` first (marker
    structure, tile-part lengths, EOC) and must describe 1 or 3 unsigned
    8-bit components without subsampling, at most :data:`MAX_SIDE` pixels a
    side; only then is it handed to OpenJPEG. Decoder warnings (e.g. on the
    noise an encrypted body decodes to) are silenced: the result is an image
    or an error.

    Args:
        codestream: Raw JPEG 2000 codestream bytes.

    Returns:
        uint8 (H, W) or (H, W, 3).

    Raises:
        CodestreamError: truncated, malformed or undecodable data.
    """
    data = _as_bytes(codestream)
    info = parse_codestream(data)
    if info.components not in (1, 3):
        raise CodestreamError(f"unsupported JPEG 2000 codestream: {info.components} components (1 or 3 allowed)")
    if any(d != 8 for d in info.depths) or any(info.signed):
        raise CodestreamError("unsupported JPEG 2000 codestream: components must be unsigned 8-bit")
    if any(s != (1, 1) for s in info.subsampling):
        raise CodestreamError("unsupported JPEG 2000 codestream: subsampled components")
    if max(info.width, info.height) > MAX_SIDE:
        raise CodestreamError(f"JPEG 2000 image too large: {info.width}x{info.height} (limit {MAX_SIDE} a side)")
    glymur = import_glymur()
    with tempfile.TemporaryDirectory(prefix="facesec-j2k-", dir=_scratch_dir()) as tmp:
        path = os.path.join(tmp, "image.j2k")
        with open(path, "wb") as fh:
            fh.write(data)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = glymur.Jp2k(path)[:]
        # glymur and OpenJPEG report bad data through several exception types
        # (OpenJPEGLibraryError, InvalidJp2kError, struct.error, ...).
        except Exception as exc:  # noqa: BLE001
            raise CodestreamError(f"cannot decode JPEG 2000 codestream: {exc}") from None
    out = np.asarray(out)
    expected = (info.height, info.width) + ((3,) if info.components == 3 else ())
    if out.dtype != np.uint8 or out.shape != expected:
        raise CodestreamError(f"JPEG 2000 decoder returned {out.dtype} {out.shape}, expected uint8 {expected}")
    return np.ascontiguousarray(out)


# --------------------------------------------------------------------------- structure


@dataclass(frozen=True)
class CodestreamInfo:
    """Main-header facts and tile-part layout of a codestream.

    Attributes:
        width: Image width (Xsiz - XOsiz).
        height: Image height (Ysiz - YOsiz).
        components: Number of components (Csiz).
        depths: Bit depth of each component.
        signed: Whether each component is signed.
        subsampling: (XRsiz, YRsiz) of each component.
        tiles: Number of tiles on the grid.
        progression: Progression order of the main COD segment.
        layers: Quality layers of the main COD segment.
        numres: Resolution levels of the main COD segment.
        cblk_style: Code-block style byte of the main COD segment (0x34 =
            RESTART + ERTERM + SEGMARK).
        sop: SOP markers enabled by every COD segment.
        eph: EPH markers enabled by every COD segment.
        packed_headers: A PPM or PPT segment moves packet headers out of the packets.
        tile_parts: (data start, end) byte offsets of each tile-part's data,
            in codestream order (data start is just after SOD).
    """

    width: int
    height: int
    components: int
    depths: tuple[int, ...]
    signed: tuple[bool, ...]
    subsampling: tuple[tuple[int, int], ...]
    tiles: int
    progression: str
    layers: int
    numres: int
    cblk_style: int
    sop: bool
    eph: bool
    packed_headers: bool
    tile_parts: tuple[tuple[int, int], ...]


def _as_bytes(codestream: bytes) -> bytes:
    if isinstance(codestream, bytes):
        return codestream
    if isinstance(codestream, (bytearray, memoryview)):
        return bytes(codestream)
    raise TypeError(f"codestream must be bytes, got {type(codestream).__name__}")


def _u16(data: bytes, pos: int, what: str) -> int:
    if pos < 0 or pos + 2 > len(data):
        raise CodestreamError(f"truncated JPEG 2000 codestream: {what} at byte {pos} runs past the end")
    return (data[pos] << 8) | data[pos + 1]


def _segment(data: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    """(marker, offset after the segment) of the marker at ``pos``, inside ``[pos, end)``."""
    marker = _u16(data, pos, what)
    if marker >> 8 != 0xFF or marker == 0xFFFF:
        raise CodestreamError(f"malformed JPEG 2000 codestream: expected a marker in the {what} at byte {pos}")
    if marker in _NO_LENGTH or 0xFF30 <= marker <= 0xFF3F:
        nxt = pos + 2
    else:
        length = _u16(data, pos + 2, what)
        if length < 2:
            raise CodestreamError(
                f"malformed JPEG 2000 codestream: marker 0x{marker:04X} at byte {pos} has length {length}"
            )
        nxt = pos + 2 + length
    if nxt > end:
        raise CodestreamError(
            f"truncated JPEG 2000 codestream: marker 0x{marker:04X} at byte {pos} runs past the end of the {what}"
        )
    return marker, nxt


def _parse_siz(data: bytes) -> dict:
    length = _u16(data, 4, "SIZ segment")
    if length < 41 or len(data) < 42:
        raise CodestreamError(f"malformed or truncated JPEG 2000 codestream: SIZ segment (length {length})")
    (_, xsiz, ysiz, xo, yo, xt, yt, xto, yto, csiz) = struct.unpack_from(">HIIIIIIIIH", data, 6)
    if csiz < 1 or length != 38 + 3 * csiz or 2 + 2 + length > len(data):
        raise CodestreamError(f"malformed JPEG 2000 codestream: SIZ length {length} for {csiz} components")
    if xsiz <= xo or ysiz <= yo:
        raise CodestreamError(f"malformed JPEG 2000 codestream: empty image area in SIZ ({xsiz}x{ysiz} from {xo},{yo})")
    if xt == 0 or yt == 0 or xto > xo or yto > yo or xto + xt <= xo or yto + yt <= yo:
        raise CodestreamError("malformed JPEG 2000 codestream: tile grid in SIZ does not cover the image")
    tiles = math.ceil((xsiz - xto) / xt) * math.ceil((ysiz - yto) / yt)
    if tiles > 65535:
        raise CodestreamError(f"malformed JPEG 2000 codestream: {tiles} tiles (at most 65535)")
    comps = [struct.unpack_from(">BBB", data, 42 + 3 * c) for c in range(csiz)]
    depths = tuple((s & 0x7F) + 1 for s, _, _ in comps)
    if any(d > 38 for d in depths) or any(xr == 0 or yr == 0 for _, xr, yr in comps):
        raise CodestreamError("malformed JPEG 2000 codestream: bad component depth or subsampling in SIZ")
    return {
        "width": xsiz - xo,
        "height": ysiz - yo,
        "components": csiz,
        "depths": depths,
        "signed": tuple(bool(s & 0x80) for s, _, _ in comps),
        "subsampling": tuple((xr, yr) for _, xr, yr in comps),
        "tiles": tiles,
    }


def _parse_cod(data: bytes, pos: int, nxt: int) -> tuple[int, int, int, int, int]:
    """(Scod, progression, layers, numres, code-block style) of the COD segment at ``pos``, validated."""
    if nxt - pos < 14:
        raise CodestreamError(f"malformed JPEG 2000 codestream: short COD segment at byte {pos}")
    scod, prog, layers, _mct, ndecomp, xcb, ycb, style, transform = struct.unpack_from(">BBHBBBBBB", data, pos + 4)
    precincts = ndecomp + 1 if scod & 1 else 0
    if scod & ~0x07 or prog >= len(PROGRESSION_ORDERS) or layers == 0 or ndecomp > 32:
        raise CodestreamError(f"malformed JPEG 2000 codestream: bad COD segment at byte {pos}")
    if xcb > 8 or ycb > 8 or xcb + ycb > 8 or transform > 1 or nxt - pos != 14 + precincts:
        raise CodestreamError(f"malformed JPEG 2000 codestream: bad COD segment at byte {pos}")
    return scod, prog, layers, ndecomp + 1, style


def parse_codestream(codestream: bytes) -> CodestreamInfo:
    """Validate the marker structure of a codestream and describe it.

    Checks: SOC then SIZ (sane image and tile grid), one COD and one QCD in
    the main header, a chain of tile-parts each starting with SOT (Lsot 10,
    tile index on the grid, Psot >= 14 and within the data; Psot 0 only for
    the last tile-part) and a header ending in SOD, then EOC as the last two
    bytes. Packet data is not looked at.

    Args:
        codestream: Raw JPEG 2000 codestream bytes.

    Returns:
        The :class:`CodestreamInfo`.

    Raises:
        CodestreamError: anything malformed or truncated.
    """
    data = _as_bytes(codestream)
    n = len(data)
    if n < 4 or _u16(data, 0, "SOC marker") != _SOC or _u16(data, 2, "SIZ marker") != _SIZ:
        raise CodestreamError("not a JPEG 2000 codestream (no SOC+SIZ at the start)")
    siz = _parse_siz(data)
    if n < 2 or data[-2:] != b"\xff\xd9":
        raise CodestreamError("truncated JPEG 2000 codestream: no EOC marker at the end")
    body_end = n - 2  # everything before EOC

    cods: list[tuple[int, int, int, int, int]] = []
    packed = False
    qcd = False
    _, pos = _segment(data, 2, body_end, "main header")
    while True:
        marker, nxt = _segment(data, pos, body_end, "main header")
        if marker == _SOT:
            break
        if marker in (_SOC, _SIZ, _SOD, _EOC, _SOP, _EPH):
            raise CodestreamError(
                f"malformed JPEG 2000 codestream: marker 0x{marker:04X} in the main header at byte {pos}"
            )
        if marker == _COD:
            if cods:
                raise CodestreamError("malformed JPEG 2000 codestream: two COD segments in the main header")
            cods.append(_parse_cod(data, pos, nxt))
        qcd |= marker == _QCD
        packed |= marker == _PPM
        pos = nxt
    if not cods or not qcd:
        raise CodestreamError("malformed JPEG 2000 codestream: main header lacks a COD or QCD segment")

    tile_parts: list[tuple[int, int]] = []
    while pos < body_end:
        if _u16(data, pos, "tile-part") != _SOT:
            raise CodestreamError(f"malformed JPEG 2000 codestream: expected SOT at byte {pos}")
        if pos + 12 > body_end or _u16(data, pos + 2, "SOT segment") != 10:
            raise CodestreamError(f"malformed JPEG 2000 codestream: bad SOT segment at byte {pos}")
        tile, psot = struct.unpack_from(">HI", data, pos + 4)
        if tile >= siz["tiles"]:
            raise CodestreamError(f"malformed JPEG 2000 codestream: tile index {tile} at byte {pos} is off the grid")
        end = body_end if psot == 0 else pos + psot
        if psot != 0 and psot < 14:
            raise CodestreamError(f"malformed JPEG 2000 codestream: tile-part length {psot} at byte {pos}")
        if end > body_end:
            raise CodestreamError(
                f"truncated JPEG 2000 codestream: tile-part at byte {pos} declares {psot} bytes, "
                f"only {body_end - pos} left"
            )
        hpos = pos + 12
        while True:
            marker, nxt = _segment(data, hpos, end, "tile-part header")
            if marker == _SOD:
                break
            if marker in (_SOC, _SIZ, _SOT, _EOC, _SOP, _EPH):
                raise CodestreamError(
                    f"malformed JPEG 2000 codestream: marker 0x{marker:04X} in a tile-part header at byte {hpos}"
                )
            if marker == _COD:
                cods.append(_parse_cod(data, hpos, nxt))
            packed |= marker == _PPT
            hpos = nxt
        tile_parts.append((nxt, end))
        pos = end
    if not tile_parts:
        raise CodestreamError("malformed JPEG 2000 codestream: no tile-part")

    _, prog, layers, numres, style = cods[0]
    return CodestreamInfo(
        **siz,
        progression=PROGRESSION_ORDERS[prog],
        layers=layers,
        numres=numres,
        cblk_style=style,
        sop=all(c[0] & 0x02 for c in cods),
        eph=all(c[0] & 0x04 for c in cods),
        packed_headers=packed,
        tile_parts=tuple(tile_parts),
    )


# --------------------------------------------------------------------------- packets


@dataclass
class PacketMap:
    """Where each packet's header and body lie, in codestream order.

    All arrays are int64 absolute byte offsets into the codestream, one entry
    per packet; ranges are half-open. The header range starts after the
    6-byte SOP segment and includes the EPH marker; the body runs from just
    after EPH to the next SOP (or the end of the tile-part).

    Attributes:
        header_start: First byte of each packet header.
        header_end: One past the EPH marker.
        body_start: First byte of each body (equals ``header_end``).
        body_end: One past the last body byte.
    """

    header_start: np.ndarray
    header_end: np.ndarray
    body_start: np.ndarray
    body_end: np.ndarray

    def __len__(self) -> int:
        return int(self.body_start.size)

    @property
    def body_bytes(self) -> int:
        """Total number of packet-body bytes."""
        return int(np.sum(self.body_end - self.body_start))

    def body_mask(self, n: int) -> np.ndarray:
        """Boolean mask of length ``n`` (the codestream length), True on body bytes.

        Raises:
            ValueError: if a body extends beyond ``n``.
        """
        if self.body_end.size and int(self.body_end.max()) > n:
            raise ValueError(f"packet bodies extend to byte {int(self.body_end.max())}, beyond n={n}")
        # Bodies are disjoint: +1 at each start, -1 at each end, running sum.
        delta = np.zeros(n + 1, np.int32)
        delta[self.body_start] += 1
        delta[self.body_end] -= 1
        return np.cumsum(delta[:n]) > 0


def _scan_tile_part(
    data: bytes, pos: list[int], codes: list[int], start: int, end: int, out: list[tuple[int, int, int]]
) -> None:
    """Append (SOP offset, EPH offset, body end) of each packet in ``[start, end)``.

    ``pos``/``codes`` are the marker candidates (FF followed by >= 0x90)
    inside the tile-part data, in order. The loop runs over candidates, about
    two per packet, and always advances.
    """
    if start == end:
        return
    j, count, expect = 0, len(pos), start
    while True:
        if j >= count or pos[j] != expect or codes[j] != 0x91:
            raise CodestreamError(f"malformed JPEG 2000 packet data: expected an SOP marker at byte {expect}")
        sop = expect
        if sop + 6 > end or data[sop + 2 : sop + 4] != b"\x00\x04":
            raise CodestreamError(f"malformed JPEG 2000 packet data: bad SOP segment at byte {sop}")
        j += 1
        # Nsop (bytes 4-5 of the segment) may hold FF and mimic a marker.
        while j < count and pos[j] < sop + 6:
            j += 1
        if j >= count or codes[j] != 0x92:
            raise CodestreamError(f"malformed JPEG 2000 packet data: packet at byte {sop} has no EPH marker")
        eph = pos[j]
        j += 1
        if j >= count:
            out.append((sop, eph, end))
            return
        if codes[j] != 0x91:
            raise CodestreamError(
                f"malformed JPEG 2000 packet data: unexpected marker 0xFF{codes[j]:02X} at byte {pos[j]}"
            )
        out.append((sop, eph, pos[j]))
        expect = pos[j]


def locate_packets(codestream: bytes) -> PacketMap:
    """Find every packet header and body from the SOP/EPH markers.

    Args:
        codestream: Raw JPEG 2000 codestream coded with SOP and EPH markers
            and in-band packet headers (no PPM/PPT).

    Returns:
        The :class:`PacketMap`.

    Raises:
        CodestreamError: no SOP/EPH markers, packed packet headers, or a
            malformed/truncated codestream.
    """
    data = _as_bytes(codestream)
    info = parse_codestream(data)
    if not (info.sop and info.eph):
        raise CodestreamError(
            "JPEG 2000 codestream has no SOP/EPH markers (its COD segment does not enable them); "
            "encode with sop=True and eph=True"
        )
    if info.packed_headers:
        raise CodestreamError("JPEG 2000 codestream has packed packet headers (PPM/PPT): not supported")
    arr = np.frombuffer(data, np.uint8)
    first = info.tile_parts[0][0]
    ff = np.flatnonzero(arr[first:-1] == 0xFF) + first
    nxt = arr[ff + 1]
    # FF FF is never a marker start (the marker begins at the last FF).
    keep = (nxt >= 0x90) & (nxt != 0xFF)
    cand, cand_codes = ff[keep], nxt[keep]

    packets: list[tuple[int, int, int]] = []
    for start, end in info.tile_parts:
        # Candidates whose second byte is still inside the tile-part.
        lo, hi = np.searchsorted(cand, (start, end - 1))
        _scan_tile_part(data, cand[lo:hi].tolist(), cand_codes[lo:hi].tolist(), start, end, packets)
    if not packets:
        raise CodestreamError("JPEG 2000 codestream has no SOP/EPH markers in its packet data")
    sop, eph, body_end = (np.asarray(col, np.int64) for col in zip(*packets))
    return PacketMap(header_start=sop + 6, header_end=eph + 2, body_start=eph + 2, body_end=body_end)
