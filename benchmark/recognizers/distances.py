"""Row-wise comparison of feature pairs, chunked to bound temporaries."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["cosine", "euclidean", "rowwise"]

# Pairs per chunk, bounding the temporaries whatever the number of pairs.
_CHUNK_ROWS = 1 << 16


def rowwise(probe: np.ndarray, reference: np.ndarray, fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply ``fn`` to float64 chunks of two (M, D) arrays; returns (M,) float64.

    Raises:
        ValueError: when the shapes differ or are not 2-D.
    """
    probe = np.asarray(probe)
    reference = np.asarray(reference)
    if probe.ndim != 2 or probe.shape != reference.shape:
        raise ValueError(
            f"probe and reference must be (M, D) arrays of one shape, got {probe.shape} and {reference.shape}"
        )
    out = np.empty(len(probe), dtype=np.float64)
    for start in range(0, len(probe), _CHUNK_ROWS):
        sl = slice(start, start + _CHUNK_ROWS)
        out[sl] = fn(probe[sl].astype(np.float64), reference[sl].astype(np.float64))
    return out


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = np.einsum("ij,ij->i", a, b)
    return np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)


def _euclidean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    diff = a - b
    return np.sqrt(np.einsum("ij,ij->i", diff, diff))


def cosine(probe: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity; rows are normalised here, a zero row scores 0."""
    return rowwise(probe, reference, _cosine)


def euclidean(probe: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Row-wise Euclidean distance."""
    return rowwise(probe, reference, _euclidean)
