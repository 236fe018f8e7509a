"""The summary that opens the page: the four ISO/IEC 24745 properties per scheme and recognizer.

Performance preservation, irreversibility, unlinkability and renewability
are each read off the rows of one view kind and judged by the protocol's
certification criteria that cover those rows. A criterion is applied to the
rows of the cell with the project's own judge
(:func:`benchmark.metrics.certify.judge`: the worst row decides, on the CI
bound), so a cell's verdict is exactly the criterion's verdict restricted
to it. The judge is given every recognizer's baseline and the competence
the run required (the default for results that predate it), so a cell
whose recognizer misses most genuine pairs on plain faces is UNRESOLVED,
with the reason in the cell, never PASS.

Irreversibility is shown twice where the run has a key-knowing attack
(``key_known`` rows, the stolen-token attacker of ISO/IEC 24745):
``keyless`` (the strongest attack without the key) and ``key known`` (the
strongest attack holding the victim's key), labelled, side by side. The
verdict covers both: ISO/IEC 24745 asks a cancelable template to be
irreversible with the key known, the stricter requirement, and the judge's
worst row decides, so a scheme that only keyless attacks fail to invert
does not pass when the key-knowing attacker inverts it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from benchmark.engine.results import Results
from benchmark.metrics.certify import DEFAULT_COMPETENCE_FMR, DEFAULT_MAX_FNMR, judge
from reports.export import Collector, Table
from reports.formatting import (
    as_text,
    estimate,
    format_metric,
    format_params,
    is_number,
    mappings,
    metric_cell,
    metric_header,
    optional_number,
    or_default,
    unique_in_order,
)
from reports.rows import PLAIN, recognizer_labels, view_kind

__all__ = ["summary_context", "summary_table"]


@dataclass
class _Competence:
    """The competence a run required (:class:`benchmark.metrics.certify.Competence`), read back from an entry."""

    max_fnmr: float
    fmr: float


@dataclass
class _Criterion:
    """A certification criterion read back from a ``results["certification"]`` entry.

    Not frozen: :class:`benchmark.metrics.certify.Criterion` is a protocol of
    plain attributes.
    """

    metric: str
    view: str
    recognizer: str
    scheme: str
    max: float | None
    min: float | None
    competence: _Competence | None

    @property
    def text(self) -> str:
        """The requirement as a reader states it, e.g. ``d_sys ≤ 0.1 (view linkage:*)``."""
        relation, bound = ("≤", self.max) if self.max is not None else ("≥", self.min)
        where = [f"view {self.view}"] + [
            f"{name} {pattern}"
            for name, pattern in (("recognizer", self.recognizer), ("scheme", self.scheme))
            if pattern != "*"
        ]
        return f"{self.metric} {relation} {format_metric(self.metric, bound)} ({', '.join(where)})"


def _criteria(entries: Any) -> list[_Criterion]:
    """The criteria of the certification entries; an entry without a metric or a numeric bound is skipped.

    The bound is ``max``/``min`` itself, or ``bound`` beside a ``max``/``min`` marker.
    """
    out = []
    for entry in mappings(entries):
        direction = "max" if "max" in entry else "min" if "min" in entry else ""
        bound = optional_number(entry.get(direction)) if direction else None
        if bound is None:
            bound = optional_number(entry.get("bound"))
        metric = as_text(entry.get("metric"))
        if not direction or bound is None or not metric:
            continue
        # Results that predate competence get the default: a report never shows a PASS the run would now refuse.
        recorded = entry.get("competence", {})
        competence = None
        if isinstance(recorded, Mapping):
            competence = _Competence(
                max_fnmr=or_default(optional_number(recorded.get("max_fnmr")), DEFAULT_MAX_FNMR),
                fmr=or_default(optional_number(recorded.get("fmr")), DEFAULT_COMPETENCE_FMR),
            )
        out.append(
            _Criterion(
                metric=metric,
                view=as_text(entry.get("view")) or "*",
                recognizer=as_text(entry.get("recognizer")) or "*",
                scheme=as_text(entry.get("scheme")) or "*",
                max=bound if direction == "max" else None,
                min=bound if direction == "min" else None,
                competence=competence,
            )
        )
    return out


_VERDICT_RANK = {"PASS": 0, "UNRESOLVED": 1, "FAIL": 2}
# The judge only uses the protocol's n_boot to say why a CI is missing; results do not record it.
_N_BOOT_UNKNOWN = -1


@dataclass(frozen=True)
class _Judgement:
    """The verdict of the criteria covering some rows: ``""`` when none covers them.

    ``why``: why a recognizer's rows are no evidence of a pass (not competent) where that keeps a criterion
    from passing; shown in the cell.
    """

    verdict: str
    notes: tuple[str, ...]
    why: tuple[str, ...] = ()


def _judgeable(row: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` as the judge reads it: its names and its numeric metrics only."""
    metrics = row.get("metrics") or {}
    return {
        "recognizer": as_text(row.get("recognizer")),
        "scheme": as_text(row.get("scheme")),
        "view": as_text(row.get("view")),
        "metrics": {str(k): v for k, v in metrics.items() if is_number(v)} if isinstance(metrics, Mapping) else {},
    }


def _judge(
    rows: Sequence[Mapping[str, Any]],
    criteria: Sequence[_Criterion],
    baselines: Mapping[str, Mapping[str, Any]],
) -> _Judgement:
    """Apply every criterion that matches some of ``rows`` to those rows; the worst verdict decides.

    ``baselines``: each recognizer's baseline metrics, which show whether it is competent.
    """
    if not rows:
        return _Judgement("", ())
    plain = [_judgeable(r) for r in rows]
    verdicts, notes, why = [], [], []
    for crit in criteria:
        (entry,) = judge(plain, [crit], _N_BOOT_UNKNOWN, crit.competence, baselines)
        if not entry["n_rows"]:
            continue
        verdicts.append(str(entry["verdict"]))
        reason = f": {entry['reason']}" if entry["reason"] else ""
        # A FAIL's reason names its row already.
        decided = f" (decided by {entry['decided_by']})" if entry["decided_by"] and entry["verdict"] != "FAIL" else ""
        notes.append(f"{crit.text} → {entry['verdict']}{decided}{reason}")
        if entry["verdict"] != "FAIL":  # a failure stands whoever shows it
            why += [
                f"{crit.metric}: {rec} not competent, so no evidence of a pass: {t}"
                for rec, t in entry["not_competent"].items()
            ]
    worst = max(verdicts, key=lambda v: _VERDICT_RANK.get(v, 2), default="")
    return _Judgement(worst, tuple(notes), tuple(unique_in_order(why)))


# (key, heading, view kind) of each property, in the order of ISO/IEC 24745.
_PROPERTIES: tuple[tuple[str, str, str], ...] = (
    ("preservation", "Performance preservation", "preservation"),
    ("irreversibility", "Irreversibility", "strength"),
    ("unlinkability", "Unlinkability", "linkage"),
    ("renewability", "Renewability", "renewal"),
)
_SAR_RE = re.compile(r"sar_at_fmr_[0-9.e+-]+")


@dataclass(frozen=True)
class _PropertyCell:
    """One property of one (scheme, recognizer): its rows, the row shown, and the criteria's verdict.

    Attributes:
        rows: Every row of the property's view kind (all attacks).
        shown: The row whose figures are shown (the strongest attack, the
            most linkable one); None when the view was not measured.
        judgement: The verdict of the criteria covering ``rows``.
    """

    rows: tuple[Mapping[str, Any], ...]
    shown: Mapping[str, Any] | None
    judgement: _Judgement

    def split(self) -> list[tuple[str, _PropertyCell]]:
        """``(label, cell)`` for the keyless and the key-knowing rows, when the cell holds key-knowing rows.

        Empty when it holds none (the cell shows as one); the verdict stays the whole cell's.
        """
        known = tuple(r for r in self.rows if r.get("key_known") is True)
        if not known:
            return []
        keyless = tuple(r for r in self.rows if r.get("key_known") is not True)
        parts = (("keyless", keyless), ("key known", known))
        return [(label, _PropertyCell(rows, _lowest(rows, "eer"), self.judgement)) for label, rows in parts if rows]

    @property
    def metrics(self) -> Mapping[str, Any]:
        """The shown row's metrics (empty when not measured)."""
        return (self.shown or {}).get("metrics") or {}

    @property
    def attack(self) -> str:
        """The shown row's attack (``""`` when not measured)."""
        return as_text((self.shown or {}).get("attack"))

    @property
    def verdict_text(self) -> str:
        """The verdict, ``no criterion`` or ``not measured``."""
        if self.shown is None:
            return "not measured"
        return self.judgement.verdict or "no criterion"


@dataclass(frozen=True)
class _SummaryLine:
    scheme: str
    scheme_params: str
    recognizer: str
    cells: dict[str, _PropertyCell]


def _lowest(rows: Sequence[Mapping[str, Any]], key: str) -> Mapping[str, Any] | None:
    """The row with the lowest ``key`` (rows without it last, ties: first)."""
    if not rows:
        return None
    return min(rows, key=lambda r: or_default(optional_number((r.get("metrics") or {}).get(key)), math.inf))


def _highest(rows: Sequence[Mapping[str, Any]], key: str) -> Mapping[str, Any] | None:
    """The row with the highest ``key`` (rows without it last, ties: first)."""
    if not rows:
        return None
    return max(rows, key=lambda r: or_default(optional_number((r.get("metrics") or {}).get(key)), -math.inf))


def _shown_row(kind: str, rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The row a property cell shows: the strongest attack (lowest EER), the most linkable (highest D↔sys)."""
    if kind == "strength":
        return _lowest(rows, "eer")
    if kind == "linkage":
        linked = [r for r in rows if optional_number((r.get("metrics") or {}).get("d_sys")) is not None]
        return _highest(linked, "d_sys") if linked else _lowest(rows, "eer")
    return rows[0] if rows else None


def _summary_lines(
    rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str], criteria: Sequence[_Criterion]
) -> list[_SummaryLine]:
    """One line per (scheme, recognizer) of the protected rows, schemes and recognizers in first-seen order."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    baselines = {as_text(r.get("recognizer")): _judgeable(r)["metrics"] for r in rows if r.get("view") == "baseline"}
    for row in rows:
        if as_text(row.get("scheme")) not in (PLAIN, ""):
            groups.setdefault((as_text(row.get("scheme")), labels[id(row)]), []).append(row)
    order = unique_in_order(scheme for scheme, _ in groups)
    lines = []
    for scheme, recognizer in sorted(groups, key=lambda k: order.index(k[0])):
        members = groups[(scheme, recognizer)]
        cells = {}
        for key, _, kind in _PROPERTIES:
            mine = tuple(r for r in members if view_kind(r.get("view")) == kind)
            cells[key] = _PropertyCell(mine, _shown_row(kind, mine), _judge(mine, criteria, baselines))
        params = format_params(members[0].get("scheme_params"))
        lines.append(_SummaryLine(scheme, params, recognizer, cells))
    return lines


def _sar_key(rows: Sequence[Mapping[str, Any]], criteria: Sequence[_Criterion]) -> str | None:
    """The SAR operating point of the summary: one a criterion names, else the first the rows hold."""
    for crit in criteria:
        if _SAR_RE.fullmatch(crit.metric):
            return crit.metric
    for row in rows:
        for key in row.get("metrics") or {}:
            if _SAR_RE.fullmatch(str(key)):
                return str(key)
    return None


def _null_fact(metrics: Mapping[str, Any]) -> str:
    """Whether D↔sys lies within its permutation null (at or below the null's 95th percentile): a fact, no verdict."""
    d_sys, null_high = optional_number(metrics.get("d_sys")), optional_number(metrics.get("d_sys_null_high"))
    if d_sys is None or null_high is None:
        return ""
    return "within null" if d_sys <= null_high else "above null"


def _property_items(key: str, cell: _PropertyCell, sar: str | None) -> list[tuple[str, str]]:
    """``(metric key, label)`` of the figures a property cell shows, the leading figure first.

    Figures the shown row does not hold at all (maximal linkability in
    older files) are left out; the leading one always shows, ``—`` when missing.
    """
    sar_item = [(sar, metric_header(sar))] if sar else []
    if key == "preservation":
        items = [("delta_eer", "ΔEER"), ("eer", "EER")]
    elif key == "irreversibility":
        items = [("eer", "EER"), *sar_item]
    elif key == "unlinkability":
        items = [("d_sys", "D↔sys"), ("linkability_max", "max. linkability (bits)")]
        if "d_sys" not in cell.metrics:
            items.append(("eer", "EER (key A vs B)"))
    else:
        items = [*sar_item, ("eer", "EER")]
    return items[:1] + [item for item in items[1:] if item[0] in cell.metrics]


def _attack_note(key: str, cell: _PropertyCell) -> str:
    """Which attack a cell shows, and out of how many (per part, labelled, for a split irreversibility cell)."""
    if key not in ("irreversibility", "unlinkability") or cell.shown is None:
        return ""
    parts = cell.split() if key == "irreversibility" else []
    if parts:
        return "; ".join(f"{label}: {_strongest_note(key, part)}" for label, part in parts)
    return _strongest_note(key, cell)


def _strongest_note(key: str, cell: _PropertyCell) -> str:
    if len(cell.rows) == 1:
        return f"attack {cell.attack}"
    which = "strongest" if key == "irreversibility" else "most linkable"
    return f"{which} of {len(cell.rows)}: {cell.attack}"


def _unlinkability_fact(metrics: Mapping[str, Any]) -> str:
    """``above null (95th pct. 0.052)``: D↔sys against its permutation null, or ``""`` without them."""
    fact = _null_fact(metrics)
    return f"{fact} (95th pct. {format_metric('d_sys_null_high', metrics.get('d_sys_null_high'))})" if fact else ""


def _property_context(key: str, cell: _PropertyCell, sar: str | None) -> dict[str, Any]:
    """Display form of one property cell: figures with CIs, the attack shown, the verdict and its criteria."""
    verdict = cell.judgement.verdict
    status = "unmeasured" if cell.shown is None else verdict.lower() if verdict else "none"
    lines = []
    parts = cell.split() if key == "irreversibility" else []
    if parts:
        lines = [
            {"label": f"{part_label}: {label}", **metric_cell(metric, part.metrics)}
            for part_label, part in parts
            for metric, label in _property_items(key, part, sar)
        ]
    elif cell.shown is not None:
        lines = [
            {"label": label, **metric_cell(metric, cell.metrics)} for metric, label in _property_items(key, cell, sar)
        ]
    notes = "; ".join(cell.judgement.notes)
    if not notes and cell.shown is not None:
        notes = "no certification criterion covers these rows"
    return {
        "status": status,
        "badge": cell.verdict_text,
        "attack": _attack_note(key, cell),
        "lines": lines,
        "fact": _unlinkability_fact(cell.metrics) if key == "unlinkability" else "",
        "why": "; ".join(cell.judgement.why),
        "notes": notes,
    }


def _baselines_context(rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str]) -> list[dict[str, str]]:
    return [
        {"recognizer": labels[id(r)], **metric_cell("eer", r.get("metrics") or {})}
        for r in rows
        if r.get("view") == "baseline"
    ]


def summary_context(
    rows: Sequence[Mapping[str, Any]],
    labels: Mapping[int, str],
    certification: Any,
    anchors: Mapping[str, str],
    out: Collector,
) -> dict[str, Any] | None:
    """The summary section's context (None without protected rows); its table goes to ``out``.

    Args:
        rows: Result rows in the results' order.
        labels: Recognizer label per row (keyed by ``id(row)``).
        certification: ``results["certification"]``: the protocol's
            certification criteria (with their recorded verdicts).
        anchors: HTML id of each scheme's details.
        out: Collector of the summary table.

    Returns:
        ``{"headings", "baselines", "has_criteria", "lines"}``; each line
        ``{"scheme", "scheme_params", "anchor", "recognizer", "cells"}`` with
        one :func:`_property_context` per property.
    """
    criteria = _criteria(certification)
    lines = _summary_lines(rows, labels, criteria)
    if not lines:
        return None
    sar = _sar_key(rows, criteria)
    out.table("summary", _summary_export(lines, sar))
    return {
        "headings": [heading for _, heading, _ in _PROPERTIES],
        "baselines": _baselines_context(rows, labels),
        "has_criteria": bool(criteria),
        # A filter box only where there are lines enough to need one.
        "filterable": len(lines) > 6,
        "lines": [
            {
                "scheme": line.scheme,
                "scheme_params": line.scheme_params,
                "anchor": anchors.get(line.scheme, ""),
                "recognizer": line.recognizer,
                "cells": [_property_context(key, line.cells[key], sar) for key, _, _ in _PROPERTIES],
            }
            for line in lines
        ],
    }


def _summary_export(lines: Sequence[_SummaryLine], sar: str | None) -> Table:
    """The summary as plain data: per (scheme, recognizer) the figures and verdict of each property."""
    sar_header = metric_header(sar) if sar else "SAR"
    header = [
        "Scheme",
        "Recognizer",
        "ΔEER (preservation)",
        "EER (preservation)",
        "Performance preservation",
        "Strongest attack",
        "EER (strength)",
        f"{sar_header} (strength)",
        "Strongest key-known attack",
        "EER (strength, key known)",
        f"{sar_header} (strength, key known)",
        "Irreversibility",
        "Most linkable attack",
        "D↔sys",
        "max. linkability (bits)",
        "D↔sys null (95th pct.)",
        "D↔sys vs null",
        "Unlinkability",
        f"{sar_header} (renewal)",
        "EER (renewal)",
        "Renewability",
    ]
    sar_key = sar or "sar"
    keys = ["", "", "delta_eer", "eer", "", "", "eer", sar_key, "", "eer", sar_key, ""]
    keys += ["", "d_sys", "linkability_max", "d_sys_null_high"]
    keys += ["", "", sar_key, "eer", ""]
    rows = []
    for line in lines:
        pres, irr, unl, ren = (line.cells[key] for key, _, _ in _PROPERTIES)
        # Split, "Strongest attack" is the keyless one and the key-knowing one stands beside it.
        parts = dict(irr.split())
        keyless, known = parts.get("keyless", irr if not parts else None), parts.get("key known")
        rows.append(
            [
                line.scheme,
                line.recognizer,
                estimate("delta_eer", pres.metrics),
                estimate("eer", pres.metrics),
                pres.verdict_text,
                keyless.attack if keyless else "",
                estimate("eer", keyless.metrics if keyless else None),
                estimate(sar_key, keyless.metrics if keyless else None),
                known.attack if known else "",
                estimate("eer", known.metrics if known else None),
                estimate(sar_key, known.metrics if known else None),
                irr.verdict_text,
                unl.attack,
                estimate("d_sys", unl.metrics),
                estimate("linkability_max", unl.metrics),
                optional_number(unl.metrics.get("d_sys_null_high")),
                _null_fact(unl.metrics),
                unl.verdict_text,
                estimate(sar_key, ren.metrics),
                estimate("eer", ren.metrics),
                ren.verdict_text,
            ]
        )
    return Table("Summary: ISO/IEC 24745 properties per scheme and recognizer", header, rows, keys, lead=2)


def summary_table(results: Results) -> Table | None:
    """The summary of ``results`` as a plain-data table (what ``<export>/summary-*.csv`` holds).

    Args:
        results: Parsed ``results.json``.

    Returns:
        The table, or None when no row is of a protected scheme.
    """
    rows = results.get("rows") or []
    labels = recognizer_labels(rows)
    criteria = _criteria(cast(Mapping[str, Any], results).get("certification"))
    lines = _summary_lines(rows, labels, criteria)
    return _summary_export(lines, _sar_key(rows, criteria)) if lines else None
