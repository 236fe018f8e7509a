"""``j2k``: format-compliant selective encryption of JPEG 2000 face samples (ICASSP 2021).

The scheme of "Highly Efficient Protection of Biometric Face Samples with
Selective JPEG2000 Encryption" (ICASSP 2021): the aligned face is stored as
ISO/IEC 19794-5 recommends (lossless, layered JPEG 2000 with SOP/EPH markers)
and only packet-body bytes inside a window of the codestream are encrypted
with a format-compliant AES-CTR rule (:mod:`benchmark.codecs.cipher`), so
any standard decoder still decodes the protected sample (to a distorted
face). Names follow the paper: ``lw4o6`` is layer progression (LRCP), window
4 % of the codestream at offset 6 %; ``rw…`` resolution progression (RLCP);
``pw…`` RPCL; ``-restart`` marks the RESTART coding mode.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import numpy as np

from benchmark.codecs.cipher import decrypt_j2k, encrypt_j2k
from benchmark.codecs.j2k import DEFAULT_RATIOS, J2KParams, decode_j2k, encode_j2k
from benchmark.core.component import ByteCipherScheme, InstanceOf, Interval, Options, ParamError
from benchmark.core.registry import SCHEMES
from schemes.codestream import WindowScheme

__all__ = ["J2KScheme"]


@SCHEMES.register("j2k")
class J2KScheme(WindowScheme, ByteCipherScheme):
    """Selective format-compliant AES-CTR encryption of a JPEG2000 codestream window.

    Args:
        progression: ``layer`` (LRCP, names ``lw…``), ``resolution`` (RLCP,
            ``rw…``) or ``rpcl`` (RPCL, ``pw…``).
        window: Window length, % of the codestream's byte length, in (0, 100].
        offset: Window start, % of the codestream's byte length, in [0, 100);
            window + offset at most 100.
        ratios: Compression ratios of the quality layers, strictly decreasing;
            the final 1 is lossless.
        restart: Code-block style RESTART with ERTERM and SEGMARK (names end in ``-restart``).
    """

    codec = "j2k"
    suffix = ".j2k"
    #: Protocol progression name -> (codestream progression order, name letter).
    PROGRESSIONS: ClassVar[dict[str, tuple[str, str]]] = {
        "layer": ("LRCP", "l"),
        "resolution": ("RLCP", "r"),
        "rpcl": ("RPCL", "p"),
    }
    _letters = {name: letter for name, (_, letter) in PROGRESSIONS.items()}
    _letter_param = "progression"
    _suffix = r"(?P<restart>-restart)?"
    _encoder_params = {"restart": "restart", "ratios": "ratios"}
    _constraints = {
        **WindowScheme._common,
        "progression": Options(tuple(PROGRESSIONS)),
        "ratios": InstanceOf((list, tuple), item=Interval(float, 1, None)),
        "restart": InstanceOf((bool,)),
    }

    def __init__(self, *, progression="layer", window=4.0, offset=0.0, ratios=DEFAULT_RATIOS, restart=False):
        self.progression = progression
        self.window = window
        self.offset = offset
        self.ratios = ratios
        self.restart = restart

    def _validate_extra(self) -> None:
        super()._validate_extra()
        r = list(self.ratios)
        if not r or any(a <= b for a, b in zip(r, r[1:])):
            raise ParamError("ratios", self.ratios, "must be a non-empty, strictly decreasing list")
        if r[-1] != 1:
            raise ParamError("ratios", self.ratios, "must end in 1 (the lossless final layer)")
        try:
            self.codec_params()
        except ValueError as exc:  # the codec's own limits (at most 100 layers)
            raise ParamError("ratios", self.ratios, str(exc).removeprefix("ratios: ")) from None

    @classmethod
    def name_forms(cls) -> str:
        return "lw<W>o<O>, rw<W>o<O> or pw<W>o<O> (JPEG 2000 in layer, resolution or RPCL progression; -restart for RESTART)"

    def _suffix_text(self) -> str:
        return "-restart" if self.restart else ""

    @classmethod
    def _suffix_params(cls, match: re.Match[str]) -> dict:
        return {"restart": True} if match["restart"] else {}

    def codec_params(self) -> J2KParams:
        """The encoder parameters: lossless, layered, SOP/EPH markers on."""
        return J2KParams(
            progression=self.PROGRESSIONS[self.progression][0],
            ratios=tuple(float(x) for x in self.ratios),
            restart=bool(self.restart),
        )

    def settings(self) -> dict[str, Any]:
        return {"encoder": self.codec_params().as_dict()}

    def _key_label(self) -> str:
        p = self.codec_params()
        return f"{p.progression}/{','.join(f'{x:g}' for x in p.ratios)}/restart={int(p.restart)}"

    def encode(self, image: np.ndarray) -> bytes:
        return encode_j2k(image, self.codec_params())

    def decode_one(self, data: bytes) -> np.ndarray:
        return decode_j2k(data)

    def encrypt(self, plaintext: bytes, aes_key: bytes, nonce: bytes) -> bytes:
        return encrypt_j2k(plaintext, aes_key, nonce, float(self.window), float(self.offset))

    def decrypt(self, protected: bytes, aes_key: bytes, nonce: bytes) -> bytes:
        return decrypt_j2k(protected, aes_key, nonce, float(self.window), float(self.offset))
