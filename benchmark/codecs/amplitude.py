"""Syntax-compliant selective encryption of a baseline JPEG's amplitude bits.

:func:`encrypt_jpeg_amplitudes` is a variant of :mod:`benchmark.codecs.cipher`'s
JPEG cipher that changes no Huffman code. The scan is decoded
(:func:`~benchmark.codecs.jpeg_scan.coefficient_fields`) and, for each
coefficient whose Huffman code starts in the window, only its appended
amplitude bits (sign and magnitude within its category) are XORed with the
keystream; the run lengths, categories, EOB/ZRL and padding stay, so every
code keeps its length and the scan decodes without error. Bits are counted
along the scan's data with stuffing, fill bytes and RST markers left out
(these are the same before and after encryption, unlike file offsets: a
data byte that becomes or stops being FF gains or loses its stuffing 00), so
the window is a share of that data and scan bit ``b`` is combined with
keystream bit ``b`` (bit ``7 - b % 8`` of stream byte ``b // 8``). The file
is written back with stuffing redone
(:func:`~benchmark.codecs.jpeg_scan.replace_data`); its length may change by
that stuffing, its markers do not. XOR makes decryption the same operation.

The keystream and its discipline are :mod:`benchmark.codecs.cipher`'s. This
module is apart from it so that only the stages that run it depend on the
scan parser (:mod:`benchmark.codecs.jpeg_scan`) for their cache keys.
"""

from __future__ import annotations

import numpy as np

from benchmark.codecs.cipher import _check_key, keystream, window_range
from benchmark.codecs.jpeg_scan import Scan, coefficient_fields, parse_scan, replace_data

__all__ = ["encrypt_jpeg_amplitudes", "decrypt_jpeg_amplitudes", "jpeg_amplitude_selection"]


def jpeg_amplitude_selection(
    data: bytes, window: float, offset: float, *, ac_only: bool = False
) -> tuple[np.ndarray, np.ndarray, int]:
    """The amplitude bits :func:`encrypt_jpeg_amplitudes` changes, as (first bit, count) per coefficient.

    A coefficient is selected when its Huffman code starts in the window
    (``window``% at ``offset``% of the scan's data, see the module
    docstring), it has amplitude bits, and it is an AC coefficient when
    ``ac_only``; consecutive windows select disjoint sets of coefficients.

    Returns:
        (first amplitude bit int64, bit count int64, bits of the scan's data).

    Raises:
        CodestreamError: malformed JPEG, or outside baseline single-scan Huffman.
        ValueError: bad percentages.
    """
    return _amplitude_selection(parse_scan(data), window, offset, ac_only)


def _amplitude_selection(scan: Scan, window: float, offset: float, ac_only: bool) -> tuple[np.ndarray, np.ndarray, int]:
    fields = coefficient_fields(scan)
    lo, hi = window_range(fields.nbits // 8, window, offset)
    chosen = (fields.code >= 8 * lo) & (fields.code < 8 * hi) & (fields.size > 0)
    if ac_only:
        chosen &= ~fields.dc
    return fields.start[chosen], fields.size[chosen], fields.nbits


def _amplitude_xor(data: bytes, key: bytes, nonce: bytes, window: float, offset: float, ac_only: bool) -> bytes:
    _check_key(key, nonce)
    data = bytes(data)
    scan = parse_scan(data)
    starts, sizes, _ = _amplitude_selection(scan, window, offset, ac_only)
    if starts.size == 0:
        return data
    # Every selected bit: each coefficient's start repeated over its size, plus 0, 1, ... within it.
    first = np.repeat(starts, sizes)
    within = np.arange(first.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    bits_at = first + within
    lo, hi = int(bits_at[0]) // 8, int(bits_at[-1]) // 8 + 1
    stream = np.unpackbits(keystream(key, nonce, lo, hi - lo))
    bits = np.unpackbits(np.frombuffer(b"".join(iv.data for iv in scan.intervals), np.uint8))
    bits[bits_at] ^= stream[bits_at - 8 * lo]
    return replace_data(data, scan, np.packbits(bits).tobytes())


def encrypt_jpeg_amplitudes(
    data: bytes, key: bytes, nonce: bytes, window: float, offset: float, *, ac_only: bool = False
) -> bytes:
    """Encrypt the amplitude bits of the coefficients of a baseline JPEG whose codes start in the window.

    See the module docstring: Huffman codes, markers and the scan's
    structure stay; the byte stuffing is redone, so the length may change.

    Args:
        data: A baseline (sequential Huffman, one scan) JPEG file.
        key: AES key (16, 24 or 32 bytes).
        nonce: 16-byte initial counter block, unique per (key, sample).
        window: Window length, percent of the scan's data.
        offset: Window start, percent of the scan's data.
        ac_only: Leave the DC differences alone.

    Raises:
        CodestreamError: malformed JPEG, or outside baseline single-scan Huffman.
        ValueError: bad key, nonce or percentages.
    """
    return _amplitude_xor(data, key, nonce, window, offset, ac_only)


def decrypt_jpeg_amplitudes(
    data: bytes, key: bytes, nonce: bytes, window: float, offset: float, *, ac_only: bool = False
) -> bytes:
    """Invert :func:`encrypt_jpeg_amplitudes` (same key, nonce, window, offset and ``ac_only``)."""
    return _amplitude_xor(data, key, nonce, window, offset, ac_only)
