"""Generalisation of recognizer attacks: a matrix of training × test setting per recognizer and view kind.

Recognizer attacks (``finetune``) train a recognizer under some settings and
are evaluated under others; each matrix is read against the pretrained
recognizer (the ``naive`` rows of the same recognizer), drawn as a heatmap
and, along each sweep, as curves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from reports.export import Collector, Estimate, Table
from reports.figures import PALETTE
from reports.formatting import DASH, as_list, as_text, format_params, mappings, optional_number, unique_in_order
from reports.plots import SweepLine, generalisation_matrix_figure, sweep_figure
from reports.rows import PLAIN, view_kind
from reports.training import is_recognizer_model

__all__ = ["generalisation_tables", "generalisation_context"]

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
    for model in mappings(block):
        if not is_recognizer_model(model):
            continue
        attack = as_text(model.get("attack"))
        if as_text(model.get("scheme")):
            under_test.add(attack)
        settings.setdefault(attack, as_text(model.get("trained_on")) or DASH)
    return {attack: _UNDER_TEST if attack in under_test else text for attack, text in settings.items()}


def _percent_1(rate: float) -> str:
    return f"{rate * 100:.1f}"


def _matrix_cell(metrics: Mapping[str, Any] | None) -> dict[str, Any]:
    """EER and CI of one matrix cell: ``{"eer", "low", "high", "text"}``, text as ``12.3% [10.1, 14.6]``.

    One decimal (not :func:`reports.formatting.format_metric`'s two significant digits): the
    table is meant to be copied as it is, and its columns should line up.
    """
    metrics = metrics or {}
    eer = optional_number(metrics.get("eer"))
    low, high = optional_number(metrics.get("eer_ci_low")), optional_number(metrics.get("eer_ci_high"))
    if eer is None:
        return {"eer": None, "low": low, "high": high, "text": DASH}
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
    tested = [r for r in rows if as_text(r.get("scheme")) != PLAIN and view_kind(r.get("view")) in _VIEW_KINDS]
    matrices = []
    for recognizer in unique_in_order(labels[id(r)] for r in tested if as_text(r.get("attack")) in settings):
        for kind in _VIEW_KINDS:
            mine = [r for r in tested if labels[id(r)] == recognizer and view_kind(r.get("view")) == kind]
            matrix = _matrix(recognizer, kind, mine, settings)
            if matrix is not None:
                matrices.append(matrix)
    return matrices


def _matrix(
    recognizer: str, kind: str, mine: Sequence[Mapping[str, Any]], settings: Mapping[str, str]
) -> dict[str, Any] | None:
    """One generalisation matrix of :func:`generalisation_tables`, None when no recognizer attack ran."""
    attacked = [r for r in mine if as_text(r.get("attack")) in settings]
    if not attacked:
        return None
    schemes = {as_text(r.get("scheme")) for r in attacked}
    relevant = [r for r in mine if as_text(r.get("attack")) in settings or r.get("attack") == _PRETRAINED_ATTACK]
    columns = unique_in_order(s for s in (as_text(r.get("scheme")) for r in relevant) if s in schemes)
    cells: dict[tuple[str, str], Mapping[str, Any]] = {}
    for row in relevant:
        cells.setdefault((as_text(row.get("attack")), as_text(row.get("scheme"))), row.get("metrics") or {})
    lines = []
    if any(r.get("attack") == _PRETRAINED_ATTACK for r in relevant):
        lines.append((_PRETRAINED_LABEL, _PRETRAINED_ATTACK, _PRETRAINED_SETTING, True))
    lines += [(a, a, settings[a], False) for a in unique_in_order(as_text(r.get("attack")) for r in attacked)]
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
    for sweep in mappings(sweeps):
        points = [(as_text(lbl), v) for lbl, v in zip(as_list(sweep.get("labels")), as_list(sweep.get("values")))]
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
        param = as_text(sweep.get("param"))
        fixed = sweep.get("fixed")
        where = f" ({format_params(fixed)})" if isinstance(fixed, Mapping) and fixed else ""
        title = f"{matrix['recognizer']} · {matrix['kind']} · {as_text(sweep.get('scheme'))}{where} over {param}"
        fig = partial(sweep_figure, [v for _, v in points], lines, references=references, xlabel=param, title=title)
        figures.append({"title": title, "uri": out.figure("generalisation-sweep", title, fig)})
    return figures


def generalisation_context(
    rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str], trained_models: Any, sweeps: Any, out: Collector
) -> list[dict[str, Any]]:
    """:func:`generalisation_tables` with each matrix's heatmap (``uri``, ``title``) and sweep curves (``sweeps``).

    Args:
        rows: Result rows in the results' order.
        labels: Recognizer label per row (keyed by ``id(row)``).
        trained_models: ``results["trained_models"]``.
        sweeps: ``results["sweeps"]``.
        out: Collector of the figures and of each matrix's table.

    Returns:
        The matrices of :func:`generalisation_tables`, each with ``title``,
        ``uri`` and ``sweeps`` (``{"title", "uri"}`` per sweep figure).
    """
    matrices = []
    for matrix in generalisation_tables(rows, labels, trained_models):
        title = f"{matrix['recognizer']} · {matrix['kind']}"
        fig = partial(
            generalisation_matrix_figure,
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
