"""What every part of the leaderboard shares: its error type, the metric types and small value helpers."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["PLAIN", "Number", "Metrics", "LeaderboardError", "finite", "canonical", "optional_text", "unique_paths"]

#: Scheme and attack label of a baseline (no protection).
PLAIN = "none"

#: A figure as ``results.json`` holds it (null where it could not be computed).
Number = float | int | None
#: A row's figures by metric key.
Metrics = Mapping[str, Number]


class LeaderboardError(ValueError):
    """A bad input (missing or invalid results file or entry): one line naming the path."""


def finite(metrics: Metrics | None, key: str) -> float | None:
    """A figure of ``metrics`` as a float, None where it is missing, null, not a number or not finite.

    Args:
        metrics: The figures (None: none).
        key: The metric key.

    Returns:
        The figure or None.
    """
    if not metrics:
        return None
    value = metrics.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def canonical(params: Mapping[str, Any]) -> str:
    """Grouping key of a parameter dict (not a figure: it is only compared).

    Args:
        params: Component parameters.

    Returns:
        Their JSON text with sorted keys.
    """
    return json.dumps(params, sort_keys=True, default=str)


def optional_text(value: Any) -> str | None:
    """``value`` where it is non-empty text, else None (an optional text field of ``results.json``)."""
    return value if isinstance(value, str) and value else None


def unique_paths(paths: Iterable[Path]) -> list[Path]:
    """``paths`` in their order, each file once (paths compared resolved).

    Args:
        paths: Paths, possibly naming one file more than once.

    Returns:
        The first path naming each file.
    """
    seen: set[Path] = set()
    unique = []
    for path in paths:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique
