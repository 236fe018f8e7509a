"""``noise``: a TEST/REFERENCE scheme, not a protection method.

It adds a key-seeded Gaussian noise pattern to each face. The pattern is the
same for every sample protected under one application key (or under one
(application, subject) pair), so it is a weak, easily averaged-out
perturbation: it exists to exercise the harness end to end (keys, protected
views, attacks, irreversibility metrics) with a scheme whose behaviour is
obvious, and as a floor that a real scheme must beat. Do not use it to
protect anything.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from benchmark.core.component import InstanceOf, Interval, Protected, Scheme, check_faces
from benchmark.core.keys import AppKey
from benchmark.core.registry import SCHEMES

__all__ = ["NoiseScheme"]

_SHAPE = (112, 112, 3)


@SCHEMES.register("noise")
class NoiseScheme(Scheme):
    """Reference scheme (not a protection): adds a key-seeded Gaussian noise pattern.

    ``protected = clip(round(image + pattern), 0, 255)`` with ``pattern`` a
    (112, 112) field of N(0, sigma) values shared by the three channels, so a
    grey face stays grey. The pattern is drawn from
    ``numpy.random.default_rng(key.seed(label))`` where ``label`` is
    ``"noise/pattern"``, or ``"noise/subject/<subject id>"`` when
    ``per_subject``: one pattern per application, or per (application,
    subject). A new application id (renewal) gives an independent pattern.

    Args:
        sigma: Standard deviation of the pattern in grey levels, in [0, 255];
            0 gives back the images unchanged.
        per_subject: Draw one pattern per subject instead of one per
            application key.
    """

    domain = "cancelable"
    _constraints = {
        "sigma": Interval(float, 0.0, 255.0),
        "per_subject": InstanceOf((bool,)),
    }

    def __init__(self, *, sigma: float = 20.0, per_subject: bool = False) -> None:
        self.sigma = sigma
        self.per_subject = per_subject

    def _pattern(self, key: AppKey, label: str) -> np.ndarray:
        rng = np.random.default_rng(key.seed(label))
        return rng.normal(0.0, float(self.sigma), size=(_SHAPE[0], _SHAPE[1], 1))

    def protect(
        self, images: np.ndarray, key: AppKey, sample_ids: Sequence[str], subjects: Sequence[str]
    ) -> np.ndarray:
        """Add the key's pattern to each image.

        Args:
            images: Aligned faces, uint8 (N, 112, 112, 3).
            key: The application key (:class:`benchmark.core.keys.AppKey`).
            sample_ids: Sample ids (unused: the pattern does not depend on them).
            subjects: Subject id of each image (used when ``per_subject``).

        Returns:
            Protected faces, uint8 (N, 112, 112, 3).
        """
        self.validate()
        arr = check_faces(images)
        if len(subjects) != len(arr):
            raise ValueError(f"got {len(subjects)} subjects for {len(arr)} images")
        if len(arr) == 0:
            return arr.copy()
        if self.per_subject:
            # One draw per distinct subject, then one gather: no loop over images.
            names, index = np.unique(np.asarray(subjects, dtype=str), return_inverse=True)
            patterns = np.stack([self._pattern(key, f"noise/subject/{s}") for s in names])
            noise = patterns[index.reshape(-1)]
        else:
            noise = self._pattern(key, "noise/pattern")[None]
        out = np.rint(arr.astype(np.float64) + noise)
        return np.clip(out, 0, 255).astype(np.uint8)

    def decode(self, protected: Protected) -> tuple[np.ndarray, np.ndarray]:
        """A standard viewer shows the noisy image as it is; nothing fails."""
        arr = check_faces(protected)
        return arr.copy(), np.zeros(len(arr), dtype=bool)

    def recover(
        self, protected: Protected, key: AppKey, sample_ids: Sequence[str], subjects: Sequence[str]
    ) -> np.ndarray:
        """Not offered: a cancelable scheme compares in the protected domain.

        Subtracting the pattern would not be exact anyway, because pixels
        clipped at 0 or 255 lost information.
        """
        raise NotImplementedError(
            "noise is a cancelable (reference) scheme: comparison happens in the protected domain; "
            "it has no recovery path (clipping makes the noise non-invertible anyway)"
        )

    def key_space_bits(self) -> float:
        """128: the size of the derived seed that fixes the pattern.

        This is the theoretical key space an attacker must search to find the
        pattern by brute force (the 128-bit seed from :meth:`AppKey.seed`, fed
        to numpy's PCG64), not the entropy of the pattern, and it says nothing
        about how well the noise hides the face: averaging protected samples
        or simple denoising undoes much of it without the key.
        """
        return 128.0
