"""Result rows as the report groups and names them: row order, recognizer labels and colours, view kinds, anchors.

Rows keep the protocol's own order (first-seen, not alphabetical); a
recognizer keeps one label and one colour on the whole page, and each
scheme one HTML id that the summary links to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reports.figures import PALETTE
from reports.formatting import as_text, format_params, unique_in_order

__all__ = [
    "PLAIN",
    "sorted_rows",
    "recognizer_params",
    "recognizer_labels",
    "recognizer_colours",
    "row_title",
    "view_kind",
    "scheme_anchors",
]

_GROUP_FIELDS = ("recognizer", "scheme", "attack", "view")
#: The scheme of the unprotected rows and of the original faces (the reference distribution of ``face_quality``).
PLAIN = "none"


def sorted_rows(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Group rows by recognizer, scheme, attack, view, each in first-seen order.

    First-seen order (not alphabetical) keeps the protocol's own order, e.g.
    the unprotected baseline before the protected views.

    Args:
        rows: Result rows in the results' order.

    Returns:
        The rows, grouped.
    """
    rank = {
        field: {v: i for i, v in enumerate(unique_in_order(str(r.get(field)) for r in rows))} for field in _GROUP_FIELDS
    }
    return sorted(rows, key=lambda r: tuple(rank[f][str(r.get(f))] for f in _GROUP_FIELDS))


def recognizer_params(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row's recognizer parameters without its run-time settings (``recognizer_runtime_params``).

    Args:
        row: A result row.

    Returns:
        The parameters that say what the recognizer computes.
    """
    runtime = set(row.get("recognizer_runtime_params") or ())
    return {k: v for k, v in (row.get("recognizer_params") or {}).items() if k not in runtime}


def recognizer_labels(rows: Sequence[Mapping[str, Any]]) -> dict[int, str]:
    """Legend label per row: the recognizer name, plus its parameters only where
    one name appears with several parameter sets.

    Args:
        rows: Result rows.

    Returns:
        Label per row, keyed by ``id(row)``.
    """
    variants: dict[str, set[str]] = {}
    for row in rows:
        variants.setdefault(row["recognizer"], set()).add(format_params(recognizer_params(row)))
    labels = {}
    for row in rows:
        name, params = row["recognizer"], format_params(recognizer_params(row))
        labels[id(row)] = f"{name} ({params})" if len(variants[name]) > 1 else name
    return labels


def recognizer_colours(rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str]) -> dict[str, str]:
    """One colour per recognizer label, the same in every figure of the report.

    Args:
        rows: Result rows.
        labels: Recognizer label per row (keyed by ``id(row)``).

    Returns:
        Colour per label, from :data:`reports.figures.PALETTE` in first-seen order.
    """
    names = unique_in_order(labels[id(r)] for r in rows)
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(names)}


def row_title(row: Mapping[str, Any], labels: Mapping[int, str]) -> str:
    """A row's figure title: its recognizer label, scheme, attack and view.

    Args:
        row: A result row.
        labels: Recognizer label per row (keyed by ``id(row)``).

    Returns:
        The title, parts joined by `` · ``.
    """
    return " · ".join([labels[id(row)], *(str(row.get(f)) for f in _GROUP_FIELDS[1:])])


def view_kind(view: Any) -> str:
    """The kind of a view: ``strength`` for ``strength:<attack>``, the view itself otherwise.

    Args:
        view: A row's view.

    Returns:
        The part before the first ``:``.
    """
    return as_text(view).partition(":")[0]


def scheme_anchors(schemes: Iterable[str]) -> dict[str, str]:
    """A unique HTML id per scheme (``scheme-<name>``), for the summary's links to the scheme's details.

    Args:
        schemes: Scheme names, repeats allowed.

    Returns:
        Id per scheme, in first-seen order.
    """
    out: dict[str, str] = {}
    for scheme in unique_in_order(schemes):
        base = "scheme-" + (re.sub(r"[^A-Za-z0-9_-]+", "-", scheme).strip("-") or "unnamed")
        anchor, n = base, 1
        while anchor in out.values():
            n += 1
            anchor = f"{base}-{n}"
        out[scheme] = anchor
    return out
