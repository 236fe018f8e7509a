"""Import glymur bound to an OpenJPEG >= 2.4.

Debian's ``libopenjp2-7`` is used when the system has it; otherwise the copy
that Pillow's wheel bundles (``pillow.libs/libopenjp2-*.so``). glymur reads
its library location from ``$XDG_CONFIG_HOME/glymur/glymurrc`` when it is
imported, so a private config folder is set for the duration of that import
only (other libraries read ``XDG_CONFIG_HOME`` too).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

from benchmark.core.cache import atomic_write_text, default_cache_dir

__all__ = ["import_glymur", "openjpeg_library", "openjpeg_info", "MIN_OPENJPEG"]

MIN_OPENJPEG = (2, 4)


def _lib_version(path: str) -> tuple[int, ...] | None:
    try:
        lib = ctypes.CDLL(path)
        lib.opj_version.restype = ctypes.c_char_p
        text = lib.opj_version().decode()
    except (OSError, AttributeError):
        return None
    return tuple(int(p) for p in text.split(".")[:3] if p.isdigit())


def _pillow_openjpeg() -> Path | None:
    import PIL

    libs = Path(PIL.__file__).resolve().parent.parent / "pillow.libs"
    found = sorted(libs.glob("libopenjp2*.so*"))
    return found[0] if found else None


def openjpeg_library() -> Path | None:
    """The OpenJPEG library to use: system if new enough, else Pillow's."""
    system = ctypes.util.find_library("openjp2")
    if system:
        v = _lib_version(system)
        if v is not None and v >= MIN_OPENJPEG:
            return Path(system)
    bundled = _pillow_openjpeg()
    if bundled is not None:
        v = _lib_version(str(bundled))
        if v is not None and v >= MIN_OPENJPEG:
            return bundled
    return None


def import_glymur() -> ModuleType:
    """Import (once) and return glymur, bound to :func:`openjpeg_library`.

    Raises:
        RuntimeError: if no OpenJPEG >= 2.4 can be found.
    """
    if "glymur" in sys.modules:
        return sys.modules["glymur"]
    lib = openjpeg_library()
    if lib is None:
        raise RuntimeError("no OpenJPEG >= 2.4 found: install libopenjp2-7 or Pillow >= 10")
    confdir = default_cache_dir() / "config"
    atomic_write_text(confdir / "glymur" / "glymurrc", f"[library]\nopenjp2: {lib}\n")
    saved = os.environ.get("XDG_CONFIG_HOME")
    os.environ["XDG_CONFIG_HOME"] = str(confdir)
    try:
        glymur = importlib.import_module("glymur")
    finally:
        if saved is None:
            os.environ.pop("XDG_CONFIG_HOME", None)
        else:
            os.environ["XDG_CONFIG_HOME"] = saved
    return glymur


def openjpeg_info() -> tuple[str, str]:
    """(OpenJPEG version glymur reports, library path) for ``doctor``."""
    glymur = import_glymur()
    from glymur.lib import openjp2

    handle = getattr(openjp2, "OPENJP2", None)
    path = getattr(handle, "_name", None) or "not loaded"
    return str(glymur.version.openjpeg_version), str(path)
