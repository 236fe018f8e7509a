"""Defensive image reading: an untrusted file gives an error line, never a crash."""

from __future__ import annotations

import base64
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ImageReadError", "read_image", "png_data_uri", "MAX_PIXELS"]

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
                rgb = _to_rgb(im)
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


# Integer modes whose samples are 16-bit: PIL's convert("RGB") clips them at 255,
# which turns a 16-bit face white instead of scaling it.
_WIDE_INT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def _to_rgb(im: Any) -> Any:
    """``im`` as an 8-bit RGB PIL image; 16-bit grey scaled (not clipped), float refused."""
    from PIL import Image

    if im.mode in _WIDE_INT_MODES:
        wide = np.asarray(im).astype(np.int64)
        if wide.size and (wide.min() < 0 or wide.max() > 65535):
            raise ImageReadError(f"mode {im.mode} samples outside 0..65535")
        # 0..65535 onto 0..255 (65535 / 257 = 255), rounded.
        grey = ((wide + 128) // 257).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if im.mode == "F":
        raise ImageReadError("floating-point image (mode F): its value range is unknown")
    return im.convert("RGB")


def png_data_uri(image: np.ndarray) -> str:
    """A uint8 image (H, W), (H, W, 3) as a ``data:image/png;base64,…`` URI (grey when all channels agree)."""
    from PIL import Image

    arr = np.asarray(image, np.uint8)
    if arr.ndim == 3 and (arr == arr[..., :1]).all():
        arr = arr[..., 0]
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
