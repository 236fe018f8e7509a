"""Example faces: a grid per scheme (original, protected, each attack) and its figure.

``results["examples"]`` is optional: results files written before it lack
it, and a malformed entry shows what it can rather than failing the whole
report. Only inline PNG data URIs are let through to the page.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from reports.export import Collector
from reports.formatting import as_list, as_text, mappings
from reports.plots import ExampleLine, examples_figure

__all__ = ["example_grids", "example_figures"]

_PNG_DATA_URI_RE = re.compile(r"data:image/png;base64,[A-Za-z0-9+/]*={0,2}")
_EXAMPLE_WIDTH = 112


def _png_data_uri(value: Any) -> str | None:
    """``value`` if it is an inline base64 PNG, else None.

    Only this form is let through, so a results file cannot make the page
    load anything from elsewhere (``https:``, ``file:``) or run a script
    (``javascript:``, SVG).
    """
    return value if isinstance(value, str) and _PNG_DATA_URI_RE.fullmatch(value) else None


def example_grids(block: Any) -> list[dict[str, Any]]:
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
    for entry in mappings(block):
        columns = [as_text(c) for c in as_list(entry.get("columns"))]
        samples = mappings(entry.get("samples"))
        width = max([len(columns), *(len(as_list(s.get("images"))) for s in samples)])
        columns += [""] * (width - len(columns))
        lines = []
        for sample in samples:
            sample_id = as_text(sample.get("id"))
            images = as_list(sample.get("images")) + [None] * width
            cells = [{"src": _png_data_uri(images[j]), "alt": f"{sample_id}, {columns[j]}"} for j in range(width)]
            lines.append({"id": sample_id, "subject": as_text(sample.get("subject")), "cells": cells})
        grids.append(
            {"scheme": as_text(entry.get("scheme")), "columns": columns, "width": _EXAMPLE_WIDTH, "samples": lines}
        )
    return grids


def example_figures(grids: Sequence[Mapping[str, Any]], out: Collector) -> list[dict[str, Any]]:
    """One examples figure per scheme of :func:`example_grids`: the faces side by side, original first.

    Only the inline PNGs :func:`example_grids` let through are drawn; anything
    else is a "failed" cell.

    Args:
        grids: The grids of :func:`example_grids`.
        out: Collector of the figures.

    Returns:
        ``{"title", "uri", "scheme", "columns", "ids"}`` per scheme with samples.
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
        fig = partial(examples_figure, grid["columns"], lines, title=title)
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
