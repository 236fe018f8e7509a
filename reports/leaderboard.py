"""Leaderboard over many runs: attacks ranked per scheme setting, schemes ranked by their strongest attack.

Inputs are ``results.json`` files of runs (*measured* figures) and small
YAML files, one per published figure (*reported* figures, see
``reports/reported/README.md``). Outputs are one self-contained HTML page
(inline CSS and a small inline row filter, nothing loaded from elsewhere,
Jinja2 autoescape), the same tables as Markdown, and two CSV files.

Rules the page keeps:

* Groups never mix datasets or recognizers: measured rows are grouped by
  dataset (name and the provenance ``dataset_fingerprint``, a content hash)
  and recognizer (name and parameters). Rows of several protocols in one
  group show their run and protocol, and every row links to its run's
  ``report.html`` and to its provenance (results file, git commit, version,
  creation time).
* Per (dataset, recognizer, scheme setting) attacks are ranked by the
  strength-view EER (attack output of the protected probe against the plain
  reference): the lower the EER, the stronger the attack; ties go to the
  higher SAR at the chosen FMR. Linkage D↔sys and maximal linkability,
  PSNR/SSIM of the attack output are shown beside, with CIs.
* The scheme table ranks scheme settings by their strongest known attack
  (the minimum strength EER over attacks): the security a scheme can claim
  is what survives the best attack.
* Reported figures are kept apart (their own section and badge) and are
  never ranked together with measured ones; where a reported figure is shown
  beside a measured one the conventions of both (EER interpolation, D↔sys
  bins, FMR targets) are shown, and any difference is spelled out.

Figures stay numbers in every structure here; they are formatted only when
rendered. Outputs are written atomically, all at the end, so a bad input
never leaves a half-written leaderboard behind.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
import os
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union
from urllib.parse import quote

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from benchmark.core.cache import atomic_write_text
from benchmark.engine.results import Results, ResultsError, read_results
from benchmark.metrics.unlinkability import MAX_DEFAULT_BINS, MIN_BINS, default_bins
from benchmark.metrics.verification import target_key
from reports.render import format_metric

__all__ = [
    "SHIPPED_REPORTED_DIR",
    "DEFAULT_SAR_TARGET",
    "HARNESS_EER_RULE",
    "HARNESS_BINS_RULE",
    "PROTOCOL_BINS_RULE",
    "NOT_STATED",
    "OUTPUT_FILES",
    "LeaderboardError",
    "Conventions",
    "DatasetRef",
    "RecognizerRef",
    "ReportedMetrics",
    "ReportedEntry",
    "EntryFile",
    "Run",
    "Line",
    "SchemeBoard",
    "Group",
    "Comparison",
    "Leaderboard",
    "results_paths",
    "load_run",
    "load_runs",
    "entry_paths",
    "load_entry",
    "load_entries",
    "measured_conventions",
    "build_leaderboard",
    "render_html",
    "render_markdown",
    "render_csv",
    "render_schemes_csv",
    "write_leaderboard",
    "make_leaderboard",
]

#: The reported entries shipped with FaceSec (loaded by default).
SHIPPED_REPORTED_DIR = Path(__file__).resolve().parent / "reported"
#: FMR at which the SAR column is read unless another target is asked for.
DEFAULT_SAR_TARGET = 0.001
#: How the harness interpolates the EER (:func:`benchmark.metrics.verification.eer`).
HARNESS_EER_RULE = (
    "crossing FMR = FNMR of the empirical ROC, linear between operating points "
    "(inside the FVC2000 [EER_low, EER_high] interval)"
)
#: How the harness bins scores for D↔sys and maximal linkability by default.
HARNESS_BINS_RULE = (
    f"equal-width bins over the pooled score range, n_mated // 10 clipped to [{MIN_BINS}, {MAX_DEFAULT_BINS}] "
    "(harness default)"
)
#: The same, where the protocol set the number of bins.
PROTOCOL_BINS_RULE = "equal-width bins over the pooled score range, number set by the protocol"
#: What a reported entry says of a convention its source does not state.
NOT_STATED = "not stated"
#: Names of the files :func:`write_leaderboard` writes into the output folder.
OUTPUT_FILES = ("leaderboard.html", "leaderboard.md", "leaderboard.csv", "schemes.csv")

_TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
_TEMPLATE = "leaderboard.html.j2"
_RESULTS_NAME = "results.json"
_REPORT_NAME = "report.html"
_ENTRY_SUFFIXES = (".yaml", ".yml")
_PLAIN = "none"
_DASH = "—"
_FMR_KEY_RE = re.compile(r"^(?:fnmr|sar)_at_fmr_([0-9.eE+-]+)$")
_BINS_NOTE = (
    "Published D↔sys values use 100 equal-width bins over the pooled score range; the harness default "
    f"(n_mated // 10 bins, clipped to [{MIN_BINS}, {MAX_DEFAULT_BINS}]) reads up to about 0.1 lower on small sets."
)

Number = float | int | None
Metrics = Mapping[str, Number]


class LeaderboardError(ValueError):
    """A bad input (missing or invalid results file or entry): one line naming the path."""


# --------------------------------------------------------------------------- the reported-entry model


def _fraction(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(
            f"{value!r} is not a fraction in [0, 1] (rates are fractions like measured ones: 0.4755 for 47.55 %)"
        )
    return value


_Text = Annotated[str, StringConstraints(strict=True, strip_whitespace=True, min_length=1)]
_OptText = Annotated[str, StringConstraints(strict=True, strip_whitespace=True)]
_Real = Annotated[float, Field(strict=True, allow_inf_nan=False)]
_Fraction = Annotated[float, Field(strict=True, allow_inf_nan=False), AfterValidator(_fraction)]
_FmrTarget = Annotated[float, Field(strict=True, gt=0.0, lt=1.0)]
_Ssim = Annotated[float, Field(strict=True, ge=-1.0, le=1.0)]


class Conventions(BaseModel):
    """How a figure was computed: what must match before two figures are compared.

    Attributes:
        eer_interpolation: How the EER was read off the ROC (``not stated``
            when the source does not say).
        d_sys_bins: How scores were binned for D↔sys and maximal linkability.
        bins: The number of bins, when known.
        fmr_targets: The FMR operating points of FNMR/SAR figures, as
            fractions, largest first (empty: none reported).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    eer_interpolation: _Text
    d_sys_bins: _Text
    bins: Annotated[int, Field(strict=True, ge=1)] | None = None
    fmr_targets: tuple[_FmrTarget, ...] = ()

    @field_validator("fmr_targets")
    @classmethod
    def _largest_first(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        return tuple(sorted(set(value), reverse=True))


class DatasetRef(BaseModel):
    """The dataset of a reported figure: a name and what the source says about it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: _Text
    description: _OptText = ""


class RecognizerRef(BaseModel):
    """The recognizer of a reported figure."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: _Text
    description: _OptText = ""


_CI_METRICS = ("eer", "d_sys", "linkability_max", "psnr", "ssim")


class ReportedMetrics(BaseModel):
    """Published figures, under the names ``results.json`` uses; rates are fractions in [0, 1].

    ``fnmr_at_fmr`` and ``sar_at_fmr`` map an FMR target (a fraction) to the
    rate there; they become ``fnmr_at_fmr_<t>`` / ``sar_at_fmr_<t>``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    eer: _Fraction | None = None
    eer_ci_low: _Fraction | None = None
    eer_ci_high: _Fraction | None = None
    fnmr_at_fmr: dict[_FmrTarget, _Fraction] = Field(default_factory=dict)
    sar_at_fmr: dict[_FmrTarget, _Fraction] = Field(default_factory=dict)
    d_prime: _Real | None = None
    d_sys: _Fraction | None = None
    d_sys_ci_low: _Fraction | None = None
    d_sys_ci_high: _Fraction | None = None
    d_sys_null_high: _Fraction | None = None
    linkability_max: _Fraction | None = None
    linkability_max_ci_low: _Fraction | None = None
    linkability_max_ci_high: _Fraction | None = None
    psnr: _Real | None = None
    psnr_ci_low: _Real | None = None
    psnr_ci_high: _Real | None = None
    ssim: _Ssim | None = None
    ssim_ci_low: _Ssim | None = None
    ssim_ci_high: _Ssim | None = None

    @model_validator(mode="after")
    def _check(self) -> ReportedMetrics:
        if not self.flat():
            raise ValueError(f"no figure given (allowed: {', '.join(type(self).model_fields)})")
        for name in _CI_METRICS:
            value = getattr(self, name)
            low, high = getattr(self, f"{name}_ci_low"), getattr(self, f"{name}_ci_high")
            if (low is None) != (high is None):
                raise ValueError(f"{name}_ci_low and {name}_ci_high go together (give both or neither)")
            if low is None:
                continue
            if value is None:
                raise ValueError(f"{name}_ci_low/{name}_ci_high given without {name}")
            if not low <= value <= high:
                raise ValueError(f"{name} must lie inside [{name}_ci_low, {name}_ci_high] ({low} <= {value} <= {high})")
        return self

    def flat(self) -> dict[str, float]:
        """The figures as a flat metrics dict with the keys of ``results.json`` (unset figures left out)."""
        out: dict[str, float] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, dict):
                for target, rate in sorted(value.items(), reverse=True):
                    out[f"{name}_{target_key(target)}"] = rate
            elif value is not None:
                out[name] = value
        return out


_View = Literal["baseline", "preservation", "strength", "linkage", "renewal"]


class ReportedEntry(BaseModel):
    """One published figure set: one (dataset, recognizer, scheme setting, attack, view).

    Attributes:
        citation: Who reported it (free text).
        url: Where (``http(s)://`` only).
        doi: Its DOI (``10.xxxx/...``).
        dataset: The dataset, with what the source says of it.
        recognizer: The recognizer attacked.
        view: ``baseline`` (no protection; scheme and attack ``none``),
            ``strength`` (attack output against plain references),
            ``linkage`` (two keys against each other), ``preservation`` or
            ``renewal``.
        scheme: The setting label as the harness writes it (``lw4o6``,
            ``warp_16_6``), ``none`` for a baseline.
        scheme_description: What the label stands for.
        attack: The attack label (``naive``: the protected data as it is).
        metrics: The figures.
        conventions: How they were computed (``not stated`` where unknown).
        notes: Anything else a reader must know.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    citation: _Text
    url: Annotated[str, StringConstraints(strict=True, pattern=r"^https?://[^\s<>\"'\\]+$")] | None = None
    doi: Annotated[str, StringConstraints(strict=True, pattern=r"^10\.\d{4,9}/[^\s<>\"']+$")] | None = None
    dataset: DatasetRef
    recognizer: RecognizerRef
    view: _View
    scheme: _Text
    scheme_description: _OptText = ""
    attack: _Text
    metrics: ReportedMetrics
    conventions: Conventions
    notes: _OptText = ""

    @field_validator("scheme")
    @classmethod
    def _scheme_matches_view(cls, value: str, info: ValidationInfo) -> str:
        view = info.data.get("view")
        if view == "baseline" and value != _PLAIN:
            raise ValueError(f"{value!r}: a baseline entry has scheme 'none' (no protection)")
        if view is not None and view != "baseline" and value == _PLAIN:
            raise ValueError(f"'none' is only for view 'baseline' (this entry's view: {view!r})")
        return value

    @field_validator("attack")
    @classmethod
    def _attack_matches_view(cls, value: str, info: ValidationInfo) -> str:
        view = info.data.get("view")
        if view == "baseline" and value != _PLAIN:
            raise ValueError(f"{value!r}: a baseline entry has attack 'none'")
        if view in ("strength", "linkage") and value == _PLAIN:
            raise ValueError(f"a {view} entry names its attack ('naive': the protected data as it is)")
        return value

    @field_validator("conventions")
    @classmethod
    def _targets_listed(cls, value: Conventions, info: ValidationInfo) -> Conventions:
        metrics = info.data.get("metrics")
        if isinstance(metrics, ReportedMetrics):
            used = set(metrics.fnmr_at_fmr) | set(metrics.sar_at_fmr)
            missing = sorted(used - set(value.fmr_targets), reverse=True)
            if missing:
                raise ValueError(
                    f"fmr_targets must list every FMR target of the metrics (missing: {', '.join(map(str, missing))})"
                )
        return value


# --------------------------------------------------------------------------- loaded inputs


@dataclass(frozen=True)
class EntryFile:
    """A reported entry and the file it came from (``index``: 1-based, in load order)."""

    index: int
    path: Path
    entry: ReportedEntry


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

    @property
    def label(self) -> str:
        """Short id of the run on the page (``R1``…)."""
        return f"R{self.index}"


@dataclass
class Line:
    """One attack (or a baseline) on one scheme setting, from one run or from reported entries.

    ``strength`` holds the strength-view metrics (for a baseline line: the
    baseline's), ``linkage`` the linkage-view metrics of the same attack.
    Exactly one of ``run`` (measured) and ``entries`` (reported) is set.
    """

    attack: str
    conventions: Conventions
    strength: Metrics | None = None
    linkage: Metrics | None = None
    knowledge: str | None = None
    run: Run | None = None
    entries: tuple[EntryFile, ...] = ()
    rank: int | None = None

    @property
    def reported(self) -> bool:
        """True for a line of reported entries."""
        return self.run is None

    def value(self, view: Literal["strength", "linkage"], key: str) -> float | None:
        """A finite figure of one view, else None."""
        return _finite(self.strength if view == "strength" else self.linkage, key)


@dataclass
class SchemeBoard:
    """The attacks on one scheme setting, ranked, and the scheme's line in the scheme table."""

    scheme: str
    params: Mapping[str, Any]
    lines: list[Line]
    strongest: Line | None = None
    most_linking: Line | None = None
    rank: int | None = None
    description: str = ""

    @property
    def n_attacks(self) -> int:
        """Distinct attacks tried against this setting."""
        return len({line.attack for line in self.lines})


@dataclass
class Group:
    """One (dataset, recognizer) of measured runs, or one (citation, dataset, recognizer) of reported entries."""

    reported: bool
    dataset_name: str
    fingerprint: str | None
    dataset_description: str
    roots: tuple[str, ...]
    n_faces: int | None
    n_subjects: int | None
    recognizer: str
    recognizer_params: Mapping[str, Any]
    baselines: list[Line]
    schemes: list[SchemeBoard]
    citation: str | None = None
    url: str | None = None
    doi: str | None = None
    index: int = 0

    @property
    def runs(self) -> list[Run]:
        """Runs contributing a line, in run order."""
        found = {line.run.index: line.run for line in self.all_lines() if line.run is not None}
        return [found[i] for i in sorted(found)]

    @property
    def protocols(self) -> list[str]:
        """Distinct protocols of the contributing runs."""
        return list(dict.fromkeys(run.protocol for run in self.runs))

    @property
    def splits_differ(self) -> bool:
        """True when contributing runs evaluated different splits (folds, test folds, seed)."""
        return len({(r.folds, r.test_folds, r.seed) for r in self.runs}) > 1

    @property
    def notes(self) -> list[str]:
        """Distinct notes of the group's reported entries, in entry order."""
        found = sorted({item.index: item for line in self.all_lines() for item in line.entries}.items())
        return list(dict.fromkeys(item.entry.notes for _, item in found if item.entry.notes))

    def all_lines(self) -> Iterable[Line]:
        """Baseline lines, then every scheme's attack lines."""
        yield from self.baselines
        for board in self.schemes:
            yield from board.lines


@dataclass
class Comparison:
    """A reported line shown beside a measured line of the same scheme label and attack (never ranked)."""

    reported: Line
    reported_group: Group
    measured: Line
    measured_group: Group
    scheme: str
    differs: tuple[str, ...]


@dataclass
class Leaderboard:
    """Everything the renderers show; figures are numbers."""

    runs: list[Run]
    entries: list[EntryFile]
    measured: list[Group]
    reported: list[Group]
    comparisons: list[Comparison]
    sar_target: float
    conventions: list[Conventions] = field(default_factory=list)

    def footnote(self, conventions: Conventions) -> int:
        """1-based number of a conventions footnote (registered on first use by the builder)."""
        return self.conventions.index(conventions) + 1

    @property
    def sar_key(self) -> str:
        """Metric key of the SAR column."""
        return f"sar_at_fmr_{target_key(self.sar_target)}"


# --------------------------------------------------------------------------- small helpers


def _finite(metrics: Metrics | None, key: str) -> float | None:
    if not metrics:
        return None
    value = metrics.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _canonical(params: Mapping[str, Any]) -> str:
    """Grouping key of a parameter dict (not a figure: it is only compared)."""
    return json.dumps(params, sort_keys=True, default=str)


def _format_params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items()))


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# --------------------------------------------------------------------------- measured: loading


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
    seen: set[Path] = set()
    unique = []
    for path in found:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


def _mapping(path: Path, where: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise LeaderboardError(f"{path}: {where}: expected a mapping, got {type(value).__name__}")
    return value


def _text(path: Path, where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise LeaderboardError(f"{path}: {where}: expected text, got {value!r}")
    return value


def _optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


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
        raise LeaderboardError(_one_line(str(exc))) from None
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
        protocol_file=_optional_text(protocol.get("file")) or "",
        dataset_name=dataset["name"],
        dataset_root=_optional_text(dataset.get("root")),
        fingerprint=_optional_text(provenance.get("dataset_fingerprint")),
        n_faces=_optional_int(dataset.get("n_usable", dataset.get("n_samples"))),
        n_subjects=_optional_int(dataset.get("n_subjects")),
        folds=_optional_int(dataset.get("folds")),
        test_folds=tuple(t for t in test_folds if isinstance(t, int)) if isinstance(test_folds, list) else (),
        seed=_optional_int(dataset.get("seed")),
        git_commit=_optional_text(provenance.get("git_commit")),
        facesec_version=_optional_text(provenance.get("facesec_version")),
        created=_optional_text(provenance.get("created")),
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


# --------------------------------------------------------------------------- reported: loading


def entry_paths(sources: Sequence[Path]) -> list[Path]:
    """The entry files named by ``sources``: a file as it is, a folder's ``*.yaml``/``*.yml`` (recursive, sorted).

    Args:
        sources: Entry files and folders.

    Returns:
        Paths, without duplicates (compared resolved).

    Raises:
        LeaderboardError: a path that does not exist.
    """
    found: list[Path] = []
    for source in sources:
        source = Path(source)
        if source.is_dir():
            found += sorted(p for p in source.rglob("*") if p.suffix in _ENTRY_SUFFIXES and p.is_file())
        elif source.exists():
            found.append(source)
        else:
            raise LeaderboardError(f"{source}: no such entry file or folder")
    seen: set[Path] = set()
    unique = []
    for path in found:
        if path.resolve() not in seen:
            seen.add(path.resolve())
            unique.append(path)
    return unique


def _format_loc(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":
            out += " (key)"
        elif isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(entry)"


def _unwrap_model(annotation: Any) -> type[BaseModel] | None:
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _unwrap_model(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(annotation):
            model = _unwrap_model(arg)
            if model is not None:
                return model
        return None
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _model_at(loc: Sequence[Any]) -> type[BaseModel] | None:
    """The entry model that owns the last element of ``loc``."""
    model: type[BaseModel] | None = ReportedEntry
    for part in loc[:-1]:
        info = model.model_fields.get(str(part)) if model is not None else None
        if info is None:
            return None
        model = _unwrap_model(info.annotation)
    return model


def _describe(err: Mapping[str, Any]) -> str:
    kind, value, loc = err["type"], err.get("input"), tuple(err["loc"])
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        model = _model_at(loc)
        allowed = list(model.model_fields) if model is not None else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown field{hint} (allowed: {', '.join(allowed)})"
    if kind == "missing":
        return "is required but missing"
    if kind == "literal_error":
        return f"{value!r} is not allowed (allowed: {ctx.get('expected', '')})"
    if kind in ("float_type", "float_parsing", "int_type", "int_parsing", "int_from_float"):
        what = "an integer" if kind.startswith("int") else "a number"
        decimal = " (write FMR targets as decimals, e.g. 0.001)" if loc and loc[-1] == "[key]" else ""
        return f"{value!r} is not {what}{decimal}"
    if kind == "finite_number":
        return f"{value!r} is not a finite number"
    if kind == "string_type":
        return f"{value!r} is not text"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_pattern_mismatch":
        return f"{value!r} does not match {ctx.get('pattern', '')}"
    if kind in ("model_type", "model_attributes_type"):
        owner = _model_at((*loc, ""))
        fields = f" (allowed fields: {', '.join(owner.model_fields)})" if owner is not None else ""
        return f"{value!r} is not a mapping{fields}"
    if kind == "dict_type":
        return f"{value!r} is not a mapping (FMR target to rate, e.g. {{0.001: 0.2}})"
    if kind in ("list_type", "tuple_type"):
        return f"{value!r} is not a list"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bound = {"greater_than": "> {gt}", "greater_than_equal": ">= {ge}", "less_than": "< {lt}"}.get(kind, "<= {le}")
        return f"{value!r} is not {bound.format(**ctx)}"
    if kind == "value_error":
        return str(ctx.get("error", err.get("msg", "")))
    return str(err.get("msg", kind))


def _node_line(root: Any, loc: Sequence[Any]) -> int | None:
    """1-based line of the deepest YAML node along ``loc``."""
    if root is None:
        return None
    node, line = root, root.start_mark.line + 1
    for part in loc:
        nxt = None
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if str(key_node.value) == str(part):
                    line, nxt = key_node.start_mark.line + 1, value_node
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            nxt = node.value[part]
        if nxt is None:
            break
        node = nxt
        line = node.start_mark.line + 1
    return line


def _check_duplicate_keys(path: Path, node: Any, loc: tuple[Any, ...]) -> None:
    # safe_load silently keeps the last of two equal keys; an entry must not.
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if key_node.value in seen:
                where = _format_loc((*loc, key_node.value))
                raise LeaderboardError(f"{path}:{key_node.start_mark.line + 1}: {where}: duplicate key")
            seen.add(key_node.value)
            _check_duplicate_keys(path, value_node, (*loc, key_node.value))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicate_keys(path, item, (*loc, i))


def load_entry(path: Path) -> ReportedEntry:
    """Read one reported entry (``yaml.safe_load``) and validate it.

    Args:
        path: The YAML file.

    Returns:
        The validated entry.

    Raises:
        LeaderboardError: one line, ``<file>:<line>: <field>: <what is wrong> (allowed: ...)``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LeaderboardError(f"{path}: no such entry file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LeaderboardError(f"{path}: cannot read: {_one_line(str(exc))}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise LeaderboardError(f"{where}: YAML syntax error: {_one_line(str(exc.problem or exc.context))}") from None
    except yaml.YAMLError as exc:
        raise LeaderboardError(f"{path}: YAML error: {_one_line(str(exc))}") from None
    _check_duplicate_keys(path, root, ())
    if not isinstance(data, dict):
        allowed = ", ".join(ReportedEntry.model_fields)
        raise LeaderboardError(f"{path}:1: (entry): an entry is a YAML mapping (allowed fields: {allowed})")
    try:
        return ReportedEntry.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        line = _node_line(root, [p for p in loc if p != "[key]"])
        where = f"{path}:{line}" if line else str(path)
        raise LeaderboardError(_one_line(f"{where}: {_format_loc(loc)}: {_describe(err)}")) from None


def _entry_key(entry: ReportedEntry) -> tuple[str, ...]:
    return (entry.citation, entry.dataset.name, entry.recognizer.name, entry.scheme, entry.attack, entry.view)


def load_entries(sources: Sequence[Path]) -> list[EntryFile]:
    """Every entry named by ``sources`` (see :func:`entry_paths`), validated.

    Args:
        sources: Entry files and folders.

    Returns:
        The entries with their files, numbered from 1 in load order.

    Raises:
        LeaderboardError: an invalid entry, or two files with the same
            (citation, dataset, recognizer, scheme, attack, view).
    """
    loaded: list[EntryFile] = []
    seen: dict[tuple[str, ...], Path] = {}
    for i, path in enumerate(entry_paths(sources), start=1):
        entry = load_entry(path)
        key = _entry_key(entry)
        if key in seen:
            raise LeaderboardError(
                f"{path}: same citation, dataset, recognizer, scheme, attack and view as {seen[key]}"
            )
        seen[key] = path
        loaded.append(EntryFile(i, path, entry))
    return loaded


# --------------------------------------------------------------------------- conventions


def _targets(metrics: Metrics | None) -> set[float]:
    out = set()
    for key in metrics or {}:
        match = _FMR_KEY_RE.match(key)
        if match:
            try:
                out.add(float(match.group(1)))
            except ValueError:
                continue
    return out


def measured_conventions(strength: Metrics | None, linkage: Metrics | None = None) -> Conventions:
    """The conventions of the harness's figures on one line.

    The EER rule is the harness's; the bins are those of the linkage row
    (else the strength row), with the default rule when the number equals
    :func:`benchmark.metrics.unlinkability.default_bins` of the row's mated
    count, else the protocol's; the FMR targets are those of the rows' keys.

    Args:
        strength: Strength-view (or baseline) metrics.
        linkage: Linkage-view metrics of the same attack.

    Returns:
        The conventions.
    """
    binned = linkage if _finite(linkage, "bins") is not None else strength
    bins, n_mated = _finite(binned, "bins"), _finite(binned, "n_genuine")
    rule = HARNESS_BINS_RULE
    if bins is not None and n_mated is not None and int(bins) != default_bins(int(n_mated)):
        rule = PROTOCOL_BINS_RULE
    return Conventions(
        eer_interpolation=HARNESS_EER_RULE,
        d_sys_bins=rule,
        bins=int(bins) if bins is not None else None,
        fmr_targets=tuple(_targets(strength) | _targets(linkage)),
    )


def _differences(reported: Line, measured: Line) -> tuple[str, ...]:
    """Conventions on which two lines' compared figures differ, or that one of them does not state.

    Only the figures the comparison shows count (EER, D↔sys), and only
    where either side has the figure: the EER rule for EERs, the bins for
    D↔sys. The FMR targets of each side stay in its conventions footnote.
    """

    def present(key: str, view: Literal["strength", "linkage"]) -> bool:
        return reported.value(view, key) is not None or measured.value(view, key) is not None

    def differ(x: str, y: str) -> bool:
        return x != y or x == NOT_STATED

    a, b = reported.conventions, measured.conventions
    out = []
    if (present("eer", "strength") or present("eer", "linkage")) and differ(a.eer_interpolation, b.eer_interpolation):
        out.append("EER interpolation")
    if present("d_sys", "linkage") and (differ(a.d_sys_bins, b.d_sys_bins) or a.bins != b.bins):
        out.append("D↔sys bins")
    return tuple(out)


# --------------------------------------------------------------------------- ranking


def _attack_order(line: Line, sar_key: str) -> tuple[bool, float, float, float]:
    eer, sar, d_sys = line.value("strength", "eer"), line.value("strength", sar_key), line.value("linkage", "d_sys")
    return (
        eer is None,
        eer if eer is not None else 0.0,
        -sar if sar is not None else math.inf,
        -d_sys if d_sys is not None else math.inf,
    )


def _rank_attacks(lines: list[Line], sar_key: str) -> list[Line]:
    """Strongest attack first: lowest strength EER, then highest SAR, then highest D↔sys; stable otherwise.

    Ranks are competition ranks (equal keys share a rank); lines without a
    strength EER are listed last, unranked.
    """
    ordered = sorted(lines, key=lambda line: _attack_order(line, sar_key))
    previous: tuple[bool, float, float, float] | None = None
    for position, line in enumerate(ordered, start=1):
        key = _attack_order(line, sar_key)
        if key[0]:
            line.rank = None
        else:
            line.rank = ordered[position - 2].rank if key == previous else position
        previous = key
    return ordered


def _summarise(board: SchemeBoard) -> None:
    with_eer = [line for line in board.lines if line.value("strength", "eer") is not None]
    board.strongest = with_eer[0] if with_eer else None
    linking = [line for line in board.lines if line.value("linkage", "d_sys") is not None]
    board.most_linking = max(linking, key=lambda line: line.value("linkage", "d_sys") or 0.0) if linking else None


def _rank_schemes(boards: list[SchemeBoard]) -> list[SchemeBoard]:
    """Most resistant setting first: highest EER under its strongest attack; settings without one last."""

    def eer(board: SchemeBoard) -> float | None:
        return board.strongest.value("strength", "eer") if board.strongest is not None else None

    ordered = sorted(boards, key=lambda b: (eer(b) is None, -(eer(b) or 0.0)))
    for position, board in enumerate(ordered, start=1):
        value = eer(board)
        if value is None:
            board.rank = None
        elif position > 1 and eer(ordered[position - 2]) == value:
            board.rank = ordered[position - 2].rank
        else:
            board.rank = position
    return ordered


# --------------------------------------------------------------------------- building


@dataclass
class _Slot:
    """A line being assembled from a strength and a linkage row."""

    attack: str
    knowledge: str | None
    run: Run | None = None
    entries: list[EntryFile] = field(default_factory=list)
    strength: Metrics | None = None
    linkage: Metrics | None = None
    conventions: Conventions | None = None


@dataclass
class _Acc:
    """A group being assembled."""

    group: Group
    baselines: list[_Slot] = field(default_factory=list)
    schemes: dict[tuple[str, str], tuple[str, Mapping[str, Any], str, list[_Slot]]] = field(default_factory=dict)


def _clean_metrics(metrics: Mapping[str, Any]) -> dict[str, Number]:
    out: dict[str, Number] = {}
    for key, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[str(key)] = value if math.isfinite(value) else None
        else:
            out[str(key)] = None
    return out


def _place(slots: list[_Slot], slot_key: tuple[Any, ...], index: dict[tuple[Any, ...], _Slot], kind: str) -> _Slot:
    """The slot for ``slot_key`` whose ``kind`` view is still empty (a repeated row opens a new slot)."""
    slot = index.get(slot_key)
    if slot is None or getattr(slot, kind) is not None:
        slot = _Slot(attack=str(slot_key[-1]), knowledge=None)
        slots.append(slot)
        index[slot_key] = slot
    return slot


def _measured_groups(runs: Sequence[tuple[Run, Results]]) -> list[Group]:
    accs: dict[tuple[str, str | None, str, str], _Acc] = {}
    for run, results in runs:
        index: dict[tuple[Any, ...], _Slot] = {}
        for raw in results["rows"]:
            row: Mapping[str, Any] = raw
            kind = str(row["view"]).partition(":")[0]
            if kind not in ("baseline", "strength", "linkage"):
                continue  # preservation and renewal rows measure the scheme, not an attack
            rec_params = row.get("recognizer_params") or {}
            key = (run.dataset_name, run.fingerprint, row["recognizer"], _canonical(rec_params))
            acc = accs.get(key)
            if acc is None:
                group = Group(
                    reported=False,
                    dataset_name=run.dataset_name,
                    fingerprint=run.fingerprint,
                    dataset_description="",
                    roots=(),
                    n_faces=run.n_faces,
                    n_subjects=run.n_subjects,
                    recognizer=row["recognizer"],
                    recognizer_params=dict(rec_params),
                    baselines=[],
                    schemes=[],
                    index=len(accs) + 1,
                )
                acc = accs[key] = _Acc(group)
            if run.dataset_root and run.dataset_root not in acc.group.roots:
                acc.group.roots = (*acc.group.roots, run.dataset_root)
            metrics = _clean_metrics(row.get("metrics") or {})
            if kind == "baseline":
                acc.baselines.append(_Slot(attack=str(row["attack"]), knowledge=None, run=run, strength=metrics))
                continue
            scheme_params = row.get("scheme_params") or {}
            scheme_key = (str(row["scheme"]), _canonical(scheme_params))
            board = acc.schemes.setdefault(scheme_key, (str(row["scheme"]), dict(scheme_params), "", []))
            slot = _place(board[3], (id(acc), *scheme_key, row["attack"]), index, kind)
            slot.run = run
            slot.knowledge = slot.knowledge or _optional_text(row.get("attacker_knowledge"))
            setattr(slot, kind, metrics)
    return [_finish(acc) for acc in accs.values()]


def _reported_groups(entries: Sequence[EntryFile]) -> list[Group]:
    accs: dict[tuple[str, str, str], _Acc] = {}
    index: dict[tuple[Any, ...], _Slot] = {}
    for item in entries:
        entry = item.entry
        key = (entry.citation, entry.dataset.name, entry.recognizer.name)
        acc = accs.get(key)
        if acc is None:
            group = Group(
                reported=True,
                dataset_name=entry.dataset.name,
                fingerprint=None,
                dataset_description=entry.dataset.description,
                roots=(),
                n_faces=None,
                n_subjects=None,
                recognizer=entry.recognizer.name,
                recognizer_params={},
                baselines=[],
                schemes=[],
                citation=entry.citation,
                url=entry.url,
                doi=entry.doi,
                index=len(accs) + 1,
            )
            acc = accs[key] = _Acc(group)
        metrics: Metrics = entry.metrics.flat()
        if entry.view == "baseline":
            acc.baselines.append(
                _Slot(
                    attack=entry.attack, knowledge=None, entries=[item], strength=metrics, conventions=entry.conventions
                )
            )
            continue
        if entry.view not in ("strength", "linkage"):
            continue  # preservation and renewal figures: kept in the entry, not ranked
        scheme_key = (entry.scheme, "")
        board = acc.schemes.setdefault(scheme_key, (entry.scheme, {}, entry.scheme_description, []))
        # Strength and linkage figures of one attack share a line only under the same conventions.
        slot_key = (id(acc), entry.scheme, entry.conventions, entry.attack)
        slot = _place(board[3], slot_key, index, entry.view)
        slot.entries.append(item)
        slot.conventions = entry.conventions
        setattr(slot, entry.view, metrics)
    return [_finish(acc) for acc in accs.values()]


def _line(slot: _Slot) -> Line:
    conventions = slot.conventions or measured_conventions(slot.strength, slot.linkage)
    return Line(
        attack=slot.attack,
        conventions=conventions,
        strength=slot.strength,
        linkage=slot.linkage,
        knowledge=slot.knowledge,
        run=slot.run,
        entries=tuple(slot.entries),
    )


def _finish(acc: _Acc) -> Group:
    group = acc.group
    group.baselines = [_line(slot) for slot in acc.baselines]
    boards = []
    for scheme, params, description, slots in acc.schemes.values():
        boards.append(SchemeBoard(scheme, params, [_line(slot) for slot in slots], description=description))
    group.schemes = boards
    return group


def _rank(groups: Sequence[Group], sar_key: str) -> None:
    for group in groups:
        for board in group.schemes:
            board.lines = _rank_attacks(board.lines, sar_key)
            _summarise(board)
        group.schemes = _rank_schemes(group.schemes)


def _comparisons(measured: Sequence[Group], reported: Sequence[Group]) -> list[Comparison]:
    out = []
    for rgroup in reported:
        pairs: list[tuple[str, Line, list[tuple[Group, Line]]]] = []
        for line in rgroup.baselines:
            pairs.append((_PLAIN, line, [(g, m) for g in measured for m in g.baselines]))
        for board in rgroup.schemes:
            for line in board.lines:
                found = [
                    (g, m)
                    for g in measured
                    for b in g.schemes
                    if b.scheme == board.scheme
                    for m in b.lines
                    if m.attack == line.attack
                ]
                pairs.append((board.scheme, line, found))
        for scheme, line, found in pairs:
            for mgroup, mline in found:
                out.append(Comparison(line, rgroup, mline, mgroup, scheme, _differences(line, mline)))
    return out


def build_leaderboard(
    runs: Sequence[tuple[Run, Results]],
    entries: Sequence[EntryFile] = (),
    *,
    sar_target: float = DEFAULT_SAR_TARGET,
) -> Leaderboard:
    """Group, rank and compare.

    Args:
        runs: Loaded runs (:func:`load_runs`).
        entries: Loaded reported entries (:func:`load_entries`).
        sar_target: FMR of the SAR column and of the tie-break between attacks of equal EER.

    Returns:
        The leaderboard: measured groups in order of first appearance,
        reported groups in entry order, each group's schemes in scheme-table
        order and each scheme's attacks strongest first.

    Raises:
        LeaderboardError: ``sar_target`` not in (0, 1).
    """
    if not 0.0 < sar_target < 1.0:
        raise LeaderboardError(f"--fmr: {sar_target!r} is not an FMR in (0, 1)")
    board = Leaderboard(
        runs=[run for run, _ in runs],
        entries=list(entries),
        measured=_measured_groups(runs),
        reported=_reported_groups(entries),
        comparisons=[],
        sar_target=sar_target,
    )
    _rank(board.measured, board.sar_key)
    _rank(board.reported, board.sar_key)
    board.comparisons = _comparisons(board.measured, board.reported)
    for group in (*board.measured, *board.reported):
        for line in group.all_lines():
            if line.conventions not in board.conventions:
                board.conventions.append(line.conventions)
    return board


# --------------------------------------------------------------------------- rendering helpers


def _href(path: Path, out_dir: Path) -> str:
    """A link from the output folder to ``path``: relative where possible, URL-quoted."""
    target = Path(path).resolve()
    try:
        rel = os.path.relpath(target, Path(out_dir).resolve())
    except ValueError:  # another drive (Windows): no relative path exists
        return target.as_uri()
    return quote(Path(rel).as_posix())


def _metric(key: str, value: Any) -> str:
    return format_metric(key, value)


def _ci(key: str, metrics: Metrics | None) -> str:
    low, high = _finite(metrics, key + "_ci_low"), _finite(metrics, key + "_ci_high")
    if low is None and high is None:
        return ""
    return f"{format_metric(key, low)} – {format_metric(key, high)}"


def _get(metrics: Metrics | None, key: str) -> float | None:
    return _finite(metrics, key)


def _fmr_text(target: float) -> str:
    return format_metric("fmr", target)


def _targets_text(targets: Sequence[float]) -> str:
    return ", ".join(_fmr_text(t) for t in targets) if targets else NOT_STATED


def _bins_text(conv: Conventions) -> str:
    if conv.bins is None:
        return conv.d_sys_bins
    return f"{conv.bins} bins: {conv.d_sys_bins}"


def _conventions_text(conv: Conventions) -> str:
    return (
        f"EER: {conv.eer_interpolation}; D↔sys / max. linkability: {_bins_text(conv)}; "
        f"FMR targets: {_targets_text(conv.fmr_targets)}"
    )


def _dataset_text(group: Group) -> str:
    parts = [group.dataset_name]
    if group.roots:
        parts.append(f"root {', '.join(group.roots)}")
    if group.fingerprint:
        parts.append(f"fingerprint {group.fingerprint[:12]}")
    elif not group.reported:
        parts.append("fingerprint unknown")
    if group.n_faces is not None:
        parts.append(f"{group.n_faces:,} faces")
    if group.n_subjects is not None:
        parts.append(f"{group.n_subjects:,} subjects")
    return " · ".join(parts)


def _dataset_short(group: Group) -> str:
    """Dataset name, with the last part of each root (measured) so that ``folder`` datasets read apart."""
    roots = [Path(root).name for root in group.roots if Path(root).name]
    return f"{group.dataset_name} ({', '.join(roots)})" if roots else group.dataset_name


def _recognizer_text(group: Group) -> str:
    params = _format_params(group.recognizer_params)
    return f"{group.recognizer} ({params})" if params else group.recognizer


def _split_text(run: Run) -> str:
    folds = _DASH if run.folds is None else str(run.folds)
    tests = ", ".join(map(str, run.test_folds)) or _DASH
    seed = _DASH if run.seed is None else str(run.seed)
    return f"folds {folds}, test folds [{tests}], seed {seed}"


def _source_text(line: Line) -> str:
    if line.run is not None:
        return f"{line.run.label} {line.run.protocol}"
    return ", ".join(item.path.name for item in line.entries)


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(_TEMPLATE_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        metric=lambda value, key: _metric(key, value),
        params=_format_params,
        short=lambda text, n=12: (text or "")[:n],
    )
    env.globals.update(
        get=_get,
        ci=_ci,
        fmr_text=_fmr_text,
        targets_text=_targets_text,
        bins_text=_bins_text,
        dataset_text=_dataset_text,
        dataset_short=_dataset_short,
        recognizer_text=_recognizer_text,
        split_text=_split_text,
        bins_note=_BINS_NOTE,
        harness_eer=HARNESS_EER_RULE,
        harness_bins=HARNESS_BINS_RULE,
        not_stated=NOT_STATED,
    )
    return env


def render_html(board: Leaderboard, out_dir: Path) -> str:
    """The leaderboard as one self-contained HTML page.

    Args:
        board: The leaderboard.
        out_dir: The folder the page will be written to (links are relative to it).

    Returns:
        The HTML text; identical inputs give identical text.
    """
    return _environment().get_template(_TEMPLATE).render(board=board, links=_links(board, out_dir))


# --------------------------------------------------------------------------- Markdown

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#!|~&])")


def _md(text: Any) -> str:
    """Cell text with Markdown and inline-HTML characters escaped (a name cannot inject markup)."""
    return _MD_SPECIAL.sub(r"\\\1", _one_line(str(text)))


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out + [""]


def _md_value(key: str, metrics: Metrics | None) -> str:
    value = format_metric(key, _get(metrics, key))
    ci = _ci(key, metrics)
    return _md(f"{value} [{ci}]" if ci else value)


def _md_source(line: Line, links: Mapping[int, Mapping[str, str | None]]) -> str:
    if line.run is None:
        return _md(_source_text(line))
    report = links[line.run.index]["report"]
    text = _md(_source_text(line))
    return f"[{text}]({report})" if report else text


def _md_group(group: Group, board: Leaderboard, links: Mapping[int, Mapping[str, str | None]]) -> list[str]:
    sar = f"SAR @ FMR {_fmr_text(board.sar_target)}"
    badge = "**\\[reported\\]** " if group.reported else ""
    out = [f"### {badge}{_md(_dataset_text(group))} — recognizer {_md(_recognizer_text(group))}", ""]
    if group.reported:
        out += [f"Source: {_md(group.citation or '')}", ""]
        if group.url:
            out += [f"<{group.url}>", ""]
        if group.doi:
            out += [f"DOI <https://doi.org/{quote(group.doi)}>", ""]
        if group.dataset_description:
            out += [f"Dataset: {_md(group.dataset_description)}", ""]
        for note in group.notes:
            out += [f"Note: {_md(note)}", ""]
    if len(group.protocols) > 1:
        out += [f"Rows from {len(group.protocols)} protocols: {_md(', '.join(group.protocols))}.", ""]
    if group.splits_differ:
        out += ["The runs evaluated different splits (folds, test folds or seed): compare with care.", ""]
    for line in group.baselines:
        value = _md_value("eer", line.strength)
        out += [
            f"Baseline (no protection): EER {value} ({_md_source(line, links)}) \\[{board.footnote(line.conventions)}\\]",
            "",
        ]
    if group.schemes:
        out += ["Schemes ranked by their strongest known attack (1 = highest EER under its strongest attack):", ""]
        rows = []
        for scheme in group.schemes:
            s, m = scheme.strongest, scheme.most_linking
            rows.append(
                [
                    _md(scheme.rank if scheme.rank is not None else _DASH),
                    _md(scheme.scheme) + (f" ({_md(_format_params(scheme.params))})" if scheme.params else ""),
                    str(scheme.n_attacks),
                    _md(s.attack) if s else _DASH,
                    _md_value("eer", s.strength) if s else _DASH,
                    _md_value(board.sar_key, s.strength) if s else _DASH,
                    _md(m.attack) if m else _DASH,
                    _md_value("d_sys", m.linkage) if m else _DASH,
                    f"\\[{board.footnote(s.conventions)}\\]" if s else _DASH,
                    _md_source(s, links) if s else _DASH,
                ]
            )
        out += _md_table(
            [
                "Rank",
                "Scheme",
                "Attacks",
                "Strongest attack",
                "Its EER",
                f"Its {sar}",
                "Most linking attack",
                "Its D↔sys",
                "Conv.",
                "Source",
            ],
            rows,
        )
    for scheme in group.schemes:
        out += [f"#### Scheme {_md(scheme.scheme)}: attacks, strongest first (lowest strength EER)", ""]
        rows = [
            [
                _md(line.rank if line.rank is not None else _DASH),
                _md(line.attack),
                _md_value("eer", line.strength),
                _md_value(board.sar_key, line.strength),
                _md_value("d_sys", line.linkage),
                _md_value("linkability_max", line.linkage),
                _md_value("psnr", line.strength),
                _md_value("ssim", line.strength),
                f"\\[{board.footnote(line.conventions)}\\]",
                _md_source(line, links),
            ]
            for line in scheme.lines
        ]
        out += _md_table(
            [
                "Rank",
                "Attack",
                "Strength EER",
                sar,
                "Linkage D↔sys",
                "Max. linkability (bits)",
                "PSNR (dB)",
                "SSIM",
                "Conv.",
                "Source",
            ],
            rows,
        )
    return out


def render_markdown(board: Leaderboard, out_dir: Path) -> str:
    """The leaderboard as Markdown (same tables as the HTML page; user text escaped).

    Args:
        board: The leaderboard.
        out_dir: The folder the file will be written to (links are relative to it).

    Returns:
        The Markdown text.
    """
    links = _links(board, out_dir)
    out = [
        "# FaceSec Bench leaderboard",
        "",
        f"{len(board.runs)} measured run(s), {len(board.entries)} reported entr{'y' if len(board.entries) == 1 else 'ies'}. "
        "Attacks are ranked per (dataset, recognizer, scheme setting) by the strength-view EER: lower = stronger "
        "attack. Schemes are ranked by the EER under their strongest known attack. Reported figures are never ranked "
        "with measured ones. \\[n\\] refers to the conventions below.",
        "",
        "## Measured",
        "",
    ]
    if not board.measured:
        out += ["No measured results.", ""]
    for group in board.measured:
        out += _md_group(group, board, links)
    out += ["## Reported (published figures, not measured here)", ""]
    if not board.reported:
        out += ["No reported entries.", ""]
    for group in board.reported:
        out += _md_group(group, board, links)
    if board.comparisons:
        out += [
            "## Measured beside reported (not a ranking)",
            "",
            "Same scheme label and attack; datasets, recognizers and conventions may differ. " + _md(_BINS_NOTE),
            "",
        ]
        rows = [
            [
                _md(c.scheme),
                _md(c.reported.attack),
                _md(f"{c.reported_group.recognizer} · {_dataset_short(c.reported_group)}"),
                _md_value("eer", c.reported.strength),
                _md_value("d_sys", c.reported.linkage),
                f"\\[{board.footnote(c.reported.conventions)}\\]",
                _md(f"{_recognizer_text(c.measured_group)} · {_dataset_short(c.measured_group)}"),
                _md_value("eer", c.measured.strength),
                _md_value("d_sys", c.measured.linkage),
                f"\\[{board.footnote(c.measured.conventions)}\\]",
                _md_source(c.measured, links),
                _md(", ".join(c.differs) or "none"),
            ]
            for c in board.comparisons
        ]
        out += _md_table(
            [
                "Scheme",
                "Attack",
                "Reported: recognizer · dataset",
                "EER",
                "D↔sys",
                "Conv.",
                "Measured: recognizer · dataset",
                "EER",
                "D↔sys",
                "Conv.",
                "Run",
                "Conventions differ or unstated",
            ],
            rows,
        )
    out += ["## Conventions", "", _md(_BINS_NOTE), ""]
    out += [f"{i}. {_md(_conventions_text(conv))}" for i, conv in enumerate(board.conventions, start=1)]
    out += ["", "## Runs (provenance)", ""]
    if board.runs:
        rows = [
            [
                run.label,
                _md(run.protocol),
                _md(_split_text(run)),
                f"[results.json]({links[run.index]['results']})",
                f"[report]({links[run.index]['report']})" if links[run.index]["report"] else _DASH,
                _md(run.git_commit or _DASH),
                _md(run.facesec_version or _DASH),
                _md(run.created or _DASH),
            ]
            for run in board.runs
        ]
        out += _md_table(["Run", "Protocol", "Split", "Results", "Report", "Git commit", "Version", "Created"], rows)
    else:
        out += ["No runs.", ""]
    if board.entries:
        out += ["## Reported entries", ""]
        out += [f"- {_md(item.path.name)}: {_md(item.entry.citation)}" for item in board.entries]
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


# --------------------------------------------------------------------------- CSV


def _csv_number(value: Any) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return repr(value) if isinstance(value, float) else str(value)


_LINE_FIGURES = ("eer", "eer_ci_low", "eer_ci_high")
_QUALITY = ("psnr", "psnr_ci_low", "psnr_ci_high", "ssim", "ssim_ci_low", "ssim_ci_high")
_LINKAGE = (
    "eer",
    "d_sys",
    "d_sys_ci_low",
    "d_sys_ci_high",
    "d_sys_null_high",
    "linkability_max",
    "linkability_max_ci_low",
    "linkability_max_ci_high",
)


def _group_columns(group: Group) -> list[str]:
    return [
        "reported" if group.reported else "measured",
        group.dataset_name,
        group.fingerprint or "",
        _csv_number(group.n_faces),
        _csv_number(group.n_subjects),
        group.recognizer,
        _canonical(group.recognizer_params) if group.recognizer_params else "",
    ]


def _provenance_columns(line: Line, links: Mapping[int, Mapping[str, str | None]]) -> list[str]:
    conv = line.conventions
    run = line.run
    entry = line.entries[0].entry if line.entries else None
    return [
        conv.eer_interpolation,
        conv.d_sys_bins,
        _csv_number(conv.bins),
        ";".join(_csv_number(t) for t in conv.fmr_targets),
        run.label if run else "",
        run.protocol if run else "",
        (links[run.index]["results"] or "") if run else "",
        (links[run.index]["report"] or "") if run else "",
        (run.git_commit or "") if run else "",
        (run.facesec_version or "") if run else "",
        (run.created or "") if run else "",
        entry.citation if entry else "",
        (entry.url or "") if entry else "",
        (entry.doi or "") if entry else "",
        ";".join(item.path.name for item in line.entries),
    ]


_PROVENANCE_HEADER = [
    "eer_interpolation",
    "d_sys_bins_rule",
    "bins",
    "fmr_targets",
    "run",
    "protocol",
    "results",
    "report",
    "git_commit",
    "facesec_version",
    "created",
    "citation",
    "url",
    "doi",
    "entry_files",
]
_GROUP_HEADER = [
    "section",
    "dataset",
    "dataset_fingerprint",
    "n_faces",
    "n_subjects",
    "recognizer",
    "recognizer_params",
]


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _links(board: Leaderboard, out_dir: Path) -> dict[int, dict[str, str | None]]:
    return {
        run.index: {
            "results": _href(run.results_path, out_dir),
            "report": _href(run.report_path, out_dir) if run.report_path is not None else None,
        }
        for run in board.runs
    }


def render_csv(board: Leaderboard, out_dir: Path) -> str:
    """One CSV line per baseline and per attack line (measured, then reported); numbers as plain numbers.

    ``eer``, ``sar_at_fmr`` (at ``fmr``), ``psnr``, ``ssim`` are the strength
    view's (a baseline's own EER on ``line`` = ``baseline``); ``linkage_*``
    the linkage view's; ``rank`` is the attack's rank within its
    (section, dataset, recognizer, scheme).

    Args:
        board: The leaderboard.
        out_dir: The output folder (paths are relative to it).

    Returns:
        The CSV text.
    """
    links = _links(board, out_dir)
    header = [
        *_GROUP_HEADER,
        "scheme",
        "scheme_params",
        "line",
        "rank",
        "attack",
        *_LINE_FIGURES,
        "fmr",
        "sar_at_fmr",
        "sar_at_fmr_ci_low",
        "sar_at_fmr_ci_high",
        *_QUALITY,
        *(f"linkage_{k}" for k in _LINKAGE),
        "attacker_knowledge",
        *_PROVENANCE_HEADER,
    ]
    sar = board.sar_key
    rows = []
    for group in (*board.measured, *board.reported):
        lines: list[tuple[str, str, Mapping[str, Any], Line]] = [
            ("baseline", _PLAIN, {}, line) for line in group.baselines
        ]
        lines += [("attack", b.scheme, b.params, line) for b in group.schemes for line in b.lines]
        for kind, scheme, params, line in lines:
            s, k = line.strength, line.linkage
            rows.append(
                [
                    *_group_columns(group),
                    scheme,
                    _canonical(params) if params else "",
                    kind,
                    _csv_number(line.rank),
                    line.attack,
                    *(_csv_number(_get(s, key)) for key in _LINE_FIGURES),
                    _csv_number(board.sar_target),
                    *(_csv_number(_get(s, sar + suffix)) for suffix in ("", "_ci_low", "_ci_high")),
                    *(_csv_number(_get(s, key)) for key in _QUALITY),
                    *(_csv_number(_get(k, key)) for key in _LINKAGE),
                    line.knowledge or "",
                    *_provenance_columns(line, links),
                ]
            )
    return _csv_text(header, rows)


def render_schemes_csv(board: Leaderboard, out_dir: Path) -> str:
    """The scheme tables as CSV: one line per (section, dataset, recognizer, scheme setting).

    Args:
        board: The leaderboard.
        out_dir: The output folder (paths are relative to it).

    Returns:
        The CSV text; conventions and provenance are the strongest attack's.
    """
    links = _links(board, out_dir)
    header = [
        *_GROUP_HEADER,
        "scheme_rank",
        "scheme",
        "scheme_params",
        "n_attacks",
        "strongest_attack",
        "strongest_eer",
        "strongest_eer_ci_low",
        "strongest_eer_ci_high",
        "fmr",
        "strongest_sar_at_fmr",
        "most_linking_attack",
        "most_linking_d_sys",
        "most_linking_d_sys_ci_low",
        "most_linking_d_sys_ci_high",
        *_PROVENANCE_HEADER,
    ]
    rows = []
    for group in (*board.measured, *board.reported):
        for b in group.schemes:
            s, m = b.strongest, b.most_linking
            rows.append(
                [
                    *_group_columns(group),
                    _csv_number(b.rank),
                    b.scheme,
                    _canonical(b.params) if b.params else "",
                    _csv_number(b.n_attacks),
                    s.attack if s else "",
                    *(_csv_number(_get(s.strength if s else None, key)) for key in _LINE_FIGURES),
                    _csv_number(board.sar_target),
                    _csv_number(_get(s.strength if s else None, board.sar_key)),
                    m.attack if m else "",
                    *(_csv_number(_get(m.linkage if m else None, key)) for key in _LINKAGE[1:4]),
                    *(_provenance_columns(s, links) if s else [""] * len(_PROVENANCE_HEADER)),
                ]
            )
    return _csv_text(header, rows)


# --------------------------------------------------------------------------- writing


def write_leaderboard(board: Leaderboard, out_dir: Path) -> list[Path]:
    """Render everything first, then write each file atomically into ``out_dir``.

    Args:
        board: The leaderboard.
        out_dir: Output folder (created if needed).

    Returns:
        The written paths, in :data:`OUTPUT_FILES` order.

    Raises:
        LeaderboardError: ``out_dir`` exists and is not a folder, or a file cannot be written.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise LeaderboardError(f"{out_dir}: --out exists and is not a folder")
    texts = [
        render_html(board, out_dir),
        render_markdown(board, out_dir),
        render_csv(board, out_dir),
        render_schemes_csv(board, out_dir),
    ]
    paths = [out_dir / name for name in OUTPUT_FILES]
    for path, text in zip(paths, texts):
        try:
            atomic_write_text(path, text)
        except OSError as exc:
            raise LeaderboardError(f"{path}: cannot write: {_one_line(str(exc))}") from None
    return paths


def make_leaderboard(
    inputs: Sequence[Path],
    out_dir: Path,
    *,
    reported: Sequence[Path] = (),
    shipped: bool = True,
    sar_target: float = DEFAULT_SAR_TARGET,
) -> tuple[Leaderboard, list[Path]]:
    """Load, build and write in one call (what ``facesec leaderboard`` runs).

    Args:
        inputs: Results files and run folders.
        out_dir: Output folder.
        reported: Extra entry files or folders.
        shipped: Also load :data:`SHIPPED_REPORTED_DIR`.
        sar_target: FMR of the SAR column.

    Returns:
        The leaderboard and the written paths.

    Raises:
        LeaderboardError: any bad input, before anything is written.
    """
    runs = load_runs(inputs)
    sources = [SHIPPED_REPORTED_DIR, *reported] if shipped else list(reported)
    entries = load_entries(sources)
    if not runs and not entries:
        raise LeaderboardError("nothing to show: no results given and no reported entries loaded")
    board = build_leaderboard(runs, entries, sar_target=sar_target)
    return board, write_leaderboard(board, out_dir)
