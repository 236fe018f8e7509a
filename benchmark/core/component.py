"""Component base classes following scikit-learn's estimator contract.

* ``__init__`` is keyword-only and only stores its arguments as attributes of
  the same name; it never validates or computes.
* ``_constraints`` declares, per parameter, what is allowed. :meth:`validate`
  checks parameters against it and raises :class:`ParamError`, which names the
  parameter, the value and what is allowed.
* ``fit`` returns ``self``; state learnt by ``fit`` ends in ``_``.
* :meth:`get_params` (read from the ``__init__`` signature) feeds ``repr`` and
  cache keys.
"""

from __future__ import annotations

import inspect
import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

__all__ = [
    "ParamError",
    "Constraint",
    "Interval",
    "Options",
    "InstanceOf",
    "Component",
    "Recognizer",
    "Dataset",
    "Scheme",
    "Attack",
    "Metric",
    "Samples",
    "FACE_SHAPE",
    "check_faces",
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


class ParamError(ValueError):
    """A parameter value that its constraint rejects.

    Attributes:
        param: Parameter name (a field path relative to ``params``).
        value: The rejected value.
        allowed: Human-readable description of what is allowed.
    """

    def __init__(self, param: str, value: Any, allowed: str):
        self.param, self.value, self.allowed = param, value, allowed
        super().__init__(f"{param}: {value!r} {allowed}")


class Constraint:
    """Base of declarative parameter constraints."""

    def check(self, value: Any) -> str | None:
        """Return None if ``value`` is allowed, else the 'is not …' phrase."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


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
        lo_ok = self.low is None or (
            value >= self.low if self.closed in ("both", "left") else value > self.low
        )
        hi_ok = self.high is None or (
            value <= self.high if self.closed in ("both", "right") else value < self.high
        )
        return None if lo_ok and hi_ok else f"is not in {self.describe()}"

    def describe(self) -> str:
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        return f"{left}{lo}, {hi}{right}"


@dataclass(frozen=True)
class Options(Constraint):
    """One of a fixed set of values."""

    values: tuple

    def check(self, value: Any) -> str | None:
        return None if value in self.values else f"is not one of {self.describe()}"

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

    def describe(self) -> str:
        names = " or ".join(t.__name__ for t in self.types)
        return f"{names}{' or null' if self.optional else ''}"


class Component:
    """Base of every registered component (scikit-learn style)."""

    registry_name: ClassVar[str] = ""
    _constraints: ClassVar[dict[str, Constraint]] = {}

    @classmethod
    def param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        ]

    @classmethod
    def param_defaults(cls) -> dict[str, Any]:
        sig = inspect.signature(cls.__init__)
        return {
            p.name: p.default
            for p in sig.parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        }

    @classmethod
    def summary(cls) -> str:
        """First line of the class docstring."""
        doc = inspect.getdoc(cls) or ""
        return doc.splitlines()[0] if doc else ""

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.param_names()}

    def set_params(self, **params: Any) -> "Component":
        names = set(self.param_names())
        for key, value in params.items():
            if key not in names:
                raise ParamError(key, value, f"is not a parameter (allowed: {', '.join(sorted(names))})")
            setattr(self, key, value)
        return self

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "Component":
        """Build and validate an instance; unknown keys raise :class:`ParamError`."""
        names = cls.param_names()
        for key, value in params.items():
            if key not in names:
                allowed = ", ".join(names) if names else "none"
                raise ParamError(key, value, f"is not a parameter (allowed: {allowed})")
        obj = cls(**params)
        obj.validate()
        return obj

    def validate(self) -> "Component":
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

    def __repr__(self) -> str:
        defaults = self.param_defaults()
        shown = [
            f"{k}={v!r}" for k, v in self.get_params().items() if defaults.get(k) != v
        ]
        return f"{type(self).__name__}({', '.join(shown)})"

    @classmethod
    def version(cls) -> str:
        """Code version of this component: changes whenever its module changes."""
        from benchmark.core.cache import source_hash

        return source_hash(cls)


@dataclass
class Samples:
    """Samples of a dataset, in a fixed order.

    Attributes:
        ids: Unique, stable sample ids (relative paths for file datasets).
        subjects: Subject id of each sample.
        paths: Source file of each sample, or None for generated data.
        images: Decoded images (uint8), when the dataset generates them.
        aligned: True when images are already 112x112 aligned faces.
        skipped: Unreadable files left out, as (id, reason).
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

    def load(self, root: Path | None) -> Samples:
        raise NotImplementedError


class Recognizer(Component):
    """Base of recognizers.

    ``transform`` maps aligned faces (N, 112, 112, 3) uint8 RGB to features;
    ``compare`` scores pairs of features, higher meaning more similar.
    """

    def fit(self, images: np.ndarray | None = None, subjects: Sequence[str] | None = None):
        return self

    def available(self) -> str | None:
        """None when usable here, else a one-line reason (missing model...)."""
        return None

    def transform(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def compare(self, probe: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Scores of row i of ``probe`` against row i of ``reference``."""
        raise NotImplementedError


class Scheme(Component):
    """Base of protection schemes.

    ``domain`` says how the scheme is used:

    * ``"cancelable"``: comparison happens in the protected domain (probe and
      reference protected under the same key); :meth:`protect` returns images.
    * ``"encryption"``: the stored sample is protected; the legitimate path
      :meth:`recover` (with the key) gives back the original image.

    Protected samples are whatever :meth:`protect` returns: a uint8 image
    array (N, 112, 112, 3), or a list of ``bytes`` (codestreams).
    """

    domain: ClassVar[str] = "cancelable"

    def protect(self, images: np.ndarray, key: Any, sample_ids: Sequence[str], subjects: Sequence[str]) -> Any:
        """Protect aligned faces under an application key (:class:`benchmark.core.keys.AppKey`)."""
        raise NotImplementedError

    def decode(self, protected: Any) -> np.ndarray:
        """What a standard decoder makes of protected samples, without any key.

        Returns:
            (images uint8 (N, 112, 112, 3), failed bool (N,)): a sample that
            fails to decode is a failure to acquire, not an exception.
        """
        raise NotImplementedError

    def recover(self, protected: Any, key: Any, sample_ids: Sequence[str], subjects: Sequence[str]) -> np.ndarray:
        """The legitimate path with the key (encryption schemes)."""
        raise NotImplementedError(f"{type(self).__name__} has no legitimate recovery path")

    def key_space_bits(self) -> float:
        """Theoretical key space in bits."""
        raise NotImplementedError


class Attack(Component):
    """Base of attacks on protected samples.

    ``knowledge`` states, in plain text, what the attacker is assumed to know
    (scheme parameters, key or not, training data); it appears in reports.
    """

    knowledge: ClassVar[str] = ""

    def fit(self, protected: Any = None, originals: np.ndarray | None = None, scheme: Scheme | None = None):
        return self

    def attack(self, protected: Any, scheme: Scheme) -> tuple[np.ndarray, np.ndarray]:
        """Images an attacker obtains from protected samples, and failure flags."""
        raise NotImplementedError


class Metric(Component):
    """Base of metrics: a function of genuine and impostor scores."""

    def compute(self, genuine: np.ndarray, impostor: np.ndarray) -> dict[str, float]:
        raise NotImplementedError
