"""Report rendering: results JSON in, self-contained HTML out."""

from reports.render import render_report, write_report

__all__ = ["render_report", "write_report"]
