"""The certification section that opens the page: the protocol's criteria and their verdicts, as recorded.

The verdicts are shown as the results file holds them
(``results["certification"]``); the overall verdict is the worst of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from benchmark.metrics.certify import overall_verdict
from reports.export import Cell, Estimate, Table
from reports.formatting import as_text, format_metric, is_number, mappings, optional_number

__all__ = ["certification_context", "certification_export"]


def certification_context(entries: Sequence[Mapping[str, Any]] | None) -> dict | None:
    """The certification section's context, None when the results hold no certification.

    Args:
        entries: ``results["certification"]``: one entry per criterion.

    Returns:
        ``{"checks", "overall", "overall_class"}``; each check holds the
        metric, view, relation, bound, judged value, verdict, reason and the
        deciding row as display text.
    """
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
                "bound": format_metric(metric, bound) if is_number(bound) or bound is None else str(bound),
                "value": format_metric(metric, entry.get("value")),
                "verdict": verdict,
                "verdict_class": verdict.lower() if verdict in ("PASS", "FAIL", "UNRESOLVED") else "unknown",
                "reason": str(entry.get("reason") or ""),
                # The row whose figure decides (absent from results before competence); a FAIL's reason names it.
                "decided_by": str(entry.get("worst_row") or "")
                if entry.get("decided_by") and verdict != "FAIL"
                else "",
            }
        )
    overall = overall_verdict([c["verdict"] for c in checks])
    return {"checks": checks, "overall": overall, "overall_class": overall.lower()}


def certification_export(entries: Any) -> Table | None:
    """The certification verdicts as plain data; bound and judged value formatted by their metric in LaTeX.

    Args:
        entries: ``results["certification"]``.

    Returns:
        The table, None without entries.
    """
    rows: list[list[Cell]] = []
    for entry in mappings(entries):
        metric = as_text(entry.get("metric"))
        direction = "max" if "max" in entry else "min" if "min" in entry else ""
        bound = entry.get("bound", entry.get(direction) if direction else None)
        rows.append(
            [
                metric,
                as_text(entry.get("view")),
                as_text(entry.get("recognizer")) or "*",
                as_text(entry.get("scheme")) or "*",
                {"max": "≤", "min": "≥"}.get(direction, ""),
                Estimate(optional_number(bound), key=metric),
                Estimate(optional_number(entry.get("value")), key=metric),
                as_text(entry.get("worst_row")),
                as_text(entry.get("verdict")),
                as_text(entry.get("reason")),
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
