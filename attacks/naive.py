"""``naive``: the attacker views leaked protected samples with a standard decoder."""

from __future__ import annotations

import numpy as np

from benchmark.core.component import Attack, AttackResult, Protected, Scheme
from benchmark.core.registry import ATTACKS

__all__ = ["NaiveAttack"]


@ATTACKS.register("naive")
class NaiveAttack(Attack):
    """Standard decoding of leaked protected samples, without the key.

    The attacker holds the protected samples and knows the scheme and its
    parameters (Kerckhoffs), but not the key; the images are whatever the
    scheme's keyless :meth:`~benchmark.core.component.Scheme.decode` produces
    (a standard image viewer or codec). Samples that do not decode are
    flagged as failures to acquire.
    """

    knowledge = "protected samples and scheme parameters (Kerckhoffs); no key; no training data"
    # The keyless standard decode: every other attack on a scheme is compared with it image by image.
    reference = True
    _constraints = {}

    def __init__(self) -> None:
        pass

    def attack(self, protected: Protected, scheme: Scheme) -> AttackResult:
        """Decode ``protected`` as ``scheme`` says a standard decoder would.

        Returns:
            Images uint8 (N, 112, 112, 3) and failure flags; no counters.
        """
        images, failed = scheme.decode(protected)
        return AttackResult(images, np.asarray(failed, dtype=bool), {})
