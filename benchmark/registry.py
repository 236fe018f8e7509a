"""The one registry module: a typed :class:`Registry` per component kind.

Components enter a registry in exactly one way, the :meth:`Registry.register`
decorator. Built-in components live in this distribution's packages and are
imported lazily on first lookup; third-party packages add theirs through
Python entry points in the groups ``facesec.<kind>s`` (for example
``facesec.recognizers``), whose modules simply use the same decorator.
"""

from __future__ import annotations

import difflib
import importlib
import logging
from importlib.metadata import entry_points
from typing import Callable, Generic, Iterator, TypeVar

__all__ = [
    "Registry",
    "UnknownComponentError",
    "RECOGNIZERS",
    "DATASETS",
    "SCHEMES",
    "ATTACKS",
    "METRICS",
    "all_registries",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

# Modules whose import registers the built-in components of each kind. They are
# imported lazily so that `import benchmark` stays cheap and free of cycles.
_BUILTIN_MODULES: dict[str, tuple[str, ...]] = {
    "recognizer": (
        "benchmark.recognizers.lbp",
        "benchmark.recognizers.onnx",
        "benchmark.recognizers.dlib",
    ),
    "dataset": ("benchmark.datasets.synthetic", "benchmark.datasets.folder"),
    "scheme": ("schemes",),
    "attack": ("attacks",),
    "metric": ("benchmark.metrics", "benchmark.unlinkability"),
}


class UnknownComponentError(KeyError):
    """A name that no registry entry matches; the message suggests near misses."""

    def __init__(self, kind: str, name: str, known: list[str]):
        self.kind, self.name, self.known = kind, name, known
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        allowed = ", ".join(known) if known else "none registered"
        super().__init__(f"unknown {kind} {name!r}{hint} (allowed: {allowed})")

    def __str__(self) -> str:  # KeyError would add quotes around the message
        return str(self.args[0])


class Registry(Generic[T]):
    """Name -> class mapping for one kind of component.

    Args:
        kind: Human-readable kind, used in messages ("recognizer", ...).
        base: Every registered class must subclass it.
    """

    def __init__(self, kind: str, base: type[T] | None = None):
        self.kind = kind
        self.base = base
        self._entries: dict[str, type[T]] = {}
        self._loaded = False

    @property
    def entry_point_group(self) -> str:
        return f"facesec.{self.kind}s"

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        """Class decorator that registers ``cls`` under ``name``.

        Raises:
            ValueError: if the name is taken by another class, or the class
                does not subclass the registry's base.
        """

        def decorator(cls: type[T]) -> type[T]:
            if self.base is not None and not issubclass(cls, self.base):
                raise TypeError(f"{cls.__name__} must subclass {self.base.__name__}")
            existing = self._entries.get(name)
            if existing is not None and existing.__qualname__ != cls.__qualname__:
                raise ValueError(f"{self.kind} {name!r} is already registered by {existing}")
            cls.registry_name = name  # type: ignore[attr-defined]
            self._entries[name] = cls
            return cls

        return decorator

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in _BUILTIN_MODULES.get(self.kind, ()):
            importlib.import_module(module)
        for ep in entry_points(group=self.entry_point_group):
            try:
                ep.load()
            except Exception as exc:  # a broken plug-in must not take the harness down
                log.warning("entry point %s (%s) failed to load: %s", ep.name, ep.value, exc)

    def get(self, name: str) -> type[T]:
        """Return the class registered as ``name``.

        Raises:
            UnknownComponentError: with "did you mean" suggestions.
        """
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownComponentError(self.kind, name, self.names()) from None

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def items(self) -> Iterator[tuple[str, type[T]]]:
        self._load()
        return iter(sorted(self._entries.items()))

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __len__(self) -> int:
        self._load()
        return len(self._entries)


def _make_registries() -> dict[str, Registry]:
    # Base classes are imported here, not at module top, to keep this module
    # importable by the base modules themselves.
    from benchmark.component import Attack, Dataset, Metric, Recognizer, Scheme

    return {
        "recognizer": Registry("recognizer", Recognizer),
        "dataset": Registry("dataset", Dataset),
        "scheme": Registry("scheme", Scheme),
        "attack": Registry("attack", Attack),
        "metric": Registry("metric", Metric),
    }


_REGISTRIES = _make_registries()
RECOGNIZERS: Registry = _REGISTRIES["recognizer"]
DATASETS: Registry = _REGISTRIES["dataset"]
SCHEMES: Registry = _REGISTRIES["scheme"]
ATTACKS: Registry = _REGISTRIES["attack"]
METRICS: Registry = _REGISTRIES["metric"]


def all_registries() -> dict[str, Registry]:
    """Every registry, keyed by kind."""
    return dict(_REGISTRIES)
