"""What the JPEG 2000 and JPEG selective-encryption schemes share: the window, names, keys, batched coding.

A :class:`~benchmark.core.component.CodestreamScheme` encrypts the bytes of
a public window of ``window`` % at ``offset`` % of a codestream. This module
holds the one definition of what a window may be (:meth:`WindowScheme._validate_extra`),
of how numbers appear in the papers' scheme names (:func:`format_number`),
and of how the harness keys a sample: the AES key of an application is
``key.derive("<scheme>/aes/<encoder settings>")`` and the AES-CTR nonce of a
sample ``key.nonce(sample id)``, so no (key, nonce) pair is used for two
plaintexts within a run (every setting that changes the plaintext is in the
label). ``facesec protect`` keys files differently (a synthetic IV, see
:mod:`benchmark.cli.sidecar`) with the same :meth:`encrypt`.

Faces whose three channels are equal are coded as one grey component, as the
papers' grey face samples are; a decoded grey face is replicated to RGB.
Coding runs in a process pool of :func:`benchmark.core.parallel.default_workers`
size; results do not depend on it.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import ClassVar, Self

import numpy as np

from benchmark.codecs import check_declared_size
from benchmark.core.component import FACE_SHAPE, CodestreamScheme, Interval, ParamError, to_face
from benchmark.core.executors import sample_deadline
from benchmark.core.keys import AppKey
from benchmark.core.parallel import default_workers, map_chunks

__all__ = ["WindowScheme", "format_number", "NUMBER_PATTERN", "as_codec_input"]

#: A percentage in a scheme name: digits with optional decimals.
NUMBER_PATTERN = r"\d+(?:\.\d+)?"
_AES_BITS = 256
_FACE = FACE_SHAPE


def format_number(x: float) -> str:
    """A percentage as scheme names write it: the shortest exact decimal, no exponent (``0.5``, ``4``)."""
    # repr is the shortest string that reads back to the same float; Decimal
    # turns its exponent form (1e-05) into plain digits the name parser accepts.
    text = format(Decimal(repr(float(x))), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def as_codec_input(image: np.ndarray) -> np.ndarray:
    """A face as the codec gets it: one grey plane when its three channels are equal."""
    if image.ndim == 3 and (image == image[..., :1]).all():
        return np.ascontiguousarray(image[..., 0])
    return image


def _decode_chunk(scheme: CodestreamScheme, blobs: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Worker: decode blobs; a failure to decode is flagged, never raised."""
    faces = np.zeros((len(blobs), *_FACE), np.uint8)
    failed = np.zeros(len(blobs), bool)
    for i, blob in enumerate(blobs):
        try:
            with sample_deadline():  # a stored sample is untrusted: a decoder may hang on it
                faces[i] = _decode_face(scheme, blob)
        except (ValueError, OSError, MemoryError):  # CodestreamError is a ValueError
            failed[i] = True
    return faces, failed


def _decode_face(scheme: CodestreamScheme, blob: bytes) -> np.ndarray:
    """One face; a header declaring another size is refused before the decoder allocates it."""
    check_declared_size(blob, (_FACE[1], _FACE[0]))
    return to_face(scheme.decode_one(blob))


def _decode_failed(blobs: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """What stands for blobs whose decoding crashed its worker or ran past the time limit."""
    return np.zeros((len(blobs), *_FACE), np.uint8), np.ones(len(blobs), bool)


def _protect_chunk(scheme: WindowScheme, key: AppKey, items: Sequence[tuple[np.ndarray, str]]) -> list[bytes]:
    aes = scheme.aes_key(key)
    return [scheme.encrypt(scheme.encode(as_codec_input(img)), aes, key.nonce(sid)) for img, sid in items]


def _recover_chunk(scheme: WindowScheme, key: AppKey, items: Sequence[tuple[bytes, str]]) -> np.ndarray:
    aes = scheme.aes_key(key)
    return np.stack([_decode_face(scheme, scheme.decrypt(blob, aes, key.nonce(sid))) for blob, sid in items])


class WindowScheme(CodestreamScheme):
    """Shared implementation of the codestream schemes: window, name, harness keying, batched coding.

    Subclasses set ``_letters`` (name letter per protocol value of
    ``_letter_param``, or one letter for all), ``_options`` (the name
    suffixes and the parameters they set), :meth:`_key_label`, and the
    codec methods of :class:`~benchmark.core.component.CodestreamScheme`.
    """

    window: float
    offset: float
    _common: ClassVar[dict] = {
        "window": Interval(float, 0, 100, closed="right"),
        "offset": Interval(float, 0, 100, closed="left"),
    }
    #: Protocol value of ``_letter_param`` -> the name's first letter.
    _letters: ClassVar[dict[str, str]] = {}
    _letter_param: ClassVar[str | None] = None
    #: The name's second letter, before the window: ``w`` (``lw4o6``), ``a`` for JPEG amplitudes (``ja10o0``).
    _window_letter: ClassVar[str] = "w"
    #: Regular expression of the name's option suffix (``-restart``), read by :meth:`_suffix_params`.
    _suffix: ClassVar[str] = ""
    #: Encoder setting -> the parameter that sets it (:meth:`with_encoder`).
    _encoder_params: ClassVar[dict[str, str]] = {}

    def _validate_extra(self) -> None:
        # The one place where a window is checked; the cipher only clips.
        # A tolerance: offset = 100 - window computed in floating point may exceed it by an ulp.
        if float(self.window) + float(self.offset) > 100.0 + 1e-9:
            raise ParamError(
                "window",
                self.window,
                f"plus offset {self.offset!r} exceeds 100 (the window must end inside the codestream)",
            )

    # ----------------------------------------------------------------- names

    def _letter(self) -> str:
        if self._letter_param is None:
            return next(iter(self._letters.values()))
        return self._letters[getattr(self, self._letter_param)]

    def paper_name(self) -> str:
        """The papers' name of the window: ``lw4o6`` = layer progression, window 4 %, offset 6 %."""
        return f"{self._letter()}{self._window_letter}{format_number(self.window)}o{format_number(self.offset)}"

    def _suffix_text(self) -> str:
        return ""

    def label(self) -> str:
        """:meth:`paper_name` plus a suffix for non-default coding options (``-restart``, ``-ri7``)."""
        return self.paper_name() + self._suffix_text()

    @classmethod
    def _name_re(cls) -> re.Pattern[str]:
        letters = "".join(sorted(set(cls._letters.values())))
        return re.compile(
            rf"(?P<p>[{letters}]){cls._window_letter}(?P<w>{NUMBER_PATTERN})o(?P<o>{NUMBER_PATTERN}){cls._suffix}"
        )

    @classmethod
    def _suffix_params(cls, match: re.Match[str]) -> dict:
        return {}

    @classmethod
    def from_name(cls, name: str) -> Self | None:
        """Parse :meth:`label` output (``lw4o6``, ``rw0.5o3-restart``, ``jw10o0-ri7``); None for another form.

        Raises:
            ParamError: a name of this form whose window is not allowed.
        """
        m = cls._name_re().fullmatch(name) if isinstance(name, str) else None
        if m is None:
            return None
        params: dict = {"window": float(m["w"]), "offset": float(m["o"]), **cls._suffix_params(m)}
        if cls._letter_param is not None:
            params[cls._letter_param] = next(k for k, v in cls._letters.items() if v == m["p"])
        return cls.from_params(params)

    def with_encoder(self, encoder: dict) -> Self:
        params = self.get_params()
        params.update({p: encoder[s] for s, p in self._encoder_params.items() if s in encoder})
        scheme = type(self).from_params(params)
        mine = scheme.settings().get("encoder", {})
        if json.loads(json.dumps(mine)) != json.loads(json.dumps(encoder)):
            raise ParamError("encoder", encoder, f"are not settings a {self.registry_name} scheme produces ({mine})")
        return scheme

    # ----------------------------------------------------------------- keys and coding

    def _key_label(self) -> str:
        """Every encoder setting that changes the plaintext codestream, as text."""
        raise NotImplementedError

    def aes_key(self, key: AppKey) -> bytes:
        """The harness's AES key of an application: ``key.derive("<scheme>/aes/<settings>")``."""
        return key.derive(f"{self.registry_name}/aes/{self._key_label()}")

    def protect(
        self, images: np.ndarray, key: AppKey, sample_ids: Sequence[str], subjects: Sequence[str]
    ) -> list[bytes]:
        items = list(zip(images, sample_ids))
        fn = functools.partial(_protect_chunk, self, key)
        parts = map_chunks(fn, items, workers=default_workers(), desc=f"protect {self.label()}")
        return [b for part in parts for b in part]

    def decode(self, protected: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[override]
        fn = functools.partial(_decode_chunk, self)
        parts = map_chunks(
            fn, list(protected), workers=default_workers(), desc=f"decode {self.label()}", failure=_decode_failed
        )
        if not parts:
            return np.zeros((0, *_FACE), np.uint8), np.zeros(0, bool)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def recover(  # type: ignore[override]
        self, protected: Sequence[bytes], key: AppKey, sample_ids: Sequence[str], subjects: Sequence[str]
    ) -> np.ndarray:
        fn = functools.partial(_recover_chunk, self, key)
        parts = map_chunks(fn, list(zip(protected, sample_ids)), workers=default_workers(), desc="recover")
        return np.concatenate(parts) if parts else np.zeros((0, *_FACE), np.uint8)

    def key_space_bits(self) -> float:
        """256: the AES key of each application."""
        return float(_AES_BITS)
