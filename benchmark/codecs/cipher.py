"""Format-compliant selective encryption of JPEG 2000 packet bodies and JPEG scans.

Keystream: AES-CTR (``cryptography``) with the 16-byte nonce as initial
counter block, indexed by *absolute* byte offset in the file: the byte at
offset ``i`` is always combined with AES-CTR stream byte ``i`` (counter block
``nonce + i // 16``, byte ``i % 16``), whatever the window. Encrypting a
sub-range therefore costs only that range's keystream.

Window: ``offset`` and ``window`` are percentages of a length ``L`` (the whole
codestream for JPEG 2000; the concatenated entropy-coded segments for JPEG).
The selected range is ``[floor(offset*L/100), floor((offset+window)*L/100))``
clipped to ``[0, L]``, computed exactly on the given float values (integer
arithmetic on their exact binary values, so no rounding). Read as positions
on a line where byte ``i`` spans ``[i, i+1)``: byte ``i`` is selected exactly
when its end ``i+1`` lies in ``(offset*L/100, (offset+window)*L/100]``, so
consecutive windows (offset ``a``, window ``b``, then offset ``a+b``) neither
overlap nor leave a gap (when ``a+b`` is exact in floating point).
Percentages must be finite and >= 0; a sum above 100 is clipped. Only
packet-body bytes (JPEG 2000) or entropy-coded bytes (JPEG) inside the range
change; marker segments and packet headers never do.

Byte rule (JPEG 2000), ``k`` the keystream byte at the same offset and
"after FF" meaning the *codestream* byte just before is 0xFF:

* 0xFF stays 0xFF;
* a byte after FF, if <= 0x8F, becomes ``(x + k) mod 0x90`` (a byte after FF
  that is 0x90..0xFE cannot occur in valid packet data and is left as is,
  which keeps the rule a bijection on all inputs);
* any other byte (0x00..0xFE) becomes ``(x + k) mod 255``.

No byte becomes 0xFF and FF positions never move, so the decryptor sees the
same "after FF" bytes and inverts each step; no FF90..FFFF appears in a
packet body, so the codestream keeps its markers and decodes (to noise).
Neighbours outside the range or the body count as they are: the first body
byte after an FF just before the window uses the mod-0x90 rule; an FF that
ends the window or a body stays and its successor is left alone.

JPEG: 0xFF stays, the byte after FF (stuffing 0x00, RSTn, or a fill FF) stays,
any other byte becomes ``(x + k) mod 255``; no marker can appear or vanish.

JPEG amplitudes, a syntax-compliant variant that changes no Huffman code:
:mod:`benchmark.codecs.amplitude`.

A keystream (key, nonce) must never protect two different plaintexts: see
:meth:`benchmark.core.keys.AppKey.nonce`.
"""

from __future__ import annotations

import math

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from benchmark.codecs.j2k import locate_packets
from benchmark.codecs.jpeg import entropy_segments

__all__ = [
    "keystream",
    "window_range",
    "j2k_selection",
    "jpeg_selection",
    "encrypt_j2k",
    "decrypt_j2k",
    "encrypt_jpeg",
    "decrypt_jpeg",
    "encrypt_ranges",
    "decrypt_ranges",
]

_BLOCK = 16
_AFTER_FF_MOD = 0x90  # bytes after FF stay in 0x00..0x8F: no FF90..FFFF marker appears


def _check_key(key: bytes, nonce: bytes) -> None:
    if not isinstance(key, (bytes, bytearray)) or len(key) not in (16, 24, 32):
        raise ValueError("AES key must be 16, 24 or 32 bytes")
    if not isinstance(nonce, (bytes, bytearray)) or len(nonce) != _BLOCK:
        raise ValueError(f"nonce must be a {_BLOCK}-byte initial counter block")


def keystream(key: bytes, nonce: bytes, offset: int, length: int) -> np.ndarray:
    """AES-CTR keystream bytes for absolute stream offsets ``[offset, offset + length)``.

    Args:
        key: AES key, 16, 24 or 32 bytes.
        nonce: 16-byte initial counter block (big-endian, incremented per block
            modulo 2**128, as OpenSSL does).
        offset: First stream offset, >= 0.
        length: Number of bytes, >= 0.

    Returns:
        Read-only uint8 array of ``length`` bytes.
    """
    _check_key(key, nonce)
    if offset < 0 or length < 0:
        raise ValueError(f"offset and length must be >= 0, got {offset}, {length}")
    block, skip = divmod(int(offset), _BLOCK)
    counter = (int.from_bytes(nonce, "big") + block) % (1 << 128)
    encryptor = Cipher(algorithms.AES(bytes(key)), modes.CTR(counter.to_bytes(_BLOCK, "big"))).encryptor()
    stream = encryptor.update(bytes(skip + int(length)))
    return np.frombuffer(stream, np.uint8)[skip:]


def _ratio(name: str, value: float) -> tuple[int, int]:
    """Exact (numerator, denominator) of a finite percentage >= 0."""
    if isinstance(value, (np.integer, np.floating)):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite percentage >= 0, got {value!r}")
    return value.as_integer_ratio()


def window_range(length: int, window: float, offset: float) -> tuple[int, int]:
    """``[start, end)`` selected by ``offset``% and ``window``% of ``length`` bytes.

    ``start = floor(offset*length/100)``, ``end = floor((offset+window)*length/100)``,
    both clipped to ``[0, length]``; exact on the float values given
    (integer arithmetic on their exact ratios, no rounding).

    Raises:
        ValueError: a percentage that is negative or not finite.
    """
    wn, wd = _ratio("window", window)
    on, od = _ratio("offset", offset)
    start = min(length, (on * length) // (od * 100))
    end = min(length, ((on * wd + wn * od) * length) // (od * wd * 100))
    return start, max(start, end)


def _clip(starts: np.ndarray, ends: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ranges intersected with ``[lo, hi)``, empty ones dropped, and the indices kept."""
    s, e = np.maximum(starts, lo), np.minimum(ends, hi)
    keep = np.flatnonzero(e > s)
    return s[keep].astype(np.int64), e[keep].astype(np.int64), keep


def j2k_selection(codestream: bytes, window: float, offset: float) -> tuple[np.ndarray, np.ndarray]:
    """Absolute ``[start, end)`` ranges that :func:`encrypt_j2k` may change (body bytes in the window)."""
    packets = locate_packets(codestream)
    lo, hi = window_range(len(codestream), window, offset)
    starts, ends, _ = _clip(packets.body_start, packets.body_end, lo, hi)
    return starts, ends


def jpeg_selection(data: bytes, window: float, offset: float) -> tuple[np.ndarray, np.ndarray]:
    """Absolute ``[start, end)`` ranges that :func:`encrypt_jpeg` may change.

    The window is a share of the entropy-coded bytes: the segments of
    :func:`~benchmark.codecs.jpeg.entropy_segments` laid end to end (RST
    markers inside a scan count as entropy-coded bytes but never change).
    """
    segments = np.asarray(entropy_segments(data), np.int64).reshape(-1, 2)
    lengths = segments[:, 1] - segments[:, 0]
    lo, hi = window_range(int(lengths.sum()), window, offset)
    # Position of each segment in the concatenation, then back to file offsets.
    before = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    s, e, kept = _clip(before, before + lengths, lo, hi)
    shift = segments[kept, 0] - before[kept]
    return s + shift, e + shift


def _ranges_mask(starts: np.ndarray, ends: np.ndarray, lo: int, hi: int) -> np.ndarray:
    delta = np.zeros(hi - lo + 1, np.int32)
    delta[starts - lo] += 1
    delta[ends - lo] -= 1
    return np.cumsum(delta[:-1]) > 0


def _transform(
    data: bytes, starts: np.ndarray, ends: np.ndarray, key: bytes, nonce: bytes, decrypt: bool, after_ff_mod: int | None
) -> bytes:
    """Apply the byte rule to the bytes in the disjoint, sorted ranges.

    ``after_ff_mod`` is 0x90 for JPEG 2000 (bytes after FF are encrypted
    modulo 0x90) or None for JPEG (left alone). The mod-255 rule is applied
    to every byte in bulk; FF bytes and the bytes after them, which are
    sparse, are then put right by index.
    """
    _check_key(key, nonce)
    if starts.size == 0:
        return bytes(data)
    buf = np.frombuffer(data, np.uint8).copy()
    lo, hi = int(starts[0]), int(ends[-1])
    k = keystream(key, nonce, lo, hi - lo)
    x = buf[lo:hi]  # a view: the result is written through it
    ff = np.flatnonzero(x == 0xFF)
    after = ff + 1
    if lo > 0 and buf[lo - 1] == 0xFF:
        after = np.concatenate(([0], after))
    after = after[after < x.size]
    after = after[x[after] != 0xFF]  # an FF after FF is an FF: it stays
    single = starts.size == 1
    if not single:
        selected = _ranges_mask(starts, ends, lo, hi)
        after = after[selected[after]]
    saved, k_after = x[after], k[after]

    # mod-255 arithmetic in uint8 (x <= 0xFE, k <= 0xFF, so x + k <= 509):
    # encrypt: t = x + k mod 256, then +1 if it wrapped (t < k) or hit 255;
    # decrypt: d = y - k mod 256, then -1 if it wrapped (y < k).
    r = x if single else x.copy()
    if decrypt:
        wrapped = np.less(r, k)
        np.subtract(r, k, out=r)
        np.subtract(r, wrapped, out=r, casting="unsafe")
    else:
        np.add(r, k, out=r)
        bump = np.less(r, k)
        bump |= r == 0xFF
        np.add(r, bump, out=r, casting="unsafe")
    if not single:
        np.copyto(x, r, where=selected)
    x[ff] = 0xFF
    if after_ff_mod is not None:
        # Bytes after FF (only those <= 0x8F: the rule is a bijection on
        # 0x00..0x8F and leaves 0x90..0xFE, which valid data never has, alone).
        ok = saved < after_ff_mod
        s, kk = saved[ok].astype(np.int16), k_after[ok].astype(np.int16)
        saved[ok] = ((s - kk) if decrypt else (s + kk)) % after_ff_mod
    x[after] = saved
    return buf.tobytes()


def encrypt_ranges(
    data: bytes, starts: np.ndarray, ends: np.ndarray, key: bytes, nonce: bytes, *, after_ff_mod: int | None = 0x90
) -> bytes:
    """Encrypt the bytes in the given disjoint, sorted absolute ranges with the byte rule.

    Lower-level entry of :func:`encrypt_j2k` / :func:`encrypt_jpeg` (benchmarks, tests).
    """
    starts, ends = np.asarray(starts, np.int64), np.asarray(ends, np.int64)
    return _transform(bytes(data), starts, ends, key, nonce, False, after_ff_mod)


def decrypt_ranges(
    data: bytes, starts: np.ndarray, ends: np.ndarray, key: bytes, nonce: bytes, *, after_ff_mod: int | None = 0x90
) -> bytes:
    """Inverse of :func:`encrypt_ranges` for the same ranges, key and nonce."""
    starts, ends = np.asarray(starts, np.int64), np.asarray(ends, np.int64)
    return _transform(bytes(data), starts, ends, key, nonce, True, after_ff_mod)


def encrypt_j2k(codestream: bytes, key: bytes, nonce: bytes, window: float, offset: float) -> bytes:
    """Encrypt the packet-body bytes of a codestream that fall in the window.

    Args:
        codestream: Raw JPEG 2000 codestream with SOP/EPH markers.
        key: AES key (16, 24 or 32 bytes).
        nonce: 16-byte initial counter block, unique per (key, sample).
        window: Window length, percent of the codestream length.
        offset: Window start, percent of the codestream length.

    Returns:
        The protected codestream, same length, same markers and headers.

    Raises:
        CodestreamError: codestream without SOP/EPH or malformed.
        ValueError: bad key, nonce or percentages.
    """
    _check_key(key, nonce)
    starts, ends = j2k_selection(codestream, window, offset)
    return _transform(codestream, starts, ends, key, nonce, False, _AFTER_FF_MOD)


def decrypt_j2k(codestream: bytes, key: bytes, nonce: bytes, window: float, offset: float) -> bytes:
    """Invert :func:`encrypt_j2k` (same key, nonce, window and offset)."""
    _check_key(key, nonce)
    starts, ends = j2k_selection(codestream, window, offset)
    return _transform(codestream, starts, ends, key, nonce, True, _AFTER_FF_MOD)


def encrypt_jpeg(data: bytes, key: bytes, nonce: bytes, window: float, offset: float) -> bytes:
    """Encrypt the entropy-coded bytes of a JPEG that fall in the window.

    The window is a share of the entropy-coded segments laid end to end (see
    :func:`jpeg_selection`); keystream positions are absolute file offsets.

    Raises:
        CodestreamError: malformed JPEG.
        ValueError: bad key, nonce or percentages.
    """
    _check_key(key, nonce)
    starts, ends = jpeg_selection(data, window, offset)
    return _transform(data, starts, ends, key, nonce, False, None)


def decrypt_jpeg(data: bytes, key: bytes, nonce: bytes, window: float, offset: float) -> bytes:
    """Invert :func:`encrypt_jpeg` (same key, nonce, window and offset)."""
    _check_key(key, nonce)
    starts, ends = jpeg_selection(data, window, offset)
    return _transform(data, starts, ends, key, nonce, True, None)
