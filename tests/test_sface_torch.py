"""SFace in torch: block dequantisation, and the same embeddings as onnxruntime on real and generated faces."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark.core.registry import RECOGNIZERS
from benchmark.data.datasets.synthetic import SyntheticFaces
from benchmark.recognizers.onnx import SFaceRecognizer, sface_session
from benchmark.recognizers.sface_torch import (
    SFaceTorchRecognizer,
    dequantize_blocks,
    embed_faces,
    load_sface_torch,
)

pytestmark = pytest.mark.skipif(SFaceRecognizer().available() is not None, reason="SFace model not installed")


def _loop_dequantize(q, scale, zp, axis, block):
    out = np.zeros(q.shape, np.float32)
    for index in np.ndindex(q.shape):
        b = list(index)
        b[axis] //= block
        out[index] = (float(q[index]) - float(zp[tuple(b)])) * float(scale[tuple(b)])
    return out


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(1, 5),
    cols=st.integers(1, 9),
    axis=st.integers(0, 1),
    block=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_block_dequantisation_matches_the_definition(rows, cols, axis, block, seed):
    rng = np.random.default_rng(seed)
    q = rng.integers(-128, 128, (rows, cols)).astype(np.int8)
    shape = [rows, cols]
    shape[axis] = -(-shape[axis] // block)
    scale = rng.uniform(1e-4, 1e-2, shape).astype(np.float32)
    zp = rng.integers(-20, 20, shape).astype(np.int8)
    np.testing.assert_allclose(
        dequantize_blocks(q, scale, zp, axis, block), _loop_dequantize(q, scale, zp, axis, block)
    )


def test_block_dequantisation_matches_onnxruntime():
    """The ONNX operator itself (opset 21, blocked) is the reference."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    q = rng.integers(-128, 128, (6, 10)).astype(np.int8)
    scale = rng.uniform(1e-3, 1e-2, (6, 3)).astype(np.float32)
    zp = rng.integers(-5, 5, (6, 3)).astype(np.int8)
    node = helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], axis=1, block_size=4)
    graph = helper.make_graph(
        [node],
        "dq",
        [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [6, 10])],
        [numpy_helper.from_array(q, "q"), numpy_helper.from_array(scale, "s"), numpy_helper.from_array(zp, "z")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    (want,) = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {})
    np.testing.assert_allclose(dequantize_blocks(q, scale, zp, 1, 4), want, rtol=1e-6)


def test_bad_block_shapes_are_refused():
    with pytest.raises(ValueError, match="do not block"):
        dequantize_blocks(np.zeros((4, 8), np.int8), np.ones((4, 3)), np.zeros((4, 3)), 1, 4)


@pytest.fixture(scope="module")
def net():
    return load_sface_torch()


def _cosines(faces: np.ndarray, net) -> np.ndarray:
    a = embed_faces(net, faces, "cpu")
    b = SFaceRecognizer().transform(faces)
    return np.einsum("ij,ij->i", a, b)


def test_torch_embeddings_match_onnxruntime_on_generated_faces(net):
    faces = SyntheticFaces(n_subjects=8, n_images=2, seed=3).load().images
    assert _cosines(np.asarray(faces), net).min() >= 0.9999


def test_torch_embeddings_match_onnxruntime_on_real_faces(net, orl_root):
    """ORL faces, aligned as the harness aligns them (skips without ../shared)."""
    from benchmark.data.align import align_batch
    from benchmark.data.imageio import read_image

    paths = sorted(orl_root.rglob("*.pgm"))[::10][:40]
    faces, _ = align_batch(read_image(p) for p in paths)
    cos = _cosines(faces, net)
    assert len(cos) == 40 and cos.min() >= 0.9999, cos.min()


def test_frozen_trunk_agrees_between_torch_and_onnxruntime(net):
    """The finetune attack reads the trunk's output from onnxruntime on the CPU; torch computes the rest."""
    import torch

    faces = np.asarray(SyntheticFaces(n_subjects=4, n_images=2, seed=1).load().images)
    x = np.ascontiguousarray(faces.transpose(0, 3, 1, 2), np.float32)
    session = sface_session(output="conv_12_relu")
    ort_out = session.run(None, {session.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        torch_out = net.trunk(torch.from_numpy(x), 12).numpy()
    assert ort_out.shape == torch_out.shape == (8, 512, 14, 14)
    np.testing.assert_allclose(ort_out, torch_out, atol=1e-3 * np.abs(torch_out).max())


def test_registered_recognizer_embeds_unit_vectors():
    assert RECOGNIZERS.get("sface-torch") is SFaceTorchRecognizer
    rec = SFaceTorchRecognizer(device="cpu")
    assert rec.available() is None
    faces = np.asarray(SyntheticFaces(n_subjects=2, n_images=2, seed=0).load().images)
    feats = rec.fit().transform(faces)
    assert feats.shape == (4, 128) and feats.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, rtol=1e-5)
    assert rec.transform(faces[:0]).shape == (0, 128)
