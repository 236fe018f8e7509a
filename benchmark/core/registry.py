"""The one registry module: a typed :class:`Registry` per component kind.

Components enter a registry in exactly one way, the :meth:`Registry.register`
decorator, and every kind loads its components the same way on first lookup:

1. every module of the kind's built-in package is imported (``schemes`` for
   schemes, ``attacks`` for attacks, ``benchmark.recognizers``,
   ``benchmark.data.datasets``, ``benchmark.metrics``), so a new built-in
   component is one new module in that package;
2. then the modules named by Python entry points in the group
   ``facesec.<kind>s`` (for example ``facesec.recognizers``): third-party
   packages register their classes with the same decorator.

Packages are imported by name here, lazily, so that this module stays at the
bottom of the import graph (the component packages import it, never the
reverse).
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from benchmark.core.component import Attack, Component, Dataset, FaceQuality, Metric, Recognizer, Scheme
from benchmark.core.strict_yaml import did_you_mean

__all__ = [
    "Registry",
    "UnknownComponentError",
    "RECOGNIZERS",
    "DATASETS",
    "SCHEMES",
    "ATTACKS",
    "METRICS",
    "QUALITY",
    "all_registries",
]

log = logging.getLogger(__name__)

T = TypeVar("T", bound=Component)


class UnknownComponentError(KeyError):
    """A name that no registry entry matches; the message suggests near misses."""

    def __init__(self, kind: str, name: str, known: list[str]):
        self.kind, self.name, self.known = kind, name, known
        hint = did_you_mean(name, known, n=3, cutoff=0.5)
        allowed = ", ".join(known) if known else "none registered"
        super().__init__(f"unknown {kind} {name!r}{hint} (allowed: {allowed})")

    def __str__(self) -> str:  # KeyError would add quotes around the message
        return str(self.args[0])


class Registry(Generic[T]):
    """Name -> class mapping for one kind of component.

    Args:
        kind: Human-readable kind, used in messages.
        base: Every registered class must subclass it.
        package: The built-in package whose modules are imported on first
            lookup (None: entry points only).
        plural: The kind in the plural (default ``<kind>s``): ``facesec list``
            headings and the entry-point group ``facesec.<plural>``.
    """

    def __init__(self, kind: str, base: type[T], package: str | None = None, plural: str | None = None):
        self.kind = kind
        self.base = base
        self.package = package
        self.plural = plural or f"{kind}s"
        self._entries: dict[str, type[T]] = {}
        self._loaded = False

    @property
    def entry_point_group(self) -> str:
        return f"facesec.{self.plural}"

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        """Class decorator that registers ``cls`` under ``name``.

        Raises:
            TypeError: the class does not subclass the registry's base.
            ValueError: the name is taken by another class.
        """

        def decorator(cls: type[T]) -> type[T]:
            if not issubclass(cls, self.base):
                raise TypeError(f"{cls.__name__} must subclass {self.base.__name__}")
            existing = self._entries.get(name)
            if existing is not None and existing.__qualname__ != cls.__qualname__:
                raise ValueError(f"{self.kind} {name!r} is already registered by {existing}")
            cls.registry_name = name
            self._entries[name] = cls
            return cls

        return decorator

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if self.package is not None:
            package = importlib.import_module(self.package)
            for info in pkgutil.iter_modules(package.__path__, prefix=f"{self.package}."):
                importlib.import_module(info.name)
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


RECOGNIZERS: Registry[Recognizer] = Registry("recognizer", Recognizer, "benchmark.recognizers")
DATASETS: Registry[Dataset] = Registry("dataset", Dataset, "benchmark.data.datasets")
SCHEMES: Registry[Scheme] = Registry("scheme", Scheme, "schemes")
ATTACKS: Registry[Attack] = Registry("attack", Attack, "attacks")
METRICS: Registry[Metric] = Registry("metric", Metric, "benchmark.metrics")
QUALITY: Registry[FaceQuality] = Registry("face quality measure", FaceQuality, "benchmark.quality", "face_quality")


def all_registries() -> dict[str, Registry]:
    """Every registry, keyed by kind."""
    return {r.kind: r for r in (RECOGNIZERS, DATASETS, SCHEMES, ATTACKS, METRICS, QUALITY)}
