"""Numbers and sizes in terminal and log lines: a few significant digits, rates as percentages.

The report has its own, richer formatting (:mod:`reports.formatting`); these
helpers serve the layers below it (certification reasons, the run summary,
the cache command), which must not import the report.
"""

from __future__ import annotations

import math
import re

__all__ = ["RATE_RE", "SCORE_RE", "is_rate", "format_number", "format_value", "format_bytes"]

#: Metric names that are error or success rates (and their differences): shown as percentages.
RATE_RE = re.compile(r"^(delta_)?(eer|fmr|fnmr|far|frr|sar|fpir|fnir|apcer|bpcer|acer|iar|gar|tar)(_|$)|_rate(_|$)")
#: Scores, not rates, whatever their prefix (``sar_threshold_at_fmr_<t>``: the threshold a SAR was taken at).
SCORE_RE = re.compile(r"threshold_at_fmr_")
_CI_SUFFIX_RE = re.compile(r"_ci_(low|high)$")


def is_rate(metric: str) -> bool:
    """Whether ``metric`` (or its ``_ci_low``/``_ci_high`` bound) is a rate in [0, 1]."""
    base = _CI_SUFFIX_RE.sub("", metric)
    return bool(RATE_RE.search(base)) and not SCORE_RE.search(base)


def format_number(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits; integers as integers, large values with separators.

    Args:
        value: A number (``nan`` and infinities are written as Python writes them).
        digits: Significant digits of a non-integer below 1000.

    Returns:
        E.g. ``0.286``, ``12``, ``1,235``, ``1.23e-05``.
    """
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    text = f"{value:.{digits}g}"
    if value.is_integer() or abs(value) >= 10**digits or "e+" in text:
        return f"{round(value):,}"
    return text


def format_value(metric: str, value: float | None, digits: int = 3) -> str:
    """A metric's value as a line of text shows it: rates as percentages, ``n/a`` for None.

    Args:
        metric: The metric's name (decides whether it is a rate, see :func:`is_rate`).
        value: The value.
        digits: Significant digits.

    Returns:
        E.g. ``28.6%`` for an EER of 0.2861666, ``0.412`` for a D↔sys.
    """
    if value is None:
        return "n/a"
    if is_rate(metric) and math.isfinite(value):
        return f"{format_number(100 * value, digits)}%"
    return format_number(value, digits)


def format_bytes(size: int) -> str:
    """A size in bytes with a binary unit: ``812 B``, ``3.4 KiB``, ``612 MiB``, ``2.1 GiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{format_number(value)} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
