"""Render results (:class:`benchmark.engine.results.Results`, the ``results.json`` schema) as one HTML page.

The renderer only *presents* what the results hold: metrics are formatted,
never recomputed from scores. The page opens with the certification
verdicts and a summary of the four ISO/IEC 24745 properties per scheme and
recognizer (performance preservation, irreversibility, unlinkability,
renewability), each judged by the protocol's own certification criteria
(:func:`benchmark.metrics.certify.judge`, applied to the rows of that
cell); details follow, grouped per scheme, and the full table of rows
closes it, filterable by a small inline script. The page references nothing
outside itself (CSS and script inlined, figures as PNG data URIs, a content
security policy that allows nothing else) so it can be archived or mailed
as a single file, and identical results give byte-identical HTML; without
JavaScript every row simply shows.

Every figure and table also goes to a :class:`reports.export.Collector`,
which writes PNG/PDF and CSV/LaTeX files when exporting
(:func:`write_report` with ``export_dir``).
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from benchmark.core.cache import atomic_write_text
from benchmark.engine.results import Results
from benchmark.metrics.certify import judge
from reports.export import Cell, Collector, Estimate, Table
from reports.plots import (
    MARKERS,
    PALETTE,
    VIEW_COLOURS,
    DetCurve,
    ExampleLine,
    QualitySeries,
    ScoreDensity,
    SweepBaseline,
    SweepLine,
    det_figure,
    examples_figure,
    generalisation_matrix_figure,
    quality_distributions_figure,
    recognizer_training_figure,
    score_histogram_figure,
    sweep_figure,
    training_curve_figure,
    unlinkability_figure,
    view_distributions_figure,
)

__all__ = [
    "render_report",
    "write_report",
    "build_context",
    "metric_columns",
    "format_metric",
    "generalisation_tables",
    "summary_table",
]

_TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
_TEMPLATE = "report.html.j2"

# Known metrics first, in reading order; anything else follows in order of
# first appearance so metrics added later still show up.
_PREFERRED_METRICS: tuple[str, ...] = (
    "eer",
    "fnmr_at_fmr_0.01",
    "fnmr_at_fmr_0.001",
    "fnmr_at_fmr_0.0001",
    "d_prime",
    "n_genuine",
    "n_impostor",
)
# A metric shown right after another one when both are present: maximal
# linkability beside D<->sys, measured on the same bins.
_COMPANIONS: dict[str, str] = {"d_sys": "linkability_max"}
_CI_SUFFIXES = ("_ci_low", "_ci_high")
# Error/success rates (and their differences) are shown as percentages; other numbers as they are.
_RATE_RE = re.compile(r"^(delta_)?(eer|fmr|fnmr|far|frr|sar|fpir|fnir|apcer|bpcer|acer|iar|gar|tar)(_|$)|_rate(_|$)")
_COUNT_RE = re.compile(r"^n_")
# Defence in depth for provenance sub-dicts: never print anything key-like.
_SECRET_RE = re.compile(r"key|secret|password|passwd|token|credential", re.IGNORECASE)
_GROUP_FIELDS = ("recognizer", "scheme", "attack", "view")
_DASH = "—"
_HEADERS: dict[str, str] = {
    "eer": "EER",
    "d_prime": "d′",
    "n_genuine": "# genuine",
    "n_impostor": "# impostor",
    "delta_eer": "ΔEER",
    "d_sys": "D↔sys",
    "d_sys_null": "D↔sys null (mean)",
    "d_sys_null_high": "D↔sys null (95th pct.)",
    "linkability_max": "max. linkability (bits)",
    "linkability_max_null": "max. linkability null (mean)",
    "linkability_max_null_high": "max. linkability null (95th pct.)",
    "key_space_bits": "key space (bits)",
    "transform_space_bits": "transform space (bits)",
}


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(_TEMPLATE_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


# --------------------------------------------------------------------------- page script
# The page's only script: the text filter of the full table (and of the
# summary), and opening collapsed details for printing or when a link points
# into them. The content security policy allows exactly this script (by its
# hash), inline styles and data: images; nothing can be fetched.

_SCRIPT = """(function () {
  "use strict";
  var each = function (list, fn) { Array.prototype.forEach.call(list, fn); };
  each(document.querySelectorAll("[data-filter-for]"), function (box) {
    var table = document.getElementById(box.getAttribute("data-filter-for"));
    var input = box.querySelector("input");
    var count = box.querySelector("output");
    if (!table || !table.tBodies.length || !input) { return; }
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    var texts = rows.map(function (row) { return row.textContent.toLowerCase(); });
    var apply = function () {
      var terms = input.value.toLowerCase().split(/\\s+/).filter(function (t) { return t.length > 0; });
      var shown = 0;
      rows.forEach(function (row, i) {
        var keep = terms.every(function (t) { return texts[i].indexOf(t) !== -1; });
        row.hidden = !keep;
        shown += keep ? 1 : 0;
      });
      if (count) { count.textContent = shown + " of " + rows.length + " rows"; }
    };
    input.addEventListener("input", apply);
    box.hidden = false;
    apply();
  });
  var openTarget = function () {
    var id = decodeURIComponent(window.location.hash.slice(1));
    var target = id ? document.getElementById(id) : null;
    if (target && target.tagName === "DETAILS") { target.open = true; }
  };
  window.addEventListener("hashchange", openTarget);
  openTarget();
  window.addEventListener("beforeprint", function () {
    each(document.querySelectorAll("details"), function (d) { d.open = true; });
  });
})();"""
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SCRIPT.encode("utf-8")).digest()).decode("ascii")
_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    f"script-src 'sha256-{_SCRIPT_HASH}'; base-uri 'none'; form-action 'none'"
)


# --------------------------------------------------------------------------- formatting


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _format_percent(value: float) -> str:
    pct = value * 100
    if pct == 0:
        return "0%"
    # At least two significant digits, never scientific notation.
    decimals = max(2, 1 - math.floor(math.log10(abs(pct))))
    return f"{pct:.{decimals}f}%"


def _format_plain(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.3e}"
    return f"{value:.4g}"


def format_metric(key: str, value: Any) -> str:
    """Format one metric value for display.

    Args:
        key: Metric name; rates (``eer``, ``fnmr_*``, ``sar_*``, ``*_rate``,
            ``delta_eer``, including their ``_ci_low``/``_ci_high`` bounds)
            become percentages, ``n_*`` counts get thousands separators.
        value: The number, or None when the metric is undefined.

    Returns:
        Display text; ``"—"`` for None or non-finite values.
    """
    if value is None:
        return _DASH
    if not _is_number(value):
        return str(value)
    if not math.isfinite(value):
        return _DASH
    base = _strip_ci(key)
    if _RATE_RE.search(base):
        return _format_percent(value)
    if _COUNT_RE.search(base):
        return f"{int(round(value)):,}"
    return _format_plain(value)


def _strip_ci(key: str) -> str:
    for suffix in _CI_SUFFIXES:
        if key.endswith(suffix):
            return key[: -len(suffix)]
    return key


def _format_params(params: Mapping[str, Any] | None) -> str:
    if not params:
        return ""
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items()))


def _metric_header(key: str) -> str:
    match = re.fullmatch(r"(\w+?)_at_fmr_([0-9.e-]+)", key)
    if match:
        name = match.group(1)
        name = name.upper() if _RATE_RE.search(name) else name.replace("_", " ")
        return f"{name} @ FMR {float(match.group(2)) * 100:g}%"
    return _HEADERS.get(key, key)


# --------------------------------------------------------------------------- table


def _unique_in_order(items: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(items))


def _with_companions(keys: list[str]) -> list[str]:
    """``keys`` with each companion moved right after the metric it belongs beside (see ``_COMPANIONS``)."""
    out = list(keys)
    for lead, companion in _COMPANIONS.items():
        if lead in out and companion in out:
            out.remove(companion)
            out.insert(out.index(lead) + 1, companion)
    return out


def metric_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Metric table columns: the union of metric keys over ``rows``.

    Known metrics come first in a fixed order, then unknown ones in order of
    first appearance, maximal linkability right after D↔sys. A
    ``<m>_ci_low``/``<m>_ci_high`` pair is folded into column ``<m>`` when
    ``<m>`` itself is present.

    Args:
        rows: Result rows, each with a ``metrics`` dict.

    Returns:
        Column keys.
    """
    keys = _unique_in_order(k for row in rows for k in (row.get("metrics") or {}))
    present = set(keys)
    folded = {k for k in keys if k != _strip_ci(k) and _strip_ci(k) in present}
    known = [k for k in _PREFERRED_METRICS if k in present]
    rest = [k for k in keys if k not in _PREFERRED_METRICS and k not in folded]
    return _with_companions(known + rest)


def _metric_cell(key: str, metrics: Mapping[str, Any]) -> dict[str, str]:
    low, high = metrics.get(key + "_ci_low"), metrics.get(key + "_ci_high")
    ci = ""
    if low is not None or high is not None:
        ci = f"{format_metric(key, low)} – {format_metric(key, high)}"
    return {"value": format_metric(key, metrics.get(key)), "ci": ci}


def _estimate(key: str, metrics: Mapping[str, Any] | None) -> Estimate:
    """The raw value of ``key`` in ``metrics`` with its CI bounds, for the exported tables."""
    metrics = metrics or {}
    return Estimate(
        _optional_number(metrics.get(key)),
        _optional_number(metrics.get(key + "_ci_low")),
        _optional_number(metrics.get(key + "_ci_high")),
    )


def _sorted_rows(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Group rows by recognizer, scheme, attack, view, each in first-seen order.

    First-seen order (not alphabetical) keeps the protocol's own order, e.g.
    the unprotected baseline before the protected views.
    """
    rank = {
        field: {v: i for i, v in enumerate(_unique_in_order(str(r.get(field)) for r in rows))}
        for field in _GROUP_FIELDS
    }
    return sorted(rows, key=lambda r: tuple(rank[f][str(r.get(f))] for f in _GROUP_FIELDS))


def _recognizer_labels(rows: Sequence[Mapping[str, Any]]) -> dict[int, str]:
    """Legend label per row: the recognizer name, plus its parameters only where
    one name appears with several parameter sets."""
    variants: dict[str, set[str]] = {}
    for row in rows:
        variants.setdefault(row["recognizer"], set()).add(_format_params(row.get("recognizer_params")))
    labels = {}
    for row in rows:
        name, params = row["recognizer"], _format_params(row.get("recognizer_params"))
        labels[id(row)] = f"{name} ({params})" if len(variants[name]) > 1 else name
    return labels


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> list[dict[str, Any]]:
    return [
        {
            "recognizer": row["recognizer"],
            "recognizer_params": _format_params(row.get("recognizer_params")),
            "scheme": row.get("scheme", ""),
            "scheme_params": _format_params(row.get("scheme_params")),
            "attack": row.get("attack", ""),
            "view": row.get("view", ""),
            "cells": [_metric_cell(c, row.get("metrics") or {}) for c in columns],
            "score_file": row.get("score_file") or "",
        }
        for row in rows
    ]


def _results_export(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> Table:
    """The full table as plain data: identification columns, then every metric with its CI."""
    head = ("Recognizer", "Recognizer params", "Scheme", "Scheme params", "Attack", "View")
    lines: list[list[Cell]] = [
        [
            _text(row.get("recognizer")),
            _format_params(row.get("recognizer_params")),
            _text(row.get("scheme")),
            _format_params(row.get("scheme_params")),
            _text(row.get("attack")),
            _text(row.get("view")),
            *(_estimate(c, row.get("metrics")) for c in columns),
        ]
        for row in rows
    ]
    return Table("All results", [*head, *(_metric_header(c) for c in columns)], lines, ["", *[""] * 5, *columns])


# Image-level columns of the attack table: the same for every recognizer of a view.
_ATTACK_QUALITY = (
    ("psnr", "PSNR (dB)"),
    ("ssim", "SSIM"),
    ("psnr_gain_vs_naive", "PSNR gain vs naive (dB)"),
    ("psnr_gain_min_vs_naive", "worst image gain (dB)"),
    ("better_rate_vs_naive", "better than naive"),
    ("n_worse_vs_naive", "# images worse than naive"),
)


def _attack_groups(
    rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str]
) -> tuple[list[str], dict[tuple[str, str], list[Mapping[str, Any]]]]:
    """Recognizer labels and strength rows per (scheme, attack), each in first-seen order."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        if str(row.get("view", "")).startswith("strength:"):
            groups.setdefault((str(row.get("scheme")), str(row.get("attack"))), []).append(row)
    recognizers = _unique_in_order(labels[id(r)] for members in groups.values() for r in members)
    return recognizers, groups


def _attack_table(rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str]) -> dict[str, Any] | None:
    """Attacks side by side, one line per (scheme, strength view): EER per recognizer, then image quality.

    None when no row is an attacked (``strength:``) view.
    """
    recognizers, groups = _attack_groups(rows, labels)
    if not groups:
        return None
    lines = []
    for (scheme, attack), members in groups.items():
        eer = {labels[id(r)]: (r.get("metrics") or {}).get("eer") for r in members}
        first = members[0].get("metrics") or {}
        lines.append(
            {
                "scheme": scheme,
                "attack": attack,
                "eers": [format_metric("eer", eer.get(name)) for name in recognizers],
                "quality": [_with_ci(key, first) for key, _ in _ATTACK_QUALITY],
            }
        )
    return {"recognizers": recognizers, "quality_headers": [h for _, h in _ATTACK_QUALITY], "rows": lines}


def _attack_export(rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str]) -> Table | None:
    """:func:`_attack_table` as plain data (EER with its CI per recognizer), None without strength rows."""
    recognizers, groups = _attack_groups(rows, labels)
    if not groups:
        return None
    lines: list[list[Cell]] = []
    for (scheme, attack), members in groups.items():
        by_label = {labels[id(r)]: r.get("metrics") or {} for r in members}
        first = members[0].get("metrics") or {}
        lines.append(
            [
                scheme,
                attack,
                *(_estimate("eer", by_label.get(name)) for name in recognizers),
                *(_estimate(key, first) for key, _ in _ATTACK_QUALITY),
            ]
        )
    header = ["Scheme", "Attack", *(f"EER {name}" for name in recognizers), *(h for _, h in _ATTACK_QUALITY)]
    keys = ["", "", *["eer"] * len(recognizers), *(key for key, _ in _ATTACK_QUALITY)]
    return Table("Attacks", header, lines, keys)


def _with_ci(key: str, metrics: Mapping[str, Any]) -> str:
    cell = _metric_cell(key, metrics)
    return f"{cell['value']} ({cell['ci']})" if cell["ci"] else cell["value"]


def _strength_settings(
    rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str]
) -> tuple[list[str], list[str], dict[str, dict[tuple[str, str], Mapping[str, Any]]]]:
    """Schemes, attacks and the metrics of each (attack, scheme) per recognizer, of strength rows."""
    strength = [r for r in rows if str(r.get("view", "")).startswith("strength:")]
    schemes = _unique_in_order(str(r.get("scheme")) for r in strength)
    attacks = _unique_in_order(str(r.get("attack")) for r in strength)
    cells: dict[str, dict[tuple[str, str], Mapping[str, Any]]] = {}
    for row in strength:
        setting = (str(row.get("attack")), str(row.get("scheme")))
        cells.setdefault(labels[id(row)], {}).setdefault(setting, row.get("metrics") or {})
    return schemes, attacks, cells


def _strength_by_setting(rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str]) -> list[dict[str, Any]]:
    """Strength-view EER with its CI laid out as in a paper: per recognizer, attacks down, schemes across.

    Every recognizer's table has the same scheme columns, in the order the
    schemes first appear in ``rows`` (the results' own row order); an
    attack line is listed for a recognizer with at least one row for it.

    Args:
        rows: Result rows in the results' order; only ``strength:`` views count.
        labels: Recognizer label per row (keyed by ``id(row)``).

    Returns:
        One ``{"recognizer", "schemes", "lines"}`` table per recognizer;
        each line ``{"attack", "cells"}`` with one ``{"value", "ci"}`` cell
        per scheme (``"—"`` where that setting was not run).
    """
    schemes, attacks, cells = _strength_settings(rows, labels)
    tables = []
    for recognizer, by_setting in cells.items():
        present = {attack for attack, _ in by_setting}
        lines = [
            {
                "attack": attack,
                "cells": [
                    _metric_cell("eer", by_setting[(attack, scheme)])
                    if (attack, scheme) in by_setting
                    else {"value": _DASH, "ci": ""}
                    for scheme in schemes
                ],
            }
            for attack in attacks
            if attack in present
        ]
        tables.append({"recognizer": recognizer, "schemes": schemes, "lines": lines})
    return tables


def _strength_exports(rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str]) -> list[Table]:
    """:func:`_strength_by_setting` as plain data, one table per recognizer."""
    schemes, attacks, cells = _strength_settings(rows, labels)
    tables = []
    for recognizer, by_setting in cells.items():
        present = {attack for attack, _ in by_setting}
        lines: list[list[Cell]] = [
            [attack, *(_estimate("eer", by_setting.get((attack, scheme))) for scheme in schemes)]
            for attack in attacks
            if attack in present
        ]
        title = f"Strength EER by setting: {recognizer}"
        tables.append(Table(title, ["Attack", *schemes], lines, ["", *["eer"] * len(schemes)]))
    return tables


# --------------------------------------------------------------------------- figures
# Every figure dict has a ``title``, a ``uri`` (PNG data URI) and, where it
# belongs to one, the ``scheme`` it shows (the details are grouped by it).


def _recognizer_colours(rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str]) -> dict[str, str]:
    """One colour per recognizer label, the same in every figure of the report."""
    names = _unique_in_order(labels[id(r)] for r in rows)
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(names)}


def _det_figures(rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str], out: Collector) -> list[dict]:
    """One DET figure per (scheme, attack, view), one curve per recognizer."""
    colours = _recognizer_colours(rows, labels)
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        key = (str(row.get("scheme")), str(row.get("attack")), str(row.get("view")))
        groups.setdefault(key, []).append(row)
    figures = []
    for (scheme, attack, view), members in groups.items():
        curves = []
        for row in members:
            det = (row.get("curves") or {}).get("det") or {}
            label = labels[id(row)]
            eer = (row.get("metrics") or {}).get("eer")
            if eer is not None:
                label = f"{label} (EER {format_metric('eer', eer)})"
            curves.append(DetCurve(label, det.get("fmr") or [], det.get("fnmr") or [], colours[labels[id(row)]]))
        title = f"scheme {scheme} · attack {attack} · view {view}"
        uri = out.figure("det", title, det_figure(curves, title=title))
        figures.append({"title": title, "uri": uri, "scheme": scheme})
    return figures


def _row_title(row: Mapping[str, Any], labels: Mapping[int, str]) -> str:
    return " · ".join([labels[id(row)], *(str(row.get(f)) for f in _GROUP_FIELDS[1:])])


def _histograms(rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str], out: Collector) -> list[dict]:
    figures = []
    for row in rows:
        hist = (row.get("curves") or {}).get("hist") or {}
        title = _row_title(row, labels)
        fig = score_histogram_figure(
            hist.get("edges") or [], hist.get("genuine") or [], hist.get("impostor") or [], title=title
        )
        figures.append({"title": title, "uri": out.figure("hist", title, fig), "scheme": str(row.get("scheme"))})
    return figures


def _optional_number(value: Any) -> float | None:
    return float(value) if _is_number(value) and math.isfinite(value) else None


def _unlinkability_figures(rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str], out: Collector) -> list[dict]:
    """One figure per row whose curves hold an ``unlinkability`` entry.

    Maximal linkability is taken from the curve entry, else from the row's
    metrics; files written before it was measured have neither.
    """
    figures = []
    for row in rows:
        curve = (row.get("curves") or {}).get("unlinkability")
        if not curve:
            continue
        metrics = row.get("metrics") or {}
        title = _row_title(row, labels)
        fig = unlinkability_figure(
            curve.get("edges") or [],
            curve.get("mated_density") or [],
            curve.get("nonmated_density") or [],
            curve.get("d_local") or [],
            d_sys=_optional_number(curve.get("d_sys")),
            omega=_optional_number(curve.get("omega")),
            linkability_max=_optional_number(curve.get("linkability_max", metrics.get("linkability_max"))),
            title=title,
        )
        uri = out.figure("unlinkability", title, fig)
        figures.append({"title": title, "uri": uri, "scheme": str(row.get("scheme"))})
    return figures


# View kinds in the order a sweep's figures are drawn; other kinds follow.
_SWEEP_KINDS = ("preservation", "strength", "linkage", "renewal")


def _sweep_kinds(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    present = _unique_in_order(_view_kind(r.get("view")) for r in rows)
    return [k for k in _SWEEP_KINDS if k in present] + [k for k in present if k not in _SWEEP_KINDS]


def _sweep_lines(
    rows: Sequence[Mapping[str, Any]],
    labels: Mapping[int, str],
    points: Sequence[str],
    colours: Mapping[str, str],
) -> list[SweepLine]:
    """One line per (recognizer, attack) of ``rows`` over the swept settings ``points``.

    With several recognizers a line takes its recognizer's colour and a
    marker and dash per attack; with one, a colour per attack.
    """
    series: dict[tuple[str, str], dict[str, float | None]] = {}
    for row in rows:
        key = (labels[id(row)], _text(row.get("attack")))
        series.setdefault(key, {})[_text(row.get("scheme"))] = _optional_number((row.get("metrics") or {}).get("eer"))
    recognizers = _unique_in_order(rec for rec, _ in series)
    attacks = _unique_in_order(attack for _, attack in series)
    lines = []
    for rec, attack in ((r, a) for r in recognizers for a in attacks if (r, a) in series):
        a = attacks.index(attack)
        label = rec if attack in ("", "none") else f"{rec} · {attack}"
        if len(recognizers) > 1:
            style = (colours[rec], MARKERS[a % len(MARKERS)], ("-", "--", "-.", ":")[a % 4])
        else:
            style = (PALETTE[a % len(PALETTE)], MARKERS[a % len(MARKERS)], "-")
        values = [series[(rec, attack)].get(point) for point in points]
        lines.append(SweepLine(label, values, *style))
    return lines


def _sweep_baselines(
    baselines: Mapping[str, float | None], recognizers: Sequence[str], colours: Mapping[str, str]
) -> list[SweepBaseline]:
    """The unprotected baseline EER of each recognizer drawn in a sweep: dashed, its colour (black when alone)."""
    out = []
    for rec in recognizers:
        value = baselines.get(rec)
        if value is not None:
            colour = colours[rec] if len(recognizers) > 1 else "#000000"
            out.append(SweepBaseline(f"{rec} baseline (unprotected)", value, colour))
    return out


def _sweep_figures(
    rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str], sweeps: Any, out: Collector
) -> list[dict]:
    """EER against each sweep's parameter, one figure per view kind.

    One curve per recognizer and attack (for instance the EER against the
    offset of a large window, or against an increasing window), and each
    recognizer's unprotected baseline as a horizontal dashed line.
    """
    colours = _recognizer_colours(rows, labels)
    baselines = {
        labels[id(r)]: _optional_number((r.get("metrics") or {}).get("eer"))
        for r in rows
        if r.get("view") == "baseline"
    }
    figures = []
    for sweep in _mappings(sweeps):
        points = [_text(label) for label in _list(sweep.get("labels"))]
        mine = [r for r in rows if _text(r.get("scheme")) in points]
        fixed = sweep.get("fixed")
        where = f" ({_format_params(fixed)})" if isinstance(fixed, Mapping) and fixed else ""
        param = _text(sweep.get("param"))
        for kind in _sweep_kinds(mine):
            members = [r for r in mine if _view_kind(r.get("view")) == kind]
            lines = _sweep_lines(members, labels, points, colours)
            recognizers = _unique_in_order(labels[id(r)] for r in members)
            title = f"{_text(sweep.get('scheme'))} sweep over {param}{where} · {kind}"
            fig = sweep_figure(
                _list(sweep.get("values")),
                lines,
                baselines=_sweep_baselines(baselines, recognizers, colours),
                xlabel=param,
                title=title,
            )
            figures.append({"title": title, "uri": out.figure("sweep", title, fig)})
    return figures


def _hist_density(label: str, row: Mapping[str, Any], colour: str) -> ScoreDensity | None:
    hist = (row.get("curves") or {}).get("hist") or {}
    if not hist.get("edges"):
        return None
    return ScoreDensity(label, hist["edges"], hist.get("genuine") or [], hist.get("impostor") or [], colour)


def _view_distribution_figures(
    rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str], out: Collector
) -> list[dict]:
    """Baseline, preservation and strength densities per (recognizer, scheme).

    The convention of the IJCB 2020 warping paper: baseline red,
    preservation blue, ``strength:<attack>`` green. Only for schemes with
    both a preservation and a strength row holding histograms; the baseline
    (scheme ``none``) is that recognizer's own.
    """
    baselines = {labels[id(r)]: r for r in rows if r.get("scheme") == "none" and r.get("view") == "baseline"}
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        if row.get("scheme") != "none":
            groups.setdefault((labels[id(row)], str(row.get("scheme"))), []).append(row)
    figures = []
    for (recognizer, scheme), members in groups.items():
        preservation = [r for r in members if r.get("view") == "preservation"]
        strength = [r for r in members if str(r.get("view", "")).startswith("strength:")]
        densities = [_hist_density(str(r.get("view")), r, VIEW_COLOURS["preservation"]) for r in preservation]
        # Several attacks: one shade of green each, darkest first.
        greens = [VIEW_COLOURS["strength"], "#176117", "#7FD17F", "#0B3D0B"]
        found = [_hist_density(str(r.get("view")), r, greens[i % len(greens)]) for i, r in enumerate(strength)]
        if not any(densities) or not any(found):
            continue
        base = baselines.get(recognizer)
        drawn = [_hist_density("baseline", base, VIEW_COLOURS["baseline"]) if base else None, *densities, *found]
        title = f"{recognizer} · {scheme}"
        fig = view_distributions_figure([d for d in drawn if d is not None], title=title)
        figures.append({"title": title, "uri": out.figure("views", title, fig), "scheme": scheme})
    return figures


# --------------------------------------------------------------------------- optional blocks
# ``examples``, ``trained_models`` and ``face_quality`` are optional: results
# files written before them lack them, and a malformed entry shows what it can
# rather than failing the whole report.

_PNG_DATA_URI_RE = re.compile(r"data:image/png;base64,[A-Za-z0-9+/]*={0,2}")
_EXAMPLE_WIDTH = 112
# The original (unprotected) faces in ``face_quality``: the reference distribution.
_PLAIN = "none"
_PLAIN_COLOUR = "#000000"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _mappings(value: Any) -> list[Mapping[str, Any]]:
    """The mapping entries of a list-valued block; anything else is dropped."""
    return [v for v in _list(value) if isinstance(v, Mapping)]


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _count(value: Any) -> str:
    return f"{int(round(value)):,}" if _is_number(value) and math.isfinite(value) else _DASH


def _png_data_uri(value: Any) -> str | None:
    """``value`` if it is an inline base64 PNG, else None.

    Only this form is let through, so a results file cannot make the page
    load anything from elsewhere (``https:``, ``file:``) or run a script
    (``javascript:``, SVG).
    """
    return value if isinstance(value, str) and _PNG_DATA_URI_RE.fullmatch(value) else None


def _examples(block: Any) -> list[dict[str, Any]]:
    """Example faces, one grid per scheme: a column per image set, a line per sample.

    Args:
        block: ``results["examples"]``: ``{"scheme", "columns", "samples"}``
            per scheme, each sample ``{"id", "subject", "images"}`` with one
            PNG data URI (or null) per column.

    Returns:
        ``{"scheme", "columns", "width", "samples"}`` per scheme; each
        sample's ``cells`` hold one ``{"src", "alt"}`` per column, ``src``
        None where the image is missing, failed or not an inline PNG.
    """
    grids = []
    for entry in _mappings(block):
        columns = [_text(c) for c in _list(entry.get("columns"))]
        samples = _mappings(entry.get("samples"))
        width = max([len(columns), *(len(_list(s.get("images"))) for s in samples)])
        columns += [""] * (width - len(columns))
        lines = []
        for sample in samples:
            sample_id = _text(sample.get("id"))
            images = _list(sample.get("images")) + [None] * width
            cells = [{"src": _png_data_uri(images[j]), "alt": f"{sample_id}, {columns[j]}"} for j in range(width)]
            lines.append({"id": sample_id, "subject": _text(sample.get("subject")), "cells": cells})
        grids.append(
            {"scheme": _text(entry.get("scheme")), "columns": columns, "width": _EXAMPLE_WIDTH, "samples": lines}
        )
    return grids


def _example_figures(grids: Sequence[Mapping[str, Any]], out: Collector) -> list[dict[str, Any]]:
    """One examples figure per scheme of :func:`_examples`: the faces side by side, original first.

    Only the inline PNGs :func:`_examples` let through are drawn; anything
    else is a "failed" cell.
    """
    figures = []
    for grid in grids:
        if not grid["samples"]:
            continue
        lines = [
            ExampleLine(sample["subject"] or sample["id"], [cell["src"] for cell in sample["cells"]])
            for sample in grid["samples"]
        ]
        title = f"Examples · {grid['scheme']}"
        fig = examples_figure(grid["columns"], lines, title=title)
        figures.append(
            {
                "title": title,
                "uri": out.figure("examples", title, fig),
                "scheme": grid["scheme"],
                "columns": ", ".join(c for c in grid["columns"] if c),
                "ids": ", ".join(sample["id"] for sample in grid["samples"]),
            }
        )
    return figures


def _format_duration(seconds: Any) -> str:
    if not (_is_number(seconds) and math.isfinite(seconds)) or seconds < 0:
        return _DASH
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _format_loss(value: float | None) -> str:
    return _DASH if value is None else _format_plain(value)


def _is_recognizer_model(model: Mapping[str, Any]) -> bool:
    """Whether ``model`` is a fine-tuned recognizer; files written before recognizer attacks lack ``kind``."""
    return model.get("kind") == "recognizer"


def _training_title(model: Mapping[str, Any]) -> str:
    group = model.get("group")
    # A model trained on settings other than the one attacked has no scheme;
    # ``trained_on`` then names them.
    setting = _text(model.get("scheme")) or _text(model.get("trained_on"))
    attack = _text(model.get("attack"))
    title = f"{attack} on {setting}" if setting else attack
    return title if group is None else f"{title} (group {group})"


def _recognizer_history(model: Mapping[str, Any], title: str, out: Collector) -> dict[str, Any]:
    """Training curve and validation summary of a fine-tuned recognizer's history.

    Epoch 0 is the pretrained model (validation EER, no loss); the ``kept``
    epoch is the one whose weights the attack used.
    """
    history = _mappings(model.get("history"))
    # An entry without a usable epoch number is taken to be the next epoch, counting from 0.
    epochs = [_or(_optional_number(h.get("epoch")), float(i)) for i, h in enumerate(history)]
    # Only trained epochs have a loss, whatever an epoch-0 entry says.
    loss = [_optional_number(h.get("loss")) if e >= 1 else None for e, h in zip(epochs, history)]
    val_eer = [_optional_number(h.get("val_eer")) for h in history]
    kept = next((i for i, h in enumerate(history) if h.get("kept") is True), None)
    uri = None
    if any(v is not None for v in [*loss, *val_eer]):
        fig = recognizer_training_figure(
            epochs, loss, val_eer, kept_epoch=None if kept is None else epochs[kept], title=title
        )
        uri = out.figure("training", title, fig)
    final = val_eer[kept] if kept is not None and val_eer[kept] is not None else None
    if final is None:
        final = next((v for v in reversed(val_eer) if v is not None), None)
    summary = _DASH if final is None else f"EER {format_metric('eer', final)}"
    kept_text = ""
    if kept is not None:
        kept_text = f"epoch {epochs[kept]:g}" + (" (pretrained)" if epochs[kept] == 0 else "")
        summary = f"{summary}, kept {kept_text}"
    return {"uri": uri, "final_val": summary, "kept": kept_text, "final_raw": final}


def _reconstruction_history(model: Mapping[str, Any], title: str, out: Collector) -> dict[str, Any]:
    """Training curve and last validation loss of an image-reconstruction model's history."""
    history = _mappings(model.get("history"))
    # An entry without a usable epoch number is taken to be the next epoch.
    epochs = [_or(_optional_number(h.get("epoch")), float(i + 1)) for i, h in enumerate(history)]
    loss = [_optional_number(h.get("loss")) for h in history]
    val_loss = [_optional_number(h.get("val_loss")) for h in history]
    uri = None
    if any(v is not None for v in [*loss, *val_loss]):
        uri = out.figure("training", title, training_curve_figure(epochs, loss, val_loss, title=title))
    final = next((v for v in reversed(val_loss) if v is not None), None)
    return {"uri": uri, "final_val": _format_loss(final), "kept": "", "final_raw": final}


def _trained_model(model: Mapping[str, Any], out: Collector) -> dict[str, Any]:
    """One trained attack model: its table line and its training curve (None without history).

    A fine-tuned recognizer (``kind`` ``recognizer``) has a validation EER
    and a kept epoch where an image-reconstruction model has a validation loss.
    """
    title = _training_title(model)
    recognizer = _is_recognizer_model(model)
    drawn = (_recognizer_history if recognizer else _reconstruction_history)(model, title, out)
    params = model.get("params")
    cached = model.get("cached")
    return {
        "attack": _text(model.get("attack")),
        "kind": "recognizer" if recognizer else "reconstruction",
        # Where no scheme is recorded the model was trained on other settings: name those.
        "scheme": _text(model.get("scheme")) or _text(model.get("trained_on")),
        "trained_on": _text(model.get("trained_on")),
        "kept": drawn["kept"],
        "group": _text(model.get("group")) or _DASH,
        "train_faces": _count(model.get("n_train_faces")),
        "train_subjects": _count(model.get("n_train_subjects")),
        "val_faces": _count(model.get("n_val_faces")),
        "keys_per_face": _count(model.get("keys_per_face")),
        "pairs": _count(model.get("n_pairs")),
        "device": _text(model.get("device")) or _DASH,
        "time": _format_duration(model.get("seconds")),
        "cached": _DASH if cached is None else "yes" if cached else "no",
        "final_val_loss": drawn["final_val"],
        "params": _format_params(params) if isinstance(params, Mapping) else _text(params),
        "title": title,
        "uri": drawn["uri"],
        "final_value": drawn["final_raw"],
    }


def _trained_models(block: Any, out: Collector) -> list[dict[str, Any]]:
    """Display lines (and training curves) of ``results["trained_models"]``, in its order."""
    return [_trained_model(model, out) for model in _mappings(block)]


def _trained_models_export(block: Any, lines: Sequence[Mapping[str, Any]]) -> Table | None:
    """The trained-models table as plain data (numbers raw, the training time in seconds)."""
    models = _mappings(block)
    if not models:
        return None
    header = [
        "Attack",
        "Kind",
        "Scheme or training settings",
        "Group",
        "Train faces",
        "Train subjects",
        "Val faces",
        "Keys per face",
        "Pairs",
        "Device",
        "Training time (s)",
        "Cached",
        "Final validation",
        "Kept",
        "Parameters",
    ]
    rows = [
        [
            line["attack"],
            line["kind"],
            line["scheme"],
            _optional_number(model.get("group")),
            *(_optional_number(model.get(k)) for k in ("n_train_faces", "n_train_subjects", "n_val_faces")),
            *(_optional_number(model.get(k)) for k in ("keys_per_face", "n_pairs")),
            _text(model.get("device")),
            _optional_number(model.get("seconds")),
            line["cached"],
            Estimate(line["final_value"], key="eer" if line["kind"] == "recognizer" else ""),
            line["kept"],
            line["params"],
        ]
        for model, line in zip(models, lines)
    ]
    keys = ["", "", "", "n_group", "n_train", "n_subjects", "n_val", "n_keys", "n_pairs"]
    return Table("Trained models", header, rows, keys)


def _histogram_series(hist: Any) -> tuple[list[float], list[float]] | None:
    """``(edges, counts)`` of a ``{"edges", "counts"}`` histogram, or None when it cannot be drawn."""
    if not isinstance(hist, Mapping):
        return None
    edges, counts = hist.get("edges"), hist.get("counts")
    if not isinstance(edges, list) or not isinstance(counts, list) or not counts:
        return None
    if len(edges) != len(counts) + 1 or not all(_optional_number(v) is not None for v in [*edges, *counts]):
        return None
    if any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
        return None
    return [float(e) for e in edges], [float(c) for c in counts]


def _quality_figures(
    measure: str, entries: Sequence[Mapping[str, Any]], colours: Mapping[str, str], out: Collector
) -> list[dict]:
    """One figure per scheme: every attack's distribution over the original faces' (black, dashed)."""
    reference = []
    plain = next((e for e in entries if _text(e.get("scheme")) == _PLAIN), None)
    plain_hist = _histogram_series(plain.get("hist")) if plain is not None else None
    if plain_hist is not None:
        reference.append(QualitySeries("original faces", *plain_hist, colour=_PLAIN_COLOUR, linestyle="--"))
    schemes: dict[str, list[Mapping[str, Any]]] = {}
    for entry in entries:
        if _text(entry.get("scheme")) != _PLAIN:
            schemes.setdefault(_text(entry.get("scheme")), []).append(entry)
    if not schemes and reference:
        schemes = {_PLAIN: []}
    figures = []
    for scheme, members in schemes.items():
        series = list(reference)
        for entry in members:
            hist = _histogram_series(entry.get("hist"))
            attack = _text(entry.get("attack"))
            if hist is not None:
                series.append(QualitySeries(attack, *hist, colour=colours[attack]))
        if len(series) == len(reference) and scheme != _PLAIN:
            continue
        title = f"{measure} · {scheme}" if scheme != _PLAIN else f"{measure} · original faces"
        fig = quality_distributions_figure(series, title=title, xlabel=measure)
        figures.append({"title": title, "uri": out.figure("quality", title, fig)})
    return figures


def _face_quality(block: Any, out: Collector) -> list[dict[str, Any]]:
    """Face-quality distributions grouped by measure, in first-seen order.

    Args:
        block: ``results["face_quality"]``: one ``{"measure", "description",
            "scheme", "attack", "n", "mean", "median", "failed", "hist"}``
            per (measure, image set); scheme ``none`` marks the original faces.
        out: Collector of the figures (and, when exporting, of the tables).

    Returns:
        ``{"measure", "description", "rows", "figures"}`` per measure. An
        attack keeps one colour in every figure of the report.
    """
    entries = _mappings(block)
    attacks = _unique_in_order(_text(e.get("attack")) for e in entries if _text(e.get("scheme")) != _PLAIN)
    others = [c for c in PALETTE if c != _PLAIN_COLOUR]
    colours = {attack: others[i % len(others)] for i, attack in enumerate(attacks)}
    measures: dict[str, list[Mapping[str, Any]]] = {}
    for entry in entries:
        measures.setdefault(_text(entry.get("measure")), []).append(entry)
    sections = []
    for measure, members in measures.items():
        description = next((_text(e.get("description")) for e in members if e.get("description")), "")
        rows = [
            {
                "scheme": _text(e.get("scheme")),
                "attack": _text(e.get("attack")),
                "n": _count(e.get("n")),
                "mean": format_metric("mean", _optional_number(e.get("mean"))),
                "median": format_metric("median", _optional_number(e.get("median"))),
                "failed": _count(e.get("failed")),
            }
            for e in members
        ]
        out.table("face-quality", _face_quality_export(measure, members))
        sections.append(
            {
                "measure": measure,
                "description": description,
                "rows": rows,
                "figures": _quality_figures(measure, members, colours, out),
            }
        )
    return sections


def _face_quality_export(measure: str, entries: Sequence[Mapping[str, Any]]) -> Table:
    header = ["Scheme", "Attack", "Images", "Mean", "Median", "Failed"]
    rows = [
        [
            _text(e.get("scheme")),
            _text(e.get("attack")),
            _optional_number(e.get("n")),
            _optional_number(e.get("mean")),
            _optional_number(e.get("median")),
            _optional_number(e.get("failed")),
        ]
        for e in entries
    ]
    return Table(f"Face quality: {measure}", header, rows, ["", "", "n_images", "mean", "median", "n_failed"])


# --------------------------------------------------------------------------- generalisation
# Recognizer attacks (``finetune``) train a recognizer under some settings and
# are evaluated under others: a matrix of training × test setting, read
# against the pretrained recognizer (the ``naive`` rows of the same recognizer).

_PRETRAINED_ATTACK = "naive"
_PRETRAINED_LABEL = "pretrained (naive)"
_PRETRAINED_SETTING = "none (pretrained weights)"
_UNDER_TEST = "the setting under test (one model per test setting)"
# Strength first: it is the question the matrix answers; linkage second.
_VIEW_KINDS = ("strength", "linkage")
_VIEW_KIND_TEXT = {
    "strength": "strength (protected probe against plain reference)",
    "linkage": "linkage (key A against key B)",
}


def _recognizer_attacks(block: Any) -> dict[str, str]:
    """Training setting text per recognizer attack, in ``trained_models`` order.

    Args:
        block: ``results["trained_models"]``.

    Returns:
        Attack label -> its first model's ``trained_on``; attacks whose
        models record a scheme were trained on each setting they were
        tested on, which one text cannot name.
    """
    settings: dict[str, str] = {}
    under_test: set[str] = set()
    for model in _mappings(block):
        if not _is_recognizer_model(model):
            continue
        attack = _text(model.get("attack"))
        if _text(model.get("scheme")):
            under_test.add(attack)
        settings.setdefault(attack, _text(model.get("trained_on")) or _DASH)
    return {attack: _UNDER_TEST if attack in under_test else text for attack, text in settings.items()}


def _view_kind(view: Any) -> str:
    return _text(view).partition(":")[0]


def _percent_1(rate: float) -> str:
    return f"{rate * 100:.1f}"


def _matrix_cell(metrics: Mapping[str, Any] | None) -> dict[str, Any]:
    """EER and CI of one matrix cell: ``{"eer", "low", "high", "text"}``, text as ``12.3% [10.1, 14.6]``.

    One decimal (not :func:`format_metric`'s two significant digits): the
    table is meant to be copied as it is, and its columns should line up.
    """
    metrics = metrics or {}
    eer = _optional_number(metrics.get("eer"))
    low, high = _optional_number(metrics.get("eer_ci_low")), _optional_number(metrics.get("eer_ci_high"))
    if eer is None:
        return {"eer": None, "low": low, "high": high, "text": _DASH}
    ci = f" [{_percent_1(low)}, {_percent_1(high)}]" if low is not None and high is not None else ""
    return {"eer": eer, "low": low, "high": high, "text": f"{_percent_1(eer)}%{ci}"}


def generalisation_tables(
    rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str], trained_models: Any
) -> list[dict[str, Any]]:
    """The generalisation matrices of recognizer attacks, as table data (no figures).

    One matrix per recognizer with rows of recognizer attacks and per view
    kind among those rows (strength, then linkage). Columns are the schemes
    those attacks were tested on, in the order the schemes first appear in
    ``rows``; lines are the pretrained recognizer (its ``naive`` rows, when
    there are any) then each recognizer attack in order of first appearance.

    Args:
        rows: Result rows in the results' order.
        labels: Recognizer label per row (keyed by ``id(row)``).
        trained_models: ``results["trained_models"]``; only models of kind
            ``recognizer`` make an attack a recognizer attack.

    Returns:
        ``{"recognizer", "kind", "kind_text", "columns", "lines"}`` per
        matrix; each line ``{"label", "attack", "trained_on", "reference",
        "cells"}`` with one :func:`_matrix_cell` per column (``"—"`` where
        that setting was not run). Empty without recognizer attacks.
    """
    settings = _recognizer_attacks(trained_models)
    if not settings:
        return []
    tested = [r for r in rows if _text(r.get("scheme")) != _PLAIN and _view_kind(r.get("view")) in _VIEW_KINDS]
    matrices = []
    for recognizer in _unique_in_order(labels[id(r)] for r in tested if _text(r.get("attack")) in settings):
        for kind in _VIEW_KINDS:
            mine = [r for r in tested if labels[id(r)] == recognizer and _view_kind(r.get("view")) == kind]
            matrix = _matrix(recognizer, kind, mine, settings)
            if matrix is not None:
                matrices.append(matrix)
    return matrices


def _matrix(
    recognizer: str, kind: str, mine: Sequence[Mapping[str, Any]], settings: Mapping[str, str]
) -> dict[str, Any] | None:
    """One generalisation matrix of :func:`generalisation_tables`, None when no recognizer attack ran."""
    attacked = [r for r in mine if _text(r.get("attack")) in settings]
    if not attacked:
        return None
    schemes = {_text(r.get("scheme")) for r in attacked}
    relevant = [r for r in mine if _text(r.get("attack")) in settings or r.get("attack") == _PRETRAINED_ATTACK]
    columns = _unique_in_order(s for s in (_text(r.get("scheme")) for r in relevant) if s in schemes)
    cells: dict[tuple[str, str], Mapping[str, Any]] = {}
    for row in relevant:
        cells.setdefault((_text(row.get("attack")), _text(row.get("scheme"))), row.get("metrics") or {})
    lines = []
    if any(r.get("attack") == _PRETRAINED_ATTACK for r in relevant):
        lines.append((_PRETRAINED_LABEL, _PRETRAINED_ATTACK, _PRETRAINED_SETTING, True))
    lines += [(a, a, settings[a], False) for a in _unique_in_order(_text(r.get("attack")) for r in attacked)]
    return {
        "recognizer": recognizer,
        "kind": kind,
        "kind_text": _VIEW_KIND_TEXT[kind],
        "columns": columns,
        "lines": [
            {
                "label": label,
                "attack": attack,
                "trained_on": trained_on,
                "reference": reference,
                "cells": [_matrix_cell(cells.get((attack, scheme))) for scheme in columns],
            }
            for label, attack, trained_on, reference in lines
        ],
    }


def _generalisation_sweeps(matrix: Mapping[str, Any], sweeps: Any, out: Collector) -> list[dict[str, str]]:
    """EER against each sweep's parameter over the matrix's columns, one line per training setting.

    Only the swept settings that are columns of the matrix are drawn; a
    sweep without any is left out. The pretrained recognizer is the black
    dashed reference line.
    """
    columns = {scheme: j for j, scheme in enumerate(matrix["columns"])}
    figures = []
    for sweep in _mappings(sweeps):
        points = [(_text(lbl), v) for lbl, v in zip(_list(sweep.get("labels")), _list(sweep.get("values")))]
        points = [(lbl, v) for lbl, v in points if lbl in columns]
        if not points:
            continue
        lines: list[SweepLine] = []
        references: dict[str, list[float | None]] = {}
        for line in matrix["lines"]:
            values = [line["cells"][columns[lbl]]["eer"] for lbl, _ in points]
            if line["reference"]:
                references[line["label"]] = values
            else:
                lines.append(SweepLine(line["label"], values, PALETTE[len(lines) % len(PALETTE)]))
        param = _text(sweep.get("param"))
        fixed = sweep.get("fixed")
        where = f" ({_format_params(fixed)})" if isinstance(fixed, Mapping) and fixed else ""
        title = f"{matrix['recognizer']} · {matrix['kind']} · {_text(sweep.get('scheme'))}{where} over {param}"
        fig = sweep_figure([v for _, v in points], lines, references=references, xlabel=param, title=title)
        figures.append({"title": title, "uri": out.figure("generalisation-sweep", title, fig)})
    return figures


def _generalisation(
    rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str], trained_models: Any, sweeps: Any, out: Collector
) -> list[dict[str, Any]]:
    """:func:`generalisation_tables` with each matrix's heatmap (``uri``, ``title``) and sweep curves (``sweeps``)."""
    matrices = []
    for matrix in generalisation_tables(rows, labels, trained_models):
        title = f"{matrix['recognizer']} · {matrix['kind']}"
        fig = generalisation_matrix_figure(
            [line["label"] for line in matrix["lines"]],
            matrix["columns"],
            [[cell["eer"] for cell in line["cells"]] for line in matrix["lines"]],
            title=f"{title}: EER (%)",
        )
        uri = out.figure("generalisation", title, fig)
        out.table("generalisation", _matrix_export(matrix, title))
        matrices.append({**matrix, "title": title, "uri": uri, "sweeps": _generalisation_sweeps(matrix, sweeps, out)})
    return matrices


def _matrix_export(matrix: Mapping[str, Any], title: str) -> Table:
    rows = [
        [line["label"], line["trained_on"], *(Estimate(c["eer"], c["low"], c["high"]) for c in line["cells"])]
        for line in matrix["lines"]
    ]
    columns = list(matrix["columns"])
    return Table(
        f"Generalisation {title}: EER", ["Training", "Trained on", *columns], rows, ["", "", *["eer"] * len(columns)]
    )


# --------------------------------------------------------------------------- summary
# The four ISO/IEC 24745 properties per (scheme, recognizer), each read off
# the rows of one view kind and judged by the protocol's certification
# criteria that cover those rows. A criterion is applied to the rows of the
# cell with the project's own judge (the worst row decides, on the CI bound),
# so a cell's verdict is exactly the criterion's verdict restricted to it.


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
    for entry in _mappings(entries):
        direction = "max" if "max" in entry else "min" if "min" in entry else ""
        bound = _optional_number(entry.get(direction)) if direction else None
        if bound is None:
            bound = _optional_number(entry.get("bound"))
        metric = _text(entry.get("metric"))
        if not direction or bound is None or not metric:
            continue
        out.append(
            _Criterion(
                metric=metric,
                view=_text(entry.get("view")) or "*",
                recognizer=_text(entry.get("recognizer")) or "*",
                scheme=_text(entry.get("scheme")) or "*",
                max=bound if direction == "max" else None,
                min=bound if direction == "min" else None,
            )
        )
    return out


_VERDICT_RANK = {"PASS": 0, "UNRESOLVED": 1, "FAIL": 2}
# The judge only uses the protocol's n_boot to say why a CI is missing; results do not record it.
_N_BOOT_UNKNOWN = -1


@dataclass(frozen=True)
class _Judgement:
    """The verdict of the criteria covering some rows: ``""`` when none covers them."""

    verdict: str
    notes: tuple[str, ...]


def _judgeable(row: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` as the judge reads it: its names and its numeric metrics only."""
    metrics = row.get("metrics") or {}
    return {
        "recognizer": _text(row.get("recognizer")),
        "scheme": _text(row.get("scheme")),
        "view": _text(row.get("view")),
        "metrics": {str(k): v for k, v in metrics.items() if _is_number(v)} if isinstance(metrics, Mapping) else {},
    }


def _judge(rows: Sequence[Mapping[str, Any]], criteria: Sequence[_Criterion]) -> _Judgement:
    """Apply every criterion that matches some of ``rows`` to those rows; the worst verdict decides."""
    if not rows:
        return _Judgement("", ())
    plain = [_judgeable(r) for r in rows]
    verdicts, notes = [], []
    for crit in criteria:
        (entry,) = judge(plain, [crit], _N_BOOT_UNKNOWN)
        if not entry["n_rows"]:
            continue
        verdicts.append(str(entry["verdict"]))
        reason = f": {entry['reason']}" if entry["reason"] else ""
        notes.append(f"{crit.text} → {entry['verdict']}{reason}")
    worst = max(verdicts, key=lambda v: _VERDICT_RANK.get(v, 2), default="")
    return _Judgement(worst, tuple(notes))


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

    @property
    def metrics(self) -> Mapping[str, Any]:
        """The shown row's metrics (empty when not measured)."""
        return (self.shown or {}).get("metrics") or {}

    @property
    def attack(self) -> str:
        """The shown row's attack (``""`` when not measured)."""
        return _text((self.shown or {}).get("attack"))

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
    return min(rows, key=lambda r: _or(_optional_number((r.get("metrics") or {}).get(key)), math.inf))


def _highest(rows: Sequence[Mapping[str, Any]], key: str) -> Mapping[str, Any] | None:
    """The row with the highest ``key`` (rows without it last, ties: first)."""
    if not rows:
        return None
    return max(rows, key=lambda r: _or(_optional_number((r.get("metrics") or {}).get(key)), -math.inf))


def _shown_row(kind: str, rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The row a property cell shows: the strongest attack (lowest EER), the most linkable (highest D↔sys)."""
    if kind == "strength":
        return _lowest(rows, "eer")
    if kind == "linkage":
        linked = [r for r in rows if _optional_number((r.get("metrics") or {}).get("d_sys")) is not None]
        return _highest(linked, "d_sys") if linked else _lowest(rows, "eer")
    return rows[0] if rows else None


def _summary_lines(
    rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str], criteria: Sequence[_Criterion]
) -> list[_SummaryLine]:
    """One line per (scheme, recognizer) of the protected rows, schemes and recognizers in first-seen order."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        if _text(row.get("scheme")) not in (_PLAIN, ""):
            groups.setdefault((_text(row.get("scheme")), labels[id(row)]), []).append(row)
    order = _unique_in_order(scheme for scheme, _ in groups)
    lines = []
    for scheme, recognizer in sorted(groups, key=lambda k: order.index(k[0])):
        members = groups[(scheme, recognizer)]
        cells = {}
        for key, _, kind in _PROPERTIES:
            mine = tuple(r for r in members if _view_kind(r.get("view")) == kind)
            cells[key] = _PropertyCell(mine, _shown_row(kind, mine), _judge(mine, criteria))
        params = _format_params(members[0].get("scheme_params"))
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
    d_sys, null_high = _optional_number(metrics.get("d_sys")), _optional_number(metrics.get("d_sys_null_high"))
    if d_sys is None or null_high is None:
        return ""
    return "within null" if d_sys <= null_high else "above null"


def _property_items(key: str, cell: _PropertyCell, sar: str | None) -> list[tuple[str, str]]:
    """``(metric key, label)`` of the figures a property cell shows, the leading figure first.

    Figures the shown row does not hold at all (maximal linkability in
    older files) are left out; the leading one always shows, ``—`` when missing.
    """
    sar_item = [(sar, _metric_header(sar))] if sar else []
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
    """Which attack a cell shows, and out of how many."""
    if key not in ("irreversibility", "unlinkability") or cell.shown is None:
        return ""
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
    if cell.shown is not None:
        lines = [
            {"label": label, **_metric_cell(metric, cell.metrics)} for metric, label in _property_items(key, cell, sar)
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
        "notes": notes,
    }


def _baselines_context(rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str]) -> list[dict[str, str]]:
    return [
        {"recognizer": labels[id(r)], **_metric_cell("eer", r.get("metrics") or {})}
        for r in rows
        if r.get("view") == "baseline"
    ]


def _summary(
    rows: Sequence[Mapping[str, Any]],
    labels: Mapping[int, str],
    criteria: Sequence[_Criterion],
    anchors: Mapping[str, str],
    out: Collector,
) -> dict[str, Any] | None:
    """The summary section's context (None without protected rows); its table goes to ``out``.

    Args:
        rows: Result rows in the results' order.
        labels: Recognizer label per row (keyed by ``id(row)``).
        criteria: The protocol's certification criteria.
        anchors: HTML id of each scheme's details.
        out: Collector of the summary table.

    Returns:
        ``{"headings", "baselines", "has_criteria", "lines"}``; each line
        ``{"scheme", "scheme_params", "anchor", "recognizer", "cells"}`` with
        one :func:`_property_context` per property.
    """
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
    sar_header = _metric_header(sar) if sar else "SAR"
    header = [
        "Scheme",
        "Recognizer",
        "ΔEER (preservation)",
        "EER (preservation)",
        "Performance preservation",
        "Strongest attack",
        "EER (strength)",
        f"{sar_header} (strength)",
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
    keys = ["", "", "delta_eer", "eer", "", "", "eer", sar_key, "", "", "d_sys", "linkability_max", "d_sys_null_high"]
    keys += ["", "", sar_key, "eer", ""]
    rows = []
    for line in lines:
        pres, irr, unl, ren = (line.cells[key] for key, _, _ in _PROPERTIES)
        rows.append(
            [
                line.scheme,
                line.recognizer,
                _estimate("delta_eer", pres.metrics),
                _estimate("eer", pres.metrics),
                pres.verdict_text,
                irr.attack,
                _estimate("eer", irr.metrics),
                _estimate(sar_key, irr.metrics),
                irr.verdict_text,
                unl.attack,
                _estimate("d_sys", unl.metrics),
                _estimate("linkability_max", unl.metrics),
                _optional_number(unl.metrics.get("d_sys_null_high")),
                _null_fact(unl.metrics),
                unl.verdict_text,
                _estimate(sar_key, ren.metrics),
                _estimate("eer", ren.metrics),
                ren.verdict_text,
            ]
        )
    return Table("Summary: ISO/IEC 24745 properties per scheme and recognizer", header, rows, keys)


def summary_table(results: Results) -> Table | None:
    """The summary of ``results`` as a plain-data table (what ``<export>/summary-*.csv`` holds).

    Args:
        results: Parsed ``results.json``.

    Returns:
        The table, or None when no row is of a protected scheme.
    """
    rows = results.get("rows") or []
    labels = _recognizer_labels(rows)
    criteria = _criteria(cast(Mapping[str, Any], results).get("certification"))
    lines = _summary_lines(rows, labels, criteria)
    return _summary_export(lines, _sar_key(rows, criteria)) if lines else None


# --------------------------------------------------------------------------- sections


def _certification(entries: Sequence[Mapping[str, Any]] | None) -> dict | None:
    if entries is None:
        return None
    checks = []
    for entry in entries:
        metric = str(entry.get("metric", ""))
        # The bound may be given as "bound" with a "max"/"min" marker, or as
        # the value of "max"/"min" itself.
        direction = "max" if "max" in entry else "min" if "min" in entry else ""
        bound = entry.get("bound", entry.get(direction) if direction else None)
        verdict = str(entry.get("verdict", ""))
        checks.append(
            {
                "metric": metric,
                "view": str(entry.get("view", "")),
                "relation": {"max": "≤", "min": "≥"}.get(direction, ""),
                "bound": format_metric(metric, bound) if _is_number(bound) or bound is None else str(bound),
                "value": format_metric(metric, entry.get("value")),
                "verdict": verdict,
                "verdict_class": verdict.lower() if verdict in ("PASS", "FAIL", "UNRESOLVED") else "unknown",
                "reason": str(entry.get("reason") or ""),
            }
        )
    verdicts = {c["verdict"] for c in checks}
    overall = (
        "PASS"
        if verdicts == {"PASS"}
        else "FAIL"
        if "FAIL" in verdicts
        else "UNRESOLVED"
        if "UNRESOLVED" in verdicts
        else "INCOMPLETE"
    )
    return {"checks": checks, "overall": overall, "overall_class": overall.lower()}


def _certification_export(entries: Any) -> Table | None:
    """The certification verdicts as plain data; bound and judged value formatted by their metric in LaTeX."""
    rows: list[list[Cell]] = []
    for entry in _mappings(entries):
        metric = _text(entry.get("metric"))
        direction = "max" if "max" in entry else "min" if "min" in entry else ""
        bound = entry.get("bound", entry.get(direction) if direction else None)
        rows.append(
            [
                metric,
                _text(entry.get("view")),
                _text(entry.get("recognizer")) or "*",
                _text(entry.get("scheme")) or "*",
                {"max": "≤", "min": "≥"}.get(direction, ""),
                Estimate(_optional_number(bound), key=metric),
                Estimate(_optional_number(entry.get("value")), key=metric),
                _text(entry.get("worst_row")),
                _text(entry.get("verdict")),
                _text(entry.get("reason")),
            ]
        )
    if not rows:
        return None
    header = [
        "Metric",
        "View",
        "Recognizer",
        "Scheme",
        "Relation",
        "Bound",
        "Judged value",
        "Worst row",
        "Verdict",
        "Why",
    ]
    return Table("Certification", header, rows)


def _dataset(dataset: Mapping[str, Any]) -> dict[str, Any]:
    skipped = [{"id": str(s.get("id", "")), "reason": str(s.get("reason", ""))} for s in dataset.get("skipped") or []]
    folds = dataset.get("folds")
    test_folds = dataset.get("test_folds")
    summary = [
        ("Dataset", str(dataset.get("name", ""))),
        ("Root", str(dataset["root"]) if dataset.get("root") else _DASH),
        ("Samples", format_metric("n_samples", dataset.get("n_samples"))),
        ("Subjects", format_metric("n_subjects", dataset.get("n_subjects"))),
        ("Faces detected", format_metric("n_detected", dataset.get("n_detected"))),
        ("Fallback centre crops", format_metric("n_fallback_crop", dataset.get("n_fallback_crop"))),
        ("Folds", _DASH if folds is None else str(folds)),
        ("Test folds", _DASH if not test_folds else ", ".join(map(str, test_folds))),
        ("Seed", _DASH if dataset.get("seed") is None else str(dataset["seed"])),
    ]
    n_skipped = dataset.get("n_skipped", len(skipped))
    return {
        "demo": bool(dataset.get("demo", False)),
        "summary": summary,
        "n_skipped": format_metric("n_skipped", n_skipped),
        "skipped": skipped,
    }


def _safe_items(mapping: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    return [(str(k), str(v)) for k, v in sorted((mapping or {}).items()) if not _SECRET_RE.search(str(k))]


def _key_text(key: Mapping[str, Any] | None) -> str | None:
    """How the run was keyed, from the key block (a fingerprint and a source, never key material)."""
    if not key:
        return None
    source = key.get("source")
    if source == "seed":
        return (
            f"evaluation key derived from the protocol seed {key.get('seed')} (id {key.get('key_id')}): public, "
            "for reproducible evaluation only, never for protecting real data"
        )
    if source == "random" or key.get("key_id") == "ephemeral":
        return "a random key drawn for this run (ephemeral: not reproducible)"
    where = {"file": "a key file", "env": "an environment variable"}.get(str(source), "a key")
    return f"master key from {where} (id {key.get('key_id')})"


def _provenance(prov: Mapping[str, Any], schema_version: Any) -> dict[str, Any]:
    """Only documented fields are rendered: an unexpected field (a key, a
    token) in provenance never reaches the page."""
    cache = prov.get("cache") or {}
    fields = [
        ("Keys", _key_text(prov.get("key"))),
        ("FaceSec version", prov.get("facesec_version")),
        ("Git commit", prov.get("git_commit")),
        ("Python", prov.get("python")),
        ("Created", prov.get("created")),
        ("Protocol SHA-256", prov.get("protocol_sha256")),
        ("Dataset fingerprint", prov.get("dataset_fingerprint")),
        ("Cache hits / misses", f"{cache.get('hits', _DASH)} / {cache.get('misses', _DASH)}" if cache else None),
        ("Results schema", schema_version),
    ]
    return {
        "fields": [(name, _DASH if v is None else str(v)) for name, v in fields],
        "seeds": _safe_items(prov.get("seeds")),
        "components": _safe_items(prov.get("components")),
    }


# --------------------------------------------------------------------------- details by scheme

# Figure lists of the context that are shown per scheme, in the order a scheme's details show them.
_SCHEME_FIGURES = ("example_figures", "view_distribution_figures", "det_figures", "unlinkability_figures", "histograms")


def _anchors(schemes: Iterable[str]) -> dict[str, str]:
    """A unique HTML id per scheme (``scheme-<name>``), for the summary's links to the scheme's details."""
    anchors: dict[str, str] = {}
    for scheme in _unique_in_order(schemes):
        base = "scheme-" + (re.sub(r"[^A-Za-z0-9_-]+", "-", scheme).strip("-") or "unnamed")
        anchor, n = base, 1
        while anchor in anchors.values():
            n += 1
            anchor = f"{base}-{n}"
        anchors[scheme] = anchor
    return anchors


def _scheme_groups(
    rows: Sequence[Mapping[str, Any]], figures: Mapping[str, list[dict]], anchors: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The details of each scheme: its figures of every kind, schemes in first-seen order (examples-only last).

    Args:
        rows: Result rows in the results' order.
        figures: Context figure lists by name (see ``_SCHEME_FIGURES``),
            each figure with its ``scheme``.
        anchors: HTML id per scheme (see :func:`_anchors`).

    Returns:
        ``{"scheme", "label", "anchor", "params", "n_rows", "n_figures"}``
        plus one figure list per name, per scheme with anything to show.
    """
    seen = _unique_in_order(_text(r.get("scheme")) for r in rows)
    seen += [
        s for s in _unique_in_order(f["scheme"] for name in _SCHEME_FIGURES for f in figures[name]) if s not in seen
    ]
    groups = []
    for scheme in seen:
        mine = {name: [f for f in figures[name] if f["scheme"] == scheme] for name in _SCHEME_FIGURES}
        members = [r for r in rows if _text(r.get("scheme")) == scheme]
        n_figures = sum(len(v) for v in mine.values())
        if not n_figures:
            continue
        groups.append(
            {
                "scheme": scheme,
                "label": f"{scheme} (unprotected baseline)" if scheme == _PLAIN else scheme,
                "anchor": anchors.get(scheme) or _anchors([scheme])[scheme],
                "params": _format_params(members[0].get("scheme_params")) if members else "",
                "n_rows": len(members),
                "n_figures": n_figures,
                **mine,
            }
        )
    return groups


# --------------------------------------------------------------------------- context


@dataclass(frozen=True)
class _Run:
    """What the context builders share: the rows (results order and table order) and their labels."""

    raw_rows: Sequence[Mapping[str, Any]]
    rows: Sequence[Mapping[str, Any]]
    labels: dict[int, str]
    columns: list[str]
    blocks: Mapping[str, Any]
    anchors: dict[str, str]

    @classmethod
    def of(cls, results: Results) -> _Run:
        """The shared view of ``results``."""
        raw_rows = list(results.get("rows") or [])
        rows = _sorted_rows(raw_rows)
        # Blocks newer than the ``Results`` type, all optional.
        blocks = cast(Mapping[str, Any], results)
        schemes = [_text(r.get("scheme")) for r in raw_rows]
        schemes += [_text(e.get("scheme")) for e in _mappings(blocks.get("examples"))]
        return cls(raw_rows, rows, _recognizer_labels(rows), metric_columns(rows), blocks, _anchors(schemes))


def _header_context(results: Results) -> dict[str, Any]:
    protocol = results.get("protocol") or {}
    provenance = results.get("provenance") or {}
    return {
        "protocol_name": str(protocol.get("name", "")),
        "protocol_file": str(protocol.get("file") or ""),
        "notes": str(protocol.get("notes") or ""),
        "created": str(provenance.get("created") or _DASH),
        "dataset": _dataset(results.get("dataset") or {}),
        "provenance": _provenance(provenance, results.get("schema_version")),
        # A constant of this module, allowed by its hash in the CSP.
        "script": Markup(_SCRIPT),
        "csp": _CSP,
    }


def _table_context(run: _Run, out: Collector) -> dict[str, Any]:
    """Certification, summary, the attack tables and the full table; their plain-data tables go to ``out``.

    The full table's plain data goes last (see :func:`build_context`): it closes the page.
    """
    criteria = _criteria(run.blocks.get("certification"))
    certification = _certification(run.blocks.get("certification"))
    cert_table = _certification_export(run.blocks.get("certification"))
    if cert_table is not None:
        out.table("certification", cert_table)
    summary = _summary(run.raw_rows, run.labels, criteria, run.anchors, out)
    for table in _strength_exports(run.raw_rows, run.labels):
        out.table("strength", table)
    attack_table = _attack_export(run.rows, run.labels)
    if attack_table is not None:
        out.table("attacks", attack_table)
    return {
        "certification": certification,
        "summary": summary,
        "columns": [{"key": c, "header": _metric_header(c)} for c in run.columns],
        "rows": _table(run.rows, run.columns),
        "attacks": _attack_table(run.rows, run.labels),
        "strength_by_setting": _strength_by_setting(run.raw_rows, run.labels),
    }


def _figure_context(run: _Run, out: Collector) -> dict[str, Any]:
    """Every figure of the rows (and the examples), and the per-scheme grouping of those shown in details."""
    examples = _examples(run.blocks.get("examples"))
    figures = {
        "example_figures": _example_figures(examples, out),
        "view_distribution_figures": _view_distribution_figures(run.rows, run.labels, out),
        "det_figures": _det_figures(run.rows, run.labels, out),
        "unlinkability_figures": _unlinkability_figures(run.rows, run.labels, out),
        "histograms": _histograms(run.rows, run.labels, out),
    }
    return {
        "examples": examples,
        **figures,
        "scheme_groups": _scheme_groups(run.raw_rows, figures, run.anchors),
        "sweep_figures": _sweep_figures(run.raw_rows, run.labels, run.blocks.get("sweeps"), out),
    }


def _attacker_context(run: _Run, out: Collector) -> dict[str, Any]:
    """Generalisation matrices, trained models and face quality (blocks of learned attacks)."""
    trained = run.blocks.get("trained_models")
    generalisation = _generalisation(run.raw_rows, run.labels, trained, run.blocks.get("sweeps"), out)
    face_quality = _face_quality(run.blocks.get("face_quality"), out)
    models = _trained_models(trained, out)
    models_table = _trained_models_export(trained, models)
    if models_table is not None:
        out.table("trained-models", models_table)
    return {"generalisation": generalisation, "trained_models": models, "face_quality": face_quality}


def build_context(results: Results, collector: Collector | None = None) -> dict[str, Any]:
    """Turn a results dict into the flat, display-ready template context.

    Args:
        results: Parsed ``results.json``.
        collector: Receives every figure (and table) of the report; a
            non-exporting one by default.

    Returns:
        The context for ``report.html.j2``; every value is already formatted.
    """
    out = collector if collector is not None else Collector(formatter=format_metric)
    run = _Run.of(results)
    # Tables go to the collector in the page's reading order, the full table last.
    context = {
        **_header_context(results),
        **_table_context(run, out),
        **_attacker_context(run, out),
        **_figure_context(run, out),
    }
    out.table("results", _results_export(run.rows, run.columns))
    return context


def render_report(results: Results, collector: Collector | None = None) -> str:
    """Render ``results`` to a self-contained HTML page.

    Args:
        results: Parsed ``results.json``.
        collector: Receives every figure and table (exporting them when it
            has a folder); a non-exporting one by default.

    Returns:
        The HTML text.
    """
    return _environment().get_template(_TEMPLATE).render(**build_context(results, collector))


def write_report(results: Results, out_path: Path, export_dir: Path | None = None) -> Path:
    """Render ``results`` and write the HTML atomically to ``out_path``.

    Args:
        results: Parsed ``results.json``.
        out_path: Destination file; its folder is created if needed.
        export_dir: When given, every figure is also written there as
            ``<name>.png`` and ``<name>.pdf``, every table as ``<name>.csv``
            and ``<name>.tex``, and ``index.json`` lists them.

    Returns:
        ``out_path``.
    """
    out_path = Path(out_path)
    collector = Collector(export_dir, formatter=format_metric)
    atomic_write_text(out_path, render_report(results, collector))
    collector.finish()
    return out_path
