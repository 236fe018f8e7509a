"""Installation check behind ``facesec doctor``.

Every check is required or optional. A required part that is missing or
broken is ``BAD`` and makes ``doctor`` exit 1; an optional part that is not
installed is reported as such (with how to install it), never as ``ok``, and
one that is installed but broken is a warning: neither changes the exit code.
"""

from __future__ import annotations

import platform
from typing import NamedTuple

import benchmark
from benchmark.codecs.jp2lib import openjpeg_info
from benchmark.data.models import model_report
from benchmark.engine.provenance import package_versions

__all__ = ["Check", "doctor_report", "doctor_lines"]

#: Packages a run can do without (the components that need them import them on use).
_OPTIONAL_PACKAGES = {"glymur", "cryptography", "torch", "insightface", "pyeer"}
_DLIB_HINT = "pip install -e '.[dlib]'"


class Check(NamedTuple):
    """One line of the report.

    Attributes:
        name: What was checked.
        value: What was found (a version, a path, why it is missing).
        ok: Found and sound.
        required: Whether a run needs it; only required checks set the exit code.
        hint: How to install it, for an optional part that is missing.
    """

    name: str
    value: str
    ok: bool
    required: bool = True
    hint: str = ""

    @property
    def mark(self) -> str:
        """``ok``, ``BAD`` (required part failing), ``--`` (optional, not installed) or ``warn`` (optional, broken)."""
        if self.ok:
            return "ok"
        if self.required:
            return "BAD"
        return "warn" if self.value != "not installed" else "--"


def _versions() -> list[Check]:
    rows = [Check("facesec", benchmark.__version__, True), Check("python", platform.python_version(), True)]
    for name, ver in package_versions().items():
        optional = name in _OPTIONAL_PACKAGES
        rows.append(Check(name, ver or "not installed", ver is not None, not optional, f"pip install {name}"))
    return rows


def _openjpeg() -> list[Check]:
    try:
        ver, path = openjpeg_info()
    except Exception as exc:  # any import failure is what doctor must report
        return [Check("openjpeg", f"unavailable: {exc}", False)]
    return [Check("openjpeg (glymur)", f"{ver} at {path}", True)]


def _models() -> list[Check]:
    rows: list[Check] = []
    for m in model_report():
        optional = bool(m.get("optional", False))
        bad_sha = m.get("sha_ok") is False
        if not m.get("found"):
            value = "not installed" if optional else "not found"
        else:
            value = f"{m['path']}{' (sha256 mismatch)' if bad_sha else ''}"
        rows.append(Check(m["name"], value, bool(m.get("found")) and not bad_sha, not optional, _DLIB_HINT))
    return rows


def _gpu() -> list[Check]:
    # Informative: a CPU-only machine runs everything.
    try:
        import torch

        cuda = torch.cuda.is_available()
        torch_row = Check("torch cuda", "yes" if cuda else "no (CPU)", True, False)
    except Exception as exc:  # torch missing or broken: still report the rest
        torch_row = Check("torch cuda", f"unknown ({exc})", False, False)
    try:
        import onnxruntime as ort

        providers = ", ".join(ort.get_available_providers())
        ort_row = Check("onnxruntime providers", providers, True, False)
    except Exception as exc:
        ort_row = Check("onnxruntime providers", f"unknown ({exc})", False, False)
    return [torch_row, ort_row]


def doctor_report() -> dict[str, list[Check]]:
    """Sections of checks: versions, openjpeg, models, gpu."""
    return {"versions": _versions(), "openjpeg": _openjpeg(), "models": _models(), "gpu": _gpu()}


def doctor_lines(report: dict[str, list[Check]]) -> tuple[list[str], bool]:
    """The lines ``facesec doctor`` prints, and whether every required part is sound."""
    lines: list[str] = []
    checks = [c for rows in report.values() for c in rows]
    for section, rows in report.items():
        lines.append(f"{section}:")
        width = max((len(c.name) for c in rows), default=0)
        for c in rows:
            value = c.value
            if not c.ok and not c.required:
                value = f"optional: {value}" + (f" ({c.hint})" if c.hint and c.value == "not installed" else "")
            lines.append(f"  {c.mark:<4} {c.name:<{width}}  {value}")
    bad = [c.name for c in checks if c.required and not c.ok]
    absent = [c.name for c in checks if not c.required and not c.ok]
    lines.append(f"required: {'all ok' if not bad else f'{len(bad)} BAD: ' + ', '.join(bad)}")
    if absent:
        lines.append(f"optional: {len(absent)} not installed or not working: {', '.join(absent)}")
    return lines, not bad
