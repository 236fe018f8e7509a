"""``dlib``: dlib's ResNet face recogniser (128-D), an optional extra.

Install with ``pip install 'facesec-bench[dlib]'`` (``dlib-bin`` and
``face-recognition-models``, which ships the model files; see
:func:`benchmark.data.models.dlib_model_paths`).

dlib's network expects 150x150 chips cut by ``dlib.get_face_chip`` from its
own 5-point landmarks (padding 0.25), a looser crop than the 112x112 ArcFace
alignment the harness produces. Two ways of getting there from an aligned face
are offered (``chip``):

* ``"landmarks"`` (default): dlib's 5-point shape predictor runs on the
  aligned face with the whole image as the face box, and dlib cuts its own
  chip from it (``compute_face_descriptor(image, shape)``). The chip then
  has dlib's geometry; the parts of it outside the 112x112 crop are black.
* ``"resize"``: the aligned face is resized to 150x150 and used as the chip
  directly. No second landmarking, but the face is framed the ArcFace way,
  tighter than dlib was trained on; its error rates on ORL and LFW are
  several times those of ``"landmarks"``, so it is kept only for comparison.

Features are dlib's unnormalised descriptors; the score is the negative
Euclidean distance, the metric dlib's model was trained for (its usual
same-person threshold is a distance of 0.6).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmark.core.component import Interval, Options, Recognizer, check_faces
from benchmark.core.registry import RECOGNIZERS
from benchmark.data.models import ModelError, dlib_model_paths
from benchmark.recognizers.distances import euclidean

__all__ = ["DLIB_DIM", "CHIP_SIZE", "DlibRecognizer"]

DLIB_DIM = 128
CHIP_SIZE = 150
_INSTALL_HINT = "dlib not installed: pip install 'facesec-bench[dlib]'"


@functools.lru_cache(maxsize=1)
def _process_models() -> tuple[Any, Any]:
    # Loaded once per process: a worker receives a fresh copy of the
    # recognizer with every chunk, and reading the models costs seconds.
    try:
        import dlib
    except ImportError:
        raise RuntimeError(_INSTALL_HINT) from None

    paths = dlib_model_paths()
    return dlib.face_recognition_model_v1(str(paths["recognizer"])), dlib.shape_predictor(str(paths["shape_predictor"]))


@RECOGNIZERS.register("dlib")
class DlibRecognizer(Recognizer):
    """dlib ResNet 128-D descriptors (optional extra), score = -Euclidean distance.

    Args:
        chip: How the 150x150 chip dlib expects is made from the aligned
            face: ``"landmarks"`` (dlib's 5-point predictor and chip
            extraction) or ``"resize"`` (the aligned face resized).
        jitters: dlib's ``num_jitters``: 0 or 1 embed the chip once; more
            average over randomly jittered copies (dlib seeds its own
            generator, so results stay reproducible), at that many times
            the cost.
    """

    _constraints = {
        "chip": Options(("landmarks", "resize")),
        "jitters": Interval(int, 0, 100),
    }

    def __init__(self, *, chip: str = "landmarks", jitters: int = 0):
        self.chip = chip
        self.jitters = jitters

    def __getstate__(self) -> dict[str, Any]:
        # dlib's model objects do not pickle; workers load their own.
        return {k: v for k, v in self.__dict__.items() if not k.endswith("_")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def available(self) -> str | None:
        """None when dlib and its model files are installed."""
        try:
            import dlib  # noqa: F401
        except ImportError:
            return _INSTALL_HINT

        try:
            dlib_model_paths()
        except ModelError as exc:
            return str(exc)
        return None

    def fit(self, images: np.ndarray | None = None, subjects: Sequence[str] | None = None):
        """Validate the parameters; there is nothing to learn."""
        self.validate()
        return self

    def _models(self) -> tuple[Any, Any]:
        if getattr(self, "net_", None) is None:
            self.net_, self.predictor_ = _process_models()
        return self.net_, self.predictor_

    def _describe(self, face: np.ndarray) -> np.ndarray:
        import dlib

        net, predictor = self._models()
        if self.chip == "resize":
            import cv2

            chip = cv2.resize(face, (CHIP_SIZE, CHIP_SIZE), interpolation=cv2.INTER_LINEAR)
            return np.asarray(net.compute_face_descriptor(chip, self.jitters), dtype=np.float32)
        h, w = face.shape[:2]
        shape = predictor(face, dlib.rectangle(0, 0, w - 1, h - 1))
        return np.asarray(net.compute_face_descriptor(face, shape, self.jitters), dtype=np.float32)

    def transform(self, images: np.ndarray) -> np.ndarray:
        """Describe aligned faces.

        Args:
            images: uint8 (N, 112, 112, 3) RGB.

        Returns:
            float32 (N, 128) dlib descriptors (not normalised).
        """
        self.validate()
        images = check_faces(images)
        out = np.zeros((len(images), DLIB_DIM), dtype=np.float32)
        for i, face in enumerate(images):
            out[i] = self._describe(np.ascontiguousarray(face))
        return out

    def compare(self, probe: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Negative Euclidean distance of row i of ``probe`` and of ``reference``."""
        return -euclidean(probe, reference)
