"""The layout is the architecture: higher layers import lower ones, never the reverse; no import cycles."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.core.codeversion import PROJECT_PACKAGES, module_file

REPO = Path(__file__).resolve().parents[1]

# Layer of each package, lowest first. Packages of one layer do not import each other.
LAYERS: list[tuple[str, ...]] = [
    ("benchmark.core",),
    ("benchmark.codecs", "benchmark.data"),
    ("benchmark.metrics", "benchmark.recognizers", "benchmark.quality"),
    ("schemes", "attacks"),
    ("benchmark.engine",),
    ("reports",),
    ("benchmark.cli",),
]


def _group(module: str) -> str:
    if module == "benchmark":
        return "benchmark.core"  # the package itself only holds the version
    for layer in LAYERS:
        for group in layer:
            if module == group or module.startswith(group + "."):
                return group
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")


def _rank(group: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if group in layer)


def _modules() -> list[str]:
    out = []
    for top in PROJECT_PACKAGES:
        for path in sorted((REPO / top).rglob("*.py")):
            rel = path.relative_to(REPO).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            out.append(".".join(parts))
    return out


def _imports(module: str) -> set[str]:
    path = module_file(module)
    assert path is not None
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = importlib.util.resolve_name("." * node.level + base, package).rstrip(".")
            found.add(base)
    return {m for m in found if m.split(".")[0] in PROJECT_PACKAGES}


@pytest.mark.parametrize("module", _modules())
def test_imports_go_down_the_layers(module):
    mine = _group(module)
    for target in _imports(module):
        theirs = _group(target)
        assert theirs == mine or _rank(theirs) < _rank(mine), (
            f"{module} imports {target} ({theirs} is not below {mine})"
        )


@pytest.mark.parametrize(
    "module", [m for m in _modules() if not m.startswith("benchmark.cli")] + ["benchmark.cli.main"]
)
def test_each_module_imports_alone(module):
    # A fresh interpreter per module: an import cycle shows up as an ImportError.
    run = subprocess.run(
        [sys.executable, "-c", f"import {module}"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-1500:]


# Where a project import may wait until it is used: the command line (each
# command loads only what it runs, so `facesec --help` or a cached rerun does
# not pay for matplotlib or torch) and a package's PEP 562 ``__getattr__``.
_DEFERRED_OK = ("benchmark.cli.",)


def test_project_modules_are_imported_at_module_level():
    """Function-level imports are for optional third-party dependencies, and for deferring work in the CLI."""
    offenders = []
    for module in _modules():
        if module.startswith(_DEFERRED_OK):
            continue
        tree = ast.parse(module_file(module).read_text())  # type: ignore[union-attr]
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    if fn.name == "__getattr__":
                        continue
                    if isinstance(node, ast.ImportFrom) and (
                        node.level or (node.module or "").split(".")[0] in PROJECT_PACKAGES
                    ):
                        offenders.append(f"{module}.{fn.name}")
                    elif isinstance(node, ast.Import) and any(
                        a.name.split(".")[0] in PROJECT_PACKAGES for a in node.names
                    ):
                        offenders.append(f"{module}.{fn.name}")
    assert offenders == []
