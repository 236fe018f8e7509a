"""The page's row tables: the full table of results, the attacks side by side, and strength EER by setting.

Each table comes as display context (every value formatted) and as plain
data (:class:`reports.export.Table`, numbers raw) for the exported files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reports.export import Cell, Table
from reports.formatting import (
    DASH,
    as_text,
    estimate,
    format_metric,
    format_params,
    metric_cell,
    metric_header,
    unique_in_order,
)
from reports.rows import recognizer_params

__all__ = ["table_lines", "results_export", "attack_table", "attack_export", "strength_by_setting", "strength_exports"]


def table_lines(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> list[dict[str, Any]]:
    """The full table's lines, one per row: its names and parameters, then one metric cell per column.

    Args:
        rows: Result rows in table order.
        columns: Metric keys (see :func:`reports.formatting.metric_columns`).

    Returns:
        One dict per row; ``cells`` holds one ``{"value", "ci"}`` per column.
    """
    return [
        {
            "recognizer": row["recognizer"],
            "recognizer_params": format_params(recognizer_params(row)),
            "scheme": row.get("scheme", ""),
            "scheme_params": format_params(row.get("scheme_params")),
            "attack": row.get("attack", ""),
            "view": row.get("view", ""),
            "cells": [metric_cell(c, row.get("metrics") or {}) for c in columns],
            "score_file": row.get("score_file") or "",
            "threshold_source": row.get("threshold_source") or "",
        }
        for row in rows
    ]


def results_export(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> Table:
    """The full table as plain data: identification columns, then every metric with its CI.

    Args:
        rows: Result rows in table order.
        columns: Metric keys.

    Returns:
        The table.
    """
    head = ("Recognizer", "Recognizer params", "Scheme", "Scheme params", "Attack", "View")
    lines: list[list[Cell]] = [
        [
            as_text(row.get("recognizer")),
            format_params(recognizer_params(row)),
            as_text(row.get("scheme")),
            format_params(row.get("scheme_params")),
            as_text(row.get("attack")),
            as_text(row.get("view")),
            *(estimate(c, row.get("metrics")) for c in columns),
        ]
        for row in rows
    ]
    header = [*head, *(metric_header(c) for c in columns)]
    # In LaTeX the labels name the settings and the view its attack: parameters and attack stay in the CSV.
    csv_only = ("Recognizer params", "Scheme params", "Attack")
    return Table("All results", header, lines, ["", *[""] * 5, *columns], lead=len(head), csv_only=csv_only)


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
    recognizers = unique_in_order(labels[id(r)] for members in groups.values() for r in members)
    return recognizers, groups


def attack_table(rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str]) -> dict[str, Any] | None:
    """Attacks side by side, one line per (scheme, strength view): EER per recognizer, then image quality.

    Args:
        rows: Result rows in table order.
        labels: Recognizer label per row (keyed by ``id(row)``).

    Returns:
        ``{"recognizer", "quality_headers", "rows"}``; None when no row is
        an attacked (``strength:``) view.
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


def attack_export(rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str]) -> Table | None:
    """:func:`attack_table` as plain data (EER with its CI per recognizer).

    Args:
        rows: Result rows in table order.
        labels: Recognizer label per row (keyed by ``id(row)``).

    Returns:
        The table, None without strength rows.
    """
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
                *(estimate("eer", by_label.get(name)) for name in recognizers),
                *(estimate(key, first) for key, _ in _ATTACK_QUALITY),
            ]
        )
    header = ["Scheme", "Attack", *(f"EER {name}" for name in recognizers), *(h for _, h in _ATTACK_QUALITY)]
    keys = ["", "", *["eer"] * len(recognizers), *(key for key, _ in _ATTACK_QUALITY)]
    return Table("Attacks", header, lines, keys, lead=2)


def _with_ci(key: str, metrics: Mapping[str, Any]) -> str:
    cell = metric_cell(key, metrics)
    return f"{cell['value']} ({cell['ci']})" if cell["ci"] else cell["value"]


def _strength_settings(
    rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str]
) -> tuple[list[str], list[str], dict[str, dict[tuple[str, str], Mapping[str, Any]]]]:
    """Schemes, attacks and the metrics of each (attack, scheme) per recognizer, of strength rows."""
    strength = [r for r in rows if str(r.get("view", "")).startswith("strength:")]
    schemes = unique_in_order(str(r.get("scheme")) for r in strength)
    attacks = unique_in_order(str(r.get("attack")) for r in strength)
    cells: dict[str, dict[tuple[str, str], Mapping[str, Any]]] = {}
    for row in strength:
        setting = (str(row.get("attack")), str(row.get("scheme")))
        cells.setdefault(labels[id(row)], {}).setdefault(setting, row.get("metrics") or {})
    return schemes, attacks, cells


def strength_by_setting(rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str]) -> list[dict[str, Any]]:
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
                    metric_cell("eer", by_setting[(attack, scheme)])
                    if (attack, scheme) in by_setting
                    else {"value": DASH, "ci": ""}
                    for scheme in schemes
                ],
            }
            for attack in attacks
            if attack in present
        ]
        tables.append({"recognizer": recognizer, "schemes": schemes, "lines": lines})
    return tables


def strength_exports(rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str]) -> list[Table]:
    """:func:`strength_by_setting` as plain data.

    Args:
        rows: Result rows in the results' order; only ``strength:`` views count.
        labels: Recognizer label per row (keyed by ``id(row)``).

    Returns:
        One table per recognizer.
    """
    schemes, attacks, cells = _strength_settings(rows, labels)
    tables = []
    for recognizer, by_setting in cells.items():
        present = {attack for attack, _ in by_setting}
        lines: list[list[Cell]] = [
            [attack, *(estimate("eer", by_setting.get((attack, scheme))) for scheme in schemes)]
            for attack in attacks
            if attack in present
        ]
        title = f"Strength EER by setting: {recognizer}"
        tables.append(Table(title, ["Attack", *schemes], lines, ["", *["eer"] * len(schemes)]))
    return tables
