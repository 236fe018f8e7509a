"""Certification verdicts: PASS or FAIL per criterion, judged on CI bounds.

A ``max`` criterion is judged on the upper CI bound (``<metric>_ci_high``)
and a ``min`` criterion on the lower one, never on the point estimate alone;
a metric without a CI is judged on its value. Every row matching the
criterion's patterns must pass; a criterion that matches no row, or whose
metric is undefined in a matching row, fails: a certificate cannot rest on
missing evidence.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Sequence

__all__ = ["judge", "KNOWN_METRICS", "known_metric"]

# Metric keys a criterion may name (fnmatch patterns).
KNOWN_METRICS = (
    "eer", "fnmr_at_fmr_*", "d_prime", "delta_eer", "d_sys", "d_sys_null", "d_sys_null_high",
    "sar_at_fmr_*", "psnr", "ssim", "key_space_bits", "n_fta",
)


def known_metric(name: str) -> bool:
    base = name.removesuffix("_ci_low").removesuffix("_ci_high")
    return any(fnmatch.fnmatchcase(base, pat) for pat in KNOWN_METRICS)


def _bound(metrics: dict[str, Any], metric: str, upper: bool) -> Any:
    side = "ci_high" if upper else "ci_low"
    value = metrics.get(f"{metric}_{side}")
    return metrics.get(metric) if value is None else value


def _matches(row: dict[str, Any], crit: Any) -> bool:
    return (
        fnmatch.fnmatchcase(str(row["view"]), crit.view)
        and fnmatch.fnmatchcase(str(row["recognizer"]), crit.recognizer)
        and fnmatch.fnmatchcase(str(row["scheme"]), crit.scheme)
    )


def judge(rows: Sequence[dict[str, Any]], criteria: Sequence[Any]) -> list[dict[str, Any]]:
    """One verdict entry per criterion (the worst matching row decides)."""
    out = []
    for crit in criteria:
        upper = crit.max is not None
        limit = crit.max if upper else crit.min
        matched = [r for r in rows if _matches(r, crit)]
        bounds = [(_bound(r["metrics"], crit.metric, upper), r) for r in matched]
        missing = [r for b, r in bounds if b is None]
        defined = [(b, r) for b, r in bounds if b is not None]
        worst = (max if upper else min)(defined, key=lambda br: br[0], default=(None, None))
        ok = bool(matched) and not missing and all((b <= limit) if upper else (b >= limit) for b, _ in defined)
        row = worst[1]
        entry = {
            "metric": crit.metric,
            "view": crit.view,
            "recognizer": crit.recognizer,
            "scheme": crit.scheme,
            ("max" if upper else "min"): limit,
            "value": worst[0],
            "point": None if row is None else row["metrics"].get(crit.metric),
            "worst_row": None if row is None else f"{row['recognizer']} / {row['scheme']} / {row['view']}",
            "n_rows": len(matched),
            "n_undefined": len(missing),
            "verdict": "PASS" if ok else "FAIL",
        }
        out.append(entry)
    return out
