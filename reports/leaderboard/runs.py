"""Measured runs: finding ``results.json`` files and reading what the leaderboard shows of them.

A results file is checked for the fields the leaderboard needs; anything
missing or of the wrong type is one
:class:`~reports.leaderboard.common.LeaderboardError` line naming the file
and the field.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.core.strict_yaml import one_line
from benchmark.engine.results import Results, ResultsError, read_results
from reports.leaderboard.common import LeaderboardError, optional_text, unique_paths

__all__ = ["Run", "results_paths", "load_run", "load_runs"]

_RESULTS_NAME = "results.json"
_REPORT_NAME = "report.html"


@dataclass(frozen=True)
class Run:
    """One run's results file and what the leaderboard shows of its provenance (``index``: 1-based)."""

    index: int
    results_path: Path
    report_path: Path | None
    schema_version: int
    protocol: str
    protocol_file: str
    dataset_name: str
    dataset_root: str | None
    fingerprint: str | None
    n_faces: int | None
    n_subjects: int | None
    folds: int | None
    test_folds: tuple[int, ...]
    seed: int | None
    git_commit: str | None
    facesec_version: str | None
    created: str | None
    #: The run evaluated demo data (``dataset.demo``: the synthetic faces), labelled wherever it is shown.
    demo: bool = False

    @property
    def label(self) -> str:
        """Short id of the run on the page (``R1``…)."""
        return f"R{self.index}"


def results_paths(inputs: Sequence[Path]) -> list[Path]:
    """The results files named by ``inputs``, each once, in the order given.

    A file is taken as it is; a folder holding ``results.json`` gives that
    file, any other folder every ``results.json`` below it (hidden folders
    skipped, symbolic links to folders not followed), sorted.

    Args:
        inputs: Files and folders.

    Returns:
        Paths, without duplicates (compared resolved).

    Raises:
        LeaderboardError: a path that does not exist, or a folder without any results file.
    """
    found: list[Path] = []
    for path in inputs:
        path = Path(path)
        if path.is_dir():
            own = path / _RESULTS_NAME
            if own.is_file():
                found.append(own)
                continue
            below = []
            for folder, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                if _RESULTS_NAME in files:
                    below.append(Path(folder) / _RESULTS_NAME)
            if not below:
                raise LeaderboardError(f"{path}: no {_RESULTS_NAME} in or below this folder")
            found += sorted(below)
        elif path.exists():
            found.append(path)
        else:
            raise LeaderboardError(f"{path}: no such file or folder")
    return unique_paths(found)


def _mapping(path: Path, where: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise LeaderboardError(f"{path}: {where}: expected a mapping, got {type(value).__name__}")
    return value


def _text(path: Path, where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise LeaderboardError(f"{path}: {where}: expected text, got {value!r}")
    return value


def _optional_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _check_rows(path: Path, rows: Any) -> None:
    if not isinstance(rows, list):
        raise LeaderboardError(f"{path}: rows: expected a list, got {type(rows).__name__}")
    for i, row in enumerate(rows):
        row = _mapping(path, f"rows[{i}]", row)
        for name in ("recognizer", "scheme", "attack", "view"):
            _text(path, f"rows[{i}].{name}", row.get(name))
        for name in ("recognizer_params", "scheme_params"):
            if row.get(name) is not None:
                _mapping(path, f"rows[{i}].{name}", row[name])
        for key, value in _mapping(path, f"rows[{i}].metrics", row.get("metrics")).items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise LeaderboardError(f"{path}: rows[{i}].metrics.{key}: {value!r} is not a number or null")


def load_run(path: Path, index: int) -> tuple[Run, Results]:
    """Read and check one results file.

    Args:
        path: The ``results.json``.
        index: The run's 1-based number on the page.

    Returns:
        The run's summary and the results as read.

    Raises:
        LeaderboardError: unreadable, not JSON, unknown schema, or missing the fields the leaderboard needs.
    """
    path = Path(path)
    try:
        results = read_results(path)
    except ResultsError as exc:
        raise LeaderboardError(one_line(str(exc))) from None
    data = _mapping(path, "top level", results)
    protocol = _mapping(path, "protocol", data.get("protocol"))
    dataset = _mapping(path, "dataset", data.get("dataset"))
    provenance = _mapping(path, "provenance", data.get("provenance"))
    _text(path, "protocol.name", protocol.get("name"))
    _text(path, "dataset.name", dataset.get("name"))
    _check_rows(path, data.get("rows"))
    report = path.parent / _REPORT_NAME
    test_folds = dataset.get("test_folds")
    run = Run(
        index=index,
        results_path=path,
        report_path=report if report.is_file() else None,
        schema_version=int(data.get("schema_version", 0)),
        protocol=protocol["name"],
        protocol_file=optional_text(protocol.get("file")) or "",
        dataset_name=dataset["name"],
        dataset_root=optional_text(dataset.get("root")),
        fingerprint=optional_text(provenance.get("dataset_fingerprint")),
        n_faces=_optional_int(dataset.get("n_usable", dataset.get("n_samples"))),
        n_subjects=_optional_int(dataset.get("n_subjects")),
        folds=_optional_int(dataset.get("folds")),
        test_folds=tuple(t for t in test_folds if isinstance(t, int)) if isinstance(test_folds, list) else (),
        seed=_optional_int(dataset.get("seed")),
        git_commit=optional_text(provenance.get("git_commit")),
        facesec_version=optional_text(provenance.get("facesec_version")),
        created=optional_text(provenance.get("created")),
        demo=dataset.get("demo") is True,
    )
    return run, results


def load_runs(inputs: Sequence[Path]) -> list[tuple[Run, Results]]:
    """:func:`load_run` for every results file :func:`results_paths` finds in ``inputs``.

    Args:
        inputs: Results files and run folders.

    Returns:
        ``(run, results)`` per file, runs numbered from 1 in input order.

    Raises:
        LeaderboardError: the first bad input.
    """
    return [load_run(path, i) for i, path in enumerate(results_paths(inputs), start=1)]
