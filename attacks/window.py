"""The shared base of the error-concealment attacks: rewrite a protected codestream without its window, decode.

Concrete attacks (:mod:`attacks.conceal` for JPEG 2000, :mod:`attacks.conceal_jpeg`
for JPEG) supply the format-specific rewrite and decoder; this module only
runs them over a batch in worker processes and collects the per-sample counters.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from benchmark.codecs import check_declared_size
from benchmark.core.component import (
    FACE_SHAPE,
    Attack,
    AttackResult,
    ByteCipherScheme,
    CodestreamScheme,
    Protected,
    Scheme,
    to_face,
)
from benchmark.core.executors import sample_deadline
from benchmark.core.parallel import default_workers, map_chunks

__all__ = ["WindowConcealAttack"]

_FACE = FACE_SHAPE


def _conceal_chunk(
    attack: WindowConcealAttack, window: float, offset: float, blobs: Sequence[bytes]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Worker: rewrite and decode; a sample that fails is flagged, never raised."""
    faces = np.zeros((len(blobs), *_FACE), np.uint8)
    failed = np.zeros(len(blobs), bool)
    counts = np.zeros((len(blobs), len(attack.counters)), np.int64)
    for i, blob in enumerate(blobs):
        try:
            with sample_deadline():  # a protected sample is untrusted: a parser may hang on it
                # A header declaring a huge image would make the rewrite and the decoder allocate it.
                check_declared_size(blob, (_FACE[1], _FACE[0]))
                rewritten, st = attack.rewrite(bytes(blob), window, offset)
                faces[i] = to_face(attack.decode(rewritten))
            counts[i] = [st[k] for k in attack.counters]
        except (ValueError, TypeError, OSError, MemoryError):  # CodestreamError is a ValueError
            failed[i] = True
    return faces, failed, counts


def _conceal_failed(n_counters: int, blobs: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What stands for samples whose concealment crashed its worker or ran past the time limit."""
    n = len(blobs)
    return np.zeros((n, *_FACE), np.uint8), np.ones(n, bool), np.zeros((n, n_counters), np.int64)


class WindowConcealAttack(Attack):
    """Base of the concealment attacks: rewrite each sample without its encrypted part, then decode.

    Subclasses declare :attr:`codec` (the codestream format they parse) and
    :attr:`~benchmark.core.component.Attack.counters`, and set :meth:`rewrite`
    (``(data, window, offset) -> (bytes, counts)``, a module-level function
    so worker processes can run it) and :meth:`decode`. They attack
    :class:`~benchmark.core.component.ByteCipherScheme` schemes of that
    format (whole bytes of the window encrypted), reading only the public
    ``window`` and ``offset`` (Kerckhoffs).
    """

    knowledge = (
        "protected codestreams and the public scheme parameters (window, offset; Kerckhoffs); no key; no training data"
    )
    requires = ByteCipherScheme
    #: The codestream format this attack parses (``CodestreamScheme.codec``).
    codec: ClassVar[str] = ""
    _constraints = {}

    def __init__(self) -> None:
        pass

    def incompatibility(self, scheme: Scheme) -> str | None:
        problem = super().incompatibility(scheme)
        if problem is None and isinstance(scheme, CodestreamScheme) and scheme.codec != self.codec:
            problem = f"parses {self.codec} codestreams, not {scheme.codec}"
        return problem

    @staticmethod
    def rewrite(data: bytes, window: float, offset: float, /) -> tuple[bytes, dict[str, int]]:
        """A valid file without the encrypted part of ``data``, and counts of what was left out."""
        raise NotImplementedError

    @staticmethod
    def decode(data: bytes, /) -> np.ndarray:
        """Decode a rewritten file to uint8 (H, W) or (H, W, 3)."""
        raise NotImplementedError

    def attack(self, protected: Protected, scheme: Scheme) -> AttackResult:
        """Conceal the encrypted part of each sample and decode the rest.

        Args:
            protected: Protected files (bytes), one per sample.
            scheme: A :class:`~benchmark.core.component.CodestreamScheme` of
                format :attr:`codec`; only its public ``window`` and
                ``offset`` are read.

        Returns:
            Images uint8 (N, 112, 112, 3), failure flags, and per-sample
            counts of what was left out (int64, zero for failed samples).

        Raises:
            ValueError: a scheme this attack cannot attack (:meth:`incompatibility`).
        """
        problem = self.incompatibility(scheme)
        if problem is not None:
            raise ValueError(f"{self.registry_name} cannot attack {type(scheme).__name__}: {problem}")
        assert isinstance(scheme, CodestreamScheme)
        fn = functools.partial(_conceal_chunk, self, float(scheme.window), float(scheme.offset))
        failure = functools.partial(_conceal_failed, len(self.counters))
        parts = map_chunks(fn, list(protected), workers=default_workers(), desc=self.registry_name, failure=failure)
        if not parts:
            empty = {k: np.zeros(0, np.int64) for k in self.counters}
            return AttackResult(np.zeros((0, *_FACE), np.uint8), np.zeros(0, bool), empty)
        counts = np.concatenate([p[2] for p in parts])
        return AttackResult(
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            {k: counts[:, j] for j, k in enumerate(self.counters)},
        )
