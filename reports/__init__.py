"""Report rendering: results JSON in, self-contained HTML out.

The package imports nothing heavy itself (PEP 562 ``__getattr__``): a command
that only needs ``reports.leaderboard`` or the CLI's parser does not pay for
matplotlib.
"""

from __future__ import annotations

from typing import Any

__all__ = ["render_report", "write_report"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from reports import render

        return getattr(render, name)
    raise AttributeError(f"module 'reports' has no attribute {name!r}")
