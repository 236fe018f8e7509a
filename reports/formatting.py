"""Display formatting of the report: metric values, parameters, metric columns and their headers.

Every number on the page goes through :func:`format_metric` (rates as
percentages, counts with thousands separators, other numbers as they are)
and every metric table takes its columns from :func:`metric_columns`. The
small value helpers here read the loosely typed blocks of a results file
without failing on a malformed entry.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from benchmark.core.numbers import RATE_RE, SCORE_RE
from reports.export import Estimate

__all__ = [
    "DASH",
    "is_number",
    "optional_number",
    "or_default",
    "as_text",
    "as_list",
    "mappings",
    "unique_in_order",
    "format_metric",
    "format_plain",
    "format_count",
    "format_params",
    "metric_header",
    "metric_columns",
    "metric_cell",
    "estimate",
]

# Known metrics first, in reading order; anything else follows in order of
# first appearance so metrics added later still show up.
_PREFERRED_METRICS: tuple[str, ...] = (
    "eer",
    "fnmr_at_fmr_0.01",
    "fnmr_at_fmr_0.001",
    "fnmr_at_fmr_0.0001",
    "d_prime",
    "n_genuine",
    "n_impostor",
)
# A metric shown right after another one when both are present: maximal
# linkability beside D<->sys, measured on the same bins.
_COMPANIONS: dict[str, str] = {"d_sys": "linkability_max"}
_CI_SUFFIXES = ("_ci_low", "_ci_high")
# Error/success rates (and their differences) are shown as percentages (except scores: SCORE_RE); other
# numbers as they are. The rule is shared with the lines the command line prints.
_RATE_RE, _SCORE_RE = RATE_RE, SCORE_RE
_COUNT_RE = re.compile(r"^n_")
# Names of targeted metrics (``<name>_at_fmr_<t>``) that the rule of their prefix would spell badly.
_TARGETED_NAMES = {"sar_threshold": "SAR threshold", "sar_threshold_fmr": "FMR of the SAR threshold"}
#: What the page shows for a missing or undefined value.
DASH = "—"
_HEADERS: dict[str, str] = {
    "eer": "EER",
    "d_prime": "d′",
    "n_genuine": "# genuine",
    "n_impostor": "# impostor",
    "delta_eer": "ΔEER",
    "d_sys": "D↔sys",
    "d_sys_null": "D↔sys null (mean)",
    "d_sys_null_high": "D↔sys null (95th pct.)",
    "linkability_max": "max. linkability (bits)",
    "linkability_max_null": "max. linkability null (mean)",
    "linkability_max_null_high": "max. linkability null (95th pct.)",
    "key_space_bits": "key space (bits)",
    "transform_space_bits": "transform space (bits)",
}


# --------------------------------------------------------------------------- values


def is_number(value: Any) -> bool:
    """Whether ``value`` is an int or a float (a bool is not).

    Args:
        value: Anything read from a results file.

    Returns:
        True for numbers, finite or not.
    """
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def optional_number(value: Any) -> float | None:
    """``value`` as a float when it is a finite number, else None.

    Args:
        value: Anything read from a results file.

    Returns:
        The float, or None.
    """
    return float(value) if is_number(value) and math.isfinite(value) else None


def or_default(value: float | None, default: float) -> float:
    """``value``, or ``default`` when it is None.

    Args:
        value: A number or None.
        default: What None stands for.

    Returns:
        The number.
    """
    return default if value is None else value


def as_text(value: Any) -> str:
    """``value`` as text, ``""`` for None.

    Args:
        value: Anything read from a results file.

    Returns:
        The text.
    """
    return "" if value is None else str(value)


def as_list(value: Any) -> list[Any]:
    """``value`` when it is a list, else an empty list.

    Args:
        value: Anything read from a results file.

    Returns:
        The list.
    """
    return value if isinstance(value, list) else []


def mappings(value: Any) -> list[Mapping[str, Any]]:
    """The mapping entries of a list-valued block; anything else is dropped.

    Args:
        value: A block of a results file (a list of entries, or anything).

    Returns:
        Its mapping entries, in order.
    """
    return [v for v in as_list(value) if isinstance(v, Mapping)]


def unique_in_order(items: Iterable[Any]) -> list[Any]:
    """The distinct ``items`` in order of first appearance.

    Args:
        items: Hashable items.

    Returns:
        Each item once.
    """
    return list(dict.fromkeys(items))


# --------------------------------------------------------------------------- formatting


def _format_percent(value: float) -> str:
    pct = value * 100
    if pct == 0:
        return "0%"
    # At least two significant digits, never scientific notation.
    decimals = max(2, 1 - math.floor(math.log10(abs(pct))))
    return f"{pct:.{decimals}f}%"


def format_plain(value: float) -> str:
    """A number that is neither a rate nor a count: integers with separators, else four significant digits.

    Args:
        value: A finite number.

    Returns:
        Display text; scientific notation for very large or very small values.
    """
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.3e}"
    return f"{value:.4g}"


def format_metric(key: str, value: Any) -> str:
    """Format one metric value for display.

    Args:
        key: Metric name; rates (``eer``, ``fnmr_*``, ``sar_*``, ``*_rate``,
            ``delta_eer``, including their ``_ci_low``/``_ci_high`` bounds)
            become percentages, ``n_*`` counts get thousands separators.
        value: The number, or None when the metric is undefined.

    Returns:
        Display text; ``"—"`` for None or non-finite values.
    """
    if value is None:
        return DASH
    if not is_number(value):
        return str(value)
    if not math.isfinite(value):
        return DASH
    base = _strip_ci(key)
    if _RATE_RE.search(base) and not _SCORE_RE.search(base):
        return _format_percent(value)
    if _COUNT_RE.search(base):
        return f"{int(round(value)):,}"
    return format_plain(value)


def _strip_ci(key: str) -> str:
    for suffix in _CI_SUFFIXES:
        if key.endswith(suffix):
            return key[: -len(suffix)]
    return key


def format_count(value: Any) -> str:
    """A count with thousands separators, ``"—"`` when ``value`` is not a finite number.

    Args:
        value: Anything read from a results file.

    Returns:
        Display text.
    """
    return f"{int(round(value)):,}" if is_number(value) and math.isfinite(value) else DASH


def format_params(params: Mapping[str, Any] | None) -> str:
    """Parameters as ``k=v`` pairs sorted by name, ``""`` when there are none.

    Args:
        params: A scheme's or recognizer's parameters.

    Returns:
        Display text.
    """
    if not params:
        return ""
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items()))


# --------------------------------------------------------------------------- metric columns


def metric_header(key: str) -> str:
    """The column header of a metric, e.g. ``FNMR @ FMR 0.1%`` for ``fnmr_at_fmr_0.001``.

    Args:
        key: Metric name.

    Returns:
        The header; the key itself for a metric without a known header.
    """
    match = re.fullmatch(r"(\w+?)_at_fmr_([0-9.e-]+)", key)
    if match:
        name = match.group(1)
        if name in _TARGETED_NAMES:
            name = _TARGETED_NAMES[name]
        else:
            name = name.upper() if _RATE_RE.search(name) else name.replace("_", " ")
        return f"{name} @ FMR {float(match.group(2)) * 100:g}%"
    return _HEADERS.get(key, key)


def _with_companions(keys: list[str]) -> list[str]:
    """``keys`` with each companion moved right after the metric it belongs beside (see ``_COMPANIONS``)."""
    out = list(keys)
    for lead, companion in _COMPANIONS.items():
        if lead in out and companion in out:
            out.remove(companion)
            out.insert(out.index(lead) + 1, companion)
    return out


def metric_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Metric table columns: the union of metric keys over ``rows``.

    Known metrics come first in a fixed order, then unknown ones in order of
    first appearance, maximal linkability right after D↔sys. A
    ``<m>_ci_low``/``<m>_ci_high`` pair is folded into column ``<m>`` when
    ``<m>`` itself is present.

    Args:
        rows: Result rows, each with a ``metrics`` dict.

    Returns:
        Column keys.
    """
    keys = unique_in_order(k for row in rows for k in (row.get("metrics") or {}))
    present = set(keys)
    folded = {k for k in keys if k != _strip_ci(k) and _strip_ci(k) in present}
    known = [k for k in _PREFERRED_METRICS if k in present]
    rest = [k for k in keys if k not in _PREFERRED_METRICS and k not in folded]
    return _with_companions(known + rest)


def metric_cell(key: str, metrics: Mapping[str, Any]) -> dict[str, str]:
    """One metric of a row as the page shows it: its value and its CI.

    Args:
        key: Metric name.
        metrics: The row's metrics.

    Returns:
        ``{"value", "ci"}``; ``ci`` is ``"low – high"``, ``""`` without bounds.
    """
    low, high = metrics.get(key + "_ci_low"), metrics.get(key + "_ci_high")
    ci = ""
    if low is not None or high is not None:
        ci = f"{format_metric(key, low)} – {format_metric(key, high)}"
    return {"value": format_metric(key, metrics.get(key)), "ci": ci}


def estimate(key: str, metrics: Mapping[str, Any] | None) -> Estimate:
    """The raw value of ``key`` in ``metrics`` with its CI bounds, for the exported tables.

    Args:
        key: Metric name.
        metrics: A row's metrics, or None.

    Returns:
        The estimate (an int value stays an int); None for whatever is missing or not a finite number.
    """
    metrics = metrics or {}
    value = metrics.get(key)
    return Estimate(
        # An int stays one (a count); optional_number would make it a float.
        value if isinstance(value, int) and not isinstance(value, bool) else optional_number(value),
        optional_number(metrics.get(key + "_ci_low")),
        optional_number(metrics.get(key + "_ci_high")),
    )
