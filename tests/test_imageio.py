"""Untrusted image files give a clear error, never a crash."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from benchmark.data.imageio import ImageReadError, read_image


def test_grey_becomes_rgb(tmp_path):
    p = tmp_path / "g.pgm"
    Image.fromarray(np.full((20, 30), 7, np.uint8)).save(p)
    img = read_image(p)
    assert img.shape == (20, 30, 3) and img.dtype == np.uint8 and (img == 7).all()


@pytest.mark.parametrize("data", [b"", b"garbage", b"\xff\xd8\xff\xe0" + b"\0" * 20, b"\x89PNG\r\n\x1a\n"])
def test_garbage(tmp_path, data):
    p = tmp_path / "x.jpg"
    p.write_bytes(data)
    with pytest.raises(ImageReadError):
        read_image(p)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_mutated_png_never_crashes(tmp_path_factory, data):
    import io

    buf = io.BytesIO()
    Image.fromarray(np.arange(32 * 32, dtype=np.uint8).reshape(32, 32)).save(buf, "PNG")
    raw = bytearray(buf.getvalue())
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(raw)))
    p = tmp_path_factory.mktemp("m") / "m.png"
    p.write_bytes(bytes(raw[:cut]))
    try:
        img = read_image(p)
    except ImageReadError:
        return
    assert img.ndim == 3


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    # PIL's convert("RGB") clips 16-bit samples at 255: a face would turn white.
    wide = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    p = tmp_path / "g16.png"
    Image.fromarray(wide).save(p)
    assert Image.open(p).mode.startswith("I")
    img = read_image(p)
    expected = np.rint(wide / 257.0).astype(np.uint8)
    assert np.abs(img[..., 0].astype(int) - expected).max() <= 1
    assert (img[..., 0] == img[..., 2]).all() and img.min() == 0 and img.max() == 255


def test_float_image_is_refused_with_a_reason(tmp_path):
    p = tmp_path / "f.tif"
    Image.fromarray(np.full((16, 16), 0.5, np.float32)).save(p)
    with pytest.raises(ImageReadError, match="floating-point"):
        read_image(p)
