"""Tests of benchmark.recognizers.dlib (skipped where the dlib extra is missing)."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmark.core.component import ParamError
from benchmark.core.registry import RECOGNIZERS
from benchmark.recognizers.distances import euclidean
from benchmark.recognizers.dlib import DLIB_DIM, DlibRecognizer


def _require_dlib() -> None:
    pytest.importorskip("dlib", reason="dlib extra not installed")
    reason = DlibRecognizer().available()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    from benchmark.core.registry import DATASETS

    return DATASETS.get("synthetic")(n_subjects=3, n_images=1, seed=5).load(None).images


def test_registered() -> None:
    assert RECOGNIZERS.get("dlib") is DlibRecognizer


def test_unavailable_without_dlib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dlib", None)  # makes `import dlib` fail
    assert DlibRecognizer().available() == "dlib not installed: pip install 'facesec-bench[dlib]'"


def test_params_validated() -> None:
    with pytest.raises(ParamError, match="chip"):
        DlibRecognizer.from_params({"chip": "crop"})
    with pytest.raises(ParamError, match="jitters"):
        DlibRecognizer.from_params({"jitters": -1})


def test_euclidean_rowwise() -> None:
    a = np.array([[0.0, 0.0], [1.0, 1.0]])
    b = np.array([[3.0, 4.0], [1.0, 1.0]])
    out = euclidean(a, b)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, [5.0, 0.0])
    np.testing.assert_allclose(DlibRecognizer().compare(a, b), [-5.0, 0.0])


@pytest.mark.parametrize("chip", ["landmarks", "resize"])
def test_transform(chip: str, faces: np.ndarray) -> None:
    _require_dlib()
    rec = DlibRecognizer(chip=chip)
    feats = rec.transform(faces)
    assert feats.shape == (len(faces), DLIB_DIM) and feats.dtype == np.float32
    assert np.isfinite(feats).all() and (np.linalg.norm(feats, axis=1) > 0).all()
    np.testing.assert_array_equal(rec.transform(faces), feats)
    assert rec.transform(faces[:0]).shape == (0, DLIB_DIM)
    copy = pickle.loads(pickle.dumps(rec))
    assert not hasattr(copy, "net_")
    np.testing.assert_array_equal(copy.transform(faces[:1]), feats[:1])


def test_mated_closer_than_non_mated_on_orl(orl_root: Path) -> None:
    _require_dlib()
    from benchmark.data.align import Aligner
    from benchmark.data.imageio import read_image

    files = [orl_root / f"s{s}" / f"{i}.pgm" for s in (1, 2) for i in (1, 2, 3)]
    faces, detected = Aligner().align_batch([read_image(p) for p in files])
    assert detected.all()
    feats = DlibRecognizer().transform(faces)
    i, j = np.triu_indices(len(files), 1)
    scores = DlibRecognizer().compare(feats[i], feats[j])
    mated = (i // 3) == (j // 3)
    assert scores[mated].min() > scores[~mated].max()
