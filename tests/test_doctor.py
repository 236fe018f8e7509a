"""``facesec doctor``: required parts set the exit code; a missing optional part is never "ok"."""

from __future__ import annotations

import pytest

import benchmark.cli.doctor as doctor
from benchmark.cli.main import EXIT_FAILED, EXIT_OK, main


def _model(name: str, *, found: bool, optional: bool, sha_ok: bool | None = True) -> dict:
    return {
        "name": name,
        "path": f"/models/{name}" if found else None,
        "found": found,
        "sha_ok": sha_ok if found else None,
        "optional": optional,
    }


@pytest.fixture
def models(monkeypatch):
    """The model rows doctor sees; the other checks are fixed and sound (no torch import, no installed state)."""
    rows: list[dict] = []
    monkeypatch.setattr(doctor, "model_report", lambda: rows)
    monkeypatch.setattr(doctor, "package_versions", lambda: {"numpy": "2.0.0"})
    monkeypatch.setattr(doctor, "openjpeg_info", lambda: ("2.5.0", "libopenjp2.so.7"))
    monkeypatch.setattr(doctor, "_gpu", lambda: [])
    return rows


def _line(out: str, name: str) -> str:
    (line,) = [line for line in out.splitlines() if line.startswith("  ") and f" {name} " in f"{line} "]
    return line


def test_a_missing_optional_part_is_reported_as_such_and_does_not_fail(models, capsys):
    models += [
        _model("sface (s.onnx)", found=True, optional=False),
        _model("dlib recognizer (r.dat)", found=False, optional=True),
    ]
    code = main(["doctor"])
    out = capsys.readouterr().out
    line = _line(out, "dlib recognizer (r.dat)")
    assert not line.split()[0] == "ok"
    assert "optional" in line and "not installed" in line and "pip install -e '.[dlib]'" in line
    assert _line(out, "sface (s.onnx)").split()[0] == "ok"
    assert "required: all ok" in out and "dlib recognizer (r.dat)" in out.splitlines()[-1]
    assert code == EXIT_OK


def test_a_missing_required_part_fails(models, capsys):
    models += [_model("sface (s.onnx)", found=False, optional=False)]
    assert main(["doctor"]) == EXIT_FAILED
    out = capsys.readouterr().out
    assert _line(out, "sface (s.onnx)").split()[0] == "BAD"
    assert "required: 1 BAD: sface (s.onnx)" in out


def test_a_damaged_optional_part_warns_without_failing(models, capsys):
    models += [_model("dlib recognizer (r.dat)", found=True, optional=True, sha_ok=False)]
    assert main(["doctor"]) == EXIT_OK
    line = _line(capsys.readouterr().out, "dlib recognizer (r.dat)")
    assert line.split()[0] == "warn" and "sha256 mismatch" in line
