"""Code versions of cache keys: every project module a stage can run, and nothing else."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from benchmark.core.codeversion import code_version, module_closure, module_file

REPO = Path(__file__).resolve().parents[1]

# Stage -> (its module-level components). Computed in a subprocess on a copy of the project.
_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import benchmark
    assert Path(benchmark.__file__).resolve().is_relative_to(Path.cwd().resolve()), benchmark.__file__
    from benchmark.core import codeversion
    from benchmark.engine.stages import stage_code
    from benchmark.recognizers.lbp import LBPRecognizer
    from benchmark.recognizers.onnx import SFaceRecognizer
    from schemes.j2k import J2KScheme
    from schemes.jpeg import JPEGScheme
    from schemes.jpeg_amplitude import JPEGAmplitudeScheme
    from schemes.noise import NoiseScheme
    from schemes.warp import WarpScheme
    from attacks.conceal import ConcealCodeblockAttack, ConcealPacketAttack
    from attacks.conceal_jpeg import ConcealMCUAttack
    from attacks.naive import NaiveAttack

    STAGES = {
        "protect j2k": (J2KScheme,),
        "protect jpeg": (JPEGScheme,),
        "protect jpeg-amplitude": (JPEGAmplitudeScheme,),
        "protect warp": (WarpScheme,),
        "protect noise": (NoiseScheme,),
        "attack naive/j2k": (NaiveAttack, J2KScheme),
        "attack naive/warp": (NaiveAttack, WarpScheme),
        "attack conceal-packet/j2k": (ConcealPacketAttack, J2KScheme),
        "attack conceal-codeblock/j2k": (ConcealCodeblockAttack, J2KScheme),
        "attack conceal-mcu/jpeg": (ConcealMCUAttack, JPEGScheme),
        "embed lbp": (LBPRecognizer,),
        "embed sface": (SFaceRecognizer,),
        "align": (),
    }

    def versions():
        for fn in (codeversion.module_closure, codeversion._file_digest):
            fn.cache_clear()
        return {name: stage_code(*classes) for name, classes in STAGES.items()}

    out = {"base": versions()}
    for rel in sys.argv[1:]:
        path = Path(rel)
        original = path.read_bytes()
        path.write_bytes(original + b"\\n# an edit\\n")
        try:
            out[rel] = versions()
        finally:
            path.write_bytes(original)
    print(json.dumps(out))
    """
)

_J2K_SCHEME = {"protect j2k", "attack naive/j2k", "attack conceal-packet/j2k", "attack conceal-codeblock/j2k"}
_JPEG_SCHEME = {"protect jpeg", "protect jpeg-amplitude", "attack conceal-mcu/jpeg"}
# Which stages each codec module's code runs in. codecs/__init__ imports j2k, jpeg and
# cipher (and j2k imports jp2lib), so an edit of any of them reaches every codestream scheme.
EXPECTED = {
    "benchmark/codecs/__init__.py": _J2K_SCHEME | _JPEG_SCHEME,
    "benchmark/codecs/cipher.py": _J2K_SCHEME | _JPEG_SCHEME,
    "benchmark/codecs/j2k.py": _J2K_SCHEME | _JPEG_SCHEME,
    "benchmark/codecs/jpeg.py": _J2K_SCHEME | _JPEG_SCHEME,
    "benchmark/codecs/jp2lib.py": _J2K_SCHEME | _JPEG_SCHEME,
    "benchmark/codecs/tier2.py": {"attack conceal-packet/j2k", "attack conceal-codeblock/j2k"},
    "benchmark/codecs/jpeg_scan.py": {"attack conceal-mcu/jpeg", "protect jpeg-amplitude"},
    # The amplitude cipher lives apart from cipher.py so that the scan parser reaches only the stages that run it.
    "benchmark/codecs/amplitude.py": {"protect jpeg-amplitude"},
    # Controls: a scheme module and a recognizer module.
    "schemes/warp.py": {"protect warp", "attack naive/warp"},
    "benchmark/recognizers/lbp.py": {"embed lbp"},
}


@pytest.fixture(scope="module")
def edited_versions(tmp_path_factory) -> dict[str, dict[str, str]]:
    copy = tmp_path_factory.mktemp("project")
    for package in ("benchmark", "schemes", "attacks", "reports"):
        shutil.copytree(REPO / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    codecs = sorted(p.relative_to(copy).as_posix() for p in (copy / "benchmark" / "codecs").glob("*.py"))
    assert set(codecs) <= set(EXPECTED), f"a codec module without an expectation: {set(codecs) - set(EXPECTED)}"
    run = subprocess.run(
        [sys.executable, "-c", _SCRIPT, *EXPECTED],
        cwd=copy,
        env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout)


@pytest.mark.parametrize("module", sorted(EXPECTED))
def test_an_edit_changes_exactly_the_stages_that_run_the_module(edited_versions, module):
    base, edited = edited_versions["base"], edited_versions[module]
    changed = {stage for stage in base if base[stage] != edited[stage]}
    assert changed == EXPECTED[module]


def test_every_codec_module_is_covered():
    codecs = {p.relative_to(REPO).as_posix() for p in (REPO / "benchmark" / "codecs").glob("*.py")}
    assert codecs <= set(EXPECTED)


def test_closure_follows_function_level_and_relative_imports(tmp_path, monkeypatch):
    import benchmark.core.codeversion as cv

    pkg = tmp_path / "schemes"  # a project package name, rooted in tmp_path
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from . import b\n    return b\n")
    (pkg / "b.py").write_text("from schemes.c import x\n")
    (pkg / "c.py").write_text("x = 1\n")
    (pkg / "d.py").write_text("y = 2\n")
    monkeypatch.setattr(cv, "_package_root", lambda top: pkg if top == "schemes" else None)
    for fn in (cv.module_file, cv.module_closure):
        fn.cache_clear()
    try:
        assert cv.module_closure("schemes.a") == {"schemes", "schemes.a", "schemes.b", "schemes.c"}
    finally:
        for fn in (cv.module_file, cv.module_closure):
            fn.cache_clear()


def test_third_party_code_is_not_hashed():
    assert module_file("numpy") is None
    assert code_version(np.ndarray) == code_version()


def test_class_hierarchy_counts():
    from benchmark.core.component import Recognizer
    from benchmark.engine.stages import Engine

    assert "benchmark.core.component" in module_closure("benchmark.recognizers.lbp")
    assert code_version(Recognizer) != code_version(Engine)


def _imports_by_full_parse(name: str, path: Path) -> frozenset[str]:
    """What the scan must find: every import node of the whole parsed module."""
    import ast
    import importlib.util

    import benchmark.core.codeversion as cv

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.update(cv._ancestors(alias.name))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = importlib.util.resolve_name("." * node.level + base, package)
            found.update(cv._ancestors(base))
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return frozenset(m for m in found if module_file(m) is not None)


def test_import_scan_agrees_with_a_full_parse_on_every_project_file():
    import benchmark.core.codeversion as cv

    checked = 0
    for top in cv.PROJECT_PACKAGES:
        root = REPO / top
        for path in sorted(root.rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            assert cv._imported(name, path) == _imports_by_full_parse(name, path), path
            checked += 1
    assert checked > 50


def test_import_scan_follows_continued_nested_and_commented_statements():
    import ast

    from benchmark.core.codeversion import _import_statements

    source = textwrap.dedent(
        '''
        """Docstring prose: from here import nothing, and import this later."""
        from a import (  # a comment with a ) in it
            b,
            c,
        )
        import d.e, \\
            f


        def g():
            if True:
                from .h import i
        x = "import inside a string"
        '''
    ).encode()
    names = sorted(
        alias.name if isinstance(node, ast.Import) else f"{'.' * node.level}{node.module}:{alias.name}"
        for node in _import_statements(source)
        for alias in node.names
    )
    assert names == [".h:i", "a:b", "a:c", "d.e", "f"]
