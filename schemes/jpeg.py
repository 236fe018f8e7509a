"""``jpeg``: format-compliant selective encryption of a baseline JPEG's entropy-coded data.

The JPEG counterpart of :mod:`schemes.j2k`: the face is coded as baseline
JPEG and the entropy-coded bytes inside a window are encrypted so that no
marker appears or vanishes (:mod:`benchmark.codecs.cipher`). The window is
relative to the entropy-coded data, not the file (headers are about 14 % of
a 112x112 JPEG). Names: ``jw10o0``, with ``-ri7`` for a restart interval of
7 MCUs and ``-q75`` for a quality other than the default.

:class:`BaselineJPEGScheme` is what it shares with :mod:`schemes.jpeg_amplitude`
(coding, the ``-ri``/``-q`` suffixes, keying).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from benchmark.codecs.cipher import decrypt_jpeg, encrypt_jpeg
from benchmark.codecs.jpeg import DEFAULT_QUALITY, decode_jpeg, encode_jpeg
from benchmark.core.component import ByteCipherScheme, Interval
from benchmark.core.registry import SCHEMES
from schemes.codestream import WindowScheme

__all__ = ["BaselineJPEGScheme", "JPEGScheme"]


class BaselineJPEGScheme(WindowScheme):
    """Base of the baseline JPEG schemes: coding with a quality and a restart interval, and their name suffixes.

    Subclasses set ``__init__`` (with ``quality`` and ``restart_interval``),
    :meth:`name_forms` and the cipher.
    """

    quality: int
    restart_interval: int
    codec = "jpeg"
    suffix = ".jpg"
    _letters = {"jpeg": "j"}
    _suffix = r"(?:-ri(?P<ri>\d+))?(?:-q(?P<q>\d+))?"
    _encoder_params = {"quality": "quality", "restart_interval": "restart_interval"}
    _constraints = {
        **WindowScheme._common,
        "quality": Interval(int, 1, 100),
        "restart_interval": Interval(int, 0, 65535),
    }

    def _suffix_text(self) -> str:
        ri = f"-ri{self.restart_interval}" if self.restart_interval else ""
        q = f"-q{self.quality}" if self.quality != DEFAULT_QUALITY else ""
        return ri + q

    @classmethod
    def _suffix_params(cls, match: re.Match[str]) -> dict:
        out = {}
        if match["ri"]:
            out["restart_interval"] = int(match["ri"])
        if match["q"]:
            out["quality"] = int(match["q"])
        return out

    def settings(self) -> dict[str, Any]:
        return {"encoder": {"quality": self.quality, "restart_interval": self.restart_interval}}

    def _key_label(self) -> str:
        return f"q={self.quality}/ri={self.restart_interval}"

    def encode(self, image: np.ndarray) -> bytes:
        return encode_jpeg(image, self.quality, self.restart_interval)

    def decode_one(self, data: bytes) -> np.ndarray:
        return decode_jpeg(data)


@SCHEMES.register("jpeg")
class JPEGScheme(BaselineJPEGScheme, ByteCipherScheme):
    """Selective format-compliant encryption of a baseline JPEG's entropy-coded data.

    Args:
        quality: libjpeg quality, 1 to 100 (names end in ``-q<Q>`` unless it is the default).
        restart_interval: Restart interval in MCUs, 0 for none (names end in ``-ri<N>``).
        window: Window length, % of the entropy-coded bytes, in (0, 100].
        offset: Window start, % of the entropy-coded bytes, in [0, 100); window + offset at most 100.
    """

    def __init__(self, *, quality=DEFAULT_QUALITY, restart_interval=0, window=4.0, offset=0.0):
        self.quality = quality
        self.restart_interval = restart_interval
        self.window = window
        self.offset = offset

    @classmethod
    def name_forms(cls) -> str:
        return "jw<W>o<O> (baseline JPEG; -ri<N> for a restart interval, -q<Q> for a quality)"

    def encrypt(self, plaintext: bytes, aes_key: bytes, nonce: bytes) -> bytes:
        return encrypt_jpeg(plaintext, aes_key, nonce, float(self.window), float(self.offset))

    def decrypt(self, protected: bytes, aes_key: bytes, nonce: bytes) -> bytes:
        return decrypt_jpeg(protected, aes_key, nonce, float(self.window), float(self.offset))
