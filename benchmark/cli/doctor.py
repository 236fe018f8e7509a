"""Installation check behind ``facesec doctor``."""

from __future__ import annotations

import platform
from typing import Any

import benchmark
from benchmark.codecs.jp2lib import openjpeg_info
from benchmark.data.models import model_report
from benchmark.engine.provenance import package_versions

__all__ = ["doctor_report"]

Row = tuple[str, str, bool]


def _versions() -> list[Row]:
    rows: list[Row] = [("facesec", benchmark.__version__, True), ("python", platform.python_version(), True)]
    optional = {"glymur", "cryptography", "torch", "insightface", "pyeer"}
    for name, ver in package_versions().items():
        rows.append((name, ver or "not installed", ver is not None or name in optional))
    return rows


def _openjpeg() -> list[Row]:
    try:
        ver, path = openjpeg_info()
    except Exception as exc:  # any import failure is what doctor must report
        return [("openjpeg", f"unavailable: {exc}", False)]
    return [("openjpeg (glymur)", f"{ver} at {path}", True)]


def _models() -> list[Row]:
    rows: list[Row] = []
    for m in model_report():
        where = m.get("path") or "not found"
        bad_sha = m.get("sha_ok") is False
        good = bool(m.get("found")) and not bad_sha
        note = " (sha256 mismatch)" if bad_sha else ""
        rows.append((m["name"], f"{where}{note}", good or bool(m.get("optional", False))))
    return rows


def _gpu() -> list[Row]:
    try:
        import torch

        cuda = torch.cuda.is_available()
        torch_row = ("torch cuda", "yes" if cuda else "no (CPU)", True)
    except Exception as exc:  # torch missing or broken: still report the rest
        torch_row = ("torch cuda", f"unknown ({exc})", True)
    try:
        import onnxruntime as ort

        providers = ", ".join(ort.get_available_providers())
    except Exception as exc:
        providers = f"unknown ({exc})"
    return [torch_row, ("onnxruntime providers", providers, True)]


def doctor_report() -> dict[str, list[Row]]:
    """Sections of (name, value, ok) rows."""
    out: dict[str, Any] = {
        "versions": _versions(),
        "openjpeg": _openjpeg(),
        "models": _models(),
        "gpu": _gpu(),
    }
    return out
