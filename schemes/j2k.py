"""Format-compliant selective encryption of JPEG2000 (and JPEG) face samples.

The scheme of "Highly Efficient Protection of Biometric Face Samples with
Selective JPEG2000 Encryption" (ICASSP 2021): the aligned face is stored as
ISO/IEC 19794-5 recommends (lossless, layered JPEG2000 with SOP/EPH markers)
and only packet-body bytes inside a window of the codestream are encrypted
with a format-compliant AES-CTR rule, so any standard decoder still decodes
the protected sample (to a distorted face).

Faces whose three channels are equal are coded as one grey component, as
the paper's grey face samples are; decoded grey is replicated to RGB.

Keys: the AES key of an application is derived from the master key with a
label that holds every parameter that changes the plaintext codestream, and
the per-sample counter block from the application key and the sample id, so
no (key, nonce) pair is reused for different plaintexts.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar, Sequence

import numpy as np

from benchmark.core.component import InstanceOf, Interval, Options, ParamError, Scheme
from benchmark.core.parallel import default_workers, map_chunks
from benchmark.core.registry import SCHEMES

__all__ = ["J2KScheme", "JPEGScheme", "PROGRESSIONS"]

# Protocol names of the progressions, as the paper names its schemes
# (lw4o6 = layer progression, window 4 %, offset 6 %).
PROGRESSIONS = {"layer": ("LRCP", "l"), "resolution": ("RLCP", "r"), "rpcl": ("RPCL", "p")}
_AES_BITS = 256
_BLANK = np.zeros((112, 112, 3), np.uint8)


def _as_codec_input(image: np.ndarray) -> np.ndarray:
    if image.ndim == 3 and (image == image[..., :1]).all():
        return np.ascontiguousarray(image[..., 0])
    return image


def _as_face(decoded: np.ndarray) -> np.ndarray:
    if decoded.ndim == 2:
        decoded = np.repeat(decoded[..., None], 3, axis=2)
    if decoded.shape != (112, 112, 3):
        raise ValueError(f"decoded sample has shape {decoded.shape}, not (112, 112, 3)")
    return decoded.astype(np.uint8, copy=False)


def _decode_chunk(decode: Any, blobs: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Worker: decode blobs; a failure to decode is flagged, never raised."""
    from benchmark.codecs.j2k import CodestreamError

    faces = np.zeros((len(blobs), 112, 112, 3), np.uint8)
    failed = np.zeros(len(blobs), bool)
    for i, blob in enumerate(blobs):
        try:
            faces[i] = _as_face(decode(blob))
        except (CodestreamError, ValueError, OSError, MemoryError):
            failed[i] = True
    return faces, failed


def _protect_chunk(scheme: "_WindowScheme", key: Any, items: Sequence[tuple[np.ndarray, str]]) -> list[bytes]:
    aes = scheme.aes_key(key)
    return [scheme.encrypt(scheme.encode(img), aes, key.nonce(sid)) for img, sid in items]


def _recover_chunk(scheme: "_WindowScheme", key: Any, items: Sequence[tuple[bytes, str]]) -> np.ndarray:
    aes = scheme.aes_key(key)
    return np.stack([_as_face(scheme.decode_one(scheme.decrypt(blob, aes, key.nonce(sid)))) for blob, sid in items])


class _WindowScheme(Scheme):
    """Shared parts: window parameters, key derivation, batched coding.

    Coding runs in a process pool of :func:`benchmark.core.parallel.default_workers`
    size; the results do not depend on it.
    """

    domain = "encryption"
    _common: ClassVar[dict] = {
        "window": Interval(float, 0, 100),
        "offset": Interval(float, 0, 100),
    }

    def _canonical(self) -> str:
        raise NotImplementedError

    def aes_key(self, key: Any) -> bytes:
        """Application AES key; the label binds every plaintext-changing parameter."""
        return key.derive(f"{self.registry_name}/aes/{self._canonical()}")

    def protect(self, images: np.ndarray, key: Any, sample_ids: Sequence[str], subjects: Sequence[str]) -> list[bytes]:
        items = list(zip(images, sample_ids))
        fn = functools.partial(_protect_chunk, self, key)
        return [b for part in map_chunks(fn, items, workers=default_workers(), desc=f"protect {self.label()}") for b in part]

    def decode(self, protected: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        fn = functools.partial(_decode_chunk, self.decode_one)
        parts = map_chunks(fn, list(protected), workers=default_workers(), desc=f"decode {self.label()}")
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def recover(self, protected: Sequence[bytes], key: Any, sample_ids: Sequence[str], subjects: Sequence[str]) -> np.ndarray:
        fn = functools.partial(_recover_chunk, self, key)
        return np.concatenate(map_chunks(fn, list(zip(protected, sample_ids)), workers=default_workers(), desc="recover"))

    def key_space_bits(self) -> float:
        return float(_AES_BITS)


@SCHEMES.register("j2k")
class J2KScheme(_WindowScheme):
    """Selective format-compliant AES-CTR encryption of a JPEG2000 codestream window.

    Args:
        progression: ``layer`` (LRCP), ``resolution`` (RLCP) or ``rpcl``.
        window: Window length, % of the codestream's byte length.
        offset: Window start, % of the codestream's byte length.
        ratios: Compression ratios of the quality layers; the final 1 is lossless.
        restart: Code-block style RESTART with ERTERM and SEGMARK.
    """

    _constraints = {
        **_WindowScheme._common,
        "progression": Options(tuple(PROGRESSIONS)),
        "ratios": InstanceOf((list, tuple), item=Interval(float, 1, None)),
        "restart": InstanceOf((bool,)),
    }

    def __init__(self, *, progression="layer", window=4.0, offset=0.0, ratios=(80, 40, 20, 10, 5, 1),
                 restart=False):
        self.progression = progression
        self.window = window
        self.offset = offset
        self.ratios = ratios
        self.restart = restart

    def _validate_extra(self) -> None:
        r = list(self.ratios)
        if not r or any(a <= b for a, b in zip(r, r[1:])):
            raise ParamError("ratios", self.ratios, "must be a non-empty, strictly decreasing list")
        if r[-1] != 1:
            raise ParamError("ratios", self.ratios, "must end in 1 (the lossless final layer)")

    def codec_params(self) -> Any:
        from benchmark.codecs.j2k import J2KParams

        return J2KParams(progression=PROGRESSIONS[self.progression][0],
                         ratios=tuple(float(x) for x in self.ratios), restart=bool(self.restart))

    def label(self) -> str:
        """The paper's scheme name, e.g. ``lw4o6`` (``-restart`` appended when on)."""
        tag = PROGRESSIONS[self.progression][1]
        return f"{tag}w{self.window:g}o{self.offset:g}" + ("-restart" if self.restart else "")

    def _canonical(self) -> str:
        p = self.codec_params()
        return f"{p.progression}/{','.join(f'{x:g}' for x in p.ratios)}/restart={int(p.restart)}"

    def encode(self, image: np.ndarray) -> bytes:
        from benchmark.codecs.j2k import encode_j2k

        return encode_j2k(_as_codec_input(image), self.codec_params())

    def encrypt(self, data: bytes, aes: bytes, nonce: bytes) -> bytes:
        from benchmark.codecs.cipher import encrypt_j2k

        return encrypt_j2k(data, aes, nonce, float(self.window), float(self.offset))

    def decrypt(self, data: bytes, aes: bytes, nonce: bytes) -> bytes:
        from benchmark.codecs.cipher import decrypt_j2k

        return decrypt_j2k(data, aes, nonce, float(self.window), float(self.offset))

    def decode_one(self, data: bytes) -> np.ndarray:
        from benchmark.codecs.j2k import decode_j2k

        return decode_j2k(data)


@SCHEMES.register("jpeg")
class JPEGScheme(_WindowScheme):
    """Selective format-compliant encryption of a baseline JPEG's entropy-coded data.

    The window is relative to the entropy-coded data, not the file (headers
    are about 14 % of a 112x112 JPEG).

    Args:
        quality: Pillow JPEG quality.
        restart_interval: Restart interval in MCUs (0: none).
        window: Window length, % of the entropy-coded bytes.
        offset: Window start, % of the entropy-coded bytes.
    """

    _constraints = {
        **_WindowScheme._common,
        "quality": Interval(int, 1, 100),
        "restart_interval": Interval(int, 0, 65535),
    }

    def __init__(self, *, quality=90, restart_interval=0, window=4.0, offset=0.0):
        self.quality = quality
        self.restart_interval = restart_interval
        self.window = window
        self.offset = offset

    def label(self) -> str:
        suffix = f"-ri{self.restart_interval}" if self.restart_interval else ""
        return f"jw{self.window:g}o{self.offset:g}{suffix}"

    def _canonical(self) -> str:
        return f"q={self.quality}/ri={self.restart_interval}"

    def encode(self, image: np.ndarray) -> bytes:
        from benchmark.codecs.jpeg import encode_jpeg

        return encode_jpeg(_as_codec_input(image), self.quality, self.restart_interval)

    def encrypt(self, data: bytes, aes: bytes, nonce: bytes) -> bytes:
        from benchmark.codecs.cipher import encrypt_jpeg

        return encrypt_jpeg(data, aes, nonce, float(self.window), float(self.offset))

    def decrypt(self, data: bytes, aes: bytes, nonce: bytes) -> bytes:
        from benchmark.codecs.cipher import decrypt_jpeg

        return decrypt_jpeg(data, aes, nonce, float(self.window), float(self.offset))

    def decode_one(self, data: bytes) -> np.ndarray:
        from benchmark.codecs.jpeg import decode_jpeg

        return decode_jpeg(data)
