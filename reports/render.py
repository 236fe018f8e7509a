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

This module is the top of the report: it composes the sections, each built
by its own module, into the template's context and renders the page.
From the bottom up: :mod:`reports.formatting` (values, metric columns),
:mod:`reports.rows` (row order, labels, anchors), :mod:`reports.page` (the
script and its CSP), then the sections: :mod:`reports.provenance`,
:mod:`reports.certification`, :mod:`reports.tables`, :mod:`reports.summary`,
:mod:`reports.examples`, :mod:`reports.details`, :mod:`reports.sweeps`,
:mod:`reports.training`, :mod:`reports.quality` and
:mod:`reports.generalisation`. Figures are drawn by :mod:`reports.plots`
on the basics of :mod:`reports.figures`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from benchmark.core.cache import Cache, atomic_write_text
from benchmark.engine.results import Results
from reports.certification import certification_context, certification_export
from reports.details import det_figures, histograms, scheme_groups, unlinkability_figures, view_distribution_figures
from reports.examples import example_figures, example_grids
from reports.export import Collector
from reports.formatting import DASH, as_text, format_metric, mappings, metric_columns, metric_header
from reports.generalisation import generalisation_context, generalisation_tables
from reports.page import CSP, SCRIPT
from reports.provenance import dataset_context, provenance_context
from reports.quality import face_quality
from reports.rows import recognizer_labels, scheme_anchors, sorted_rows
from reports.summary import summary_context, summary_table
from reports.sweeps import sweep_figures
from reports.tables import (
    attack_export,
    attack_table,
    results_export,
    strength_by_setting,
    strength_exports,
    table_lines,
)
from reports.training import attacker_overlap, not_converged, trained_models, trained_models_export

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
        rows = sorted_rows(raw_rows)
        # Blocks newer than the ``Results`` type, all optional.
        blocks = cast(Mapping[str, Any], results)
        schemes = [as_text(r.get("scheme")) for r in raw_rows]
        schemes += [as_text(e.get("scheme")) for e in mappings(blocks.get("examples"))]
        return cls(raw_rows, rows, recognizer_labels(rows), metric_columns(rows), blocks, scheme_anchors(schemes))


def _header_context(results: Results) -> dict[str, Any]:
    protocol = results.get("protocol") or {}
    provenance = results.get("provenance") or {}
    return {
        "protocol_name": str(protocol.get("name", "")),
        "protocol_file": str(protocol.get("file") or ""),
        "notes": str(protocol.get("notes") or ""),
        "created": str(provenance.get("created") or DASH),
        "dataset": dataset_context(results.get("dataset") or {}),
        "provenance": provenance_context(provenance, results.get("schema_version")),
        # A constant of reports.page, allowed by its hash in the CSP.
        "script": Markup(SCRIPT),
        "csp": CSP,
    }


def _table_context(run: _Run, out: Collector) -> dict[str, Any]:
    """Certification, summary, the attack tables and the full table; their plain-data tables go to ``out``.

    The full table's plain data goes last (see :func:`build_context`): it closes the page.
    """
    certification = certification_context(run.blocks.get("certification"))
    cert_table = certification_export(run.blocks.get("certification"))
    if cert_table is not None:
        out.table("certification", cert_table)
    summary = summary_context(run.raw_rows, run.labels, run.blocks.get("certification"), run.anchors, out)
    for table in strength_exports(run.raw_rows, run.labels):
        out.table("strength", table)
    attacks_table = attack_export(run.rows, run.labels)
    if attacks_table is not None:
        out.table("attacks", attacks_table)
    return {
        "certification": certification,
        "summary": summary,
        "columns": [{"key": c, "header": metric_header(c)} for c in run.columns],
        "rows": table_lines(run.rows, run.columns),
        "attacks": attack_table(run.rows, run.labels),
        "strength_by_setting": strength_by_setting(run.raw_rows, run.labels),
    }


def _figure_context(run: _Run, out: Collector) -> dict[str, Any]:
    """Every figure of the rows (and the examples), and the per-scheme grouping of those shown in details."""
    examples = example_grids(run.blocks.get("examples"))
    figures = {
        "example_figures": example_figures(examples, out),
        "view_distribution_figures": view_distribution_figures(run.rows, run.labels, out),
        "det_figures": det_figures(run.rows, run.labels, out),
        "unlinkability_figures": unlinkability_figures(run.rows, run.labels, out),
        "histograms": histograms(run.rows, run.labels, out),
    }
    return {
        "examples": examples,
        **figures,
        "scheme_groups": scheme_groups(run.raw_rows, figures, run.anchors),
        "sweep_figures": sweep_figures(run.raw_rows, run.labels, run.blocks.get("sweeps"), out),
    }


def _attacker_context(run: _Run, out: Collector) -> dict[str, Any]:
    """Generalisation matrices, trained models and face quality (blocks of learned attacks)."""
    trained = run.blocks.get("trained_models")
    generalisation = generalisation_context(run.raw_rows, run.labels, trained, run.blocks.get("sweeps"), out)
    quality = face_quality(run.blocks.get("face_quality"), out)
    models = trained_models(trained, out)
    models_table = trained_models_export(trained, models)
    if models_table is not None:
        out.table("trained-models", models_table)
    overlap = attacker_overlap(run.blocks.get("attacker"))
    return {
        "generalisation": generalisation,
        "trained_models": models,
        "face_quality": quality,
        "overlap": overlap,
        # A row's (scheme, attack) -> the flag of a learned attack stopped on a budget, "" otherwise.
        "not_converged": not_converged(trained),
    }


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
    out.table("results", results_export(run.rows, run.columns))
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


def write_report(results: Results, out_path: Path, export_dir: Path | None = None, cache: Cache | None = None) -> Path:
    """Render ``results`` and write the HTML atomically to ``out_path``.

    Args:
        results: Parsed ``results.json``.
        out_path: Destination file; its folder is created if needed.
        export_dir: When given, every figure is also written there as
            ``<name>.png`` and ``<name>.pdf``, every table as ``<name>.csv``
            and ``<name>.tex``, and ``index.json`` lists them.
        cache: Keeps each figure's PNG, so that a figure drawn before is
            not drawn again (a warm rerun); None draws every figure.

    Returns:
        ``out_path``.
    """
    out_path = Path(out_path)
    collector = Collector(export_dir, formatter=format_metric, cache=cache)
    atomic_write_text(out_path, render_report(results, collector), shared=True)
    collector.finish()
    return out_path
