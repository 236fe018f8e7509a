"""Tests of benchmark.data.align: YuNet detection and ArcFace 5-point alignment."""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmark.data.align import (
    ARCFACE_TEMPLATE,
    FACE_SIZE,
    Aligner,
    Detection,
    _norm_crop,
    align_batch,
    align_face,
    centre_crop,
    to_rgb,
)
from benchmark.data.imageio import read_image

# How far (pixels, mean over the five points) YuNet's landmarks on an aligned
# face may be from the template. The detector's own landmark noise is a few
# pixels (3-8 px on these faces); a mirrored landmark order gives about 20 px
# or no detection at all.
LANDMARK_TOLERANCE = 10.0


@pytest.fixture(scope="module")
def aligner() -> Aligner:
    return Aligner()


@pytest.fixture(scope="module")
def synthetic_faces() -> np.ndarray:
    from benchmark.core.registry import DATASETS

    return DATASETS.get("synthetic")(n_subjects=3, n_images=1, seed=0).load(None).images


def _landmark_error(aligner: Aligner, face: np.ndarray) -> float:
    """Mean landmark distance to the template when re-detecting on ``face``."""
    found = aligner.detect(face)
    if not found:
        return np.inf
    offsets = aligner.select(found, face.shape).landmarks - ARCFACE_TEMPLATE
    return float(np.linalg.norm(offsets, axis=1).mean())


def _tilted(face: np.ndarray, angle: float) -> np.ndarray:
    """The face rotated in-plane and shrunk inside a larger frame."""
    matrix = cv2.getRotationMatrix2D((56.0, 56.0), angle, 0.8)
    return cv2.resize(cv2.warpAffine(face, matrix, (112, 112)), (200, 200), interpolation=cv2.INTER_LINEAR)


# --------------------------------------------------------------------------- helpers


def test_template_is_insightface_arcface() -> None:
    from insightface.utils.face_align import arcface_dst

    np.testing.assert_array_equal(ARCFACE_TEMPLATE, arcface_dst)
    # Image-side order: image-left eye, image-right eye, nose, then mouth corners.
    eyes, nose, mouth = ARCFACE_TEMPLATE[:2], ARCFACE_TEMPLATE[2], ARCFACE_TEMPLATE[3:]
    assert eyes[0, 0] < nose[0] < eyes[1, 0] and mouth[0, 0] < mouth[1, 0]
    assert eyes[:, 1].max() < nose[1] < mouth[:, 1].min()


def test_to_rgb_shapes() -> None:
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for image in (grey, grey[:, :, None]):
        rgb = to_rgb(image)
        assert rgb.shape == (3, 4, 3)
        assert all(np.array_equal(rgb[:, :, c], grey) for c in range(3))
    rgba = np.zeros((3, 4, 4), np.uint8)
    assert to_rgb(rgba).shape == (3, 4, 3)
    with pytest.raises(ValueError, match="uint8"):
        to_rgb(grey.astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        to_rgb(np.zeros((3, 4, 2), np.uint8))


def test_centre_crop_is_central_square() -> None:
    image = np.zeros((100, 60, 3), np.uint8)
    image[20:80] = 255  # exactly the central 60x60 square
    crop = centre_crop(image)
    assert crop.shape == (FACE_SIZE, FACE_SIZE, 3) and crop.dtype == np.uint8
    assert crop.min() == 255


def test_select_prefers_the_centred_face() -> None:
    def face(x: float, y: float, size: float, score: float) -> Detection:
        return Detection(np.array([x, y, size, size], np.float32), np.zeros((5, 2), np.float32), score)

    centred = face(70, 70, 60, 0.7)
    sharper_bystander = face(0, 0, 90, 0.99)
    assert Aligner.select([sharper_bystander, centred], (200, 200, 3)) is centred
    assert Aligner.select([], (200, 200, 3)) is None


# --------------------------------------------------------------------------- fallback


@pytest.mark.parametrize("shape", [(200, 160, 3), (120, 200)])
def test_blank_image_falls_back_to_centre_crop(aligner: Aligner, shape: tuple[int, ...]) -> None:
    image = np.full(shape, 90, np.uint8)
    image[..., : shape[1] // 4] = 10  # a dark band left of the central square
    face, detected = aligner.align(image)
    assert not detected
    assert face.shape == (FACE_SIZE, FACE_SIZE, 3) and face.dtype == np.uint8
    np.testing.assert_array_equal(face, centre_crop(to_rgb(image)))


def test_grey_input_gives_three_equal_channels(aligner: Aligner, synthetic_faces: np.ndarray) -> None:
    grey = cv2.cvtColor(_tilted(synthetic_faces[0], 0.0), cv2.COLOR_RGB2GRAY)
    face, detected = aligner.align(grey)
    assert detected and face.shape == (FACE_SIZE, FACE_SIZE, 3)
    assert np.array_equal(face[..., 0], face[..., 1]) and np.array_equal(face[..., 1], face[..., 2])


def test_module_functions_and_batch(synthetic_faces: np.ndarray) -> None:
    images = [_tilted(synthetic_faces[0], 10.0), np.zeros((50, 80), np.uint8)]
    faces, detected = align_batch(images)
    assert faces.shape == (2, FACE_SIZE, FACE_SIZE, 3) and faces.dtype == np.uint8
    assert detected.dtype == bool and detected.tolist() == [True, False]
    single, found = align_face(images[0])
    assert found and np.array_equal(single, faces[0])
    empty, none = Aligner().align_batch([])
    assert empty.shape == (0, FACE_SIZE, FACE_SIZE, 3) and none.shape == (0,)


def test_aligner_pickles_without_detector(aligner: Aligner, synthetic_faces: np.ndarray) -> None:
    aligner.align(synthetic_faces[0])
    assert aligner.detector_ is not None
    copy = pickle.loads(pickle.dumps(aligner))
    assert not hasattr(copy, "detector_")
    assert copy.score_threshold == aligner.score_threshold
    face, _ = copy.align(synthetic_faces[0])
    np.testing.assert_array_equal(face, aligner.align(synthetic_faces[0])[0])


# --------------------------------------------------------------------------- landmarks


def test_landmark_order_is_image_side(aligner: Aligner, synthetic_faces: np.ndarray) -> None:
    lm = aligner.select(aligner.detect(_tilted(synthetic_faces[1], 0.0)), (200, 200)).landmarks
    # YuNet's "right eye" (subject's right) is on the image's left, like the template's first point.
    assert lm[0, 0] < lm[2, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]
    assert lm[:2, 1].max() < lm[2, 1] < lm[3:, 1].min()


@pytest.mark.parametrize("angle", [-25.0, 0.0, 25.0])
def test_aligned_landmarks_land_on_template(aligner: Aligner, synthetic_faces: np.ndarray, angle: float) -> None:
    for source in synthetic_faces:
        face, detected = aligner.align(_tilted(source, angle))
        assert detected
        assert _landmark_error(aligner, face) < LANDMARK_TOLERANCE


def test_swapped_landmark_order_would_fail(aligner: Aligner, synthetic_faces: np.ndarray) -> None:
    # The check above discriminates: mirroring the order breaks the alignment.
    image = _tilted(synthetic_faces[2], 25.0)
    lm = aligner.select(aligner.detect(image), image.shape).landmarks
    swapped = _norm_crop(to_rgb(image), lm[[1, 0, 2, 4, 3]])
    assert _landmark_error(aligner, swapped) > LANDMARK_TOLERANCE


def test_detections_map_back_to_original_pixels(aligner: Aligner, synthetic_faces: np.ndarray) -> None:
    # The same face at two scales: landmarks must scale with the image, so the
    # padding and resizing done for the detector are undone exactly enough.
    small = _tilted(synthetic_faces[0], 0.0)
    large = cv2.resize(small, (400, 400), interpolation=cv2.INTER_LINEAR)
    lm_small = aligner.select(aligner.detect(small), small.shape).landmarks
    lm_large = aligner.select(aligner.detect(large), large.shape).landmarks
    np.testing.assert_allclose((lm_large + 0.5) / 2 - 0.5, lm_small, atol=2.0)


# --------------------------------------------------------------------------- real data


def _orl_files(root: Path, subjects: int, per_subject: int) -> list[Path]:
    return [root / f"s{s}" / f"{i}.pgm" for s in range(1, subjects + 1) for i in range(1, per_subject + 1)]


def test_orl_faces_are_found_and_aligned(aligner: Aligner, orl_root: Path) -> None:
    files = _orl_files(orl_root, 5, 2)
    images = [read_image(p) for p in files]
    assert images[0].shape == (112, 92, 3)  # small images: upscaled for the detector
    faces, detected = aligner.align_batch(images)
    assert detected.all()
    errors = [_landmark_error(aligner, face) for face in faces]
    assert max(errors) < LANDMARK_TOLERANCE


def test_lfw_faces_are_found(aligner: Aligner, lfw_root: Path) -> None:
    files = sorted(lfw_root.glob("*/*_0001.jpg"))[:8]
    assert files
    faces, detected = aligner.align_batch([read_image(p) for p in files])
    assert detected.all()
    assert max(_landmark_error(aligner, face) for face in faces) < LANDMARK_TOLERANCE


@pytest.mark.slow
def test_orl_all_detected(aligner: Aligner, orl_root: Path) -> None:
    files = sorted(orl_root.glob("s*/*.pgm"))
    assert len(files) == 400
    _, detected = aligner.align_batch([read_image(p) for p in files])
    assert detected.all()
