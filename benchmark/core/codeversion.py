"""Code versions for cache keys: a hash of every project source file a piece of code can run.

A stage's result is reused only while the code that produced it is unchanged.
Hashing the files that *define* a component is not enough: a scheme calls
codec and cipher modules it imports (at module level or inside a function),
and editing those must invalidate its results too. So the code version of an
object is the hash of the transitive closure of the project modules its
module imports, found statically from the source (``import x``, ``from x
import y``, relative imports, at any depth in the file) plus every package
``__init__`` on the way, since importing ``a.b.c`` runs ``a/__init__.py`` and
``a/b/__init__.py``.

Only the project's own packages (:data:`PROJECT_PACKAGES`) are followed;
third-party libraries are covered by the package versions in provenance.
Names imported by string at run time (the registry's plug-in discovery) are
not followed: a stage runs the component it was given, whose own module is
part of the key. The rule is sound for static imports, which the project's
style requires.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["PROJECT_PACKAGES", "code_version", "module_closure", "module_file"]

#: Top-level packages whose modules count as project code.
PROJECT_PACKAGES = ("benchmark", "schemes", "attacks", "reports")


@cache
def _package_root(top: str) -> Path | None:
    # find_spec of a top-level name locates it without importing it.
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).resolve()


@cache
def module_file(name: str) -> Path | None:
    """The source file of project module ``name`` (a package's ``__init__.py``), or None."""
    top, *rest = name.split(".")
    if top not in PROJECT_PACKAGES:
        return None
    root = _package_root(top)
    if root is None:
        return None
    base = root.joinpath(*rest)
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


# Where an import statement can begin: ``ruff format`` (checked in CI) puts
# every statement, imports nested in functions or ``if`` blocks included, at
# the start of its own line.
_IMPORT_START = re.compile(rb"^[ \t]*(?:import|from)[ \t]", re.MULTILINE)


def _import_statements(source: bytes) -> Iterator[ast.stmt]:
    """The import statements of ``source``, parsed one by one.

    Parsing a whole module costs ~5 ms, the import lines alone ~0.1 ms, and a
    warm run computes the code version of every stage (about 50 modules):
    only the lines where an import can begin are parsed. A match inside a
    docstring that happens to parse only adds a module to the closure (more
    invalidation, never less).
    """
    for match in _IMPORT_START.finditer(source):
        end, depth = match.start(), 0
        while True:  # the logical line: open parentheses and backslashes continue it
            nl = source.find(b"\n", end)
            line = source[end : len(source) if nl < 0 else nl]
            code = line.split(b"#", 1)[0]
            depth += code.count(b"(") - code.count(b")")
            end = len(source) if nl < 0 else nl + 1
            if nl < 0 or (depth <= 0 and not code.rstrip().endswith(b"\\")):
                break
        try:
            yield from ast.parse(source[match.start() : end].decode("utf-8", "replace").strip()).body
        except SyntaxError:  # prose in a docstring, not code
            continue


@cache  # closures of different roots share most modules: read each file once per process
def _imported(name: str, path: Path) -> frozenset[str]:
    """Project modules imported anywhere in the source of module ``name``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _import_statements(path.read_bytes()):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.update(_ancestors(alias.name))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = (
                    importlib.util.resolve_name("." * node.level + base, package)
                    if base
                    else (importlib.util.resolve_name("." * node.level, package))
                )
            found.update(_ancestors(base))
            for alias in node.names:
                # ``from a import b`` imports module a.b when b is one.
                found.add(f"{base}.{alias.name}")
    return frozenset(m for m in found if module_file(m) is not None)


@cache
def module_closure(name: str) -> frozenset[str]:
    """Names of the project modules that importing ``name`` can execute (``name`` included)."""
    seen: set[str] = set()
    todo = _ancestors(name)
    while todo:
        current = todo.pop()
        path = module_file(current)
        if current in seen or path is None:
            continue
        seen.add(current)
        todo.extend(_imported(current, path) - seen)
    return frozenset(seen)


@cache
def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _module_names(obj: Any) -> list[str]:
    if inspect.ismodule(obj):
        return [obj.__name__]
    targets = inspect.getmro(obj) if inspect.isclass(obj) else (obj,)
    return [m for m in (getattr(t, "__module__", None) for t in targets) if m]


def code_version(*objs: Any) -> str:
    """Hash of the source of every project module that ``objs`` (modules, classes, functions) can run.

    For a class, the modules of its whole class hierarchy count; for each
    module, its import closure (:func:`module_closure`).

    Returns:
        16 hex digits.
    """
    modules: set[str] = set()
    for obj in objs:
        for name in _module_names(obj):
            if module_file(name) is not None:
                modules |= module_closure(name)
    h = hashlib.sha256()
    for name in sorted(modules):
        path = module_file(name)
        assert path is not None  # closure members all have a file
        h.update(name.encode())
        h.update(b"\x00")
        h.update(_file_digest(path).encode())
    return h.hexdigest()[:16]
