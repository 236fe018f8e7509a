"""``facesec compare``: did a change make protection weaker? Two runs, compared row by row.

Two runs of a protocol (typically the scheme's ``main`` branch and a pull
request) are matched row by row on recognizer and its parameters, scheme
label and parameters, attack and view. For each matched row, every metric
that says something about security gets its change NEW - BASE with a 95 %
confidence interval, and a verdict against a per-metric tolerance.

How the interval is found, per row (the row's ``method``):

* ``paired``: both runs used the same samples (same dataset fingerprint in
  provenance) and the row's score files list the very same (probe,
  reference) comparisons, as do the baseline score files the row's
  metrics lean on (SAR thresholds, ΔEER: the recognizer's baseline row, or
  for a fine-tuned recognizer's row the file of its own baseline,
  ``baseline_score_file``; a row whose ``threshold_source`` differs between
  the runs is noted). Each bootstrap resample draws
  probe subjects (the clusters of :mod:`benchmark.metrics.bootstrap`) once and
  applies the draw to both runs, so the sampling noise the two runs share
  cancels in the difference: an unchanged row gets the interval (0, 0).
* ``unpaired``: other samples or other comparisons; each run is resampled
  on its own (independent draws) and the difference is taken per resample.
* ``normal``: the run has no score (quality) files at all, or the row
  records none; the interval is the normal approximation
  ``delta ± z * sqrt(se_base² + se_new²)`` with each
  ``se = (ci_high - ci_low) / (2 z)`` read from the two rows' stored
  intervals. It ignores any pairing, so it is wide for paired data. Flagged
  in the report, with a warning at its top.
* ``none``: not even stored intervals: the change alone, never a
  regression.

Every metric is recomputed from the score files with the functions the
pipeline uses (:func:`~benchmark.metrics.verification.compute_all`, the
operating threshold of :mod:`~benchmark.metrics.irreversibility`, the
histogram estimator of :mod:`~benchmark.metrics.unlinkability` with the
row's bins and prior, :func:`~benchmark.metrics.irreversibility.summarise_quality`),
and the full-data value is checked against the stored one: a file that does
not reproduce it (another run's file, an edited results.json), is
unreadable, or is missing while the run has its other files is a
:class:`CompareError`, never a fall back to the stored number.

Two runs of other samples (dataset fingerprint) or whose protocols measure
differently (``provenance.protocol_sections``: every section but the schemes
and keys; the whole protocol file for older runs) are refused unless
``allow_different_data`` / ``allow_different_protocol``. A comparison proves
nothing (:attr:`Comparison.status` ``unmatched``) when no gated metric got a
change and an interval, or, unless ``allow_unmatched``, a row is in one run
only, or, unless ``allow_not_converged``, a matched row's attack is a learned
attack that stopped on its budget in the new run (not on a validation
plateau): an under-trained attack looks weaker than it is, so the absence of
a regression on its rows would prove nothing (a false OK). A regression found
anyway still counts; a base run's budget stop is only noted (it can make a
regression appear, never hide one).

Which direction is worse (security gets weaker), by view:

* ``strength:<attack>``: ``eer`` down, ``fnmr_at_fmr_<t>`` down (the attacked
  probes are matched more easily), ``sar_at_fmr_<t>`` up; ``psnr`` and
  ``ssim`` of the attack output up (a closer reconstruction).
* ``linkage:<attack>``: ``d_sys`` up, ``linkability_max`` up, ``eer`` down.
* ``renewal``: ``sar_at_fmr_<t>`` up, ``eer`` down.
* ``baseline`` / ``preservation`` (recognition performance): ``eer`` up,
  ``delta_eer`` up.

Security metrics always gate; performance metrics gate only with
``performance=True`` (``--performance``), image quality only with
``quality=True`` (``--quality``); otherwise they are reported only.

A metric is a **regression** when its change is in the worse direction by
more than its tolerance (absolute, in the metric's unit;
:data:`DEFAULT_TOLERANCES`) *and* the interval excludes the tolerance (for
EER: ``ci_high < -tol``). A change beyond the tolerance whose interval
reaches it is ``worse_unresolved``; an improvement is never flagged.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any, Literal

import numpy as np

from benchmark.core.cache import atomic_write_text
from benchmark.core.component import LearnedAttack
from benchmark.core.registry import ATTACKS, UnknownComponentError
from benchmark.engine.results import Results, ResultsError, Row, jsonable, read_results, stopped_on_budget
from benchmark.engine.scores import ScoreSet, quality_file_name, read_quality, read_scores
from benchmark.metrics.bootstrap import cluster_codes, percentile_interval, resample_multiplicities
from benchmark.metrics.irreversibility import operating_threshold, summarise_quality

# The histogram estimator's binning and measures, so that a resample is binned on the
# full data's edges exactly as the stored D↔sys interval was (see unlinkability).
from benchmark.metrics.unlinkability import bin_scores, default_bins, linkage_measures
from benchmark.metrics.verification import compute_all, eer

__all__ = [
    "DEFAULT_TOLERANCES",
    "DEFAULT_N_BOOT",
    "DEFAULT_SEED",
    "ALPHA",
    "VERDICTS",
    "MetricRule",
    "RULES",
    "CompareError",
    "CompareSettings",
    "Run",
    "MetricDelta",
    "RowDelta",
    "OneSided",
    "Comparison",
    "load_run",
    "parse_tolerances",
    "parse_scheme_map",
    "compare_runs",
    "render_markdown",
    "comparison_json",
    "write_comparison",
]

log = logging.getLogger("facesec.progress")

Direction = Literal["up", "down"]
Category = Literal["security", "performance", "quality"]
Method = Literal["paired", "unpaired", "normal", "none"]

#: Default tolerances, absolute, in each metric's unit (rates in [0, 1], d_sys
#: in [0, 1], linkability in bits, PSNR in dB). A key is a metric family
#: (``sar_at_fmr`` covers every target) or a full metric key
#: (``sar_at_fmr_0.0001``), which wins over its family.
DEFAULT_TOLERANCES: dict[str, float] = {
    "eer": 0.01,
    "fnmr_at_fmr": 0.02,
    "sar_at_fmr": 0.01,
    "d_sys": 0.02,
    "linkability_max": 0.02,
    "delta_eer": 0.01,
    "psnr": 1.0,
    "ssim": 0.02,
}
DEFAULT_N_BOOT = 200
DEFAULT_SEED = 0
#: One minus the coverage of every interval (95 %).
ALPHA = 0.05

#: Verdicts, worst first (the report lists rows in this order).
VERDICTS = (
    "regression",
    "worse_unresolved",
    "worse_not_gated",
    "worse_within_tolerance",
    "no_ci",
    "undefined",
    "ok",
    "improved",
)
_VERDICT_TEXT = {
    "regression": "**REGRESSION**",
    "worse_unresolved": "worse, unresolved (CI reaches tol)",
    "worse_not_gated": "worse beyond tol (not gated)",
    "worse_within_tolerance": "worse within tol",
    "no_ci": "no CI",
    "undefined": "undefined",
    "ok": "ok",
    "improved": "improved",
}
_METHOD_TEXT = {"paired": "paired", "unpaired": "unpaired", "normal": "normal approx. †", "none": "—"}

# Metric families with one key per target FMR (``fnmr_at_fmr_0.001``).
_TARGETED = ("fnmr_at_fmr", "sar_at_fmr")
# Relative agreement needed between a stored value and its recomputation from the score files.
_REPRODUCE_TOL = 1e-9


@dataclass(frozen=True)
class MetricRule:
    """Which metric family a view reports, which way is worse, and what it gates as."""

    family: str
    worse: Direction
    category: Category


#: The compared metrics of each view kind (the view name before ``:``).
RULES: dict[str, tuple[MetricRule, ...]] = {
    "strength": (
        MetricRule("eer", "down", "security"),
        MetricRule("fnmr_at_fmr", "down", "security"),
        MetricRule("sar_at_fmr", "up", "security"),
        MetricRule("psnr", "up", "quality"),
        MetricRule("ssim", "up", "quality"),
    ),
    "linkage": (
        MetricRule("d_sys", "up", "security"),
        MetricRule("linkability_max", "up", "security"),
        MetricRule("eer", "down", "security"),
    ),
    "renewal": (
        MetricRule("sar_at_fmr", "up", "security"),
        MetricRule("eer", "down", "security"),
    ),
    "baseline": (MetricRule("eer", "up", "performance"),),
    "preservation": (
        MetricRule("eer", "up", "performance"),
        MetricRule("delta_eer", "up", "performance"),
    ),
}
_FAMILIES = tuple(sorted({r.family for rules in RULES.values() for r in rules}))


class CompareError(ValueError):
    """Bad input to a comparison (one line, naming the file or option)."""


@dataclass
class CompareSettings:
    """Options of a comparison.

    Attributes:
        n_boot: Bootstrap resamples per row (0: use the stored intervals, normal approximation).
        seed: Seed of the resampling (each row starts from it, as the pipeline's rows do).
        tolerances: Per metric family or key, absolute; missing keys take :data:`DEFAULT_TOLERANCES`.
        performance: Let recognition performance (baseline / preservation) gate.
        quality: Let the image quality of attack output (PSNR, SSIM) gate.
        scheme_map: Base scheme label -> new scheme label, for a scheme whose label changed.
        allow_unmatched: Accept rows present in one run only (otherwise the comparison is ``unmatched``).
        allow_not_converged: Accept rows whose learned attack stopped on its budget in the new run
            (otherwise the comparison is ``unmatched``: nothing proven).
        allow_different_data: Compare runs of other samples (other dataset fingerprint; unpaired).
        allow_different_protocol: Compare runs whose protocols measure differently (other
            ``provenance.protocol_sections``, or other protocol file for runs without them).
    """

    n_boot: int = DEFAULT_N_BOOT
    seed: int = DEFAULT_SEED
    tolerances: dict[str, float] = field(default_factory=dict)
    performance: bool = False
    quality: bool = False
    scheme_map: dict[str, str] = field(default_factory=dict)
    allow_unmatched: bool = False
    allow_not_converged: bool = False
    allow_different_data: bool = False
    allow_different_protocol: bool = False

    def tolerance(self, key: str, family: str) -> float:
        """The tolerance of a metric key: its own, else its family's, else the default."""
        for name in (key, family):
            if name in self.tolerances:
                return self.tolerances[name]
        return DEFAULT_TOLERANCES.get(key, DEFAULT_TOLERANCES[family])

    def gates(self, category: Category) -> bool:
        """Whether a metric of this category can make the comparison fail."""
        return (
            category == "security"
            or (category == "performance" and self.performance)
            or (category == "quality" and self.quality)
        )


@dataclass
class Run:
    """A run's results and the folder its score files are relative to."""

    path: Path
    results: Results

    @property
    def root(self) -> Path:
        return self.path.parent


@dataclass
class MetricDelta:
    """The change of one metric of one matched row, with its interval and verdict."""

    metric: str
    category: Category
    worse: Direction
    gated: bool
    base: float | None
    new: float | None
    delta: float | None
    ci_low: float | None
    ci_high: float | None
    method: Method
    tolerance: float
    verdict: str
    note: str = ""


@dataclass
class RowDelta:
    """One matched row: its metrics' changes and how their intervals were found."""

    label: str
    recognizer: str
    scheme_base: str
    scheme_new: str
    attack: str
    view: str
    method: Method
    notes: list[str]
    metrics: list[MetricDelta]
    seconds: float = 0.0
    #: The runs ("base", "new") in which this row's learned attack stopped on its budget.
    not_converged: tuple[str, ...] = ()


@dataclass
class OneSided:
    """A row present in one run only."""

    side: Literal["base", "new"]
    label: str
    recognizer: str
    scheme: str
    attack: str
    view: str
    note: str = ""


@dataclass
class Comparison:
    """Everything :func:`render_markdown` and :func:`comparison_json` show."""

    base: dict[str, Any]
    new: dict[str, Any]
    warnings: list[str]
    info: list[str]
    rows: list[RowDelta]
    only_base: list[OneSided]
    only_new: list[OneSided]
    hints: list[str]
    settings: CompareSettings

    @property
    def regressions(self) -> list[tuple[RowDelta, MetricDelta]]:
        """Every (row, metric) whose verdict is ``regression``."""
        return [(r, m) for r in self.rows for m in r.metrics if m.verdict == "regression"]

    @property
    def judged(self) -> list[tuple[RowDelta, MetricDelta]]:
        """Every gated (row, metric) with a change and an interval: what an OK rests on."""
        return [(r, m) for r in self.rows for m in r.metrics if m.gated and m.verdict not in ("no_ci", "undefined")]

    @property
    def problems(self) -> list[str]:
        """Why the comparison proves nothing (status ``unmatched``): nothing gated compared, or one-sided rows."""
        out = []
        one_sided = self.only_base + self.only_new
        if one_sided and not self.settings.allow_unmatched:
            text = f"{len(one_sided)} row(s) on one side only"
            mapped = self.settings.scheme_map
            schemes_b = {r.scheme_base for r in self.rows} | {o.scheme for o in self.only_base}
            schemes_n = {r.scheme_new for r in self.rows} | {o.scheme for o in self.only_new}
            lone_b = sorted(schemes_b - schemes_n - set(mapped))
            lone_n = sorted(schemes_n - schemes_b - set(mapped.values()))
            lone = [f"{', '.join(lone_b)} in base only"] if lone_b else []
            lone += [f"{', '.join(lone_n)} in new only"] if lone_n else []
            if lone:
                text += f" (scheme {', '.join(lone)})"
            suggested = _suggested_map(self.only_base, self.only_new)
            fix = f"pass --map-scheme {suggested} if one replaces the other, or " if suggested else ""
            out.append(f"{text}: {fix}--allow-unmatched to accept them")
        under = [r for r in self.rows if "new" in r.not_converged]
        if under and not self.settings.allow_not_converged:
            attacks = sorted({f"{r.attack} on {r.scheme_new}" for r in under})
            shown = ", ".join(attacks[:4]) + (f" and {len(attacks) - 4} more" if len(attacks) > 4 else "")
            out.append(
                f"{len(under)} row(s) rest on a learned attack that stopped on its budget (or has no trained "
                f"model recorded) in the new run "
                f"({shown}): not converged, the attack may be stronger, so no regression shown proves nothing; "
                "raise its max_minutes / max_epochs, or pass --allow-not-converged to accept them"
            )
        if not self.judged:
            out.append(self._nothing_judged())
        return out

    def _nothing_judged(self) -> str:
        n_rows = len(self.rows)
        if not n_rows:
            return "no row matched"
        gated = [m for r in self.rows for m in r.metrics if m.gated]
        if gated:
            return f"no gated metric of the {n_rows} matched row(s) has a value and a CI in both runs"
        views = sorted({r.view.split(":", 1)[0] for r in self.rows})
        why = (
            " (baseline / preservation rows gate only with --performance)"
            if set(views) <= {"baseline", "preservation"}
            else ""
        )
        return f"nothing gated was compared: the {n_rows} matched row(s) ({', '.join(views)}) have no gated metric{why}"

    @property
    def status(self) -> Literal["regression", "unmatched", "ok"]:
        """``regression`` (exit 4) wins over ``unmatched`` (exit 5: nothing proven) over ``ok``."""
        if self.regressions:
            return "regression"
        return "unmatched" if self.problems else "ok"

    @property
    def verdict_line(self) -> str:
        """One line for the top of a CI log."""
        n_rows = len(self.rows)
        one_sided = len(self.only_base) + len(self.only_new)
        extra = f"; {one_sided} row(s) on one side only" if one_sided else ""
        regs = self.regressions
        if not regs:
            problems = self.problems
            if problems:
                return "facesec compare: UNMATCHED: " + "; ".join(problems)
            accepted = " (accepted by --allow-unmatched)" if one_sided else ""
            return (
                f"facesec compare: OK: no security regression in {n_rows} matched row(s), "
                f"{len(self.judged)} gated metric(s) judged{extra}{accepted}"
            )
        rows = len({id(r) for r, _ in regs})
        counts = {c: sum(m.category == c for _, m in regs) for c in ("security", "performance", "quality")}
        if counts["security"] == len(regs):
            what = f"{len(regs)} security regression(s)"
        else:
            names = {"security": "security", "performance": "performance", "quality": "image quality"}
            split = ", ".join(f"{names[c]} {n}" for c, n in counts.items() if n)
            what = f"{len(regs)} regression(s) ({split})"
        return f"facesec compare: REGRESSION: {what} in {rows} of {n_rows} matched row(s){extra}"


# --------------------------------------------------------------------------- input


def load_run(path: Path) -> Run:
    """Read a run: a ``results.json`` file or a run folder holding one.

    Raises:
        CompareError: the file is missing, unreadable, of an unknown schema, or its rows are malformed.
    """
    given = Path(path)
    target = given / "results.json" if given.is_dir() else given
    if not target.is_file():
        raise CompareError(f"{given}: no results.json in this folder" if given.is_dir() else f"{given}: no such file")
    try:
        results = read_results(target)
    except ResultsError as exc:
        raise CompareError(str(exc).replace("\n", " ")) from None
    rows = results.get("rows")
    if not isinstance(rows, list):
        raise CompareError(f"{target}: no rows list")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise CompareError(f"{target}: rows[{i}] is not an object")
        for name in ("recognizer", "scheme", "attack", "view"):
            if not isinstance(row.get(name), str):
                raise CompareError(f"{target}: rows[{i}].{name} is missing or not a string")
        if not isinstance(row.get("metrics"), dict):
            raise CompareError(f"{target}: rows[{i}].metrics is missing or not an object")
    return Run(target, results)


def parse_tolerances(items: Sequence[str]) -> dict[str, float]:
    """``METRIC=VALUE`` items (``--tol``) as a dict.

    ``METRIC`` is a family of :data:`DEFAULT_TOLERANCES` or a full key such
    as ``sar_at_fmr_0.0001``; ``VALUE`` a finite number >= 0.

    Raises:
        CompareError: on a malformed item, an unknown metric or a bad value.
    """
    out: dict[str, float] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise CompareError(f"--tol {item!r}: expected METRIC=VALUE, e.g. eer=0.01")
        if _family_of(name) is None:
            raise CompareError(f"--tol {item!r}: unknown metric {name!r} (known: {', '.join(_FAMILIES)})")
        try:
            value = float(text)
        except ValueError:
            raise CompareError(f"--tol {item!r}: {text!r} is not a number") from None
        if not math.isfinite(value) or value < 0:
            raise CompareError(f"--tol {item!r}: the tolerance must be a finite number >= 0")
        out[name] = value
    return out


def parse_scheme_map(items: Sequence[str]) -> dict[str, str]:
    """``BASE=NEW`` items (``--map-scheme``) as a dict of scheme labels.

    Raises:
        CompareError: on a malformed or repeated item.
    """
    out: dict[str, str] = {}
    for item in items:
        base, sep, new = (s.strip() for s in item.partition("="))
        if not sep or not base or not new:
            raise CompareError(f"--map-scheme {item!r}: expected BASE_LABEL=NEW_LABEL, e.g. lw8o0=lw3o0")
        if base in out or new in out.values():
            raise CompareError(f"--map-scheme {item!r}: each scheme may be mapped once")
        out[base] = new
    return out


def _family_of(key: str) -> str | None:
    if key in _FAMILIES:
        return key
    for family in _TARGETED:
        suffix = key.removeprefix(f"{family}_")
        if suffix != key and _is_target(suffix):
            return family
    return None


def _is_target(text: str) -> bool:
    try:
        return 0.0 <= float(text) <= 1.0
    except ValueError:
        return False


# --------------------------------------------------------------------------- matching


def _canon(obj: Any) -> str:
    """Canonical JSON of parameters: equal parameters, equal text (key order aside)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _label(recognizer: str, scheme: str, view: str) -> str:
    return f"{recognizer} · {view}" if scheme == "none" else f"{recognizer} · {scheme} · {view}"


def _scheme_id(row: Row, mapped: Mapping[str, str]) -> tuple[str, ...]:
    # A mapped scheme matches by its label on the new side, whatever its parameters.
    if row["scheme"] in mapped:
        return ("mapped", mapped[row["scheme"]])
    return ("label", row["scheme"], _canon(row.get("scheme_params") or {}))


def _keyed(run: Run, mapped: Mapping[str, str]) -> dict[tuple[Any, ...], Row]:
    out: dict[tuple[Any, ...], Row] = {}
    for row in run.results["rows"]:
        recognizer = (row["recognizer"], _canon(row.get("recognizer_params") or {}))
        key = (*recognizer, _scheme_id(row, mapped), row["attack"], row["view"])
        if key in out:
            raise CompareError(f"{run.path}: duplicate row {_label(row['recognizer'], row['scheme'], row['view'])}")
        out[key] = row
    return out


def _params_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    keys = sorted(set(a) | set(b))
    diff = [f"{k} {a.get(k, '—')!r} → {b.get(k, '—')!r}" for k in keys if _canon(a.get(k)) != _canon(b.get(k))]
    return ", ".join(diff)


def _one_sided(side: Literal["base", "new"], row: Row, others: Sequence[Row]) -> OneSided:
    # Same labels with other parameters is the usual reason: say so.
    note = ""
    for other in others:
        if (other["recognizer"], other["scheme"], other["view"]) != (row["recognizer"], row["scheme"], row["view"]):
            continue
        a, b = (row, other) if side == "base" else (other, row)
        rec = _params_diff(a.get("recognizer_params") or {}, b.get("recognizer_params") or {})
        sch = _params_diff(a.get("scheme_params") or {}, b.get("scheme_params") or {})
        parts = [f"recognizer params differ: {rec}" if rec else "", f"scheme params differ: {sch}" if sch else ""]
        note = "; ".join(p for p in parts if p)
        break
    label = _label(row["recognizer"], row["scheme"], row["view"])
    return OneSided(side, label, row["recognizer"], row["scheme"], row["attack"], row["view"], note)


def _check_scheme_map(base: Run, new: Run, mapped: Mapping[str, str]) -> None:
    have_base = {r["scheme"] for r in base.results["rows"]}
    have_new = {r["scheme"] for r in new.results["rows"]}
    for b, n in mapped.items():
        if b not in have_base:
            raise CompareError(
                f"--map-scheme {b}={n}: {base.path} has no scheme {b!r} ({', '.join(sorted(have_base))})"
            )
        if n not in have_new:
            raise CompareError(f"--map-scheme {b}={n}: {new.path} has no scheme {n!r} ({', '.join(sorted(have_new))})")


# --------------------------------------------------------------------------- score files


class _Files:
    """The score and quality files of one run, each read at most once.

    A run without any of its score (quality) files is one whose results.json
    travelled alone: its rows fall back to the stored intervals. A run that
    has some of them but not a row's is refused (:class:`CompareError`), as
    is an unreadable file: a missing file must not make a stored number stand.
    """

    def __init__(self, run: Run) -> None:
        self.run = run
        self._scores: dict[str, ScoreSet | str] = {}
        self._quality: dict[str, tuple[dict[str, np.ndarray], np.ndarray] | str] = {}
        recorded = {r["score_file"] for r in run.results["rows"] if r.get("score_file")}
        self.any_scores = any((run.root / rel).is_file() for rel in recorded)
        quality = run.root / "quality"
        self.any_quality = quality.is_dir() and any(quality.iterdir())

    def score_path(self, row: Row, field: Literal["score_file", "baseline_score_file"] = "score_file") -> Path | None:
        """Where the row's score file (or the one its ``field`` names) is (None when results.json records none)."""
        rel = row.get(field)
        return self.run.root / rel if isinstance(rel, str) and rel else None

    def quality_path(self, row: Row) -> Path:
        """Where a strength row's quality file is."""
        return self.run.root / "quality" / quality_file_name(row["scheme"], row["attack"], "strength")

    def scores(self, row: Row, field: Literal["score_file", "baseline_score_file"] = "score_file") -> ScoreSet | str:
        """The row's score set (or the one its ``field`` names), or why it is unavailable.

        Raises:
            CompareError: the file is unreadable, or missing while the run has other score files.
        """
        path = self.score_path(row, field)
        if path is None:
            return "no score file recorded"
        rel = str(row.get(field))
        if rel not in self._scores:
            try:
                self._scores[rel] = read_scores(path)
            except FileNotFoundError:
                if self.any_scores:
                    raise CompareError(f"{path}: score file missing (the run's other score files are there)") from None
                self._scores[rel] = f"no score files in this run ({path} missing)"
            except (OSError, ValueError, KeyError) as exc:
                raise CompareError(f"{path}: score file unreadable: {_one_line(exc)}") from None
        return self._scores[rel]

    def quality(self, row: Row) -> tuple[dict[str, np.ndarray], np.ndarray] | str:
        """Per-sample PSNR/SSIM of a strength row's attack output and each sample's subject, or why unavailable.

        Raises:
            CompareError: the file is unreadable, or missing while the run has other quality files.
        """
        path = self.quality_path(row)
        if path.name not in self._quality:
            try:
                values = read_quality(path)
                # read_quality leaves the subject column out; it is the bootstrap's cluster.
                with open(path, newline="") as fh:
                    subjects = np.array([r["subject"] for r in csv.DictReader(fh)])
                self._quality[path.name] = (values, subjects)
            except FileNotFoundError:
                if self.any_quality:
                    raise CompareError(
                        f"{path}: quality file missing (the run's other quality files are there)"
                    ) from None
                self._quality[path.name] = f"no quality files in this run ({path} missing)"
            except (OSError, ValueError, KeyError) as exc:
                raise CompareError(f"{path}: quality file unreadable: {_one_line(exc)}") from None
        return self._quality[path.name]


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


# --------------------------------------------------------------------------- per-side statistics


@dataclass
class _Plan:
    """Which metrics of a row are recomputed in each resample."""

    verification: list[str] = field(default_factory=list)  # eer / fnmr_at_fmr_<t>
    targets: list[float] = field(default_factory=list)
    sar: list[tuple[str, float]] = field(default_factory=list)
    sar_system: Literal["baseline", "own"] = "baseline"
    link: list[str] = field(default_factory=list)  # d_sys / linkability_max
    delta_eer: bool = False
    quality: list[str] = field(default_factory=list)  # psnr / ssim

    def keys(self) -> list[str]:
        keys = self.verification + [k for k, _ in self.sar] + self.link + self.quality
        return keys + (["delta_eer"] if self.delta_eer else [])


class _Side:
    """One run's side of a row: its arrays, each element with its cluster (probe subject), and the metrics of a resample.

    Groups: ``gen`` / ``imp`` (the row's mated / non-mated scores), ``bgen`` /
    ``bimp`` (the same run's baseline, whose impostors set SAR thresholds and
    whose EER ΔEER subtracts), ``failed`` (mated comparisons of the row lost
    to a failure to acquire: counted as rejected attempts), ``q`` (samples of
    the quality file).
    """

    def __init__(
        self,
        plan: _Plan,
        groups: dict[str, tuple[np.ndarray, np.ndarray]],
        quality: dict[str, np.ndarray] | None,
        bins: int,
        omega: float,
    ) -> None:
        self.plan = plan
        self.values = {name: v for name, (v, _) in groups.items()}
        self.subjects = {name: s for name, (_, s) in groups.items()}
        self.quality = quality
        self.bins, self.omega = bins, omega
        self.codes: dict[str, np.ndarray] = {}
        self.n_clusters = 0
        self._mated_bin = self._nonmated_bin = np.zeros(0, np.intp)
        self._linkable = bool(plan.link and groups["gen"][0].size and groups["imp"][0].size)
        if self._linkable:
            # The full data's bin edges serve every resample, as in the stored D↔sys interval.
            binned = bin_scores(groups["gen"][0], groups["imp"][0], bins)
            self._mated_bin, self._nonmated_bin = binned.mated_bin, binned.nonmated_bin

    def bind(self, codes: dict[str, np.ndarray], n_clusters: int) -> None:
        """Set each element's cluster code (shared with the other side when paired)."""
        self.codes, self.n_clusters = codes, n_clusters

    def same_data(self, other: _Side) -> bool:
        """True when both sides hold identical arrays (so every paired resample gives identical values)."""
        if (self.bins, self.omega) != (other.bins, other.omega) or set(self.values) != set(other.values):
            return False
        for name, values in self.values.items():
            if not np.array_equal(values, other.values[name]):
                return False
            if not np.array_equal(self.subjects[name], other.subjects[name]):
                return False
        if (self.quality is None) != (other.quality is None):
            return False
        if self.quality is not None and other.quality is not None:
            for k in ("psnr", "ssim", "failed"):
                if not np.array_equal(self.quality[k], other.quality[k], equal_nan=k != "failed"):
                    return False
        return True

    def _take(self, name: str, weight: np.ndarray) -> np.ndarray:
        # Every element of a drawn cluster, repeated by its draw count.
        return np.repeat(self.values[name], weight[self.codes[name]])

    def __call__(self, weight: np.ndarray) -> dict[str, float]:
        """The plan's metrics on the resample with these cluster multiplicities (finite values only)."""
        plan = self.plan
        out: dict[str, float] = {}
        rows_needed = plan.verification or plan.sar or plan.delta_eer
        gen = self._take("gen", weight) if rows_needed else np.zeros(0)
        imp = self._take("imp", weight) if rows_needed else np.zeros(0)
        row_eer: float | None = None
        if plan.verification and gen.size and imp.size:
            values = compute_all(gen, imp, plan.targets)
            out.update({k: float(values[k]) for k in plan.verification})
            row_eer = float(values["eer"])
        if plan.delta_eer and gen.size and imp.size:
            bgen, bimp = self._take("bgen", weight), self._take("bimp", weight)
            if bgen.size and bimp.size:
                row_eer = eer(gen, imp) if row_eer is None else row_eer
                out["delta_eer"] = row_eer - eer(bgen, bimp)
        if plan.sar:
            out.update(self._sar(gen, imp, weight))
        if self._linkable:
            mated = np.bincount(self._mated_bin, weights=weight[self.codes["gen"]], minlength=self.bins)
            nonmated = np.bincount(self._nonmated_bin, weights=weight[self.codes["imp"]], minlength=self.bins)
            both = linkage_measures(mated, nonmated, self.omega)
            values_link = {"d_sys": float(both[0]), "linkability_max": float(both[1])}
            out.update({k: values_link[k] for k in plan.link})
        if plan.quality and self.quality is not None:
            index = self._take("q", weight)
            summary = summarise_quality({k: self.quality[k][index] for k in ("psnr", "ssim", "failed")})
            out.update({k: float(summary[k]) for k in plan.quality})
        return {k: v for k, v in out.items() if math.isfinite(v)}

    def _sar(self, attacked: np.ndarray, own_impostor: np.ndarray, weight: np.ndarray) -> dict[str, float]:
        # As sar_ci: the threshold is re-estimated on each resample's impostors
        # (and, on strength views, the baseline's mated scores as the grid).
        if self.plan.sar_system == "baseline":
            impostor, grid = self._take("bimp", weight), self._take("bgen", weight)
        else:
            impostor, grid = own_impostor, attacked
        attempts = attacked.size + int(weight[self.codes["failed"]].sum())
        if attempts == 0 or impostor.size == 0:
            return {}
        if grid.size == 0:
            grid = impostor
        out = {}
        for key, target in self.plan.sar:
            threshold = operating_threshold(grid, impostor, target)
            out[key] = int(np.count_nonzero(attacked >= threshold)) / attempts
        return out


def _bind(sides: Sequence[_Side]) -> None:
    """Cluster codes over the subjects of ``sides`` together (one code space: a paired draw)."""
    names = [(i, name) for i, side in enumerate(sides) for name in side.subjects]
    arrays = [np.asarray(sides[i].subjects[name]).astype(str) for i, name in names]
    total = sum(a.size for a in arrays)
    codes, n_clusters = cluster_codes(np.concatenate(arrays) if arrays else np.zeros(0, str), total, "subjects")
    split = np.split(codes, np.cumsum([a.size for a in arrays])[:-1]) if arrays else []
    per_side: list[dict[str, np.ndarray]] = [{} for _ in sides]
    for (i, name), part in zip(names, split):
        per_side[i][name] = part
    for side, side_codes in zip(sides, per_side):
        side.bind(side_codes, n_clusters)


def _draws(rng: np.random.Generator, n_clusters: int, n_boot: int) -> Iterator[np.ndarray]:
    """Multiplicity vectors of ``n_boot`` resamples.

    One resample per call, as :func:`~benchmark.metrics.bootstrap.subject_bootstrap`
    and :func:`~benchmark.metrics.bootstrap.paired_delta_ci` draw: with the same
    seed and clusters, a paired ΔEER interval here is the one ``paired_delta_ci``
    gives for the same comparisons.
    """
    for _ in range(n_boot if n_clusters else 0):
        yield resample_multiplicities(rng, n_clusters, 1)[0]


def _bootstrap_deltas(
    base: _Side, new: _Side, paired: bool, keys: Sequence[str], n_boot: int, seed: int
) -> dict[str, list[float]]:
    """NEW - BASE of each key over the resamples (a resample where either side is undefined is dropped for that key)."""
    deltas: dict[str, list[float]] = {k: [] for k in keys}
    rng = np.random.default_rng(seed)
    if paired:
        pairs: Iterator[tuple[np.ndarray, np.ndarray]] = ((w, w) for w in _draws(rng, base.n_clusters, n_boot))
    else:
        # Independent draws for the two runs; the first side's are drawn in full first.
        base_draws = list(_draws(rng, base.n_clusters, n_boot))
        pairs = zip(base_draws, _draws(rng, new.n_clusters, n_boot))
    for wb, wn in pairs:
        vb, vn = base(wb), new(wn)
        for k in keys:
            if k in vb and k in vn:
                deltas[k].append(vn[k] - vb[k])
    return deltas


# --------------------------------------------------------------------------- one matched row


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _metric_keys(rule: MetricRule, a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    if rule.family not in _TARGETED:
        return [rule.family] if rule.family in a or rule.family in b else []
    found = {k for m in (a, b) for k in m if _family_of(k) == rule.family and k != rule.family}
    return sorted(found, key=lambda k: -float(k.removeprefix(f"{rule.family}_")))


def _pairs_equal(a: ScoreSet, b: ScoreSet) -> bool:
    return a.probe == b.probe and a.reference == b.reference


def _same_comparisons(plan: _Plan, b: _SideSource, n: _SideSource) -> bool:
    """Whether both runs scored the same comparisons for everything the plan resamples."""
    if not plan.keys():
        return False
    if plan.verification or plan.sar or plan.link or plan.delta_eer:
        if not (isinstance(b.scores, ScoreSet) and isinstance(n.scores, ScoreSet) and _pairs_equal(b.scores, n.scores)):
            return False
    if (plan.sar or plan.delta_eer) and isinstance(b.baseline, ScoreSet) and isinstance(n.baseline, ScoreSet):
        if not _pairs_equal(b.baseline, n.baseline):
            return False
    if plan.quality and isinstance(b.quality, tuple) and isinstance(n.quality, tuple):
        return bool(np.array_equal(b.quality[1], n.quality[1])) and bool(
            np.array_equal(b.quality[0]["sample"], n.quality[0]["sample"])
        )
    return True


def _failed_subjects(row_scores: ScoreSet, baseline: ScoreSet) -> np.ndarray:
    """Probe subjects of the baseline's mated comparisons missing from the row (lost to a failure to acquire).

    Every view scores the dataset's comparisons, and the baseline (plain
    images) loses none, so a mated comparison absent from the row's file is
    one the pipeline counted as a failed attack attempt.
    """
    kept = set(zip(row_scores.probe, row_scores.reference))
    return np.array(
        [
            s
            for p, r, s, m in zip(baseline.probe, baseline.reference, baseline.probe_subject, baseline.mated)
            if m and (p, r) not in kept
        ],
        dtype=str,
    )


@dataclass
class _SideSource:
    """What one run offers for a row: its score sets and quality file, or why each is missing, and their paths."""

    row: Row
    scores: ScoreSet | str
    baseline: ScoreSet | str
    quality: tuple[dict[str, np.ndarray], np.ndarray] | str | None
    results: Path
    paths: dict[str, Path | None] = field(default_factory=dict)  # "scores", "baseline", "quality"


def _needs(key: str, family: str, kind: str, src: _SideSource) -> str | None:
    """Why ``key`` cannot be recomputed from this side's files (None when it can)."""
    if family in ("psnr", "ssim"):
        return src.quality if isinstance(src.quality, str) else None if src.quality is not None else "no quality file"
    if isinstance(src.scores, str):
        return src.scores
    uses_baseline = family == "delta_eer" or (family == "sar_at_fmr" and kind == "strength")
    # A renewal SAR needs the baseline only to find failed attempts.
    if family == "sar_at_fmr" and kind == "renewal" and (_finite(src.row["metrics"].get("n_fta")) or 0) > 0:
        uses_baseline = True
    if uses_baseline and isinstance(src.baseline, str):
        return f"baseline {src.baseline}"
    return None


def _side(plan: _Plan, src: _SideSource, kind: str) -> _Side:
    groups: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    empty = (np.zeros(0), np.zeros(0, str))
    if isinstance(src.scores, ScoreSet):
        s = src.scores
        mated, subjects = s.mated, np.asarray(s.probe_subject, dtype=str)
        groups["gen"] = (s.score[mated], subjects[mated])
        groups["imp"] = (s.score[~mated], subjects[~mated])
    else:
        groups["gen"] = groups["imp"] = empty
    if (plan.delta_eer or (plan.sar and plan.sar_system == "baseline")) and isinstance(src.baseline, ScoreSet):
        b = src.baseline
        bm, bs = b.mated, np.asarray(b.probe_subject, dtype=str)
        groups["bgen"] = (b.score[bm], bs[bm])
        groups["bimp"] = (b.score[~bm], bs[~bm])
    if plan.sar:
        failed = np.zeros(0, str)
        no_failure = _finite(src.row["metrics"].get("n_fta")) == 0  # skips a set of every comparison
        if not no_failure and isinstance(src.scores, ScoreSet) and isinstance(src.baseline, ScoreSet):
            failed = _failed_subjects(src.scores, src.baseline)
        groups["failed"] = (np.zeros(failed.size), failed)
    quality = None
    if plan.quality and isinstance(src.quality, tuple):
        quality, q_subjects = src.quality
        groups["q"] = (np.arange(q_subjects.size), q_subjects)
    metrics = src.row["metrics"]
    n_mated = groups["gen"][0].size
    bins_value = _finite(metrics.get("bins"))
    bins = int(bins_value) if bins_value is not None else default_bins(n_mated)
    omega = _finite(metrics.get("omega")) or 1.0
    return _Side(plan, groups, quality, bins, omega)


def _normal_ci(base: Mapping[str, Any], new: Mapping[str, Any], key: str, delta: float) -> tuple[float, float] | None:
    """``delta ± z sqrt(se_b² + se_n²)`` from the stored percentile intervals (None without both)."""
    z = NormalDist().inv_cdf(1.0 - ALPHA / 2.0)
    ses = []
    for m in (base, new):
        low, high = _finite(m.get(f"{key}_ci_low")), _finite(m.get(f"{key}_ci_high"))
        if low is None or high is None:
            return None
        ses.append((high - low) / (2.0 * z))
    half = z * math.hypot(*ses)
    return delta - half, delta + half


def _verdict(delta: float | None, ci: tuple[float, float] | None, tol: float, worse: Direction, gated: bool) -> str:
    if delta is None:
        return "undefined"
    if ci is None:
        return "no_ci"
    sign = 1.0 if worse == "up" else -1.0
    # The change and its interval in the "worse" direction (positive = worse).
    amount = sign * delta
    low, high = sorted((sign * ci[0], sign * ci[1]))
    if amount > tol:
        if low > tol:
            return "regression" if gated else "worse_not_gated"
        return "worse_unresolved"
    if amount > 0:
        return "worse_within_tolerance"
    if -amount > tol and high < -tol:
        return "improved"
    return "ok"


def _compare_row(
    b: _SideSource,
    n: _SideSource,
    same_dataset: bool,
    settings: CompareSettings,
) -> RowDelta:
    t0 = time.perf_counter()
    row_b, row_n = b.row, n.row
    kind = row_b["view"].split(":", 1)[0]
    mb, mn = row_b["metrics"], row_n["metrics"]
    notes: list[str] = []
    sources = [row.get("threshold_source") for row in (row_b, row_n)]
    own_base = ["baseline_score_file" in row for row in (row_b, row_n)]
    if own_base[0] != own_base[1] or (None not in sources and sources[0] != sources[1]):
        # e.g. a fine-tuned row of a run from before its own baseline set its thresholds.
        shown = [x or "the recognizer's baseline (not recorded)" for x in sources]
        notes.append(f"SAR thresholds and ΔEER from other systems: {shown[0]} → {shown[1]}")
    if row_b["scheme"] != row_n["scheme"] or _canon(row_b.get("scheme_params")) != _canon(row_n.get("scheme_params")):
        diff = _params_diff(row_b.get("scheme_params") or {}, row_n.get("scheme_params") or {})
        notes.append(f"scheme {row_b['scheme']} → {row_n['scheme']} (--map-scheme){': ' + diff if diff else ''}")

    # Which metrics, and which of them can be recomputed from both runs' files.
    specs: list[tuple[str, MetricRule]] = [(k, r) for r in RULES.get(kind, ()) for k in _metric_keys(r, mb, mn)]
    plan = _Plan(sar_system="baseline" if kind == "strength" else "own")
    why_not: dict[str, str] = {}
    for key, rule in specs:
        reason = _needs(key, rule.family, kind, b) or _needs(key, rule.family, kind, n)
        if reason is not None:
            why_not[key] = reason
            continue
        if rule.family in ("eer", "fnmr_at_fmr"):
            plan.verification.append(key)
            if rule.family == "fnmr_at_fmr":
                plan.targets.append(float(key.removeprefix("fnmr_at_fmr_")))
        elif rule.family == "sar_at_fmr":
            plan.sar.append((key, float(key.removeprefix("sar_at_fmr_"))))
        elif rule.family in ("d_sys", "linkability_max"):
            plan.link.append(key)
        elif rule.family == "delta_eer":
            plan.delta_eer = True
        else:
            plan.quality.append(key)
    if plan.verification and "eer" not in plan.verification:
        # compute_all always gives the EER; keep it so that ΔEER can reuse it.
        plan.verification.append("eer")

    # Paired only when both runs scored the same comparisons of the same samples.
    paired = same_dataset and _same_comparisons(plan, b, n)

    boot: dict[str, tuple[float, float]] = {}
    if plan.keys():
        side_b, side_n = _side(plan, b, kind), _side(plan, n, kind)
        if paired:
            _bind([side_b, side_n])
        else:
            _bind([side_b])
            _bind([side_n])
        # The stored values must come back from the files, or the files are not this row's:
        # refused, never judged on the stored numbers (checked with --n-boot 0 too).
        spec_keys = {k for k, _ in specs}
        keys = [k for k in plan.keys() if k in spec_keys]
        for src, side, stored in ((b, side_b, mb), (n, side_n, mn)):
            full = side(np.ones(side.n_clusters, np.int64))
            for key in keys:
                if key in stored and not _reproduces(stored[key], full.get(key)):
                    raise CompareError(_not_reproduced(src, key, stored[key], full.get(key)))
        if settings.n_boot == 0:
            why_not.update({k: "--n-boot 0" for k in keys})
        elif keys and paired and side_b.same_data(side_n):
            # Identical data: every paired resample gives the same value on both sides.
            boot = {k: (0.0, 0.0) for k in keys}
            notes.append("identical scores in both runs")
        elif keys:
            deltas = _bootstrap_deltas(side_b, side_n, paired, keys, settings.n_boot, settings.seed)
            boot = {k: percentile_interval(deltas[k], ALPHA) for k in keys}

    metrics: list[MetricDelta] = []
    for key, rule in specs:
        vb, vn = _finite(mb.get(key)), _finite(mn.get(key))
        delta = None if vb is None or vn is None else vn - vb
        method: Method = "none"
        ci: tuple[float, float] | None = None
        note = ""
        if delta is not None:
            if key in boot and all(math.isfinite(x) for x in boot[key]):
                ci, method = boot[key], ("paired" if paired else "unpaired")
            else:
                ci = _normal_ci(mb, mn, key, delta)
                method = "normal" if ci is not None else "none"
                note = why_not.get(key, "no usable bootstrap resample")
        else:
            missing = [side for side, m in (("base", mb), ("new", mn)) if key not in m]
            note = f"missing in {' and '.join(missing)}" if missing else "undefined value"
        tol = settings.tolerance(key, rule.family)
        gated = settings.gates(rule.category)
        verdict = _verdict(delta, ci, tol, rule.worse, gated)
        lo, hi = ci if ci is not None else (None, None)
        metrics.append(
            MetricDelta(key, rule.category, rule.worse, gated, vb, vn, delta, lo, hi, method, tol, verdict, note)
        )

    # The row's method: the bootstrap it used, else the fallback.
    methods = {m.method for m in metrics}
    order: tuple[Method, ...] = ("paired", "unpaired", "normal")
    row_method: Method = next((x for x in order if x in methods), "none")
    label_scheme = row_b["scheme"] if row_b["scheme"] == row_n["scheme"] else f"{row_b['scheme']}→{row_n['scheme']}"
    return RowDelta(
        _label(row_b["recognizer"], label_scheme, row_b["view"]),
        row_b["recognizer"],
        row_b["scheme"],
        row_n["scheme"],
        row_b["attack"],
        row_b["view"],
        row_method,
        notes,
        metrics,
        time.perf_counter() - t0,
    )


def _files_of(key: str, src: _SideSource) -> list[Path]:
    """The files a key is recomputed from on one side (the row's, plus the baseline's where it leans on it)."""
    family = _family_of(key) or key
    if family in ("psnr", "ssim"):
        names = ["quality"]
    elif family == "delta_eer" or family == "sar_at_fmr":
        names = ["scores", "baseline"]
    else:
        names = ["scores"]
    return [p for name in names if (p := src.paths.get(name)) is not None]


def _not_reproduced(src: _SideSource, key: str, stored: Any, recomputed: float | None) -> str:
    files = " with ".join(str(p) for p in _files_of(key, src)) or "the score files"
    row = _label(src.row["recognizer"], src.row["scheme"], src.row["view"])
    return (
        f"{files}: {key} {_fmt_num(recomputed)} from the file does not reproduce {_fmt_num(stored)} in "
        f"{src.results} ({row}): the file is another run's or results.json was edited"
    )


def _reproduces(stored: Any, recomputed: float | None) -> bool:
    value = _finite(stored)
    if value is None or recomputed is None:
        return value is None and recomputed is None
    return abs(value - recomputed) <= _REPRODUCE_TOL * max(1.0, abs(value))


# --------------------------------------------------------------------------- whole runs


def _summary(run: Run) -> dict[str, Any]:
    r = run.results
    prov: Mapping[str, Any] = r.get("provenance") or {}
    dataset: Mapping[str, Any] = r.get("dataset") or {}
    protocol: Mapping[str, Any] = r.get("protocol") or {}
    key = prov.get("key") or {}
    return {
        "path": str(run.path),
        "protocol": protocol.get("name"),
        "protocol_sha256": prov.get("protocol_sha256"),
        "protocol_sections": prov.get("protocol_sections"),
        "dataset": dataset.get("name"),
        "dataset_fingerprint": prov.get("dataset_fingerprint"),
        "demo": dataset.get("demo"),
        "n_genuine": dataset.get("n_genuine"),
        "n_impostor": dataset.get("n_impostor"),
        "key_id": key.get("key_id") if isinstance(key, dict) else None,
        "git_commit": prov.get("git_commit"),
        "facesec_version": prov.get("facesec_version"),
        "created": prov.get("created"),
        "n_rows": len(r["rows"]),
    }


def _short(value: Any, n: int = 12) -> str:
    text = str(value)
    return text if len(text) <= n else text[:n] + "…"


def _protocol_difference(base: dict[str, Any], new: dict[str, Any]) -> str | None:
    """How the two runs' protocols measure differently (None when they do not).

    Runs with ``provenance.protocol_sections`` are compared section by section
    (schemes and keys aside, see :data:`~benchmark.engine.provenance.EVALUATION_SECTIONS`);
    older runs by the whole protocol file.
    """
    sec_b, sec_n = base.get("protocol_sections"), new.get("protocol_sections")
    names = f"base {base['protocol']!r}, new {new['protocol']!r}"
    if isinstance(sec_b, dict) and isinstance(sec_n, dict):
        differ = sorted(k for k in set(sec_b) | set(sec_n) if sec_b.get(k) != sec_n.get(k))
        return f"protocol sections {', '.join(differ)} differ ({names})" if differ else None
    if base["protocol_sha256"] != new["protocol_sha256"] or not base["protocol_sha256"]:
        return (
            f"protocol files differ (sha256 {_short(base['protocol_sha256'])} vs {_short(new['protocol_sha256'])}, "
            f"{names}; a run without provenance.protocol_sections is checked on its whole protocol file)"
        )
    return None


def _run_notes(
    base: dict[str, Any], new: dict[str, Any], settings: CompareSettings
) -> tuple[list[str], list[str], list[str]]:
    """Warnings, notes and refusals (what differs between the runs without an ``--allow-…`` flag)."""
    warnings: list[str] = []
    info: list[str] = []
    refusals: list[str] = []
    if base["dataset_fingerprint"] != new["dataset_fingerprint"] or not base["dataset_fingerprint"]:
        text = (
            f"dataset samples differ (base {base['dataset']!r} fingerprint {_short(base['dataset_fingerprint'])}, "
            f"new {new['dataset']!r} fingerprint {_short(new['dataset_fingerprint'])})"
        )
        if settings.allow_different_data:
            warnings.append(f"{text}: every interval is an unpaired bootstrap")
        else:
            refusals.append(text)
    protocol = _protocol_difference(base, new)
    if protocol is not None:
        (warnings if settings.allow_different_protocol else refusals).append(protocol)
    elif base["protocol_sha256"] != new["protocol_sha256"]:
        info.append("the protocol files differ outside the sections that fix the measurement (schemes, keys, …)")
    if base["key_id"] != new["key_id"] or base["key_id"] == "ephemeral":
        info.append(
            f"master keys differ (base {base['key_id']}, new {new['key_id']}): protected samples differ "
            "even for an unchanged scheme"
        )
    return warnings, info, refusals


def compare_runs(base: Run, new: Run, settings: CompareSettings | None = None) -> Comparison:
    """Compare two runs row by row (see the module docstring).

    Args:
        base: The reference run (e.g. the ``main`` branch).
        new: The run under test (e.g. a pull request).
        settings: Options; defaults when None.

    Returns:
        The comparison, ready for :func:`render_markdown` / :func:`comparison_json`.

    Raises:
        CompareError: on a duplicate row, a ``scheme_map`` naming an absent scheme, runs of other
            samples or of a protocol that measures differently (unless ``settings`` allows it), or a
            score or quality file that is unreadable, missing while the run has others, or does not
            reproduce its row's stored value.
    """
    settings = settings or CompareSettings()
    _check_scheme_map(base, new, settings.scheme_map)
    mapped_new = {v: v for v in settings.scheme_map.values()}
    keyed_b, keyed_n = _keyed(base, settings.scheme_map), _keyed(new, mapped_new)
    sum_b, sum_n = _summary(base), _summary(new)
    warnings, info, refusals = _run_notes(sum_b, sum_n, settings)
    if refusals:
        flags = []
        if any(r.startswith("dataset") for r in refusals):
            flags.append("--allow-different-data")
        if any(r.startswith("protocol") for r in refusals):
            flags.append("--allow-different-protocol")
        raise CompareError(f"runs not comparable: {'; '.join(refusals)}; pass {' '.join(flags)} if you mean it")
    same_dataset = bool(sum_b["dataset_fingerprint"]) and sum_b["dataset_fingerprint"] == sum_n["dataset_fingerprint"]
    files_b, files_n = _Files(base), _Files(new)
    baselines_b = {
        (r["recognizer"], _canon(r.get("recognizer_params") or {})): r
        for r in base.results["rows"]
        if r["view"] == "baseline"
    }
    baselines_n = {
        (r["recognizer"], _canon(r.get("recognizer_params") or {})): r
        for r in new.results["rows"]
        if r["view"] == "baseline"
    }

    def source(row: Row, files: _Files, baselines: Mapping[tuple[str, str], Row]) -> _SideSource:
        base_row = baselines.get((row["recognizer"], _canon(row.get("recognizer_params") or {})))
        baseline: ScoreSet | str = "no baseline row" if base_row is None else files.scores(base_row)
        baseline_path = None if base_row is None else files.score_path(base_row)
        if "baseline_score_file" in row:
            # A fine-tuned recognizer's row: its own baseline set its thresholds and ΔEER, never the recognizer's.
            baseline = files.scores(row, "baseline_score_file")
            baseline_path = files.score_path(row, "baseline_score_file")
        with_quality = row["view"].startswith("strength:") and "psnr" in row["metrics"]
        quality = files.quality(row) if with_quality else None
        paths = {
            "scores": files.score_path(row),
            "baseline": baseline_path,
            "quality": files.quality_path(row) if with_quality else None,
        }
        return _SideSource(row, files.scores(row), baseline, quality, files.run.path, paths)

    matched = [k for k in keyed_b if k in keyed_n]
    budget_b, budget_n = _unconverged(base.results), _unconverged(new.results)
    rows: list[RowDelta] = []
    for i, key in enumerate(matched, 1):
        rb, rn = keyed_b[key], keyed_n[key]
        delta = _compare_row(source(rb, files_b, baselines_b), source(rn, files_n, baselines_n), same_dataset, settings)
        under = {side: budget(row) for side, row, budget in (("base", rb, budget_b), ("new", rn, budget_n))}
        delta.not_converged = tuple(side for side, text in under.items() if text)
        for side in delta.not_converged:
            delta.notes.append(
                f"learned attack {rn['attack']} {under[side]} in the {side} run (not converged: the attack may be "
                "stronger)"
            )
        log.info("compare %d/%d %s: %s, %.1f s", i, len(matched), delta.label, delta.method, delta.seconds)
        rows.append(delta)
    normal = [(r, m) for r in rows for m in r.metrics if m.method == "normal"]
    if normal:
        without = [
            f"{side} run has no score files" for side, f in (("base", files_b), ("new", files_n)) if not f.any_scores
        ]
        if without:
            why = f"unchecked: {' and '.join(without)}"
        elif settings.n_boot == 0:
            why = "--n-boot 0; the stored values reproduce from the score files"
        else:
            why = "see the notes"
        warnings.append(
            f"{len(normal)} metric(s) in {len({id(r) for r, _ in normal})} row(s) use the normal approximation "
            f"from the CIs stored in results.json ({why})"
        )
    rows_b, rows_n = list(keyed_b.values()), list(keyed_n.values())
    only_base = [_one_sided("base", r, rows_n) for k, r in keyed_b.items() if k not in keyed_n]
    only_new = [_one_sided("new", r, rows_b) for k, r in keyed_n.items() if k not in keyed_b]
    hints = []
    suggested = _suggested_map(only_base, only_new)
    if suggested:
        b, n = suggested.split("=", 1)
        hints.append(f"to compare scheme {b} (base) with {n} (new), pass --map-scheme {suggested}")
    return Comparison(sum_b, sum_n, warnings, info, rows, only_base, only_new, hints, settings)


def _unconverged(results: Results) -> Callable[[Row], str]:
    """A lookup: a row -> why its learned attack may be under-trained in ``results`` ("" when it converged).

    A model stopped on its budget, or a row of a registered learned attack
    for which ``trained_models`` records no model at all (a block deleted
    from ``results.json`` must not pass for a converged attack).
    """
    block = results.get("trained_models")
    budget = stopped_on_budget(block)
    recorded = {
        (str(m["scheme"]) if m.get("scheme") else None, str(m.get("attack")))
        for m in (block if isinstance(block, list) else [])
        if isinstance(m, dict)
    }

    def why(row: Row) -> str:
        pairs = {(row["scheme"], row["attack"]), (None, row["attack"])}
        if pairs & budget:
            return "stopped on its budget"
        if _learned(row["attack"]) and not pairs & recorded:
            return "has no trained model recorded"
        return ""

    return why


def _learned(attack: str) -> bool:
    """Whether an attack label names a registered learned attack (``inpaint(conceal-codeblock)``: ``inpaint``)."""
    name = re.match(r"[A-Za-z0-9_-]+", attack)
    try:
        return name is not None and issubclass(ATTACKS.get(name.group(0)), LearnedAttack)
    except UnknownComponentError:
        return False


def _suggested_map(only_base: Sequence[OneSided], only_new: Sequence[OneSided]) -> str | None:
    """``BASE=NEW`` when exactly one scheme is unmatched on each side (a scheme whose label changed)."""
    lone_b = sorted({o.scheme for o in only_base} - {"none"})
    lone_n = sorted({o.scheme for o in only_new} - {"none"})
    return f"{lone_b[0]}={lone_n[0]}" if len(lone_b) == 1 and len(lone_n) == 1 else None


# --------------------------------------------------------------------------- output


def _fmt_num(value: Any, metric: str = "") -> str:
    v = _finite(value)
    if v is None:
        return "n/a"
    return f"{v:.2f}" if metric == "psnr" else f"{v:.4f}"


def _fmt_delta(m: MetricDelta) -> str:
    if m.delta is None:
        return "n/a"
    digits = 2 if m.metric == "psnr" else 4
    text = f"{m.delta:+.{digits}f}"
    if m.ci_low is not None and m.ci_high is not None:
        text += f" [{m.ci_low:+.{digits}f}, {m.ci_high:+.{digits}f}]"
    return text


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(comparison: Comparison) -> str:
    """The Markdown summary: verdict line, run details, warnings, the table (worst first), one-sided rows, notes."""
    c, s = comparison, comparison.settings
    lines = [f"**{c.verdict_line}**", ""]
    for side, info in (("base", c.base), ("new", c.new)):
        commit = f", commit {str(info['git_commit'])[:12]}" if info.get("git_commit") else ""
        lines.append(
            f"- {side}: `{info['path']}` (protocol {info['protocol']}, dataset {info['dataset']}{commit}, "
            f"created {info.get('created') or 'n/a'})"
        )
    lines += [f"- ⚠ {w}" for w in c.warnings]
    lines += [f"- note: {i}" for i in c.info]
    gates = ["security"] + (["performance"] if s.performance else []) + (["image quality"] if s.quality else [])
    lines.append(
        f"- gating: {', '.join(gates)}; 95 % CIs by subject bootstrap ({s.n_boot} resamples, seed {s.seed}) "
        "over probe subjects; arrows show the direction that is worse"
    )
    lines.append("")
    order = {v: i for i, v in enumerate(VERDICTS)}
    entries = [(r, m) for r in c.rows for m in r.metrics]
    entries.sort(key=lambda e: order.get(e[1].verdict, len(order)))  # stable: row order within a verdict
    if entries:
        lines.append("| row | metric | base | new | Δ [95 % CI] | tol | CI | verdict |")
        lines.append("|---|---|---:|---:|---|---:|---|---|")
        for r, m in entries:
            arrow = "↑" if m.worse == "up" else "↓"
            cells = [
                r.label,
                f"{m.metric} {arrow}",
                _fmt_num(m.base, m.metric),
                _fmt_num(m.new, m.metric),
                _fmt_delta(m),
                f"{m.tolerance:g}",
                _METHOD_TEXT[m.method],
                _VERDICT_TEXT.get(m.verdict, m.verdict),
            ]
            lines.append("| " + " | ".join(_cell(x) for x in cells) + " |")
        lines.append("")
    else:
        lines += ["No matched row has a compared metric.", ""]
    if c.only_base or c.only_new:
        lines.append("Rows on one side only (not compared):")
        for o in c.only_base + c.only_new:
            lines.append(f"- only in {o.side}: {o.label}" + (f" ({o.note})" if o.note else ""))
        lines += [f"- hint: {h}" for h in c.hints]
        lines.append("")
    row_notes = [(r, n) for r in c.rows for n in r.notes]
    metric_notes = [(r, m) for r in c.rows for m in r.metrics if m.note]
    if row_notes or metric_notes:
        lines.append("Notes:")
        lines += [f"- {r.label}: {n}" for r, n in row_notes]
        lines += [f"- {r.label} {m.metric}: {m.note}" for r, m in metric_notes]
        lines.append("")
    if any(m.method == "normal" for _, m in entries):
        lines.append("† normal approximation from the two rows' stored intervals (pairing ignored).")
        lines.append("")
    return "\n".join(lines)


def comparison_json(comparison: Comparison) -> dict[str, Any]:
    """The comparison as plain JSON values (NaN as null)."""
    c, s = comparison, comparison.settings
    tolerances = {**DEFAULT_TOLERANCES, **s.tolerances}
    return jsonable(
        {
            "verdict": c.status,
            "verdict_line": c.verdict_line,
            "n_regressions": len(c.regressions),
            "n_judged": len(c.judged),
            "problems": c.problems,
            "base": c.base,
            "new": c.new,
            "warnings": c.warnings,
            "info": c.info,
            "settings": {
                "n_boot": s.n_boot,
                "seed": s.seed,
                "alpha": ALPHA,
                "tolerances": tolerances,
                "gates": ["security"] + (["performance"] if s.performance else []) + (["quality"] if s.quality else []),
                "scheme_map": s.scheme_map,
                "allow_unmatched": s.allow_unmatched,
                "allow_not_converged": s.allow_not_converged,
                "allow_different_data": s.allow_different_data,
                "allow_different_protocol": s.allow_different_protocol,
            },
            "rows": [
                {
                    "label": r.label,
                    "recognizer": r.recognizer,
                    "scheme_base": r.scheme_base,
                    "scheme_new": r.scheme_new,
                    "attack": r.attack,
                    "view": r.view,
                    "method": r.method,
                    "notes": r.notes,
                    "not_converged": list(r.not_converged),
                    "metrics": [m.__dict__ for m in r.metrics],
                }
                for r in c.rows
            ],
            "only_base": [o.__dict__ for o in c.only_base],
            "only_new": [o.__dict__ for o in c.only_new],
            "hints": c.hints,
        }
    )


def write_comparison(comparison: Comparison, markdown: Path | None = None, json_path: Path | None = None) -> None:
    """Write the Markdown summary and / or the JSON atomically."""
    if markdown is not None:
        atomic_write_text(Path(markdown), render_markdown(comparison), shared=True)
    if json_path is not None:
        atomic_write_text(
            Path(json_path), json.dumps(comparison_json(comparison), indent=2, allow_nan=False) + "\n", shared=True
        )
