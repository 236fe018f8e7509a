"""Fisher-vector encoded dense descriptors: ``fv-sift`` and ``fv-brief``.

The "advanced" descriptor recognizers of the studies this project follows,
after Simonyan et al., "Fisher Vector Faces in the Wild" (BMVC 2013):

1. local descriptors on a dense grid of the grey aligned face (SIFT, as
   RootSIFT; or BRIEF, whose bits are taken as 0/1 numbers);
2. PCA to ``pca_dim`` dimensions, then, with ``spatial``, the patch centre
   (x, y) appended, so that the encoding keeps where on the face a pattern is;
3. the improved Fisher vector of the face's descriptors under a diagonal
   Gaussian mixture vocabulary of ``n_components`` Gaussians (gradients of
   the weights, means and variances; signed square root and L2
   normalisation);
4. cosine similarity of two Fisher vectors.

The PCA and the mixture are learnt in :meth:`~_FisherVectorRecognizer.fit`
from the faces of training subjects (the harness fits one model per
evaluated fold on the other folds; see :func:`benchmark.engine.stages.fit_recognizer_stage`).

Libraries, and why: OpenCV computes SIFT at given keypoints in C++ (dense
SIFT in ~2 ms a face); scikit-image's SIFT detects its own keypoints and is
about 100 times slower, so it is not used. OpenCV's main package has no
BRIEF (it is in the contrib modules), while scikit-image's
:class:`~skimage.feature.BRIEF` extracts at given keypoints, vectorised. The
mixture is scikit-learn's :class:`~sklearn.mixture.GaussianMixture` (what
:func:`skimage.feature.learn_gmm` wraps) and the encoding is
:func:`skimage.feature.fisher_vector`. Both imports are deferred: the
registry imports this module on every run.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from functools import cache, partial
from typing import Any, ClassVar, Self

import numpy as np

from benchmark.core.component import FittedRecognizer, Interval, Options, ParamError
from benchmark.core.parallel import map_chunks
from benchmark.core.registry import RECOGNIZERS
from benchmark.recognizers.distances import cosine
from benchmark.recognizers.lbp import FACE_SIZE, to_grey

__all__ = ["FisherSIFTRecognizer", "FisherBRIEFRecognizer", "grid_centres"]

# Faces per chunk of descriptor extraction during fit.
_FIT_CHUNK = 32
# Iterations and floor on the variances of the mixture (scikit-learn's
# defaults are 100 and 1e-6; the floor keeps a Gaussian that collapses onto a
# few identical descriptors, frequent for BRIEF's 0/1 values, from dominating).
_GMM_MAX_ITER = 100
_GMM_REG_COVAR = 1e-3


def grid_centres(size: int, step: int) -> np.ndarray:
    """(x, y) centres of the ``size``-pixel patches of a dense grid with ``step`` pixels between centres.

    The grid is centred on the 112-pixel face and every patch lies inside it.

    Returns:
        float32 (n, 2) array of (x, y) pixel coordinates.
    """
    count = (FACE_SIZE - size) // step + 1
    start = (FACE_SIZE - size - (count - 1) * step) / 2 + size / 2
    axis = start + step * np.arange(count, dtype=np.float32)
    ys, xs = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)


def _descriptor_sample(recognizer: _FisherVectorRecognizer, per_face: int, faces: np.ndarray) -> np.ndarray:
    """Up to ``per_face`` raw descriptors of each face, each followed by its patch position.

    The sample of a face is drawn with a seed of the face's own bytes, not
    of its position, so that it does not depend on how faces are cut into
    chunks (workers, executor).

    Returns:
        float32 (n, raw_dims + 2): descriptor, then (x, y) in [-0.5, 0.5].
    """
    positions = recognizer._positions()
    out = [np.zeros((0, recognizer.raw_dims + 2), np.float32)]
    for face in to_grey(faces):
        rows = np.concatenate([recognizer._raw_descriptors(face), positions], axis=1)
        if len(rows) > per_face:
            rng = np.random.default_rng([recognizer.seed, zlib.crc32(face.tobytes())])
            rows = rows[np.sort(rng.choice(len(rows), per_face, replace=False))]
        out.append(rows)
    return np.concatenate(out)


class _FisherVectorRecognizer(FittedRecognizer):
    """Improved Fisher vectors of dense local descriptors, compared by cosine (base of fv-sift, fv-brief).

    Args:
        step: Pixels between the centres of neighbouring patches.
        size: Side of the square patch a descriptor describes, in pixels.
        n_components: Gaussians of the vocabulary (the Fisher vector has
            ``n_components * (2 * d + 1)`` dimensions, d the descriptor
            dimension after PCA and position).
        pca_dim: Dimensions kept by PCA (at most the descriptor's own).
        spatial: Append each patch's centre (x, y), scaled to [-0.5, 0.5].
        max_descriptors: Descriptors sampled from the training faces to fit
            the PCA and the mixture.
        seed: Seeds the descriptor sample and the mixture's initialisation.
    """

    #: Raw descriptor dimension, and the patch sizes the descriptor accepts.
    raw_dims: ClassVar[int]
    min_size: ClassVar[int] = 8

    _constraints = {
        "step": Interval(int, 1, 56),
        "size": Interval(int, 8, 64),
        "n_components": Interval(int, 2, 512),
        "pca_dim": Interval(int, 2, 256),
        "spatial": Options((True, False)),
        "max_descriptors": Interval(int, 1_000, 10_000_000),
        "seed": Interval(int, 0, 2**32 - 1),
    }

    # Fitted state (set by fit and load_state).
    pca_mean_: np.ndarray
    pca_components_: np.ndarray
    gmm_weights_: np.ndarray
    gmm_means_: np.ndarray
    gmm_covariances_: np.ndarray

    def __init__(
        self,
        *,
        step: int = 4,
        size: int = 16,
        n_components: int = 64,
        pca_dim: int = 64,
        spatial: bool = True,
        max_descriptors: int = 100_000,
        seed: int = 0,
    ):
        self.step = step
        self.size = size
        self.n_components = n_components
        self.pca_dim = pca_dim
        self.spatial = spatial
        self.max_descriptors = max_descriptors
        self.seed = seed

    def _validate_extra(self) -> None:
        if self.size < self.min_size:
            raise ParamError(
                "size", self.size, f"is below {self.min_size}, the smallest patch {self.registry_name} takes"
            )
        if self.pca_dim > self.raw_dims:
            raise ParamError("pca_dim", self.pca_dim, f"exceeds the {self.raw_dims} dimensions of the descriptor")

    # ------------------------------------------------------------------ descriptors

    def _raw_descriptors(self, grey: np.ndarray) -> np.ndarray:
        """float32 (n_patches, raw_dims) descriptors of one grey 112x112 face, in grid order."""
        raise NotImplementedError

    def _positions(self) -> np.ndarray:
        """float32 (n_patches, 2) patch centres (x, y) scaled to [-0.5, 0.5], in grid order."""
        return (grid_centres(self.size, self.step) / FACE_SIZE - 0.5).astype(np.float32)

    def _local_features(self, grey: np.ndarray) -> np.ndarray:
        """PCA-projected descriptors of one face, with the patch positions when ``spatial``."""
        projected = (self._raw_descriptors(grey) - self.pca_mean_) @ self.pca_components_.T
        if self.spatial:
            projected = np.concatenate([projected, self._positions()], axis=1)
        return projected.astype(np.float64)

    # ------------------------------------------------------------------ fit

    def is_fitted(self) -> bool:
        return hasattr(self, "gmm_means_")

    def fit(self, images: np.ndarray | None = None, subjects: Sequence[str] | None = None) -> Self:
        """Learn the PCA and the Gaussian mixture from training faces.

        Args:
            images: Aligned training faces, uint8 (N, 112, 112, 3); their
                subjects must not be evaluated with this model.
            subjects: Subject of each face (only its count is used: the
                vocabulary is unsupervised).

        Raises:
            ValueError: without images, or with fewer descriptors than Gaussians.
        """
        from sklearn.mixture import GaussianMixture

        self.validate()
        if images is None or len(images) == 0:
            raise ValueError(f"{self.registry_name} learns its vocabulary from training faces: none were given")
        n = len(images)
        per_face = max(1, -(-self.max_descriptors // n))
        fn = partial(_descriptor_sample, self, per_face)
        sample = np.concatenate(map_chunks(fn, images, desc=f"fit {self.registry_name}", chunk_size=_FIT_CHUNK))
        if len(sample) < max(self.n_components, self.pca_dim):
            raise ValueError(
                f"{len(sample)} descriptors from {n} faces cannot fit {self.n_components} Gaussians "
                f"in {self.pca_dim} dimensions"
            )
        raw, positions = sample[:, :-2].astype(np.float64), sample[:, -2:]
        mean = raw.mean(axis=0)
        # Principal axes by SVD of the centred sample; each axis's sign is
        # fixed (largest coefficient positive) so that the model does not
        # depend on the LAPACK build.
        _, _, vt = np.linalg.svd(raw - mean, full_matrices=False)
        components = vt[: self.pca_dim]
        components *= np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])[:, None]
        self.pca_mean_ = mean.astype(np.float32)
        self.pca_components_ = components.astype(np.float32)
        local = (raw.astype(np.float32) - self.pca_mean_) @ self.pca_components_.T
        if self.spatial:
            local = np.concatenate([local, positions], axis=1)
        gmm = GaussianMixture(
            n_components=self.n_components,
            covariance_type="diag",
            max_iter=_GMM_MAX_ITER,
            reg_covar=_GMM_REG_COVAR,
            random_state=self.seed,
        ).fit(local.astype(np.float64))
        self.gmm_weights_ = gmm.weights_.astype(np.float64)
        self.gmm_means_ = gmm.means_.astype(np.float64)
        self.gmm_covariances_ = gmm.covariances_.astype(np.float64)
        self._gmm = None
        return self

    def state_arrays(self) -> dict[str, np.ndarray]:
        if not self.is_fitted():
            raise ValueError(f"{self.registry_name} is not fitted")
        return {
            "pca_mean": self.pca_mean_,
            "pca_components": self.pca_components_,
            "gmm_weights": self.gmm_weights_,
            "gmm_means": self.gmm_means_,
            "gmm_covariances": self.gmm_covariances_,
        }

    def load_state(self, arrays: dict[str, np.ndarray]) -> Self:
        self.pca_mean_ = np.asarray(arrays["pca_mean"], np.float32)
        self.pca_components_ = np.asarray(arrays["pca_components"], np.float32)
        self.gmm_weights_ = np.asarray(arrays["gmm_weights"], np.float64)
        self.gmm_means_ = np.asarray(arrays["gmm_means"], np.float64)
        self.gmm_covariances_ = np.asarray(arrays["gmm_covariances"], np.float64)
        self._gmm = None
        return self

    # ------------------------------------------------------------------ transform and compare

    def _mixture(self) -> Any:
        """The fitted mixture as a scikit-learn object (what :func:`skimage.feature.fisher_vector` takes)."""
        gmm = getattr(self, "_gmm", None)
        if gmm is None:
            from sklearn.mixture import GaussianMixture

            gmm = GaussianMixture(n_components=self.n_components, covariance_type="diag")
            gmm.weights_ = self.gmm_weights_
            gmm.means_ = self.gmm_means_
            gmm.covariances_ = self.gmm_covariances_
            gmm.precisions_cholesky_ = 1.0 / np.sqrt(self.gmm_covariances_)
            self._gmm = gmm
        return gmm

    def transform(self, images: np.ndarray) -> np.ndarray:
        """Improved Fisher vectors, float32 (N, n_components * (2 d + 1)), unit L2 norm."""
        if not self.is_fitted():
            raise ValueError(f"{self.registry_name} must be fitted on training faces before transform")
        from skimage.feature import fisher_vector

        gmm = self._mixture()
        grey = to_grey(images)
        dims = self.n_components * (2 * (self.pca_dim + 2 * self.spatial) + 1)
        out = np.empty((len(grey), dims), np.float32)
        for i, face in enumerate(grey):
            out[i] = fisher_vector(self._local_features(face), gmm, improved=True)
        return out

    def compare(self, probe: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Cosine similarity of row i of ``probe`` and row i of ``reference``."""
        return cosine(probe, reference)

    def __getstate__(self) -> dict[str, Any]:
        # The scikit-learn object is rebuilt from the arrays where it is used.
        state = dict(self.__dict__)
        state.pop("_gmm", None)
        return state


@RECOGNIZERS.register("fv-sift")
class FisherSIFTRecognizer(_FisherVectorRecognizer):
    """Dense RootSIFT encoded as an improved Fisher vector, cosine similarity (Simonyan et al.).

    SIFT comes from OpenCV at the grid's keypoints (upright: the face is
    aligned), then RootSIFT (L1 normalisation and square root, Arandjelovic
    and Zisserman 2012), which compares histograms by the Hellinger kernel.
    """

    raw_dims = 128

    def _raw_descriptors(self, grey: np.ndarray) -> np.ndarray:
        import cv2

        centres = grid_centres(self.size, self.step)
        # OpenCV's descriptor spans 4 bins of 3 * (keypoint size / 2) pixels
        # each: a keypoint of size s describes a 6 s wide patch.
        keypoints = [cv2.KeyPoint(float(x), float(y), self.size / 6.0) for x, y in centres]
        found, desc = _sift().compute(np.ascontiguousarray(grey), keypoints)
        if desc is None or len(found) != len(centres):
            raise ValueError(f"OpenCV SIFT dropped {len(centres) - len(found)} of {len(centres)} grid keypoints")
        desc = desc.astype(np.float32)
        desc /= np.maximum(desc.sum(axis=1, keepdims=True), np.float32(1e-12))
        return np.sqrt(desc)


@cache
def _sift() -> Any:
    # One extractor per process: creating it costs more than describing a face.
    import cv2

    return cv2.SIFT_create()  # type: ignore[attr-defined]  # present since OpenCV 4.4, missing from its stubs


@RECOGNIZERS.register("fv-brief")
class FisherBRIEFRecognizer(_FisherVectorRecognizer):
    """Dense BRIEF (256 bits) encoded as an improved Fisher vector, cosine similarity.

    BRIEF comes from scikit-image at the grid's keypoints, with its test
    pairs drawn from ``seed`` (part of the model, like the vocabulary); its
    bits are taken as 0/1 numbers before PCA.
    """

    raw_dims = 256
    min_size = 9

    def _raw_descriptors(self, grey: np.ndarray) -> np.ndarray:
        from skimage.feature import BRIEF

        # Patch of odd side (skimage's requirement) centred on each keypoint;
        # keypoints are (row, col) pixel centres, rounded.
        patch = self.size if self.size % 2 else self.size - 1
        centres = grid_centres(self.size, self.step)
        keypoints = np.round(centres[:, ::-1] - 0.5).astype(np.intp)
        extractor = BRIEF(descriptor_size=256, patch_size=patch, mode="normal", sigma=1, rng=self.seed)
        # Reflect-pad so that a patch at the edge of the grid is never dropped.
        pad = patch // 2 + 1
        extractor.extract(np.pad(grey, pad, mode="symmetric").astype(np.float64), keypoints + pad)
        mask, descriptors = extractor.mask, extractor.descriptors
        assert mask is not None and descriptors is not None  # set by extract
        if mask.sum() != len(centres):
            raise ValueError(f"BRIEF dropped {len(centres) - int(mask.sum())} grid keypoints")
        return descriptors.astype(np.float32)
