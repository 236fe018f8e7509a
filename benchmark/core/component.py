"""Component base classes following scikit-learn's estimator contract.

* ``__init__`` is keyword-only and only stores its arguments as attributes of
  the same name; it never validates or computes.
* ``_constraints`` declares, per parameter, what is allowed. :meth:`validate`
  checks parameters against it and raises :class:`ParamError`, which names the
  parameter, the value and what is allowed.
* ``fit`` returns ``self``; state learnt by ``fit`` ends in ``_``.
* :meth:`get_params` (read from the ``__init__`` signature) feeds ``repr`` and
  cache keys.
* ``runtime_params`` names the parameters that only say how to run
  (``batch_size``, ``threads``, ``device``), not what is computed: reports
  leave them out of the component's label and shown parameters
  (:meth:`identity_params`).

Each kind's base class declares what the harness may call on it, hooks
included (:meth:`Component.label`, :meth:`Scheme.settings`,
:attr:`Attack.counters`, :attr:`Attack.requires`, the
:class:`CodestreamScheme`, :class:`ByteCipherScheme`, :class:`InvertibleScheme`, :class:`KeyedAttack` and
:class:`LinkageMetric` contracts); nothing is
looked up by name or with ``hasattr``.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple, Self

import numpy as np

from benchmark.core.codeversion import code_version
from benchmark.core.keys import AppKey
from benchmark.core.strict_yaml import did_you_mean

__all__ = [
    "ParamError",
    "Constraint",
    "Interval",
    "Options",
    "InstanceOf",
    "Nullable",
    "Component",
    "Recognizer",
    "FittedRecognizer",
    "Dataset",
    "Scheme",
    "CodestreamScheme",
    "ByteCipherScheme",
    "InvertibleScheme",
    "Protected",
    "Attack",
    "AttackResult",
    "KeyedAttack",
    "LearnedAttack",
    "ReconstructionAttack",
    "RecognizerAttack",
    "Metric",
    "FaceQuality",
    "LinkageMetric",
    "Samples",
    "FACE_SHAPE",
    "check_faces",
    "to_face",
]

# Every stage after alignment exchanges faces of this shape (uint8 RGB).
FACE_SHAPE = (112, 112, 3)


def check_faces(images: Any) -> np.ndarray:
    """Validate aligned faces: uint8 (N, 112, 112, 3).

    Raises:
        ValueError: on another dtype or shape.
    """
    arr = np.asarray(images)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[1:] != FACE_SHAPE:
        raise ValueError(f"faces must be uint8 with shape (N, 112, 112, 3), got {arr.dtype} {arr.shape}")
    return arr


def to_face(decoded: np.ndarray) -> np.ndarray:
    """A decoded sample as an aligned face: grey replicated to RGB, uint8 (112, 112, 3).

    Raises:
        ValueError: another size.
    """
    if decoded.ndim == 2:
        decoded = np.repeat(decoded[..., None], 3, axis=2)
    if decoded.shape != FACE_SHAPE:
        raise ValueError(f"decoded sample has shape {decoded.shape}, not {FACE_SHAPE}")
    return decoded.astype(np.uint8, copy=False)


class ParamError(ValueError):
    """A parameter value that its constraint rejects, or a parameter name the component does not have.

    Attributes:
        param: Parameter name (a field path relative to ``params``).
        value: The rejected value.
        allowed: Human-readable description of what is allowed.
        problem: What is wrong, as messages print it after the parameter's
            path: ``0 is not in [1, 16]``; for a name the component does not
            have, ``unknown parameter; did you mean 'radius'? (allowed: …)``.
    """

    def __init__(self, param: str, value: Any, allowed: str, *, problem: str | None = None):
        self.param, self.value, self.allowed = param, value, allowed
        self.problem = f"{value!r} {allowed}" if problem is None else problem
        super().__init__(f"{param}: {self.problem}")

    @classmethod
    def unknown(cls, param: str, value: Any, names: Sequence[str]) -> ParamError:
        """An unknown parameter: the name is wrong, not its value, so the message says so and suggests near misses."""
        allowed = ", ".join(names) if names else "none"
        return cls(param, value, allowed, problem=f"unknown parameter{did_you_mean(param, names)} (allowed: {allowed})")


class Constraint:
    """Base of declarative parameter constraints."""

    def check(self, value: Any) -> str | None:
        """Return None if ``value`` is allowed, else the 'is not …' phrase."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def invalid_values(self) -> list[Any]:
        """Values this constraint rejects (the conformance test feeds them to every component)."""
        return [object()]


@dataclass(frozen=True)
class Interval(Constraint):
    """A closed (by default) numeric interval; ``None`` bounds are open-ended.

    Args:
        kind: ``int`` or ``float``; a bool is never accepted as a number.
    """

    kind: type
    low: float | None = None
    high: float | None = None
    closed: str = "both"  # both | left | right | neither

    def _type_ok(self, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if self.kind is int:
            return isinstance(value, numbers.Integral)
        return isinstance(value, numbers.Real) and math.isfinite(float(value))

    def check(self, value: Any) -> str | None:
        if not self._type_ok(value):
            return f"is not {'an integer' if self.kind is int else 'a finite number'}"
        lo_ok = self.low is None or (value >= self.low if self.closed in ("both", "left") else value > self.low)
        hi_ok = self.high is None or (value <= self.high if self.closed in ("both", "right") else value < self.high)
        return None if lo_ok and hi_ok else f"is not in {self.describe()}"

    def invalid_values(self) -> list[Any]:
        out: list[Any] = ["1", True, None]
        if self.kind is int:
            out.append(1.5)
        else:
            out.append(float("nan"))
        if self.low is not None:
            out.append(self.kind(self.low) - 1)
        if self.high is not None:
            out.append(self.kind(self.high) + 1)
        return out

    def describe(self) -> str:
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        lo = "-inf" if self.low is None else self._bound(self.low)
        hi = "inf" if self.high is None else self._bound(self.high)
        return f"{left}{lo}, {hi}{right}"

    @staticmethod
    def _bound(value: float) -> str:
        # Whole numbers exactly (a seed's 4294967295, not 4.29497e+09; 1e7 as
        # 10000000); other floats to 12 significant digits.
        if isinstance(value, numbers.Integral) or (float(value).is_integer() and abs(value) < 1e15):
            return str(int(value))
        return f"{value:.12g}"


@dataclass(frozen=True)
class Options(Constraint):
    """One of a fixed set of values."""

    values: tuple

    def check(self, value: Any) -> str | None:
        return None if value in self.values else f"is not one of {self.describe()}"

    def invalid_values(self) -> list[Any]:
        return ["no such option", None]

    def describe(self) -> str:
        return "{" + ", ".join(repr(v) for v in self.values) + "}"


@dataclass(frozen=True)
class InstanceOf(Constraint):
    """An instance of the given type(s); ``None`` allowed when ``optional``."""

    types: tuple
    optional: bool = False
    item: Constraint | None = None  # applied to each element of a list/tuple

    def check(self, value: Any) -> str | None:
        if value is None and self.optional:
            return None
        if isinstance(value, bool) and bool not in self.types:
            return f"is not {self.describe()}"
        if not isinstance(value, self.types):
            return f"is not {self.describe()}"
        if self.item is not None and isinstance(value, (list, tuple)):
            for v in value:
                problem = self.item.check(v)
                if problem is not None:
                    return f"has an element {v!r} that {problem}"
        return None

    def invalid_values(self) -> list[Any]:
        out: list[Any] = [object()]
        if not self.optional:
            out.append(None)
        if self.item is not None and list in self.types:
            out += [[v] for v in self.item.invalid_values() if v is not None][:1]
        return out

    def describe(self) -> str:
        names = " or ".join(t.__name__ for t in self.types)
        return f"{names}{' or null' if self.optional else ''}"


@dataclass(frozen=True)
class Nullable(Constraint):
    """``None``, or a value ``inner`` allows (a parameter without a default value)."""

    inner: Constraint

    def check(self, value: Any) -> str | None:
        if value is None:
            return None
        problem = self.inner.check(value)
        return None if problem is None else f"{problem} and is not null"

    def describe(self) -> str:
        return f"{self.inner.describe()} or null"

    def invalid_values(self) -> list[Any]:
        return [v for v in self.inner.invalid_values() if v is not None]


class Component:
    """Base of every registered component (scikit-learn style)."""

    registry_name: ClassVar[str] = ""
    _constraints: ClassVar[dict[str, Constraint]] = {}
    #: Parameters that only set how the component runs (batch size, threads,
    #: device): results agree across their values up to float rounding. They
    #: stay in :meth:`get_params` (cache keys, provenance, ``compare``'s row
    #: matching) but not in what a report shows as the component's identity.
    runtime_params: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]

    @classmethod
    def param_defaults(cls) -> dict[str, Any]:
        sig = inspect.signature(cls.__init__)
        return {p.name: p.default for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}

    @classmethod
    def summary(cls) -> str:
        """First line of the class docstring."""
        doc = inspect.getdoc(cls) or ""
        return doc.splitlines()[0] if doc else ""

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.param_names()}

    def identity_params(self) -> dict[str, Any]:
        """:meth:`get_params` without the :attr:`runtime_params`: what the component computes."""
        return {k: v for k, v in self.get_params().items() if k not in self.runtime_params}

    def set_params(self, **params: Any) -> Self:
        names = self.param_names()
        for key, value in params.items():
            if key not in names:
                raise ParamError.unknown(key, value, names)
            setattr(self, key, value)
        return self

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Self:
        """Build and validate an instance; unknown keys raise :class:`ParamError`."""
        names = cls.param_names()
        for key, value in params.items():
            if key not in names:
                raise ParamError.unknown(key, value, names)
        obj = cls(**params)
        obj.validate()
        return obj

    def validate(self) -> Self:
        """Check every parameter against ``_constraints``; returns self."""
        for name, constraint in self._constraints.items():
            value = getattr(self, name)
            problem = constraint.check(value)
            if problem is not None:
                raise ParamError(name, value, problem)
        self._validate_extra()
        return self

    def _validate_extra(self) -> None:
        """Cross-parameter checks; subclasses raise :class:`ParamError`."""

    def label(self) -> str | None:
        """A display name derived from the parameters (``lw4o6``, ``warp_16_6``), or None.

        None lets the protocol name the instance: its registry name, with the
        swept values appended for a grid. Labels name score files and result
        rows, so two instances with different parameters must not share one.
        """
        return None

    def __repr__(self) -> str:
        defaults = self.param_defaults()
        shown = [f"{k}={v!r}" for k, v in self.get_params().items() if defaults.get(k) != v]
        return f"{type(self).__name__}({', '.join(shown)})"

    @classmethod
    def version(cls) -> str:
        """Code version of this component: every project module it can run (:func:`code_version`)."""
        return code_version(cls)


@dataclass
class Samples:
    """Samples of a dataset, in a fixed order.

    Attributes:
        ids: Unique, stable sample ids (relative paths for file datasets).
        subjects: Subject id of each sample.
        paths: Source file of each sample, or None for generated data.
        images: Decoded images (uint8), when the dataset generates them.
        aligned: True when images are already 112x112 aligned faces.
        skipped: Files the dataset left out (symbolic links not followed), as (id, reason).
        demo: True for generated demonstration data.
    """

    ids: list[str]
    subjects: list[str]
    paths: list[Path] | None = None
    images: np.ndarray | None = None
    aligned: bool = False
    skipped: list[tuple[str, str]] | None = None
    demo: bool = False

    def __len__(self) -> int:
        return len(self.ids)


class Dataset(Component):
    """Base of datasets: :meth:`load` lists (and may generate) samples."""

    # True when load() synthesises images from parameters alone; the harness
    # then caches them instead of fingerprinting files.
    generated: ClassVar[bool] = False

    def load(self, root: Path | None = None) -> Samples:
        raise NotImplementedError


class Recognizer(Component):
    """Base of recognizers.

    ``transform`` maps aligned faces (N, 112, 112, 3) uint8 RGB to features;
    ``compare`` scores pairs of features, higher meaning more similar.
    """

    def fit(self, images: np.ndarray | None = None, subjects: Sequence[str] | None = None) -> Self:
        return self

    def available(self) -> str | None:
        """None when usable here, else a one-line reason (missing model...)."""
        return None

    def transform(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def compare(self, probe: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Scores of row i of ``probe`` against row i of ``reference``."""
        raise NotImplementedError


class FittedRecognizer(Recognizer):
    """A recognizer with a model learnt from training faces (a descriptor vocabulary, a projection).

    The harness never fits it on a subject it evaluates with the model: with
    subject folds, the samples of each evaluated fold are embedded by a
    model fitted on the faces of the other folds
    (:func:`benchmark.engine.stages.fit_recognizer_stage`), and the fitted
    state (:meth:`state_arrays`) is a cached artifact like any stage output.
    A protocol that evaluates with a pairs file has no training subjects
    for it and is refused.
    """

    def fit(self, images: np.ndarray | None = None, subjects: Sequence[str] | None = None) -> Self:
        """Learn the model from aligned training faces, uint8 (N, 112, 112, 3), and their subjects."""
        raise NotImplementedError

    def is_fitted(self) -> bool:
        """Whether :meth:`fit` or :meth:`load_state` has set the model."""
        raise NotImplementedError

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The fitted state as named arrays (what the cache stores)."""
        raise NotImplementedError

    def load_state(self, arrays: dict[str, np.ndarray]) -> Self:
        """Restore a fitted state saved by :meth:`state_arrays`."""
        raise NotImplementedError


#: What :meth:`Scheme.protect` returns: faces (N, 112, 112, 3) uint8, or one codestream per sample.
Protected = np.ndarray | list[bytes]


class Scheme(Component):
    """Base of protection schemes.

    ``domain`` says how the scheme is used:

    * ``"cancelable"``: comparison happens in the protected domain (probe and
      reference protected under the same key); :meth:`protect` returns images.
    * ``"encryption"``: the stored sample is protected; the legitimate path
      :meth:`recover` (with the key) gives back the original image.
    """

    domain: ClassVar[Literal["cancelable", "encryption"]] = "cancelable"

    def protect(self, images: np.ndarray, key: AppKey, sample_ids: Sequence[str], subjects: Sequence[str]) -> Protected:
        """Protect aligned faces under an application key."""
        raise NotImplementedError

    def decode(self, protected: Protected) -> tuple[np.ndarray, np.ndarray]:
        """What a standard decoder makes of protected samples, without any key.

        Returns:
            (images uint8 (N, 112, 112, 3), failed bool (N,)): a sample that
            fails to decode is a failure to acquire, not an exception.
        """
        raise NotImplementedError

    def recover(
        self, protected: Protected, key: AppKey, sample_ids: Sequence[str], subjects: Sequence[str]
    ) -> np.ndarray:
        """The legitimate path with the key (encryption schemes)."""
        raise NotImplementedError(f"{type(self).__name__} has no legitimate recovery path")

    def key_space_bits(self) -> float:
        """Effective key space in bits: what a brute-force search of the key costs.

        At most the bits of the key or seed that selects the transform, however
        many distinct transforms the family has (see :meth:`transform_space_bits`).
        """
        raise NotImplementedError

    def transform_space_bits(self) -> float | None:
        """log2 of the number of distinct transforms of the family, or None when it is the key space itself."""
        return None

    def settings(self) -> dict[str, Any]:
        """Settings beyond the parameters that fix the protected output (an encoder's), for provenance."""
        return {}


class InvertibleScheme(Scheme):
    """A cancelable transform that whoever holds its key can undo, up to what it discards: :meth:`invert`.

    The inverse is an attacker's tool (the stolen-token scenario of ISO/IEC
    24745), not a legitimate path: a cancelable system compares in the
    protected domain and never recovers a face, so :meth:`Scheme.recover`
    keeps refusing.
    """

    domain = "cancelable"

    def invert(
        self, images: np.ndarray, key: AppKey, sample_ids: Sequence[str], subjects: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Undo the transform of ``key`` as far as it can be undone.

        Args:
            images: Protected faces, uint8 (N, 112, 112, 3).
            key: The application key they were protected under.
            sample_ids: Sample id of each face.
            subjects: Subject id of each face.

        Returns:
            (faces uint8 (N, 112, 112, 3), filled int64 (N,)): ``filled`` counts
            the pixels of each face that no protected pixel determines (the
            transform discarded them), which are filled in rather than recovered.
        """
        raise NotImplementedError


class CodestreamScheme(Scheme):
    """Protected samples are codestreams whose bytes in a public window are encrypted (JPEG 2000, JPEG).

    Protected samples are codestreams (``bytes``) of format :attr:`codec` in
    which only bytes inside a window of :attr:`window` % at :attr:`offset` %
    are encrypted; the window is public (Kerckhoffs), which is what error
    concealment attacks exploit. The scheme owns its name in the papers' form
    (:meth:`from_name` / :meth:`label`), its coding (:meth:`encode`,
    :meth:`decode_one`) and its cipher given an AES key and a nonce
    (:meth:`encrypt`, :meth:`decrypt`); how keys and nonces are derived is
    the caller's (the harness: per sample id; ``facesec protect``: a
    synthetic IV), so one scheme serves both.
    """

    domain = "encryption"
    #: Format of the protected codestreams: ``"j2k"`` or ``"jpeg"``.
    codec: ClassVar[str] = ""
    #: File suffix of a protected file.
    suffix: ClassVar[str] = ""
    window: float
    offset: float

    @classmethod
    def from_name(cls, name: str) -> Self | None:
        """The scheme a paper-style name denotes (``lw4o6``), None when the name is not of this scheme's form.

        Raises:
            ParamError: a name of this form with values the scheme refuses.
        """
        raise NotImplementedError

    @classmethod
    def name_forms(cls) -> str:
        """The accepted name forms, for messages (``lw<W>o<O> …``)."""
        raise NotImplementedError

    def paper_name(self) -> str:
        """The papers' name of the window alone (``lw4o6``); :meth:`label` adds coding options."""
        raise NotImplementedError

    def with_encoder(self, encoder: dict[str, Any]) -> Self:
        """This scheme with the encoder settings of ``settings()["encoder"]`` (a file's sidecar).

        Raises:
            ParamError: settings this scheme cannot produce.
        """
        raise NotImplementedError

    def encode(self, image: np.ndarray) -> bytes:
        """The plaintext codestream of a uint8 (H, W) grey or (H, W, 3) RGB image."""
        raise NotImplementedError

    def decode_one(self, data: bytes) -> np.ndarray:
        """Decode one codestream as a standard decoder does (uint8 (H, W) or (H, W, 3))."""
        raise NotImplementedError

    def encrypt(self, plaintext: bytes, aes_key: bytes, nonce: bytes) -> bytes:
        """Encrypt the window of a plaintext codestream (format compliant)."""
        raise NotImplementedError

    def decrypt(self, protected: bytes, aes_key: bytes, nonce: bytes) -> bytes:
        """Invert :meth:`encrypt` exactly."""
        raise NotImplementedError


class ByteCipherScheme(CodestreamScheme):
    """A codestream scheme that encrypts whole bytes of its window, so a decoder falls out of step there.

    What the error-concealment attacks need: the encrypted bytes are the
    window, and the code around it is plaintext to keep or resynchronise on.
    A scheme that encrypts only bits that leave the code decodable
    (JPEG amplitude bits) is a :class:`CodestreamScheme` but not this.
    """


class AttackResult(NamedTuple):
    """What an attack recovers from protected samples.

    Attributes:
        images: uint8 (N, 112, 112, 3).
        failed: bool (N,): samples the attack could not turn into a face.
        counters: Per-sample counts, one int64 (N,) array per name the
            attack declares in :attr:`Attack.counters`.
    """

    images: np.ndarray
    failed: np.ndarray
    counters: dict[str, np.ndarray]


class Attack(Component):
    """Base of attacks on protected samples.

    Declared by each attack:

    * ``knowledge``: what the attacker is assumed to know, in plain text
      (scheme parameters, key or not, training data); it appears in reports.
    * ``requires``: the scheme contract it needs (:class:`Scheme` for any);
      :meth:`incompatibility` says why a scheme does not meet it, and
      protocol validation refuses such pairs before anything runs.
    * ``counters``: names of the per-sample counts its :class:`AttackResult` carries.
    * ``reference``: True for the keyless standard decode that the other
      attacks on a scheme are compared with, image by image.
    """

    knowledge: ClassVar[str] = ""
    requires: ClassVar[type[Scheme]] = Scheme
    counters: ClassVar[tuple[str, ...]] = ()
    reference: ClassVar[bool] = False

    def describe_knowledge(self) -> str:
        """What this instance's attacker knows: ``knowledge``, unless a parameter adds to it."""
        return self.knowledge

    def key_known(self) -> bool:
        """Whether this attack uses the victim's application key (its views are marked ``key_known``)."""
        return False

    def incompatibility(self, scheme: Scheme) -> str | None:
        """None when this attack can attack ``scheme``, else why not (one line)."""
        if not isinstance(scheme, self.requires):
            summary = self.requires.summary().rstrip(".")
            return f"needs a scheme implementing {self.requires.__name__} ({summary[:1].lower()}{summary[1:]})"
        return None

    def attack(self, protected: Protected, scheme: Scheme) -> AttackResult:
        """Images an attacker obtains from protected samples, failure flags and counters."""
        raise NotImplementedError


class KeyedAttack(Attack):
    """An attack given the victim's application key and the scheme's parameters (the stolen-token scenario).

    ISO/IEC 24745 asks a cancelable template to be irreversible even to whoever
    holds its key; this is the attacker it asks about. The harness hands the
    key of the application under attack to :meth:`attack_with_key`, never
    :meth:`attack`; its views are marked ``key_known`` in the results.
    """

    def key_known(self) -> bool:
        return True

    def attack(self, protected: Protected, scheme: Scheme) -> AttackResult:
        """Refused: a key-knowing attack needs the key (:meth:`attack_with_key`)."""
        raise TypeError(f"{self.registry_name or type(self).__name__} knows the victim's key: call attack_with_key")

    def attack_with_key(
        self, protected: Protected, scheme: Scheme, key: AppKey, sample_ids: Sequence[str], subjects: Sequence[str]
    ) -> AttackResult:
        """Images an attacker holding ``key`` obtains from samples protected under it, failure flags and counters."""
        raise NotImplementedError


class LearnedAttack(Attack):
    """Base of attacks that learn from the attacker's own protected faces.

    The protocol declares the attacker (its ``attacker:`` block): faces that
    are subject-disjoint from the victims, protected under the attacker's own
    keys. The harness runs :meth:`input_attack` on them and fits the attack
    (see the two kinds below); the fitted state (:meth:`state_arrays`) is a
    cached artifact like any stage output.

    * :class:`ReconstructionAttack` learns from (input, original) pairs and
      turns protected samples into faces.
    * :class:`RecognizerAttack` learns from (input, subject) pairs and its
      product is a recognizer, not images.

    Declared by each learned attack:

    * ``min_train_faces``: fewer attacker faces than this is a protocol error.
    * ``input``, ``seed`` and ``device`` parameters: ``input`` names the
      attack (keyless, or a :class:`KeyedAttack`) whose output the learned part takes
      (:func:`attacks.learned.input_attack_named` checks and builds it); training
      is deterministic for a seed on the CPU; ``device`` is ``auto``, ``cpu``
      or ``cuda``.
    * :meth:`train_schemes`: the scheme settings the attacker trains under
      (None: the setting under attack).
    """

    min_train_faces: ClassVar[int] = 16
    input: str
    seed: int
    device: str
    #: Set by ``fit`` and :meth:`load_state`: one dict per training epoch.
    history_: list[dict[str, Any]]

    def input_attack(self) -> Attack:
        """The attack whose output the learned part takes as input (``naive`` decode by default)."""
        raise NotImplementedError

    def incompatibility(self, scheme: Scheme) -> str | None:
        return self.input_attack().incompatibility(scheme)

    def key_known(self) -> bool:
        """True when the input attack holds the victim's key (``input: invert``): so does the whole attack."""
        return self.input_attack().key_known()

    def resolved_device(self) -> str:
        """``cpu`` or ``cuda``: what ``device`` means on this machine (``auto``: a GPU when torch sees one)."""
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def train_schemes(self) -> list[tuple[str, dict[str, Any]]] | None:
        """(registered scheme name, parameters) the attacker protects its faces with, in turn.

        None (the default) trains under the very setting being attacked; a list
        trains one model for all settings attacked (a mismatch study), the
        attacker's faces cycling through the listed settings.
        """
        return None

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The fitted state as named arrays (what the cache stores)."""
        raise NotImplementedError

    def load_state(self, arrays: dict[str, np.ndarray], history: list[dict[str, Any]]) -> Self:
        """Restore a fitted state saved by :meth:`state_arrays`."""
        raise NotImplementedError


class ReconstructionAttack(LearnedAttack):
    """A learned attack that turns protected samples into faces: :meth:`fit` on pairs, then :meth:`reconstruct`.

    Victims' protected samples go through :meth:`input_attack` and
    :meth:`reconstruct`, which is all that :meth:`attack` does.
    """

    def fit(
        self,
        inputs: np.ndarray,
        originals: np.ndarray,
        *,
        val_inputs: np.ndarray | None = None,
        val_originals: np.ndarray | None = None,
        desc: str = "",
    ) -> Self:
        """Learn from pairs (input attack output, original face), uint8 (N, H, W, 3) each.

        Sets ``history_``: one dict per epoch (``epoch``, ``loss``, ``val_loss``, ``seconds``).
        """
        raise NotImplementedError

    def reconstruct(self, inputs: np.ndarray) -> np.ndarray:
        """Faces (uint8, the shape of ``inputs``) the fitted model makes of input-attack outputs."""
        raise NotImplementedError

    def attack(self, protected: Protected, scheme: Scheme) -> AttackResult:
        """Run the input attack, then the fitted model; samples the input attack fails on stay failed."""
        problem = self.incompatibility(scheme)
        if problem is not None:
            raise ValueError(f"{self.registry_name} cannot attack {type(scheme).__name__}: {problem}")
        first = self.input_attack().attack(protected, scheme)
        return AttackResult(self.reconstruct(first.images), first.failed, {})


class RecognizerAttack(LearnedAttack):
    """A learned attack whose product is a recognizer: it learns identities from the attacker's protected faces.

    The harness fits it on (input-attack output, subject) pairs and evaluates
    the victims' samples with :meth:`embed` instead of a recognizer of the
    protocol: its rows stand beside the rows of the protocol's recognizer it
    starts from (``recognizers`` names the registered recognizers that are its
    pretrained base; the protocol must list one of them).
    """

    #: Registered recognizers whose rows this attack's rows stand beside (its pretrained base).
    recognizers: ClassVar[tuple[str, ...]] = ()

    def fit(
        self,
        inputs: np.ndarray,
        labels: np.ndarray,
        *,
        val_inputs: np.ndarray | None = None,
        val_labels: np.ndarray | None = None,
        val_references: np.ndarray | None = None,
        desc: str = "",
    ) -> Self:
        """Learn identities from input-attack outputs, uint8 (N, H, W, 3), and integer subject labels (N,).

        Validation faces (held-out subjects) come as the input attack's
        output ``val_inputs`` and, row for row, the same faces unprotected
        (``val_references``), so that a model is selected on what it is judged
        on: protected probes against plain references of other faces.

        Sets ``history_``: one dict per epoch (``epoch``, ``loss``, ``val_eer``, ``seconds``).
        """
        raise NotImplementedError

    def embed(self, images: np.ndarray) -> np.ndarray:
        """Unit-norm float32 (N, D) features of aligned faces by the fitted recognizer (compared by cosine)."""
        raise NotImplementedError

    def attack(self, protected: Protected, scheme: Scheme) -> AttackResult:
        """The images the fitted recognizer is shown: the input attack's output."""
        problem = self.incompatibility(scheme)
        if problem is not None:
            raise ValueError(f"{self.registry_name} cannot attack {type(scheme).__name__}: {problem}")
        return self.input_attack().attack(protected, scheme)


class FaceQuality(Component):
    """Base of offline face-quality measures: a score per aligned face, higher meaning more usable.

    Declared by each measure: ``description``, what it measures in one line
    (reports print it next to the distributions).
    """

    description: ClassVar[str] = ""

    def available(self) -> str | None:
        """None when usable here, else a one-line reason (missing model...)."""
        return None

    def measure(self, images: np.ndarray) -> np.ndarray:
        """Scores, float64 (N,), of aligned faces uint8 (N, 112, 112, 3); NaN where undefined."""
        raise NotImplementedError


class Metric(Component):
    """Base of metrics: a function of genuine and impostor scores."""

    def compute(self, genuine: np.ndarray, impostor: np.ndarray) -> dict[str, float]:
        raise NotImplementedError


class LinkageMetric(Metric):
    """Contract of linkability metrics: they bootstrap over subjects themselves and draw a curve.

    The harness gives them the probe subject of each comparison instead of
    wrapping them in its own bootstrap, and puts :meth:`curve` in the row.
    """

    def compute_with_subjects(
        self,
        genuine: np.ndarray,
        impostor: np.ndarray,
        genuine_subjects: Sequence[Any] | np.ndarray,
        impostor_subjects: Sequence[Any] | np.ndarray,
    ) -> dict[str, float]:
        raise NotImplementedError

    def curve(self, genuine: np.ndarray, impostor: np.ndarray) -> dict[str, Any]:
        raise NotImplementedError
