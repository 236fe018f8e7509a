"""The details of each scheme: the figures of its rows (DET curves, score histograms, unlinkability, views).

Every figure dict has a ``title``, a ``uri`` (PNG data URI) and, where it
belongs to one, the ``scheme`` it shows: the details are grouped by it
(:func:`scheme_groups`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from reports.export import Collector
from reports.formatting import as_text, format_metric, format_params, optional_number, unique_in_order
from reports.plots import (
    VIEW_COLOURS,
    DetCurve,
    ScoreDensity,
    det_figure,
    score_histogram_figure,
    unlinkability_figure,
    view_distributions_figure,
)
from reports.rows import PLAIN, recognizer_colours, row_title, scheme_anchors

__all__ = ["det_figures", "histograms", "unlinkability_figures", "view_distribution_figures", "scheme_groups"]


def det_figures(rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str], out: Collector) -> list[dict]:
    """One DET figure per (scheme, attack, view), one curve per recognizer.

    Args:
        rows: Result rows in table order, grouped here by scheme, attack and view.
        labels: Recognizer label per row (keyed by ``id(row)``), one curve each.
        out: Collector of the DET figures.

    Returns:
        ``{"title", "uri", "scheme"}`` per (scheme, attack, view).
    """
    colours = recognizer_colours(rows, labels)
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
            metrics = row.get("metrics") or {}
            eer = metrics.get("eer")
            if eer is not None:
                label = f"{label} (EER {format_metric('eer', eer)})"
            # The score counts tell the plot which stored rates stand for 0 (see DetCurve).
            counts = [n if isinstance(n, int) else None for n in (metrics.get("n_impostor"), metrics.get("n_genuine"))]
            fmr, fnmr = det.get("fmr") or [], det.get("fnmr") or []
            curves.append(DetCurve(label, fmr, fnmr, colours[labels[id(row)]], *counts))
        title = f"scheme {scheme} · attack {attack} · view {view}"
        uri = out.figure("det", title, partial(det_figure, curves, title=title))
        figures.append({"title": title, "uri": uri, "scheme": scheme})
    return figures


def histograms(rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str], out: Collector) -> list[dict]:
    """One genuine/impostor score histogram per row.

    Args:
        rows: Result rows in table order, each with its ``hist`` curve (or none: "no data").
        labels: Recognizer label per row, for the titles.
        out: Collector of the histograms.

    Returns:
        One ``{"title", "uri", "scheme"}`` per row.
    """
    figures = []
    for row in rows:
        hist = (row.get("curves") or {}).get("hist") or {}
        title = row_title(row, labels)
        fig = partial(
            score_histogram_figure,
            hist.get("edges") or [],
            hist.get("genuine") or [],
            hist.get("impostor") or [],
            title=title,
        )
        figures.append({"title": title, "uri": out.figure("hist", title, fig), "scheme": str(row.get("scheme"))})
    return figures


def unlinkability_figures(rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str], out: Collector) -> list[dict]:
    """One figure per row whose curves hold an ``unlinkability`` entry.

    Maximal linkability is taken from the curve entry, else from the row's
    metrics; files written before it was measured have neither.

    Args:
        rows: Result rows in table order; rows without the curve are skipped.
        labels: Recognizer label per row, for the titles.
        out: Collector of the unlinkability figures.

    Returns:
        One ``{"title", "uri", "scheme"}`` per row drawn.
    """
    figures = []
    for row in rows:
        curve = (row.get("curves") or {}).get("unlinkability")
        if not curve:
            continue
        metrics = row.get("metrics") or {}
        title = row_title(row, labels)
        fig = partial(
            unlinkability_figure,
            curve.get("edges") or [],
            curve.get("mated_density") or [],
            curve.get("nonmated_density") or [],
            curve.get("d_local") or [],
            d_sys=optional_number(curve.get("d_sys")),
            omega=optional_number(curve.get("omega")),
            linkability_max=optional_number(curve.get("linkability_max", metrics.get("linkability_max"))),
            title=title,
        )
        uri = out.figure("unlinkability", title, fig)
        figures.append({"title": title, "uri": uri, "scheme": str(row.get("scheme"))})
    return figures


def _hist_density(label: str, row: Mapping[str, Any], colour: str) -> ScoreDensity | None:
    hist = (row.get("curves") or {}).get("hist") or {}
    if not hist.get("edges"):
        return None
    return ScoreDensity(label, hist["edges"], hist.get("genuine") or [], hist.get("impostor") or [], colour)


def view_distribution_figures(
    rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str], out: Collector
) -> list[dict]:
    """Baseline, preservation and strength densities per (recognizer, scheme).

    The convention of the IJCB 2020 warping paper: baseline red,
    preservation blue, ``strength:<attack>`` green. Only for schemes with
    both a preservation and a strength row holding histograms; the baseline
    (scheme ``none``) is that recognizer's own.

    Args:
        rows: Result rows in table order, baselines included.
        labels: Recognizer label per row: densities are grouped by it and the scheme.
        out: Collector of the view figures.

    Returns:
        One ``{"title", "uri", "scheme"}`` per (recognizer, scheme) drawn.
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
        fig = partial(view_distributions_figure, [d for d in drawn if d is not None], title=title)
        figures.append({"title": title, "uri": out.figure("views", title, fig), "scheme": scheme})
    return figures


# Figure lists of the context that are shown per scheme, in the order a scheme's details show them.
_SCHEME_FIGURES = ("example_figures", "view_distribution_figures", "det_figures", "unlinkability_figures", "histograms")


def scheme_groups(
    rows: Sequence[Mapping[str, Any]], figures: Mapping[str, list[dict]], anchors: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The details of each scheme: its figures of every kind, schemes in first-seen order (examples-only last).

    Args:
        rows: Result rows in the results' order.
        figures: Context figure lists by name (see ``_SCHEME_FIGURES``),
            each figure with its ``scheme``.
        anchors: HTML id per scheme (see :func:`reports.rows.scheme_anchors`).

    Returns:
        ``{"scheme", "label", "anchor", "params", "n_rows", "n_figures"}``
        plus one figure list per name, per scheme with anything to show.
    """
    seen = unique_in_order(as_text(r.get("scheme")) for r in rows)
    seen += [
        s for s in unique_in_order(f["scheme"] for name in _SCHEME_FIGURES for f in figures[name]) if s not in seen
    ]
    groups = []
    for scheme in seen:
        mine = {name: [f for f in figures[name] if f["scheme"] == scheme] for name in _SCHEME_FIGURES}
        members = [r for r in rows if as_text(r.get("scheme")) == scheme]
        n_figures = sum(len(v) for v in mine.values())
        if not n_figures:
            continue
        groups.append(
            {
                "scheme": scheme,
                "label": f"{scheme} (unprotected baseline)" if scheme == PLAIN else scheme,
                "anchor": anchors.get(scheme) or scheme_anchors([scheme])[scheme],
                "params": format_params(members[0].get("scheme_params")) if members else "",
                "n_rows": len(members),
                "n_figures": n_figures,
                **mine,
            }
        )
    return groups
