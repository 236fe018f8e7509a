"""Face quality: per measure, a table of every image set and its distributions over the original faces'.

``results["face_quality"]`` is optional: results files written before it
lack it, and a malformed entry shows what it can rather than failing the
whole report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from reports.export import Collector, Table
from reports.figures import PALETTE
from reports.formatting import as_text, format_count, format_metric, mappings, optional_number, unique_in_order
from reports.plots import QualitySeries, quality_distributions_figure
from reports.rows import PLAIN

__all__ = ["face_quality"]

# The original faces' distribution: the reference every figure draws, black and dashed.
_PLAIN_COLOUR = "#000000"


def _histogram_series(hist: Any) -> tuple[list[float], list[float]] | None:
    """``(edges, counts)`` of a ``{"edges", "counts"}`` histogram, or None when it cannot be drawn."""
    if not isinstance(hist, Mapping):
        return None
    edges, counts = hist.get("edges"), hist.get("counts")
    if not isinstance(edges, list) or not isinstance(counts, list) or not counts:
        return None
    if len(edges) != len(counts) + 1 or not all(optional_number(v) is not None for v in [*edges, *counts]):
        return None
    if any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
        return None
    return [float(e) for e in edges], [float(c) for c in counts]


def _quality_figures(
    measure: str, entries: Sequence[Mapping[str, Any]], colours: Mapping[str, str], out: Collector
) -> list[dict]:
    """One figure per scheme: every attack's distribution over the original faces' (black, dashed)."""
    reference = []
    plain = next((e for e in entries if as_text(e.get("scheme")) == PLAIN), None)
    plain_hist = _histogram_series(plain.get("hist")) if plain is not None else None
    if plain_hist is not None:
        reference.append(QualitySeries("original faces", *plain_hist, colour=_PLAIN_COLOUR, linestyle="--"))
    schemes: dict[str, list[Mapping[str, Any]]] = {}
    for entry in entries:
        if as_text(entry.get("scheme")) != PLAIN:
            schemes.setdefault(as_text(entry.get("scheme")), []).append(entry)
    if not schemes and reference:
        schemes = {PLAIN: []}
    figures = []
    for scheme, members in schemes.items():
        series = list(reference)
        for entry in members:
            hist = _histogram_series(entry.get("hist"))
            attack = as_text(entry.get("attack"))
            if hist is not None:
                series.append(QualitySeries(attack, *hist, colour=colours[attack]))
        if len(series) == len(reference) and scheme != PLAIN:
            continue
        title = f"{measure} · {scheme}" if scheme != PLAIN else f"{measure} · original faces"
        fig = partial(quality_distributions_figure, series, title=title, xlabel=measure)
        figures.append({"title": title, "uri": out.figure("quality", title, fig)})
    return figures


def face_quality(block: Any, out: Collector) -> list[dict[str, Any]]:
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
    entries = mappings(block)
    attacks = unique_in_order(as_text(e.get("attack")) for e in entries if as_text(e.get("scheme")) != PLAIN)
    others = [c for c in PALETTE if c != _PLAIN_COLOUR]
    colours = {attack: others[i % len(others)] for i, attack in enumerate(attacks)}
    measures: dict[str, list[Mapping[str, Any]]] = {}
    for entry in entries:
        measures.setdefault(as_text(entry.get("measure")), []).append(entry)
    sections = []
    for measure, members in measures.items():
        description = next((as_text(e.get("description")) for e in members if e.get("description")), "")
        rows = [
            {
                "scheme": as_text(e.get("scheme")),
                "attack": as_text(e.get("attack")),
                "n": format_count(e.get("n")),
                "mean": format_metric("mean", optional_number(e.get("mean"))),
                "median": format_metric("median", optional_number(e.get("median"))),
                "failed": format_count(e.get("failed")),
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
            as_text(e.get("scheme")),
            as_text(e.get("attack")),
            optional_number(e.get("n")),
            optional_number(e.get("mean")),
            optional_number(e.get("median")),
            optional_number(e.get("failed")),
        ]
        for e in entries
    ]
    return Table(f"Face quality: {measure}", header, rows, ["", "", "n_images", "mean", "median", "n_failed"])
