"""Synthetic test images shared by the codec tests (not a test module)."""

from __future__ import annotations

import numpy as np

__all__ = ["wave_image", "random_image"]


def wave_image(shape: tuple[int, ...], seed: int = 0, noise: float = 10.0) -> np.ndarray:
    """Smooth waves plus Gaussian noise, uint8 (H, W) or (H, W, C).

    Waves give codecs low-frequency content and the noise fills the higher
    coefficient categories, so both show up at any quality.
    """
    rng = np.random.default_rng(seed)
    h, w = shape[:2]
    yy, xx = np.mgrid[:h, :w]
    img = 128 + 60 * np.sin(xx / 9.0) + 50 * np.cos(yy / 13.0)
    img = img[..., None] + rng.normal(0, noise, (h, w, shape[2] if len(shape) == 3 else 1))
    img = img.clip(0, 255).astype(np.uint8)
    return img if len(shape) == 3 else img[..., 0]


def random_image(rng: np.random.Generator, shape: tuple[int, ...], smooth: bool) -> np.ndarray:
    """Uniform noise, or random smooth waves with a little noise (few FF bytes once coded)."""
    if not smooth:
        return rng.integers(0, 256, shape, dtype=np.uint8)
    h, w = shape[:2]
    yy, xx = np.mgrid[:h, :w]
    planes = [
        128 + 60 * np.sin(xx / rng.uniform(4, 16) + rng.uniform(0, 6)) + 50 * np.cos(yy / rng.uniform(4, 16))
        for _ in range(shape[2] if len(shape) == 3 else 1)
    ]
    img = np.stack(planes, axis=-1) + rng.normal(0, 2, (h, w, len(planes)))
    img = img.clip(0, 255).astype(np.uint8)
    return img if len(shape) == 3 else img[..., 0]
