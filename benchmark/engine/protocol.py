"""Protocol files: YAML parsed with ``yaml.safe_load`` into strict typed models.

Every mistake becomes a :class:`ProtocolError` whose message is one line
(located and worded by :mod:`benchmark.core.strict_yaml`)::

    protocols/x.yaml:12: schemes[0].params.window: 120 is not in [0, 100]

naming the file and line, the field path and what is allowed. Overrides given
on the command line (``--set dotted.key=value``; a list item as ``name.0`` or
``name[0]``, as messages print it) are applied to the parsed data before
validation; mistakes in them name the ``--set`` argument instead of a line.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from benchmark.core.component import (
    Attack,
    Component,
    FittedRecognizer,
    LearnedAttack,
    ParamError,
    RecognizerAttack,
    Scheme,
)
from benchmark.core.executors import DEFAULT_SAMPLE_TIME_LIMIT, ExecutorName
from benchmark.core.keys import looks_like_key
from benchmark.core.registry import (
    ATTACKS,
    DATASETS,
    METRICS,
    QUALITY,
    RECOGNIZERS,
    SCHEMES,
    Registry,
    UnknownComponentError,
)
from benchmark.core.strict_yaml import (
    MAX_STRING,
    Loc,
    StrictYamlError,
    YamlSyntaxError,
    format_loc,
    located,
    node_line,
    parse_yaml,
    read_yaml,
    shown,
    validate,
)
from benchmark.metrics.certify import DEFAULT_COMPETENCE_FMR, DEFAULT_MAX_FNMR, KNOWN_METRICS, known_metric

__all__ = [
    "MAX_GRID_SETTINGS",
    "ProtocolError",
    "AttackRef",
    "ComponentRef",
    "DatasetSpec",
    "KeySource",
    "AttackerSpec",
    "AttackerDataset",
    "Criterion",
    "Competence",
    "Protocol",
    "LoadedProtocol",
    "load_protocol",
    "parse_set",
    "set_text",
    "DEFAULT_METRICS",
]

DEFAULT_METRICS = ("eer", "fnmr_at_fmr", "d_prime")
# The protected view kinds a protocol may select (benchmark.engine.views.VIEW_KINDS).
#: Most settings one component's grid may expand to (the shipped sweeps have at most 16).
MAX_GRID_SETTINGS = 1000

# A portable environment variable name (POSIX: letters, digits, underscore; no leading digit).
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: A list index as messages print it (``recognizers[0]``), accepted in ``--set`` keys.
_SET_INDEX = re.compile(r"\[(\d+)\]")

ViewKindName = Literal["preservation", "renewal", "strength", "linkage"]


class ProtocolError(ValueError):
    """A bad protocol; ``str()`` is the one-line, user-facing message."""

    def __init__(self, where: str, path: str, message: str):
        self.where, self.path, self.message = where, path, message
        super().__init__(f"{where}: {path}: {message}" if path else f"{where}: {message}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class ComponentRef(_Strict):
    """A component reference: ``{name, params, grid}``.

    ``grid`` maps parameter names to lists of values; the cartesian product of
    the lists expands into one component instance per combination (a sweep).
    """

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)

    @field_validator("grid")
    @classmethod
    def _grid_lists_not_empty(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in value.items():
            if not values:
                raise ValueError(f"grid.{key} is an empty list (give at least one value)")
        # Checked before anything is expanded: three lists of 2,000 values are
        # a few kilobytes of YAML but eight billion settings.
        settings = math.prod(len(values) for values in value.values())
        if settings > MAX_GRID_SETTINGS:
            sizes = " x ".join(str(len(values)) for values in value.values())
            raise ValueError(f"{sizes} = {settings} settings; at most {MAX_GRID_SETTINGS} per component")
        return value

    def expand(self) -> list[dict[str, Any]]:
        """Parameter dicts of the sweep (one when there is no grid)."""
        if not self.grid:
            return [dict(self.params)]
        keys = list(self.grid)
        return [{**self.params, **dict(zip(keys, combo))} for combo in itertools.product(*(self.grid[k] for k in keys))]


class DatasetSpec(_Strict):
    """Which samples to use and how to split and pair them."""

    name: str
    root: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    folds: int = Field(4, ge=2, le=100)
    test_folds: list[int] | None = None
    seed: int = Field(0, ge=0)
    max_nonmated: int = Field(100_000, ge=1)
    pairs: str | None = None


class AttackRef(ComponentRef):
    """An attack reference; ``schemes`` (shell-style patterns of scheme labels) limits it to those schemes.

    Without ``schemes`` the attack attacks every scheme of the protocol (and
    validation refuses one it cannot attack); with it, only the schemes whose
    label matches a pattern, so one protocol can pair an attack made for one
    kind of scheme (code-block concealment: JPEG 2000 codestreams) with it.
    """

    schemes: list[str] | None = Field(None, min_length=1)


class KeySource(_Strict):
    """Where the master key comes from: a key file, an environment variable, or a fresh random key.

    The key itself never appears in a protocol. Without ``keys:`` a run uses
    the public evaluation key of ``dataset.seed`` (reproducible, reused from
    the cache, never for real data); ``random: true`` draws a new key per run
    (reported only as "ephemeral", so nothing keyed is reused).
    """

    file: str | None = None
    env: str | None = None
    random: bool = False

    @field_validator("file", "env")
    @classmethod
    def _not_key_material(cls, value: str | None) -> str | None:
        # A key pasted where its file or variable belongs: refuse it without repeating it.
        if value is not None and looks_like_key(value):
            raise ValueError(
                "looks like key material, not a name or path (the value is not shown): give the key's "
                "file or the name of the environment variable holding it"
            )
        return value

    @field_validator("env")
    @classmethod
    def _variable_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.fullmatch(value):
            raise ValueError(f"{shown(value)} is not an environment variable name (letters, digits, _)")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> KeySource:
        given = [name for name in ("file", "env") if getattr(self, name) is not None] + (
            ["random"] if self.random else []
        )
        if len(given) != 1:
            raise ValueError(f"give exactly one of file, env or random: true (got {', '.join(given) or 'none'})")
        return self


class AttackerDataset(_Strict):
    """A dataset of the attacker's own faces (subject-disjoint from the victims)."""

    name: str = "folder"
    root: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class AttackerSpec(_Strict):
    """The declared attacker of learning attacks: whose faces it trains on and under which keys.

    The attacker knows the scheme and its parameters, never the victims' keys:
    it protects its own faces under its own keys (``keys_per_face`` of them,
    so a network cannot memorise one keystream, and a new key every
    ``faces_per_key`` faces, so a scheme with one transform per key, such
    as warping, shows it many transforms). Its faces are subject-disjoint
    from the victims': ``source: folds`` takes the evaluation dataset's folds
    that are not under test (``rotate: true`` trains one model per test fold
    on all other folds and pools the scores); ``source: dataset`` takes a
    separate dataset. With ``source: dataset`` subjects are compared by face,
    not only by name: ``overlap`` says what to do with an attacker subject whose
    faces match a victim subject's (``drop`` it, or ``refuse`` the protocol).
    """

    source: Literal["folds", "dataset"]
    dataset: AttackerDataset | None = None
    keys_per_face: int = Field(2, ge=1, le=64)
    faces_per_key: int = Field(64, ge=1)
    max_faces: int | None = Field(None, ge=1)
    validation: float = Field(0.1, ge=0, lt=0.5)
    rotate: bool = False
    seed: int = Field(0, ge=0)
    overlap: Literal["drop", "refuse"] = "drop"

    @model_validator(mode="after")
    def _source_fields(self) -> AttackerSpec:
        if self.source == "dataset" and self.dataset is None:
            raise ValueError("source: dataset needs a dataset: {name, root} block")
        if self.source == "folds" and self.dataset is not None:
            raise ValueError(
                "source: folds takes the evaluation dataset's other folds; remove dataset or use source: dataset"
            )
        if self.rotate and self.source != "folds":
            raise ValueError("rotate: true rotates over the evaluation dataset's folds; it needs source: folds")
        return self


class Criterion(_Strict):
    """A certification criterion, judged on the CI bound of every matching row.

    ``view``, ``recognizer`` and ``scheme`` are shell-style patterns.
    """

    metric: str
    view: str = "*"
    recognizer: str = "*"
    scheme: str = "*"
    max: float | None = None
    min: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> Criterion:
        if (self.max is None) == (self.min is None):
            raise ValueError("give exactly one of max or min")
        return self


class Competence(_Strict):
    """What a recognizer's own baseline must show before its security rows count as evidence for a criterion.

    A recognizer that misses most genuine pairs at the operating point shows
    a low SAR and an unlinkable score under any scheme: its passing rows
    prove nothing. Competent: the upper CI bound of the baseline FNMR, at the
    criterion's own FMR (``*_at_fmr_<t>``) or else at ``fmr``, is at most
    ``max_fnmr``.
    """

    max_fnmr: float = Field(DEFAULT_MAX_FNMR, ge=0.0, le=1.0)
    fmr: float = Field(DEFAULT_COMPETENCE_FMR, gt=0.0, lt=1.0)


class Bootstrap(_Strict):
    """Subject-resampling bootstrap for confidence intervals."""

    n_boot: int = Field(200, ge=0, le=100_000)
    seed: int = Field(0, ge=0)


class Execution(_Strict):
    """Where per-sample work runs (``--executor``, ``--scheduler`` and ``--workers`` override it)."""

    executor: ExecutorName = "local"
    scheduler: str | None = None
    workers: int | None = Field(None, ge=1, le=4096)
    #: Seconds one sample's decode may take before its worker is killed and the sample counted as failed.
    sample_time_limit: float = Field(DEFAULT_SAMPLE_TIME_LIMIT, gt=0, le=86400)

    @model_validator(mode="after")
    def _scheduler_needs_dask(self) -> Execution:
        if self.scheduler is not None and self.executor != "dask":
            raise ValueError("scheduler needs executor: dask")
        return self


class Protocol(_Strict):
    """The whole protocol file."""

    name: str | None = None
    notes: str = ""
    dataset: DatasetSpec
    recognizers: list[ComponentRef] = Field(min_length=1)
    schemes: list[ComponentRef] = Field(default_factory=list)
    attacks: list[AttackRef] = Field(default_factory=list)
    metrics: list[ComponentRef] = Field(default_factory=lambda: [ComponentRef(name=m) for m in DEFAULT_METRICS])
    face_quality: list[ComponentRef] = Field(default_factory=list)
    examples: int = Field(4, ge=0, le=64)
    views: list[ViewKindName] | None = None
    keys: KeySource | None = None
    attacker: AttackerSpec | None = None
    bootstrap: Bootstrap = Field(default_factory=lambda: Bootstrap.model_validate({}))
    certify: list[Criterion] = Field(default_factory=list)
    #: null: every recognizer's rows count, competent or not.
    competence: Competence | None = Field(default_factory=lambda: Competence.model_validate({}))
    execution: Execution = Field(default_factory=lambda: Execution.model_validate({}))

    @field_validator("recognizers", "schemes", "attacks", "metrics", "face_quality", mode="before")
    @classmethod
    def _bare_names(cls, value: Any) -> Any:
        # A bare string is shorthand for {name: <string>}.
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value


@dataclass
class Instance:
    """One expanded component: its reference, label and validated object."""

    ref_index: int
    name: str
    label: str
    params: dict[str, Any]
    component: Component


@dataclass
class LoadedProtocol:
    """A validated protocol plus what is needed to point errors at lines."""

    model: Protocol
    path: Path
    text: str
    overrides: dict[str, str] = field(default_factory=dict)
    _root_node: Any = None
    #: ``--set`` key -> the first field path it created (errors under it are the ``--set``'s).
    _created: dict[str, str] = field(default_factory=dict, repr=False)
    _built: dict[str, list[Instance]] = field(default_factory=dict, repr=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @property
    def name(self) -> str:
        return self.model.name or self.path.stem

    def error(self, loc: Loc, message: str) -> ProtocolError:
        """A :class:`ProtocolError` located at field path ``loc``."""
        return _locate_error(self.path, self._root_node, self.overrides, loc, message, self._created)

    def attacks_for(self, scheme: str) -> list[Instance]:
        """The attacks that attack the scheme labelled ``scheme`` (every attack without a ``schemes`` list)."""
        refs = self.model.attacks
        return [
            inst
            for inst in self.instances("attacks")
            if (patterns := refs[inst.ref_index].schemes) is None or any(fnmatchcase(scheme, p) for p in patterns)
        ]

    def instances(self, kind: str) -> list[Instance]:
        """Validated, grid-expanded components of a kind (recognizers, ...), built once."""
        if kind not in self._built:
            self._built[kind] = _instances(self, kind)
        return self._built[kind]


# --------------------------------------------------------------------------- #
# Locating errors
# --------------------------------------------------------------------------- #
def _locate_error(
    path: Path, root: Any, overrides: dict[str, str], loc: Loc, message: str, created: dict[str, str]
) -> ProtocolError:
    # A --set owns the errors on its path (an unknown key it wrote), under its
    # key, and anywhere in what it created (a required field missing beside it).
    dotted = ".".join(str(p) for p in loc)
    for key, raw in overrides.items():
        full = ".".join(_set_parts(key))
        pairs = [(full, dotted), (dotted, full)] + ([(dotted, created[key])] if key in created else [])
        if dotted and any(a == b or a.startswith(b + ".") for a, b in pairs):
            return ProtocolError(f"{path}: {set_text(key, raw)}", format_loc(loc), message)
    return ProtocolError(located(path, node_line(root, loc)), format_loc(loc), message)


def _read_yaml(path: Path) -> tuple[str, Any, Any]:
    try:
        text, data, root = read_yaml(path, "protocol file")
    except StrictYamlError as exc:
        raise ProtocolError(located(path, exc.line), format_loc(exc.loc), exc.message) from None
    if not isinstance(data, dict):
        raise ProtocolError(f"{path}:1", "", "a protocol must be a YAML mapping")
    return text, data, root


# --------------------------------------------------------------------------- #
# --set overrides
# --------------------------------------------------------------------------- #
def set_text(key: str, raw: str, limit: int | None = 80) -> str:
    """``--set key=value`` as messages and provenance show it: values cut to ``limit``, key material hidden."""
    return f"--set {key}={shown(raw, limit, quote=False)}"


def _set_parts(key: str) -> list[str]:
    """The path of a ``--set`` key: ``recognizers[0].params.radius`` as ``recognizers.0.params.radius``."""
    return _SET_INDEX.sub(r".\1", key).split(".")


def parse_set(arg: str) -> tuple[str, str, Any]:
    """Split ``dotted.key=value``; the value is parsed as YAML (typed), text when it is not YAML.

    A list item is ``name.0`` or ``name[0]`` (as messages print the path).
    """
    expected = "expected dotted.key=value (a list item as name[0] or name.0)"
    if "=" not in arg:
        raise ProtocolError(f"--set {shown(arg, quote=False)}", "", expected)
    key, raw = arg.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in _set_parts(key)):
        raise ProtocolError(f"--set {shown(arg, quote=False)}", "", expected)
    if not raw.strip():
        return key, raw, ""
    try:
        value, _ = parse_yaml(raw)
    except YamlSyntaxError:
        value = raw  # not YAML: the text as typed
    except StrictYamlError as exc:
        # Valid YAML that must not be built (nested too deeply, a huge integer, an alias bomb).
        raise ProtocolError(set_text(key, raw), key, exc.message) from None
    if value is raw and len(raw) > MAX_STRING:  # refused as the same string in the file would be
        raise ProtocolError(set_text(key, raw), key, f"a string of {len(raw):,} characters: at most {MAX_STRING:,}")
    return key, raw, value


def _apply_set(data: dict, path: Path, key: str, raw: str, value: Any) -> str | None:
    """Write ``value`` at ``key``; returns the first field path that did not exist before, if any."""
    where = f"{path}: {set_text(key, raw)}"
    node: Any = data
    parts = _set_parts(key)
    created = None

    def upto(i: int) -> str:  # the path as messages print it: recognizers[3]
        return format_loc(tuple(int(p) if p.isdigit() else p for p in parts[:i]))

    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ProtocolError(where, upto(i + 1), f"no list item {part} (the list has {len(node)})")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if part not in node and created is None:
                created = ".".join(parts[: i + 1])
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
        else:
            raise ProtocolError(where, upto(i), "is not a mapping or list")
    return created


# --------------------------------------------------------------------------- #
# Component checks
# --------------------------------------------------------------------------- #
_KINDS: dict[str, Registry] = {
    "recognizers": RECOGNIZERS,
    "schemes": SCHEMES,
    "attacks": ATTACKS,
    "metrics": METRICS,
    "face_quality": QUALITY,
}


def _label(name: str, ref: ComponentRef, params: dict[str, Any], component: Component) -> str:
    # A component may name itself from its parameters (lw4o6 for a JPEG2000 window).
    own = component.label()
    if own is not None:
        return own
    if not ref.grid:
        return name
    swept = ",".join(f"{k}={params[k]}" for k in ref.grid)
    return f"{name}[{swept}]"


def _instances(lp: LoadedProtocol, kind: str) -> list[Instance]:
    registry = _KINDS[kind]
    refs: list[ComponentRef] = getattr(lp.model, kind)
    out: list[Instance] = []
    for i, ref in enumerate(refs):
        try:
            cls = registry.get(ref.name)
        except UnknownComponentError as exc:
            raise lp.error((kind, i, "name"), str(exc)) from None
        mine = []
        for params in ref.expand():
            try:
                component = cls.from_params(params)
            except ParamError as exc:
                section = "grid" if exc.param in ref.grid else "params"
                raise lp.error((kind, i, section, exc.param), exc.problem) from None
            mine.append(Instance(i, ref.name, _label(ref.name, ref, params, component), params, component))
        own = [inst.label for inst in mine]
        if len(set(own)) < len(own):
            # A component's own label leaves out what a grid sweeps (inpaint over epochs): append the swept values.
            for inst in mine:
                inst.label += "[" + ",".join(f"{k}={inst.params[k]}" for k in ref.grid) + "]"
        out += mine
    labels = [inst.label for inst in out]
    for inst in out:
        if labels.count(inst.label) > 1:
            first, dup = [out[j] for j, x in enumerate(labels) if x == inst.label][:2]
            what = f"duplicate {kind.removesuffix('s')} {inst.label!r}"
            if first.params != dup.params:
                what += " (the entries differ in parameters its label does not show: sweep them in one entry's grid)"
            raise lp.error((kind, dup.ref_index), what)
    return out


def _check_dataset(lp: LoadedProtocol) -> None:
    spec = lp.model.dataset
    try:
        cls = DATASETS.get(spec.name)
    except UnknownComponentError as exc:
        raise lp.error(("dataset", "name"), str(exc)) from None
    try:
        cls.from_params(spec.params)
    except ParamError as exc:
        raise lp.error(("dataset", "params", exc.param), exc.problem) from None
    if spec.root is not None and not Path(spec.root).expanduser().is_dir():
        raise lp.error(("dataset", "root"), f"{spec.root!r} does not exist or is not a folder")
    if spec.pairs is not None and not Path(spec.pairs).expanduser().is_file():
        raise lp.error(("dataset", "pairs"), f"{spec.pairs!r} does not exist")
    if spec.test_folds is not None:
        for j, f in enumerate(spec.test_folds):
            if not 0 <= f < spec.folds:
                raise lp.error(("dataset", "test_folds", j), f"{f!r} is not in [0, {spec.folds - 1}]")


def load_protocol(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> LoadedProtocol:
    """Read, override, and validate a protocol file.

    Args:
        path: The YAML file.
        overrides: ``dotted.key=value`` strings applied before validation.

    Raises:
        ProtocolError: with a one-line, located message.
    """
    path = Path(path)
    text, data, root = _read_yaml(path)
    applied: dict[str, str] = {}
    created: dict[str, str] = {}
    for arg in overrides:
        try:
            key, raw, value = parse_set(arg)
        except ProtocolError as exc:
            raise ProtocolError(f"{path}: {exc.where}", exc.path, exc.message) from None
        made = _apply_set(data, path, key, raw, value)
        applied[key] = raw
        if made is not None:
            created[key] = made
    try:
        model = validate(Protocol, data, root)
    except StrictYamlError as exc:
        raise _locate_error(path, root, applied, exc.loc, exc.message, created) from None
    lp = LoadedProtocol(model=model, path=path, text=text, overrides=applied, _root_node=root, _created=created)
    _check_dataset(lp)
    for kind in _KINDS:
        lp.instances(kind)
    _check_cross_fields(lp)
    return lp


def _check_cross_fields(lp: LoadedProtocol) -> None:
    m = lp.model
    if m.attacks and not m.schemes:
        raise lp.error(("attacks",), "attacks need at least one scheme to attack")
    labels = [s.label for s in lp.instances("schemes")]
    for i, ref in enumerate(m.attacks):
        for j, pattern in enumerate(ref.schemes or []):
            if not any(fnmatchcase(label, pattern) for label in labels):
                raise lp.error(
                    ("attacks", i, "schemes", j), f"{pattern!r} matches no scheme (schemes: {', '.join(labels)})"
                )
    for attack in lp.instances("attacks"):
        for scheme in lp.instances("schemes"):
            if attack not in lp.attacks_for(scheme.label):
                continue
            assert isinstance(attack.component, Attack) and isinstance(scheme.component, Scheme)
            problem = attack.component.incompatibility(scheme.component)
            if problem is not None:
                raise lp.error(
                    ("attacks", attack.ref_index, "name"),
                    f"{attack.label} cannot attack scheme {scheme.label} (schemes[{scheme.ref_index}]): {problem}",
                )
    _check_attacker(lp)
    _check_fitted_recognizers(lp)
    if m.keys is not None and m.keys.file is not None and not Path(m.keys.file).expanduser().is_file():
        raise lp.error(("keys", "file"), f"{shown(m.keys.file)} does not exist")
    for i, crit in enumerate(m.certify):
        if not known_metric(crit.metric):
            allowed = ", ".join(KNOWN_METRICS)
            raise lp.error(("certify", i, "metric"), f"{crit.metric!r} is not a known metric (allowed: {allowed})")


def _check_fitted_recognizers(lp: LoadedProtocol) -> None:
    """A recognizer that learns a model needs subject folds: each evaluated fold is embedded by a model fit on the others."""
    ds = lp.model.dataset
    for inst in lp.instances("recognizers"):
        if not isinstance(inst.component, FittedRecognizer):
            continue
        why = f"{inst.label} learns its model from subjects it does not evaluate: each evaluated fold is embedded by a model fitted on the other folds"
        if ds.pairs is not None:
            raise lp.error(("dataset", "pairs"), f"{why}, which a pairs file does not give (use folds)")
        if ds.folds < 2:
            raise lp.error(("dataset", "folds"), f"{why}, so it needs folds >= 2")


def _check_attacker(lp: LoadedProtocol) -> None:
    """A learned attack needs a declared attacker, and a declared attacker needs a learned attack."""
    m = lp.model
    learned = [a for a in lp.instances("attacks") if isinstance(a.component, LearnedAttack)]
    if learned and m.attacker is None:
        first = learned[0]
        raise lp.error(
            ("attacks", first.ref_index, "name"),
            f"{first.label} learns from the attacker's own faces: declare them in an attacker: block "
            "(source: folds or source: dataset)",
        )
    names = {r.name for r in lp.instances("recognizers")}
    for inst in learned:
        bases = type(inst.component).recognizers if isinstance(inst.component, RecognizerAttack) else ()
        if bases and not names & set(bases):
            raise lp.error(
                ("attacks", inst.ref_index, "name"),
                f"{inst.label} fine-tunes {' / '.join(bases)}, which recognizers: does not list; add one so that "
                "its rows stand beside the pretrained model's",
            )
    spec = m.attacker
    if spec is None:
        return
    if not learned:
        raise lp.error(("attacker",), "no attack learns (attacker: is only used by learned attacks such as inpaint)")
    if spec.source == "folds":
        ds = m.dataset
        if ds.pairs is not None:
            raise lp.error(("attacker", "source"), "source: folds needs the dataset's subject folds, not a pairs file")
        test = set(ds.test_folds if ds.test_folds is not None else range(ds.folds))
        if not spec.rotate and len(test) == ds.folds:
            raise lp.error(
                ("attacker", "source"),
                f"source: folds trains on the folds not under test, but dataset.test_folds covers all {ds.folds}: "
                "set dataset.test_folds (e.g. [0]) or rotate: true",
            )
        return
    assert spec.dataset is not None
    try:
        cls = DATASETS.get(spec.dataset.name)
    except UnknownComponentError as exc:
        raise lp.error(("attacker", "dataset", "name"), str(exc)) from None
    try:
        cls.from_params(spec.dataset.params)
    except ParamError as exc:
        raise lp.error(("attacker", "dataset", "params", exc.param), exc.problem) from None
    root = spec.dataset.root
    if root is not None and not Path(root).expanduser().is_dir():
        raise lp.error(("attacker", "dataset", "root"), f"{root!r} does not exist or is not a folder")
    if root is None and not cls.generated:
        raise lp.error(("attacker", "dataset", "root"), f"dataset {spec.dataset.name} needs a root folder")
