"""Synthetic test images shared by the codec tests (not a test module)."""

from __future__ import annotations

import struct

import numpy as np

__all__ = ["wave_image", "random_image", "declaring"]


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


def declaring(data: bytes, width: int, height: int) -> bytes:
    """A JPEG 2000 codestream (SIZ) or JPEG file (SOF0) whose header declares ``width`` x ``height``, data unchanged.

    What a hostile file does to make a decoder allocate a huge image; nothing here allocates it.
    """
    out = bytearray(data)
    if out[:2] == b"\xff\x4f":  # SIZ right after SOC: Xsiz, Ysiz at bytes 8 and 12 (no image offset)
        struct.pack_into(">II", out, 8, width, height)
    else:
        sof = out.index(b"\xff\xc0")  # SOF0: length, precision, then height and width
        struct.pack_into(">HH", out, sof + 5, height, width)
    return bytes(out)
