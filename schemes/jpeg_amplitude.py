"""``jpeg-amplitude``: syntax-compliant selective encryption of a baseline JPEG's amplitude bits.

Beside :mod:`schemes.jpeg`, which encrypts whole entropy-coded bytes (any
decoder shows the result, but the reference decoder reports corrupt data),
this scheme encrypts, for the coefficients whose Huffman code starts in the
window, only the amplitude bits appended to each code (sign and magnitude
within its category), with the AES-CTR keystream of
:mod:`benchmark.codecs.cipher`. Huffman codes, run lengths, EOB/ZRL and
categories stay, so the scan is valid JPEG that every decoder reads without
a warning; only the byte stuffing is redone, so the length may change by a
few bytes. ``coefficients: ac`` leaves the DC differences alone (the image's
coarse brightness stays). With ``all``, each DC value is the running sum of
encrypted differences, which wanders: a protected face may carry quantised DC
values beyond the 1024 an 8-bit encoder can produce. The scan stays valid
syntax and decoders clamp the pixels, but a validator that checks
coefficient ranges could object; ``ac`` never does this. The window is a share of the scan's entropy-coded
data with stuffing and RST markers left out, which differs from ``jpeg``'s by
those few bytes, so window sweeps compare.

Names: ``ja10o0`` (window 10 % at offset 0), ``ja10o0-ac`` for AC only, then
``-ri7`` / ``-q75`` as ``jpeg``. Error concealment (``conceal-mcu``) does not
apply: no MCU is undecodable, so there is nothing to find and drop; the naive
decode and the learned attacks do.
"""

from __future__ import annotations

import re

from benchmark.codecs.amplitude import decrypt_jpeg_amplitudes, encrypt_jpeg_amplitudes
from benchmark.codecs.jpeg import DEFAULT_QUALITY
from benchmark.core.component import Options
from benchmark.core.registry import SCHEMES
from schemes.jpeg import BaselineJPEGScheme

__all__ = ["JPEGAmplitudeScheme"]


@SCHEMES.register("jpeg-amplitude")
class JPEGAmplitudeScheme(BaselineJPEGScheme):
    """Syntax-compliant selective encryption of the amplitude bits of a baseline JPEG's coefficients.

    Args:
        quality: libjpeg quality, 1 to 100 (names end in ``-q<Q>`` unless it is the default).
        restart_interval: Restart interval in MCUs, 0 for none (names end in ``-ri<N>``).
        window: Window length, % of the scan's entropy-coded data, in (0, 100].
        offset: Window start, % of the scan's entropy-coded data, in [0, 100); window + offset at most 100.
        coefficients: ``all`` (DC differences and AC coefficients) or ``ac`` (AC only; names end in ``-ac``).
    """

    _window_letter = "a"
    _suffix = r"(?P<ac>-ac)?" + BaselineJPEGScheme._suffix
    _constraints = {**BaselineJPEGScheme._constraints, "coefficients": Options(("all", "ac"))}

    def __init__(self, *, quality=DEFAULT_QUALITY, restart_interval=0, window=4.0, offset=0.0, coefficients="all"):
        self.quality = quality
        self.restart_interval = restart_interval
        self.window = window
        self.offset = offset
        self.coefficients = coefficients

    @classmethod
    def name_forms(cls) -> str:
        return "ja<W>o<O> (baseline JPEG, amplitude bits; -ac for AC only, -ri<N> for a restart interval, -q<Q>)"

    def paper_name(self) -> str:
        """``ja10o0``, or ``ja10o0-ac`` for AC only: what is encrypted (a sidecar restores the scheme from it)."""
        return super().paper_name() + ("-ac" if self.coefficients == "ac" else "")

    @classmethod
    def _suffix_params(cls, match: re.Match[str]) -> dict:
        return {**super()._suffix_params(match), **({"coefficients": "ac"} if match["ac"] else {})}

    def encrypt(self, plaintext: bytes, aes_key: bytes, nonce: bytes) -> bytes:
        return encrypt_jpeg_amplitudes(
            plaintext, aes_key, nonce, float(self.window), float(self.offset), ac_only=self.coefficients == "ac"
        )

    def decrypt(self, protected: bytes, aes_key: bytes, nonce: bytes) -> bytes:
        return decrypt_jpeg_amplitudes(
            protected, aes_key, nonce, float(self.window), float(self.offset), ac_only=self.coefficients == "ac"
        )
