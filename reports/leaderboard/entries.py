"""Reported entries: the strict model of a published figure set and its YAML files.

One YAML file per (publication, dataset, recognizer, scheme setting, attack,
view), see ``reports/reported/README.md``. A file is read strictly
(:mod:`benchmark.core.strict_yaml`: duplicate keys refused, unknown fields
refused) and any mistake is one :class:`~reports.leaderboard.common.LeaderboardError`
line naming the file, its line, the field and what is allowed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from benchmark.core.strict_yaml import (
    KEY,
    StrictYamlError,
    describe_error,
    format_loc,
    located,
    one_line,
    read_yaml,
    submodel,
    validate,
)
from benchmark.metrics.verification import target_key
from reports.leaderboard.common import PLAIN, LeaderboardError, unique_paths

__all__ = [
    "SHIPPED_REPORTED_DIR",
    "NOT_STATED",
    "Conventions",
    "DatasetRef",
    "RecognizerRef",
    "ReportedMetrics",
    "ReportedEntry",
    "EntryFile",
    "entry_paths",
    "load_entry",
    "load_entries",
]

#: The reported entries shipped with FaceSec (loaded by default).
SHIPPED_REPORTED_DIR = Path(__file__).resolve().parent.parent / "reported"
#: What a reported entry says of a convention its source does not state.
NOT_STATED = "not stated"

_ENTRY_SUFFIXES = (".yaml", ".yml")
_NUMBER_ERRORS = ("float_type", "float_parsing", "int_type", "int_parsing", "int_from_float")


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
        if view == "baseline" and value != PLAIN:
            raise ValueError(f"{value!r}: a baseline entry has scheme 'none' (no protection)")
        if view is not None and view != "baseline" and value == PLAIN:
            raise ValueError(f"'none' is only for view 'baseline' (this entry's view: {view!r})")
        return value

    @field_validator("attack")
    @classmethod
    def _attack_matches_view(cls, value: str, info: ValidationInfo) -> str:
        view = info.data.get("view")
        if view == "baseline" and value != PLAIN:
            raise ValueError(f"{value!r}: a baseline entry has attack 'none'")
        if view in ("strength", "linkage") and value == PLAIN:
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


@dataclass(frozen=True)
class EntryFile:
    """A reported entry and the file it came from (``index``: 1-based, in load order)."""

    index: int
    path: Path
    entry: ReportedEntry


# --------------------------------------------------------------------------- loading


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
    return unique_paths(found)


def _describe(err: ErrorDetails) -> str:
    """A pydantic error of an entry in words, with the hints an entry's author needs."""
    kind, value, loc = err["type"], err.get("input"), tuple(err["loc"])
    ctx = err.get("ctx") or {}
    if kind == "literal_error":
        return f"{value!r} is not allowed (allowed: {ctx.get('expected', '')})"
    if kind == "dict_type":
        return f"{value!r} is not a mapping (FMR target to rate, e.g. {{0.001: 0.2}})"
    text = describe_error(err, ReportedEntry, noun="field", sort_allowed=False)
    if kind in ("model_type", "model_attributes_type"):
        owner = submodel(ReportedEntry, loc)
        return f"{text} (allowed fields: {', '.join(owner.model_fields)})" if owner is not None else text
    if kind in _NUMBER_ERRORS and loc and loc[-1] == KEY:
        return f"{text} (write FMR targets as decimals, e.g. 0.001)"
    return text


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
        _, data, root = read_yaml(path, "entry file")
    except StrictYamlError as exc:
        raise _error(path, exc) from None
    if not isinstance(data, dict):
        allowed = ", ".join(ReportedEntry.model_fields)
        raise LeaderboardError(f"{path}:1: (entry): an entry is a YAML mapping (allowed fields: {allowed})")
    try:
        return validate(ReportedEntry, data, root, describe=_describe)
    except StrictYamlError as exc:
        raise _error(path, exc, whole="(entry)") from None


def _error(path: Path, exc: StrictYamlError, whole: str = "") -> LeaderboardError:
    """``<file>:<line>: <field>: <what is wrong>`` on one line; ``whole`` names the field of an empty path."""
    field = format_loc(exc.loc) or whole
    where = located(path, exc.line)
    return LeaderboardError(one_line(f"{where}: {field}: {exc.message}" if field else f"{where}: {exc.message}"))


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
