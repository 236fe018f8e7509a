"""``invert``: the attacker who knows the victim's key (stolen token) undoes a cancelable transform.

ISO/IEC 24745 asks a cancelable template to be irreversible even to whoever
holds its key (the stolen-token scenario); the keyless attacks only show it is
irreversible to whoever does not. This attack is given the application key
the victim's samples were protected under and the scheme's parameters, and
asks the scheme for its inverse (:meth:`~benchmark.core.component.InvertibleScheme.invert`):
inverse warping (linear interpolation of the scattered samples), inverse
re-mapping (the inverse permutation). What the transform discarded (face
border pulled inward or folded away by a warp, blocks a many-to-one
re-mapping dropped) is filled by inpainting and counted per sample
(``filled_pixels``; for re-mapping, ``filled_pixels / block**2`` blocks).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from benchmark.core.component import (
    AttackResult,
    InvertibleScheme,
    KeyedAttack,
    Protected,
    Scheme,
    check_faces,
)
from benchmark.core.keys import AppKey
from benchmark.core.registry import ATTACKS

__all__ = ["InvertAttack"]


@ATTACKS.register("invert")
class InvertAttack(KeyedAttack):
    """Inversion of a cancelable transform with the victim's key (stolen token) and the scheme's parameters.

    Refuses schemes that are not cancelable templates: an encryption
    scheme's key decrypts, which is its legitimate path (the preservation
    view), not an attack on a template.
    """

    knowledge = "the victim's key (stolen token) and the scheme's parameters; protected samples; no training data"
    requires = InvertibleScheme
    counters = ("filled_pixels",)
    _constraints = {}

    def __init__(self) -> None:
        pass

    def incompatibility(self, scheme: Scheme) -> str | None:
        """Why ``scheme`` cannot be inverted: not a cancelable template, or no inverse offered."""
        if scheme.domain != "cancelable":
            return (
                f"not a cancelable template ({scheme.domain} scheme: its key decrypts, which is the "
                "legitimate recovery the preservation view measures)"
            )
        return super().incompatibility(scheme)

    def attack_with_key(
        self, protected: Protected, scheme: Scheme, key: AppKey, sample_ids: Sequence[str], subjects: Sequence[str]
    ) -> AttackResult:
        """Invert ``protected`` with the key it was protected under.

        Returns:
            Images uint8 (N, 112, 112, 3), no failures, and ``filled_pixels``
            (N,): pixels the transform discarded, filled rather than recovered.
        """
        problem = self.incompatibility(scheme)
        if problem is not None:
            raise ValueError(f"{self.registry_name} cannot attack {type(scheme).__name__}: {problem}")
        assert isinstance(scheme, InvertibleScheme)
        images, filled = scheme.invert(check_faces(protected), key, sample_ids, subjects)
        return AttackResult(images, np.zeros(len(images), bool), {"filled_pixels": np.asarray(filled, np.int64)})
