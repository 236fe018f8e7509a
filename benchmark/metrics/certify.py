"""Certification verdicts: PASS, FAIL or UNRESOLVED per criterion, judged on CI bounds.

A ``max`` criterion is judged on the upper CI bound (``<metric>_ci_high``)
and a ``min`` criterion on the lower one, never on the point estimate alone.
Every row matching the criterion's patterns must pass:

* FAIL: a matching row breaks the bound, a matching row lacks the metric,
  or no row matches (a certificate cannot rest on missing evidence);
* UNRESOLVED: no row fails, but the data cannot resolve the criterion in
  some row: a metric that is judged on its CI has none (the protocol's
  ``bootstrap.n_boot`` is 0), or an ``*_at_fmr_<t>`` metric's target lies
  below ``1 / n`` with ``n`` the impostor scores that set its threshold (no
  threshold can then show an FMR of ``t``; the figure is only "FMR 0");
* PASS otherwise.

Metrics without a sampling distribution (``key_space_bits``, counts,
``d_sys_null``, ``linkability_max_null``) are judged on their value.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

__all__ = ["judge", "KNOWN_METRICS", "CI_METRICS", "known_metric", "needs_ci"]

# Metric keys a criterion may name (fnmatch patterns).
KNOWN_METRICS = (
    "eer",
    "fnmr_at_fmr_*",
    "d_prime",
    "delta_eer",
    "d_sys",
    "d_sys_null",
    "d_sys_null_high",
    "linkability_max",
    "linkability_max_null",
    "linkability_max_null_high",
    "sar_at_fmr_*",
    "psnr",
    "ssim",
    "key_space_bits",
    "transform_space_bits",
    "n_fta",
)
# Metrics estimated from a sample: judged on a CI bound, so they need one.
CI_METRICS = (
    "eer",
    "fnmr_at_fmr_*",
    "d_prime",
    "delta_eer",
    "d_sys",
    "linkability_max",
    "sar_at_fmr_*",
    "psnr",
    "ssim",
)
_AT_FMR = re.compile(r"^(fnmr|sar)_at_fmr_(?P<t>[0-9.e+-]+)$")


class Criterion(Protocol):
    metric: str
    view: str
    recognizer: str
    scheme: str
    max: float | None
    min: float | None


def _base(name: str) -> str:
    return name.removesuffix("_ci_low").removesuffix("_ci_high")


def known_metric(name: str) -> bool:
    return any(fnmatch.fnmatchcase(_base(name), pat) for pat in KNOWN_METRICS)


def needs_ci(name: str) -> bool:
    """True for a metric judged on its CI bound (not for an explicit ``_ci_low``/``_ci_high`` key)."""
    return name == _base(name) and any(fnmatch.fnmatchcase(name, pat) for pat in CI_METRICS)


def _matches(row: Mapping[str, Any], crit: Criterion) -> bool:
    return (
        fnmatch.fnmatchcase(str(row["view"]), crit.view)
        and fnmatch.fnmatchcase(str(row["recognizer"]), crit.recognizer)
        and fnmatch.fnmatchcase(str(row["scheme"]), crit.scheme)
    )


def _unresolved(metrics: Mapping[str, Any], metric: str, n_boot: int) -> str | None:
    """Why ``metric`` cannot be judged in a row with these metrics, or None."""
    m = _AT_FMR.match(metric)
    if m:
        target = float(m["t"])
        n = metrics.get("n_sar_impostor" if metric.startswith("sar_") else "n_impostor")
        if isinstance(n, (int, float)) and target * n < 1:
            return (
                f"FMR target {target:g} is below 1/{int(n)} (the row has {int(n):,} impostor scores; "
                f"at least {int(-(-1 // target)):,} are needed)"
            )
    if needs_ci(metric):
        side = (metrics.get(f"{metric}_ci_low"), metrics.get(f"{metric}_ci_high"))
        if None in side:
            why = "bootstrap.n_boot is 0" if n_boot == 0 else "its bootstrap CI is undefined"
            return f"{metric} has no confidence interval ({why})"
    return None


def judge(rows: Sequence[Mapping[str, Any]], criteria: Sequence[Criterion], n_boot: int) -> list[dict[str, Any]]:
    """One verdict entry per criterion (the worst matching row decides).

    Args:
        rows: Result rows.
        criteria: The protocol's criteria.
        n_boot: The protocol's bootstrap resamples (to say why a CI is missing).
    """
    out = []
    for crit in criteria:
        upper = crit.max is not None
        limit = crit.max if upper else crit.min
        assert limit is not None
        matched = [r for r in rows if _matches(r, crit)]
        judged, unresolved, missing = [], [], []
        for r in matched:
            metrics = r["metrics"]
            if metrics.get(crit.metric) is None:
                missing.append(r)
                continue
            reason = _unresolved(metrics, crit.metric, n_boot)
            bound = metrics.get(f"{crit.metric}_{'ci_high' if upper else 'ci_low'}") if needs_ci(crit.metric) else None
            judged.append((metrics[crit.metric] if bound is None else bound, r, reason))
        failing = [(b, r) for b, r, _ in judged if (b > limit if upper else b < limit)]
        unresolved = [(r, why) for _, r, why in judged if why is not None]
        worst = (max if upper else min)(judged, key=lambda x: x[0], default=(None, None, None))
        if not matched:
            verdict, reason = "FAIL", "no row matches the criterion"
        elif missing:
            verdict, reason = (
                "FAIL",
                f"{crit.metric} is undefined in {len(missing)} matching row(s), e.g. {_name(missing[0])}",
            )
        elif failing:
            b, r = (max if upper else min)(failing, key=lambda x: x[0])
            verdict, reason = "FAIL", f"{_name(r)}: {b:.6g} {'>' if upper else '<'} {limit:g}"
        elif unresolved:
            r, why = unresolved[0]
            verdict, reason = "UNRESOLVED", f"{_name(r)}: {why}"
        else:
            verdict, reason = "PASS", ""
        row = worst[1]
        entry = {
            "metric": crit.metric,
            "view": crit.view,
            "recognizer": crit.recognizer,
            "scheme": crit.scheme,
            ("max" if upper else "min"): limit,
            "value": worst[0],
            "point": None if row is None else row["metrics"].get(crit.metric),
            "worst_row": None if row is None else _name(row),
            "n_rows": len(matched),
            "n_undefined": len(missing),
            "verdict": verdict,
            "reason": reason,
        }
        out.append(entry)
    return out


def _name(row: Mapping[str, Any]) -> str:
    return f"{row['recognizer']} / {row['scheme']} / {row['view']}"
