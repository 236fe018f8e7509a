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
