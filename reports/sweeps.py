"""Sweeps: the EER against a swept scheme parameter, one figure per sweep and view kind."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from reports.export import Collector
from reports.figures import MARKERS, PALETTE
from reports.formatting import as_list, as_text, format_params, mappings, optional_number, unique_in_order
from reports.plots import SweepBaseline, SweepLine, sweep_figure
from reports.rows import recognizer_colours, view_kind

__all__ = ["sweep_figures"]

# View kinds in the order a sweep's figures are drawn; other kinds follow.
_SWEEP_KINDS = ("preservation", "strength", "linkage", "renewal")


def _sweep_kinds(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    present = unique_in_order(view_kind(r.get("view")) for r in rows)
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
        key = (labels[id(row)], as_text(row.get("attack")))
        series.setdefault(key, {})[as_text(row.get("scheme"))] = optional_number((row.get("metrics") or {}).get("eer"))
    recognizers = unique_in_order(rec for rec, _ in series)
    attacks = unique_in_order(attack for _, attack in series)
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


def sweep_figures(
    rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str], sweeps: Any, out: Collector
) -> list[dict]:
    """EER against each sweep's parameter, one figure per view kind.

    One curve per recognizer and attack (for instance the EER against the
    offset of a large window, or against an increasing window), and each
    recognizer's unprotected baseline as a horizontal dashed line.

    Args:
        rows: Result rows in the results' order.
        labels: Recognizer label per row (keyed by ``id(row)``).
        sweeps: ``results["sweeps"]``: ``{"scheme", "param", "fixed",
            "labels", "values"}`` per sweep, ``labels`` naming the swept
            settings (schemes of the rows).
        out: Collector of the figures.

    Returns:
        ``{"title", "uri"}`` per figure.
    """
    colours = recognizer_colours(rows, labels)
    baselines = {
        labels[id(r)]: optional_number((r.get("metrics") or {}).get("eer")) for r in rows if r.get("view") == "baseline"
    }
    figures = []
    for sweep in mappings(sweeps):
        points = [as_text(label) for label in as_list(sweep.get("labels"))]
        mine = [r for r in rows if as_text(r.get("scheme")) in points]
        fixed = sweep.get("fixed")
        where = f" ({format_params(fixed)})" if isinstance(fixed, Mapping) and fixed else ""
        param = as_text(sweep.get("param"))
        for kind in _sweep_kinds(mine):
            members = [r for r in mine if view_kind(r.get("view")) == kind]
            lines = _sweep_lines(members, labels, points, colours)
            recognizers = unique_in_order(labels[id(r)] for r in members)
            title = f"{as_text(sweep.get('scheme'))} sweep over {param}{where} · {kind}"
            fig = partial(
                sweep_figure,
                as_list(sweep.get("values")),
                lines,
                baselines=_sweep_baselines(baselines, recognizers, colours),
                xlabel=param,
                title=title,
            )
            figures.append({"title": title, "uri": out.figure("sweep", title, fig)})
    return figures
