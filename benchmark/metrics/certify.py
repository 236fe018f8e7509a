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

A recognizer that cannot recognize proves nothing: in a security view
(``strength``, ``linkage``, ``renewal``), a row's score metric is evidence
that the criterion holds only when the row's recognizer is *competent*: its
own baseline row (plain faces) shows an FNMR of at most
``competence.max_fnmr`` on the upper CI bound, at the criterion's own FMR
(``*_at_fmr_<t>``) or else at ``competence.fmr``. Rows of a recognizer not
shown competent are set aside (named, with the reason, in the entry); a
failing one still fails the criterion (the attack got through even so), and
a criterion left without competent rows is UNRESOLVED, never PASS.

Metrics without a sampling distribution (``key_space_bits``, counts,
``d_sys_null``, ``linkability_max_null``) are judged on their value.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from benchmark.core.numbers import format_value

__all__ = [
    "judge",
    "overall_verdict",
    "KNOWN_METRICS",
    "CI_METRICS",
    "SCORE_METRICS",
    "SECURITY_VIEWS",
    "DEFAULT_MAX_FNMR",
    "DEFAULT_COMPETENCE_FMR",
    "known_metric",
    "needs_ci",
    "competence_key",
]

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
# Metrics read off a recognizer's comparison scores: only these depend on its competence (PSNR, key space do not).
SCORE_METRICS = (
    "eer",
    "fnmr_at_fmr_*",
    "d_prime",
    "delta_eer",
    "d_sys",
    "d_sys_null*",
    "linkability_max",
    "linkability_max_null*",
    "sar_at_fmr_*",
)
# View kinds where passing means "the attacker fails": there a recognizer that misses genuine pairs passes for free.
SECURITY_VIEWS = ("strength", "linkage", "renewal")
#: Default ``competence.max_fnmr``: the baseline may miss at most 10 % of genuine pairs.
DEFAULT_MAX_FNMR = 0.1
#: Default ``competence.fmr``: the operating point for criteria not at an FMR (0.1 %, as the default SAR).
DEFAULT_COMPETENCE_FMR = 0.001
_AT_FMR = re.compile(r"^(fnmr|sar)_at_fmr_(?P<t>[0-9.e+-]+)$")


class Criterion(Protocol):
    metric: str
    view: str
    recognizer: str
    scheme: str
    max: float | None
    min: float | None


class Competence(Protocol):
    max_fnmr: float
    fmr: float


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


def competence_key(metric: str, fmr: float) -> str:
    """The baseline metric that shows a recognizer competent for a criterion on ``metric``.

    The FNMR at the criterion's own FMR for an ``*_at_fmr_<t>`` metric (the
    operating point whose threshold the criterion uses), else at ``fmr``.
    """
    m = _AT_FMR.match(_base(metric))
    return f"fnmr_at_fmr_{m['t'] if m else repr(float(fmr))}"


def _needs_competence(row: Mapping[str, Any], metric: str) -> bool:
    kind = str(row["view"]).partition(":")[0]
    return kind in SECURITY_VIEWS and any(fnmatch.fnmatchcase(_base(metric), pat) for pat in SCORE_METRICS)


def _incompetent(baseline: Mapping[str, Any] | None, key: str, comp: Competence, n_boot: int) -> str | None:
    """Why a recognizer with this baseline row's metrics is not shown competent at ``key``, or None.

    Judged on the upper CI bound: competent only where the data show it.
    """
    if baseline is None:
        return "it has no baseline row"
    value = baseline.get(key)
    if value is None:
        return f"its baseline row has no {key} (add fnmr_at_fmr with that target to metrics)"
    why = _unresolved(baseline, key, n_boot)
    if why is not None:
        return f"its baseline cannot show it: {why}"
    high = baseline[f"{key}_ci_high"]
    if high > comp.max_fnmr:
        fmr = float(key.removeprefix("fnmr_at_fmr_"))
        return (
            f"its baseline misses {value:.1%} of genuine pairs at FMR {100 * fmr:g}% "
            f"(CI upper bound {high:.1%} > competence.max_fnmr {100 * comp.max_fnmr:g}%)"
        )
    return None


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


def judge(
    rows: Sequence[Mapping[str, Any]],
    criteria: Sequence[Criterion],
    n_boot: int,
    competence: Competence | None = None,
    baselines: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One verdict entry per criterion (the worst matching row decides).

    Args:
        rows: Result rows.
        criteria: The protocol's criteria.
        n_boot: The protocol's bootstrap resamples (to say why a CI is missing).
        competence: What a recognizer's baseline must show for its security
            rows to count as evidence; None: every row counts.
        baselines: Baseline metrics per recognizer; None: read off the
            ``baseline`` rows of ``rows``.

    Returns:
        The entries; besides the verdict and its reason, ``decided_by`` (the
        recognizer of the deciding row) and ``not_competent`` (recognizer:
        why its rows were set aside).
    """
    if baselines is None:
        baselines = {str(r["recognizer"]): r["metrics"] for r in rows if r["view"] == "baseline"}
    out = []
    for crit in criteria:
        upper = crit.max is not None
        limit = crit.max if upper else crit.min
        assert limit is not None
        matched = [r for r in rows if _matches(r, crit)]
        judged, missing = [], []
        for r in matched:
            metrics = r["metrics"]
            if metrics.get(crit.metric) is None:
                missing.append(r)
                continue
            reason = _unresolved(metrics, crit.metric, n_boot)
            bound = metrics.get(f"{crit.metric}_{'ci_high' if upper else 'ci_low'}") if needs_ci(crit.metric) else None
            judged.append((metrics[crit.metric] if bound is None else bound, r, reason))
        failing = [(b, r) for b, r, _ in judged if (b > limit if upper else b < limit)]
        # Rows of a recognizer not shown competent are no evidence that the criterion holds; a failing one still fails it.
        void: dict[str, str] = {}
        if competence is not None:
            key = competence_key(crit.metric, competence.fmr)
            for _, r, _ in judged:
                rec = str(r["recognizer"])
                if rec not in void and _needs_competence(r, crit.metric):
                    why = _incompetent(baselines.get(rec), key, competence, n_boot)
                    if why is not None:
                        void[rec] = why
        evidence = [j for j in judged if str(j[1]["recognizer"]) not in void]
        unresolved = [(r, why) for _, r, why in evidence if why is not None]
        pool = evidence if evidence and not failing else judged
        worst = (max if upper else min)(pool, key=lambda x: x[0], default=(None, None, None))
        if not matched:
            verdict, reason = "FAIL", "no row matches the criterion"
        elif missing:
            verdict, reason = (
                "FAIL",
                f"{crit.metric} is undefined in {len(missing)} matching row(s), e.g. {_name(missing[0])}",
            )
        elif failing:
            b, r = (max if upper else min)(failing, key=lambda x: x[0])
            value, bound = format_value(crit.metric, b), format_value(crit.metric, limit, digits=6)
            verdict, reason = "FAIL", f"{_name(r)}: {value} {'>' if upper else '<'} {bound}"
        elif not evidence:
            verdict, reason = "UNRESOLVED", "no competent recognizer"
        elif unresolved:
            r, why = unresolved[0]
            verdict, reason = "UNRESOLVED", f"{_name(r)}: {why}"
        else:
            verdict, reason = "PASS", ""
        if void:
            set_aside = "not competent, so no evidence of a pass: " + "; ".join(f"{k}: {v}" for k, v in void.items())
            reason = f"{reason}; {set_aside}" if reason else set_aside
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
            "decided_by": None if row is None or not evidence and not failing else str(row["recognizer"]),
            "n_rows": len(matched),
            "n_undefined": len(missing),
            "verdict": verdict,
            "reason": reason,
            "not_competent": void,
            "competence": None if competence is None else {"max_fnmr": competence.max_fnmr, "fmr": competence.fmr},
        }
        out.append(entry)
    return out


def _name(row: Mapping[str, Any]) -> str:
    return f"{row['recognizer']} / {row['scheme']} / {row['view']}"


def overall_verdict(verdicts: Sequence[str]) -> str:
    """The worst of the criteria's verdicts: PASS only when all pass; INCOMPLETE for a verdict that is none of the three."""
    seen = set(verdicts)
    if seen == {"PASS"}:
        return "PASS"
    for verdict in ("FAIL", "UNRESOLVED"):
        if verdict in seen:
            return verdict
    return "INCOMPLETE"
