"""Baseline JPEG through Pillow, and the entropy-coded segments of a JPEG file.

The JPEG variant of selective encryption changes only entropy-coded bytes:
those after each SOS header up to the next marker that is not RSTn (the
scan's RST markers and FF00 stuffing stay inside the segment, unchanged by
the cipher). The parser is defensive like the JPEG 2000 one: malformed or
truncated data raises :class:`~benchmark.codecs.CodestreamError`.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np

from benchmark.codecs import MAX_SIDE, CodestreamError, check_image

__all__ = [
    "CodestreamError",
    "DEFAULT_QUALITY",
    "JpegLayout",
    "MAX_SIDE",
    "encode_jpeg",
    "decode_jpeg",
    "entropy_segments",
    "parse_jpeg",
]

#: libjpeg quality used when none is given.
DEFAULT_QUALITY = 90

_SOI, _EOI, _SOS, _DRI = 0xD8, 0xD9, 0xDA, 0xDD
# Start-of-frame markers: C0..CF except DHT (C4), JPG (C8) and DAC (CC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


@dataclass(frozen=True)
class JpegLayout:
    """What :func:`parse_jpeg` found.

    Attributes:
        width: Frame width (SOF).
        height: Frame height (SOF).
        components: Frame components.
        segments: ``[start, end)`` of each scan's entropy-coded data.
        markers: Marker codes (second byte) of the header segments seen, in order.
    """

    width: int
    height: int
    components: int
    segments: tuple[tuple[int, int], ...]
    markers: tuple[int, ...]


def _u16(data: bytes, pos: int, what: str) -> int:
    if pos + 2 > len(data):
        raise CodestreamError(f"truncated JPEG: {what} at byte {pos} runs past the end")
    return (data[pos] << 8) | data[pos + 1]


def parse_jpeg(data: bytes) -> JpegLayout:
    """Walk the marker segments of a JPEG file: SOI, headers, scans, EOI.

    Fill bytes (FF runs) before a marker are allowed; bytes after EOI are
    ignored. One frame (SOF) is required before the first scan, and the
    frame height must be given in SOF (no DNL).

    Raises:
        CodestreamError: not a JPEG, truncated, or malformed.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"JPEG data must be bytes, got {type(data).__name__}")
    data = bytes(data)
    n = len(data)
    if n < 4 or data[:2] != b"\xff\xd8":
        raise CodestreamError("not a JPEG file (no SOI marker at the start)")
    arr = np.frombuffer(data, np.uint8)
    # Marker candidates: FF followed by a byte that is neither stuffing (00),
    # RSTn (D0..D7) nor another FF (fill). One vectorised pass for the file.
    ff = np.flatnonzero(arr[:-1] == 0xFF)
    nxt = arr[ff + 1]
    cand = ff[(nxt != 0x00) & ((nxt < 0xD0) | (nxt > 0xD7)) & (nxt != 0xFF)]

    frame: tuple[int, int, int] | None = None
    segments: list[tuple[int, int]] = []
    markers: list[int] = []
    pos = 2
    while True:
        if pos + 2 > n or data[pos] != 0xFF:
            raise CodestreamError(f"malformed or truncated JPEG: expected a marker at byte {pos}")
        if data[pos + 1] == 0xFF:  # fill bytes: jump to the marker they precede
            i = int(np.searchsorted(cand, pos))
            if i == cand.size or not np.all(arr[pos : cand[i]] == 0xFF):
                raise CodestreamError(f"malformed or truncated JPEG: fill bytes at byte {pos} lead to no marker")
            pos = int(cand[i])
        code = data[pos + 1]
        if code == _EOI:
            break
        if code in (0x00, 0x01, _SOI) or 0xD0 <= code <= 0xD7:
            raise CodestreamError(f"malformed JPEG: unexpected marker 0xFF{code:02X} at byte {pos}")
        length = _u16(data, pos + 2, f"marker 0xFF{code:02X}")
        end = pos + 2 + length
        if length < 2 or end > n:
            raise CodestreamError(
                f"malformed or truncated JPEG: marker 0xFF{code:02X} at byte {pos} has length {length}"
            )
        markers.append(code)
        if code in _SOF:
            if frame is not None or length < 8:
                raise CodestreamError(f"malformed JPEG: bad or second frame header at byte {pos}")
            height, width, ncomp = _u16(data, pos + 5, "SOF"), _u16(data, pos + 7, "SOF"), data[pos + 9]
            if length != 8 + 3 * ncomp or ncomp == 0 or width == 0 or height == 0:
                raise CodestreamError(f"malformed JPEG: bad frame header at byte {pos} (zero size or components)")
            frame = (width, height, ncomp)
        if code == _SOS:
            if frame is None:
                raise CodestreamError(f"malformed JPEG: scan at byte {pos} before any frame header")
            if length < 6 or length != 6 + 2 * data[pos + 4]:
                raise CodestreamError(f"malformed JPEG: bad scan header at byte {pos}")
            i = int(np.searchsorted(cand, end))
            if i == cand.size:
                raise CodestreamError(f"truncated JPEG: the scan at byte {pos} has no end (no EOI)")
            segments.append((end, int(cand[i])))
            pos = int(cand[i])
            continue
        pos = end
    if frame is None or not segments:
        raise CodestreamError("malformed JPEG: no frame or no scan")
    return JpegLayout(frame[0], frame[1], frame[2], tuple(segments), tuple(markers))


def entropy_segments(data: bytes) -> list[tuple[int, int]]:
    """``[start, end)`` of each scan's entropy-coded data, in file order.

    A segment starts after its SOS header and ends at the next marker that is
    not RSTn (RST markers inside a scan stay in the segment).

    Raises:
        CodestreamError: not a JPEG, truncated, or malformed.
    """
    return list(parse_jpeg(data).segments)


def encode_jpeg(image: np.ndarray, quality: int = DEFAULT_QUALITY, restart_interval: int = 0) -> bytes:
    """Code an image as baseline (sequential, Huffman) JPEG with Pillow.

    RGB uses Pillow's default 4:2:0 chroma subsampling; Huffman tables are
    the standard ones (no ``optimize``).

    Args:
        image: uint8 (H, W) grey or (H, W, 3) RGB.
        quality: libjpeg quality, 1 to 100.
        restart_interval: MCUs between RST markers; 0 writes none.

    Returns:
        The JPEG file bytes.

    Raises:
        ValueError: bad image or parameters.
        RuntimeError: a Pillow too old to write restart markers (< 10.2).
    """
    from PIL import Image

    img = check_image(image)
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ValueError(f"quality must be an integer in [1, 100], got {quality!r}")
    if isinstance(restart_interval, bool) or not isinstance(restart_interval, int) or not 0 <= restart_interval < 65536:
        raise ValueError(f"restart_interval must be an integer in [0, 65535], got {restart_interval!r}")
    options = {"quality": quality, "optimize": False, "progressive": False}
    if restart_interval:
        options["restart_marker_blocks"] = restart_interval
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", **options)
    data = buf.getvalue()
    if restart_interval and _DRI not in parse_jpeg(data).markers:
        # Older Pillow silently ignores the option.
        raise RuntimeError("this Pillow does not write restart markers (Pillow >= 10.2 needed)")
    return data


def decode_jpeg(data: bytes) -> np.ndarray:
    """Decode a JPEG file to uint8 (H, W) grey or (H, W, 3) RGB.

    The marker structure is validated by :func:`parse_jpeg` first (so a
    truncated file fails even where libjpeg would pad it); corrupt
    entropy-coded data, such as an encrypted scan, decodes to noise.

    Raises:
        CodestreamError: not a decodable grey/RGB JPEG.
    """
    from PIL import Image

    layout = parse_jpeg(data)
    if max(layout.width, layout.height) > MAX_SIDE:
        raise CodestreamError(f"JPEG image too large: {layout.width}x{layout.height} (limit {MAX_SIDE} a side)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(bytes(data)), formats=["JPEG"]) as im:
                im.load()
                mode, arr = im.mode, np.asarray(im)
    # Pillow reports bad data as OSError, SyntaxError, ValueError, ...
    except Exception as exc:  # noqa: BLE001
        raise CodestreamError(f"cannot decode JPEG: {exc}") from None
    if mode not in ("L", "RGB") or arr.dtype != np.uint8:
        raise CodestreamError(f"unsupported JPEG: mode {mode} (grey or RGB allowed)")
    return np.ascontiguousarray(arr)
