"""Defensive image reading: an untrusted file gives an error line, never a crash."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

__all__ = ["ImageReadError", "read_image", "MAX_PIXELS"]

# Guard against decompression bombs in untrusted data; faces are far smaller.
MAX_PIXELS = 50_000_000


class ImageReadError(ValueError):
    """A file that is not a decodable image."""


def read_image(path: Path) -> np.ndarray:
    """Decode ``path`` to uint8 RGB (H, W, 3); grey becomes three equal channels.

    Raises:
        ImageReadError: with a short reason.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise ImageReadError(f"too large ({im.width}x{im.height})")
                im.load()
                rgb = im.convert("RGB")
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError("not a recognised image format") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ImageReadError(f"cannot decode: {exc}") from None
    arr = np.asarray(rgb, dtype=np.uint8)
    if arr.ndim != 3 or min(arr.shape[:2]) < 8:
        raise ImageReadError(f"unusable image shape {arr.shape}")
    return arr
