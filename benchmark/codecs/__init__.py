"""Codestream layer of selective encryption: JPEG 2000 and JPEG codecs, parsers, cipher.

After Hofbauer, Autrusseau and Uhl, "Highly Efficient Protection of Biometric
Face Samples with Selective JPEG2000 Encryption" (ICASSP 2021): a face is
coded as a raw JPEG 2000 codestream with SOP/EPH markers, the packet bodies
are located from those markers, and a window of packet-body bytes is
encrypted with AES-CTR under a format-compliant byte rule, so the protected
codestream still decodes (to noise) in any JPEG 2000 decoder.

* :mod:`benchmark.codecs.j2k` -- encode/decode (glymur/OpenJPEG) and
  :func:`~benchmark.codecs.j2k.locate_packets`;
* :mod:`benchmark.codecs.jpeg` -- baseline JPEG (Pillow) and its entropy-coded
  segments, for the JPEG variant;
* :mod:`benchmark.codecs.cipher` -- AES-CTR keystream and the format-compliant
  encryption of both formats.

Every parser here treats its input as untrusted: malformed data raises
:class:`CodestreamError` (one line), never another exception. A header may
declare a far larger image than its data holds (an 8000x8000 SIZ or SOF over
a face's bytes makes the decoder allocate hundreds of megabytes):
:func:`check_declared_size` refuses it from the header alone, before anything
decodes or rewrites it.
"""

from __future__ import annotations

__all__ = [
    "CodestreamError",
    "MAX_SIDE",
    "check_image",
    "declared_size",
    "check_declared_size",
    "J2KParams",
    "PacketMap",
    "encode_j2k",
    "decode_j2k",
    "locate_packets",
    "encode_jpeg",
    "decode_jpeg",
    "entropy_segments",
    "keystream",
    "encrypt_j2k",
    "decrypt_j2k",
    "encrypt_jpeg",
    "decrypt_jpeg",
]


# Both decoders refuse larger sides; faces are far smaller.
MAX_SIDE = 8192


def check_image(image):
    """An encoder input as a contiguous uint8 (H, W) or (H, W, 3) array.

    Raises:
        ValueError: wrong dtype, shape or size.
    """
    import numpy as np

    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {img.dtype}")
    if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)):
        raise ValueError(f"image must be (H, W) grey or (H, W, 3) RGB, got shape {img.shape}")
    if min(img.shape[:2]) < 1 or max(img.shape[:2]) > MAX_SIDE:
        raise ValueError(f"image sides must be in [1, {MAX_SIDE}], got {img.shape[:2]}")
    return np.ascontiguousarray(img)


class CodestreamError(ValueError):
    """A codestream that cannot be parsed, decoded or protected.

    The message is always one line (decoder messages spanning several lines
    are joined with ``"; "``), so the command line can print it as is.
    """

    def __init__(self, message: str):
        lines = [part.strip() for part in str(message).splitlines()]
        super().__init__("; ".join(part for part in lines if part))


def declared_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` a JPEG 2000 codestream's SIZ or a JPEG file's SOF declares, read without decoding.

    Raises:
        CodestreamError: neither format, or a malformed header.
    """
    head = bytes(data[:2])
    if head == b"\xff\x4f":  # SOC
        info = parse_codestream(data)
        return info.width, info.height
    if head == b"\xff\xd8":  # SOI
        layout = parse_jpeg(data)
        return layout.width, layout.height
    raise CodestreamError("neither a JPEG 2000 codestream nor a JPEG file")


def check_declared_size(data: bytes, size: tuple[int, int]) -> None:
    """Refuse a codestream or JPEG whose header declares another ``(width, height)`` than ``size``.

    Raises:
        CodestreamError: another size (or no readable header), before any decoding.
    """
    width, height = declared_size(data)
    if (width, height) != tuple(size):
        raise CodestreamError(
            f"the header declares {width}x{height} pixels, not {size[0]}x{size[1]}: refused before decoding"
        )


# Defined before the submodules are imported: they import it from here.
from benchmark.codecs.cipher import (  # noqa: E402
    decrypt_j2k,
    decrypt_jpeg,
    encrypt_j2k,
    encrypt_jpeg,
    keystream,
)
from benchmark.codecs.j2k import (  # noqa: E402
    J2KParams,
    PacketMap,
    decode_j2k,
    encode_j2k,
    locate_packets,
    parse_codestream,
)
from benchmark.codecs.jpeg import decode_jpeg, encode_jpeg, entropy_segments, parse_jpeg  # noqa: E402
