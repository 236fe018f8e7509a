"""Render results (:class:`benchmark.engine.results.Results`, the ``results.json`` schema) as one HTML page.

The renderer only *presents* what the results hold: metrics are formatted,
never recomputed from scores. The page references nothing outside itself
(CSS inlined, figures as PNG data URIs, no scripts) so it can be archived or
mailed as a single file, and identical results give byte-identical HTML.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from benchmark.core.cache import atomic_write_text
from benchmark.engine.results import Results
from reports.plots import (
    PALETTE,
    VIEW_COLOURS,
    DetCurve,
    QualitySeries,
    ScoreDensity,
    det_plot,
    generalisation_matrix_plot,
    quality_distributions_plot,
    recognizer_training_plot,
    score_histogram,
    sweep_plot,
    training_curve_plot,
    unlinkability_plot,
    view_distributions_plot,
)

__all__ = [
    "render_report",
    "write_report",
    "build_context",
    "metric_columns",
    "format_metric",
    "generalisation_tables",
]

_TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
_TEMPLATE = "report.html.j2"

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
_CI_SUFFIXES = ("_ci_low", "_ci_high")
# Error/success rates are shown as percentages; other numbers as they are.
_RATE_RE = re.compile(r"^(eer|fmr|fnmr|far|frr|sar|fpir|fnir|apcer|bpcer|acer|iar|gar|tar)(_|$)|_rate(_|$)")
_COUNT_RE = re.compile(r"^n_")
# Defence in depth for provenance sub-dicts: never print anything key-like.
_SECRET_RE = re.compile(r"key|secret|password|passwd|token|credential", re.IGNORECASE)
_GROUP_FIELDS = ("recognizer", "scheme", "attack", "view")
_DASH = "—"


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(_TEMPLATE_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


# --------------------------------------------------------------------------- formatting


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _format_percent(value: float) -> str:
    pct = value * 100
    if pct == 0:
        return "0%"
    # At least two significant digits, never scientific notation.
    decimals = max(2, 1 - math.floor(math.log10(abs(pct))))
    return f"{pct:.{decimals}f}%"


def _format_plain(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.3e}"
    return f"{value:.4g}"


def format_metric(key: str, value: Any) -> str:
    """Format one metric value for display.

    Args:
        key: Metric name; rates (``eer``, ``fnmr_*``, ``sar_*``, ``*_rate``,
            including their ``_ci_low``/``_ci_high`` bounds) become percentages,
            ``n_*`` counts get thousands separators.
        value: The number, or None when the metric is undefined.

    Returns:
        Display text; ``"—"`` for None or non-finite values.
    """
    if value is None:
        return _DASH
    if not _is_number(value):
        return str(value)
    if not math.isfinite(value):
        return _DASH
    base = _strip_ci(key)
    if _RATE_RE.search(base):
        return _format_percent(value)
    if _COUNT_RE.search(base):
        return f"{int(round(value)):,}"
    return _format_plain(value)


def _strip_ci(key: str) -> str:
    for suffix in _CI_SUFFIXES:
        if key.endswith(suffix):
            return key[: -len(suffix)]
    return key


def _format_params(params: Mapping[str, Any] | None) -> str:
    if not params:
        return ""
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items()))


def _metric_header(key: str) -> str:
    match = re.fullmatch(r"(\w+?)_at_fmr_([0-9.e-]+)", key)
    if match:
        name = match.group(1)
        name = name.upper() if _RATE_RE.search(name) else name.replace("_", " ")
        return f"{name} @ FMR {float(match.group(2)) * 100:g}%"
    return {"eer": "EER", "d_prime": "d′", "n_genuine": "# genuine", "n_impostor": "# impostor"}.get(key, key)


# --------------------------------------------------------------------------- table


def _unique_in_order(items: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(items))


def metric_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Metric table columns: the union of metric keys over ``rows``.

    Known metrics come first in a fixed order, then unknown ones in order of
    first appearance. A ``<m>_ci_low``/``<m>_ci_high`` pair is folded into
    column ``<m>`` when ``<m>`` itself is present.

    Args:
        rows: Result rows, each with a ``metrics`` dict.

    Returns:
        Column keys.
    """
    keys = _unique_in_order(k for row in rows for k in (row.get("metrics") or {}))
    present = set(keys)
    folded = {k for k in keys if k != _strip_ci(k) and _strip_ci(k) in present}
    known = [k for k in _PREFERRED_METRICS if k in present]
    rest = [k for k in keys if k not in _PREFERRED_METRICS and k not in folded]
    return known + rest


def _metric_cell(key: str, metrics: Mapping[str, Any]) -> dict[str, str]:
    low, high = metrics.get(key + "_ci_low"), metrics.get(key + "_ci_high")
    ci = ""
    if low is not None or high is not None:
        ci = f"{format_metric(key, low)} – {format_metric(key, high)}"
    return {"value": format_metric(key, metrics.get(key)), "ci": ci}


def _sorted_rows(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Group rows by recognizer, scheme, attack, view, each in first-seen order.

    First-seen order (not alphabetical) keeps the protocol's own order, e.g.
    the unprotected baseline before the protected views.
    """
    rank = {
        field: {v: i for i, v in enumerate(_unique_in_order(str(r.get(field)) for r in rows))}
        for field in _GROUP_FIELDS
    }
    return sorted(rows, key=lambda r: tuple(rank[f][str(r.get(f))] for f in _GROUP_FIELDS))


def _recognizer_labels(rows: Sequence[Mapping[str, Any]]) -> dict[int, str]:
    """Legend label per row: the recognizer name, plus its parameters only where
    one name appears with several parameter sets."""
    variants: dict[str, set[str]] = {}
    for row in rows:
        variants.setdefault(row["recognizer"], set()).add(_format_params(row.get("recognizer_params")))
    labels = {}
    for row in rows:
        name, params = row["recognizer"], _format_params(row.get("recognizer_params"))
        labels[id(row)] = f"{name} ({params})" if len(variants[name]) > 1 else name
    return labels


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> list[dict[str, Any]]:
    return [
        {
            "recognizer": row["recognizer"],
            "recognizer_params": _format_params(row.get("recognizer_params")),
            "scheme": row.get("scheme", ""),
            "scheme_params": _format_params(row.get("scheme_params")),
            "attack": row.get("attack", ""),
            "view": row.get("view", ""),
            "cells": [_metric_cell(c, row.get("metrics") or {}) for c in columns],
            "score_file": row.get("score_file") or "",
        }
        for row in rows
    ]


# Image-level columns of the attack table: the same for every recognizer of a view.
_ATTACK_QUALITY = (
    ("psnr", "PSNR (dB)"),
    ("ssim", "SSIM"),
    ("psnr_gain_vs_naive", "PSNR gain vs naive (dB)"),
    ("psnr_gain_min_vs_naive", "worst image gain (dB)"),
    ("better_rate_vs_naive", "better than naive"),
    ("n_worse_vs_naive", "# images worse than naive"),
)


def _attack_table(rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str]) -> dict[str, Any] | None:
    """Attacks side by side, one line per (scheme, strength view): EER per recognizer, then image quality.

    None when no row is an attacked (``strength:``) view.
    """
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        if str(row.get("view", "")).startswith("strength:"):
            groups.setdefault((str(row.get("scheme")), str(row.get("attack"))), []).append(row)
    if not groups:
        return None
    recognizers = _unique_in_order(labels[id(r)] for members in groups.values() for r in members)
    lines = []
    for (scheme, attack), members in groups.items():
        eer = {labels[id(r)]: (r.get("metrics") or {}).get("eer") for r in members}
        first = members[0].get("metrics") or {}
        lines.append(
            {
                "scheme": scheme,
                "attack": attack,
                "eers": [format_metric("eer", eer.get(name)) for name in recognizers],
                "quality": [_with_ci(key, first) for key, _ in _ATTACK_QUALITY],
            }
        )
    return {"recognizers": recognizers, "quality_headers": [h for _, h in _ATTACK_QUALITY], "rows": lines}


def _with_ci(key: str, metrics: Mapping[str, Any]) -> str:
    cell = _metric_cell(key, metrics)
    return f"{cell['value']} ({cell['ci']})" if cell["ci"] else cell["value"]


def _strength_by_setting(rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str]) -> list[dict[str, Any]]:
    """Strength-view EER with its CI laid out as in a paper: per recognizer, attacks down, schemes across.

    Every recognizer's table has the same scheme columns, in the order the
    schemes first appear in ``rows`` (the results' own row order); an
    attack line is listed for a recognizer with at least one row for it.

    Args:
        rows: Result rows in the results' order; only ``strength:`` views count.
        labels: Recognizer label per row (keyed by ``id(row)``).

    Returns:
        One ``{"recognizer", "schemes", "lines"}`` table per recognizer;
        each line ``{"attack", "cells"}`` with one ``{"value", "ci"}`` cell
        per scheme (``"—"`` where that setting was not run).
    """
    strength = [r for r in rows if str(r.get("view", "")).startswith("strength:")]
    schemes = _unique_in_order(str(r.get("scheme")) for r in strength)
    attacks = _unique_in_order(str(r.get("attack")) for r in strength)
    cells: dict[str, dict[tuple[str, str], Mapping[str, Any]]] = {}
    for row in strength:
        setting = (str(row.get("attack")), str(row.get("scheme")))
        cells.setdefault(labels[id(row)], {}).setdefault(setting, row.get("metrics") or {})
    tables = []
    for recognizer, by_setting in cells.items():
        present = {attack for attack, _ in by_setting}
        lines = [
            {
                "attack": attack,
                "cells": [
                    _metric_cell("eer", by_setting[(attack, scheme)])
                    if (attack, scheme) in by_setting
                    else {"value": _DASH, "ci": ""}
                    for scheme in schemes
                ],
            }
            for attack in attacks
            if attack in present
        ]
        tables.append({"recognizer": recognizer, "schemes": schemes, "lines": lines})
    return tables


# --------------------------------------------------------------------------- figures


def _det_figures(rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str]) -> list[dict]:
    """One DET figure per (scheme, attack, view), one curve per recognizer."""
    colours = {
        label: PALETTE[i % len(PALETTE)] for i, label in enumerate(_unique_in_order(labels[id(r)] for r in rows))
    }
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        key = (str(row.get("scheme")), str(row.get("attack")), str(row.get("view")))
        groups.setdefault(key, []).append(row)
    figures = []
    for (scheme, attack, view), members in groups.items():
        curves = []
        for row in members:
            det = (row.get("curves") or {}).get("det") or {}
            label = labels[id(row)]
            eer = (row.get("metrics") or {}).get("eer")
            if eer is not None:
                label = f"{label} (EER {format_metric('eer', eer)})"
            curves.append(DetCurve(label, det.get("fmr") or [], det.get("fnmr") or [], colours[labels[id(row)]]))
        title = f"scheme {scheme} · attack {attack} · view {view}"
        figures.append({"title": title, "uri": det_plot(curves, title=title)})
    return figures


def _histograms(rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str]) -> list[dict]:
    figures = []
    for row in rows:
        hist = (row.get("curves") or {}).get("hist") or {}
        title = " · ".join([labels[id(row)], *(str(row.get(f)) for f in _GROUP_FIELDS[1:])])
        uri = score_histogram(
            hist.get("edges") or [], hist.get("genuine") or [], hist.get("impostor") or [], title=title
        )
        figures.append({"title": title, "uri": uri})
    return figures


def _optional_number(value: Any) -> float | None:
    return float(value) if _is_number(value) and math.isfinite(value) else None


def _unlinkability_figures(rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str]) -> list[dict]:
    """One figure per row whose curves hold an ``unlinkability`` entry."""
    figures = []
    for row in rows:
        curve = (row.get("curves") or {}).get("unlinkability")
        if not curve:
            continue
        title = " · ".join([labels[id(row)], *(str(row.get(f)) for f in _GROUP_FIELDS[1:])])
        uri = unlinkability_plot(
            curve.get("edges") or [],
            curve.get("mated_density") or [],
            curve.get("nonmated_density") or [],
            curve.get("d_local") or [],
            d_sys=_optional_number(curve.get("d_sys")),
            omega=_optional_number(curve.get("omega")),
            title=title,
        )
        figures.append({"title": title, "uri": uri})
    return figures


def _sweep_figures(results: Mapping[str, Any]) -> list[dict]:
    """EER against the swept parameter, per sweep and view (dotted: baseline)."""
    rows = results.get("rows") or []
    baselines = {r.get("recognizer"): (r.get("metrics") or {}).get("eer") for r in rows if r.get("view") == "baseline"}
    figures = []
    for sweep in results.get("sweeps") or []:
        labels = list(sweep.get("labels") or [])
        views = sorted({str(r.get("view")) for r in rows if r.get("scheme") in labels})
        for view in views:
            series: dict[str, list] = {}
            for rec in dict.fromkeys(str(r.get("recognizer")) for r in rows):
                by_scheme = {
                    r.get("scheme"): (r.get("metrics") or {}).get("eer")
                    for r in rows
                    if r.get("recognizer") == rec and r.get("view") == view
                }
                if any(lbl in by_scheme for lbl in labels):
                    series[rec] = [_optional_number(by_scheme.get(lbl)) for lbl in labels]
            title = f"{sweep.get('scheme')} sweep over {sweep.get('param')} · {view}"
            uri = sweep_plot(
                sweep.get("values") or [], series, baselines=baselines, xlabel=str(sweep.get("param")), title=title
            )
            figures.append({"title": title, "uri": uri})
    return figures


def _hist_density(label: str, row: Mapping[str, Any], colour: str) -> ScoreDensity | None:
    hist = (row.get("curves") or {}).get("hist") or {}
    if not hist.get("edges"):
        return None
    return ScoreDensity(label, hist["edges"], hist.get("genuine") or [], hist.get("impostor") or [], colour)


def _view_distribution_figures(rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str]) -> list[dict]:
    """Baseline, preservation and strength densities per (recognizer, scheme).

    The convention of the IJCB 2020 warping paper: baseline red,
    preservation blue, ``strength:<attack>`` green. Only for schemes with
    both a preservation and a strength row holding histograms; the baseline
    (scheme ``none``) is that recognizer's own.
    """
    baselines = {labels[id(r)]: r for r in rows if r.get("scheme") == "none" and r.get("view") == "baseline"}
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        if row.get("scheme") != "none":
            groups.setdefault((labels[id(row)], str(row.get("scheme"))), []).append(row)
    figures = []
    for (recognizer, scheme), members in groups.items():
        preservation = [r for r in members if r.get("view") == "preservation"]
        strength = [r for r in members if str(r.get("view", "")).startswith("strength:")]
        densities = [_hist_density(str(r.get("view")), r, VIEW_COLOURS["preservation"]) for r in preservation]
        # Several attacks: one shade of green each, darkest first.
        greens = [VIEW_COLOURS["strength"], "#176117", "#7FD17F", "#0B3D0B"]
        found = [_hist_density(str(r.get("view")), r, greens[i % len(greens)]) for i, r in enumerate(strength)]
        if not any(densities) or not any(found):
            continue
        base = baselines.get(recognizer)
        drawn = [_hist_density("baseline", base, VIEW_COLOURS["baseline"]) if base else None, *densities, *found]
        title = f"{recognizer} · {scheme}"
        figures.append(
            {"title": title, "uri": view_distributions_plot([d for d in drawn if d is not None], title=title)}
        )
    return figures


# --------------------------------------------------------------------------- optional blocks
# ``examples``, ``trained_models`` and ``face_quality`` are optional: results
# files written before them lack them, and a malformed entry shows what it can
# rather than failing the whole report.

_PNG_DATA_URI_RE = re.compile(r"data:image/png;base64,[A-Za-z0-9+/]*={0,2}")
_EXAMPLE_WIDTH = 112
# The original (unprotected) faces in ``face_quality``: the reference distribution.
_PLAIN = "none"
_PLAIN_COLOUR = "#000000"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _mappings(value: Any) -> list[Mapping[str, Any]]:
    """The mapping entries of a list-valued block; anything else is dropped."""
    return [v for v in _list(value) if isinstance(v, Mapping)]


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _count(value: Any) -> str:
    return f"{int(round(value)):,}" if _is_number(value) and math.isfinite(value) else _DASH


def _png_data_uri(value: Any) -> str | None:
    """``value`` if it is an inline base64 PNG, else None.

    Only this form is let through, so a results file cannot make the page
    load anything from elsewhere (``https:``, ``file:``) or run a script
    (``javascript:``, SVG).
    """
    return value if isinstance(value, str) and _PNG_DATA_URI_RE.fullmatch(value) else None


def _examples(block: Any) -> list[dict[str, Any]]:
    """Example faces, one grid per scheme: a column per image set, a line per sample.

    Args:
        block: ``results["examples"]``: ``{"scheme", "columns", "samples"}``
            per scheme, each sample ``{"id", "subject", "images"}`` with one
            PNG data URI (or null) per column.

    Returns:
        ``{"scheme", "columns", "width", "samples"}`` per scheme; each
        sample's ``cells`` hold one ``{"src", "alt"}`` per column, ``src``
        None where the image is missing, failed or not an inline PNG.
    """
    grids = []
    for entry in _mappings(block):
        columns = [_text(c) for c in _list(entry.get("columns"))]
        samples = _mappings(entry.get("samples"))
        width = max([len(columns), *(len(_list(s.get("images"))) for s in samples)])
        columns += [""] * (width - len(columns))
        lines = []
        for sample in samples:
            sample_id = _text(sample.get("id"))
            images = _list(sample.get("images")) + [None] * width
            cells = [{"src": _png_data_uri(images[j]), "alt": f"{sample_id}, {columns[j]}"} for j in range(width)]
            lines.append({"id": sample_id, "subject": _text(sample.get("subject")), "cells": cells})
        grids.append(
            {"scheme": _text(entry.get("scheme")), "columns": columns, "width": _EXAMPLE_WIDTH, "samples": lines}
        )
    return grids


def _format_duration(seconds: Any) -> str:
    if not (_is_number(seconds) and math.isfinite(seconds)) or seconds < 0:
        return _DASH
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _format_loss(value: float | None) -> str:
    return _DASH if value is None else _format_plain(value)


def _is_recognizer_model(model: Mapping[str, Any]) -> bool:
    """Whether ``model`` is a fine-tuned recognizer; files written before recognizer attacks lack ``kind``."""
    return model.get("kind") == "recognizer"


def _training_title(model: Mapping[str, Any]) -> str:
    group = model.get("group")
    # A model trained on settings other than the one attacked has no scheme;
    # ``trained_on`` then names them.
    setting = _text(model.get("scheme")) or _text(model.get("trained_on"))
    attack = _text(model.get("attack"))
    title = f"{attack} on {setting}" if setting else attack
    return title if group is None else f"{title} (group {group})"


def _recognizer_history(model: Mapping[str, Any], title: str) -> dict[str, Any]:
    """Training curve and validation summary of a fine-tuned recognizer's history.

    Epoch 0 is the pretrained model (validation EER, no loss); the ``kept``
    epoch is the one whose weights the attack used.
    """
    history = _mappings(model.get("history"))
    # An entry without a usable epoch number is taken to be the next epoch, counting from 0.
    epochs = [_or(_optional_number(h.get("epoch")), float(i)) for i, h in enumerate(history)]
    # Only trained epochs have a loss, whatever an epoch-0 entry says.
    loss = [_optional_number(h.get("loss")) if e >= 1 else None for e, h in zip(epochs, history)]
    val_eer = [_optional_number(h.get("val_eer")) for h in history]
    kept = next((i for i, h in enumerate(history) if h.get("kept") is True), None)
    uri = None
    if any(v is not None for v in [*loss, *val_eer]):
        uri = recognizer_training_plot(
            epochs, loss, val_eer, kept_epoch=None if kept is None else epochs[kept], title=title
        )
    final = val_eer[kept] if kept is not None and val_eer[kept] is not None else None
    if final is None:
        final = next((v for v in reversed(val_eer) if v is not None), None)
    summary = _DASH if final is None else f"EER {format_metric('eer', final)}"
    kept_text = ""
    if kept is not None:
        kept_text = f"epoch {epochs[kept]:g}" + (" (pretrained)" if epochs[kept] == 0 else "")
        summary = f"{summary}, kept {kept_text}"
    return {"uri": uri, "final_val": summary, "kept": kept_text}


def _trained_model(model: Mapping[str, Any]) -> dict[str, Any]:
    """One trained attack model: its table line and its training curve (None without history).

    A fine-tuned recognizer (``kind`` ``recognizer``) has a validation EER
    and a kept epoch where an image-reconstruction model has a validation loss.
    """
    title = _training_title(model)
    recognizer = _is_recognizer_model(model)
    if recognizer:
        drawn = _recognizer_history(model, title)
        uri, final_val, kept = drawn["uri"], drawn["final_val"], drawn["kept"]
    else:
        history = _mappings(model.get("history"))
        # An entry without a usable epoch number is taken to be the next epoch.
        epochs = [_or(_optional_number(h.get("epoch")), float(i + 1)) for i, h in enumerate(history)]
        loss = [_optional_number(h.get("loss")) for h in history]
        val_loss = [_optional_number(h.get("val_loss")) for h in history]
        uri = None
        if any(v is not None for v in [*loss, *val_loss]):
            uri = training_curve_plot(epochs, loss, val_loss, title=title)
        final_val = _format_loss(next((v for v in reversed(val_loss) if v is not None), None))
        kept = ""
    params = model.get("params")
    cached = model.get("cached")
    return {
        "attack": _text(model.get("attack")),
        "kind": "recognizer" if recognizer else "reconstruction",
        # Where no scheme is recorded the model was trained on other settings: name those.
        "scheme": _text(model.get("scheme")) or _text(model.get("trained_on")),
        "trained_on": _text(model.get("trained_on")),
        "kept": kept,
        "group": _text(model.get("group")) or _DASH,
        "train_faces": _count(model.get("n_train_faces")),
        "train_subjects": _count(model.get("n_train_subjects")),
        "val_faces": _count(model.get("n_val_faces")),
        "keys_per_face": _count(model.get("keys_per_face")),
        "pairs": _count(model.get("n_pairs")),
        "device": _text(model.get("device")) or _DASH,
        "time": _format_duration(model.get("seconds")),
        "cached": _DASH if cached is None else "yes" if cached else "no",
        "final_val_loss": final_val,
        "params": _format_params(params) if isinstance(params, Mapping) else _text(params),
        "title": title,
        "uri": uri,
    }


def _trained_models(block: Any) -> list[dict[str, Any]]:
    """Display lines (and training curves) of ``results["trained_models"]``, in its order."""
    return [_trained_model(model) for model in _mappings(block)]


def _histogram_series(hist: Any) -> tuple[list[float], list[float]] | None:
    """``(edges, counts)`` of a ``{"edges", "counts"}`` histogram, or None when it cannot be drawn."""
    if not isinstance(hist, Mapping):
        return None
    edges, counts = hist.get("edges"), hist.get("counts")
    if not isinstance(edges, list) or not isinstance(counts, list) or not counts:
        return None
    if len(edges) != len(counts) + 1 or not all(_optional_number(v) is not None for v in [*edges, *counts]):
        return None
    if any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
        return None
    return [float(e) for e in edges], [float(c) for c in counts]


def _quality_figures(measure: str, entries: Sequence[Mapping[str, Any]], colours: Mapping[str, str]) -> list[dict]:
    """One figure per scheme: every attack's distribution over the original faces' (black, dashed)."""
    reference = []
    plain = next((e for e in entries if _text(e.get("scheme")) == _PLAIN), None)
    plain_hist = _histogram_series(plain.get("hist")) if plain is not None else None
    if plain_hist is not None:
        reference.append(QualitySeries("original faces", *plain_hist, colour=_PLAIN_COLOUR, linestyle="--"))
    schemes: dict[str, list[Mapping[str, Any]]] = {}
    for entry in entries:
        if _text(entry.get("scheme")) != _PLAIN:
            schemes.setdefault(_text(entry.get("scheme")), []).append(entry)
    if not schemes and reference:
        schemes = {_PLAIN: []}
    figures = []
    for scheme, members in schemes.items():
        series = list(reference)
        for entry in members:
            hist = _histogram_series(entry.get("hist"))
            attack = _text(entry.get("attack"))
            if hist is not None:
                series.append(QualitySeries(attack, *hist, colour=colours[attack]))
        if len(series) == len(reference) and scheme != _PLAIN:
            continue
        title = f"{measure} · {scheme}" if scheme != _PLAIN else f"{measure} · original faces"
        figures.append({"title": title, "uri": quality_distributions_plot(series, title=title, xlabel=measure)})
    return figures


def _face_quality(block: Any) -> list[dict[str, Any]]:
    """Face-quality distributions grouped by measure, in first-seen order.

    Args:
        block: ``results["face_quality"]``: one ``{"measure", "description",
            "scheme", "attack", "n", "mean", "median", "failed", "hist"}``
            per (measure, image set); scheme ``none`` marks the original faces.

    Returns:
        ``{"measure", "description", "rows", "figures"}`` per measure. An
        attack keeps one colour in every figure of the report.
    """
    entries = _mappings(block)
    attacks = _unique_in_order(_text(e.get("attack")) for e in entries if _text(e.get("scheme")) != _PLAIN)
    others = [c for c in PALETTE if c != _PLAIN_COLOUR]
    colours = {attack: others[i % len(others)] for i, attack in enumerate(attacks)}
    measures: dict[str, list[Mapping[str, Any]]] = {}
    for entry in entries:
        measures.setdefault(_text(entry.get("measure")), []).append(entry)
    sections = []
    for measure, members in measures.items():
        description = next((_text(e.get("description")) for e in members if e.get("description")), "")
        rows = [
            {
                "scheme": _text(e.get("scheme")),
                "attack": _text(e.get("attack")),
                "n": _count(e.get("n")),
                "mean": format_metric("mean", _optional_number(e.get("mean"))),
                "median": format_metric("median", _optional_number(e.get("median"))),
                "failed": _count(e.get("failed")),
            }
            for e in members
        ]
        sections.append(
            {
                "measure": measure,
                "description": description,
                "rows": rows,
                "figures": _quality_figures(measure, members, colours),
            }
        )
    return sections


# --------------------------------------------------------------------------- generalisation
# Recognizer attacks (``finetune``) train a recognizer under some settings and
# are evaluated under others: a matrix of training × test setting, read
# against the pretrained recognizer (the ``naive`` rows of the same recognizer).

_PRETRAINED_ATTACK = "naive"
_PRETRAINED_LABEL = "pretrained (naive)"
_PRETRAINED_SETTING = "none (pretrained weights)"
_UNDER_TEST = "the setting under test (one model per test setting)"
# Strength first: it is the question the matrix answers; linkage second.
_VIEW_KINDS = ("strength", "linkage")
_VIEW_KIND_TEXT = {
    "strength": "strength (protected probe against plain reference)",
    "linkage": "linkage (key A against key B)",
}


def _recognizer_attacks(block: Any) -> dict[str, str]:
    """Training setting text per recognizer attack, in ``trained_models`` order.

    Args:
        block: ``results["trained_models"]``.

    Returns:
        Attack label -> its first model's ``trained_on``; attacks whose
        models record a scheme were trained on each setting they were
        tested on, which one text cannot name.
    """
    settings: dict[str, str] = {}
    under_test: set[str] = set()
    for model in _mappings(block):
        if not _is_recognizer_model(model):
            continue
        attack = _text(model.get("attack"))
        if _text(model.get("scheme")):
            under_test.add(attack)
        settings.setdefault(attack, _text(model.get("trained_on")) or _DASH)
    return {attack: _UNDER_TEST if attack in under_test else text for attack, text in settings.items()}


def _view_kind(view: Any) -> str:
    return _text(view).partition(":")[0]


def _percent_1(rate: float) -> str:
    return f"{rate * 100:.1f}"


def _matrix_cell(metrics: Mapping[str, Any] | None) -> dict[str, Any]:
    """EER and CI of one matrix cell: ``{"eer", "text"}``, text as ``12.3% [10.1, 14.6]``.

    One decimal (not :func:`format_metric`'s two significant digits): the
    table is meant to be copied as it is, and its columns should line up.
    """
    metrics = metrics or {}
    eer = _optional_number(metrics.get("eer"))
    if eer is None:
        return {"eer": None, "text": _DASH}
    low, high = _optional_number(metrics.get("eer_ci_low")), _optional_number(metrics.get("eer_ci_high"))
    ci = f" [{_percent_1(low)}, {_percent_1(high)}]" if low is not None and high is not None else ""
    return {"eer": eer, "text": f"{_percent_1(eer)}%{ci}"}


def generalisation_tables(
    rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str], trained_models: Any
) -> list[dict[str, Any]]:
    """The generalisation matrices of recognizer attacks, as table data (no figures).

    One matrix per recognizer with rows of recognizer attacks and per view
    kind among those rows (strength, then linkage). Columns are the schemes
    those attacks were tested on, in the order the schemes first appear in
    ``rows``; lines are the pretrained recognizer (its ``naive`` rows, when
    there are any) then each recognizer attack in order of first appearance.

    Args:
        rows: Result rows in the results' order.
        labels: Recognizer label per row (keyed by ``id(row)``).
        trained_models: ``results["trained_models"]``; only models of kind
            ``recognizer`` make an attack a recognizer attack.

    Returns:
        ``{"recognizer", "kind", "kind_text", "columns", "lines"}`` per
        matrix; each line ``{"label", "attack", "trained_on", "reference",
        "cells"}`` with one :func:`_matrix_cell` per column (``"—"`` where
        that setting was not run). Empty without recognizer attacks.
    """
    settings = _recognizer_attacks(trained_models)
    if not settings:
        return []
    tested = [r for r in rows if _text(r.get("scheme")) != _PLAIN and _view_kind(r.get("view")) in _VIEW_KINDS]
    matrices = []
    for recognizer in _unique_in_order(labels[id(r)] for r in tested if _text(r.get("attack")) in settings):
        for kind in _VIEW_KINDS:
            mine = [r for r in tested if labels[id(r)] == recognizer and _view_kind(r.get("view")) == kind]
            attacked = [r for r in mine if _text(r.get("attack")) in settings]
            if not attacked:
                continue
            schemes = {_text(r.get("scheme")) for r in attacked}
            relevant = [r for r in mine if _text(r.get("attack")) in settings or r.get("attack") == _PRETRAINED_ATTACK]
            columns = _unique_in_order(s for s in (_text(r.get("scheme")) for r in relevant) if s in schemes)
            cells: dict[tuple[str, str], Mapping[str, Any]] = {}
            for row in relevant:
                cells.setdefault((_text(row.get("attack")), _text(row.get("scheme"))), row.get("metrics") or {})
            lines = []
            if any(r.get("attack") == _PRETRAINED_ATTACK for r in relevant):
                lines.append((_PRETRAINED_LABEL, _PRETRAINED_ATTACK, _PRETRAINED_SETTING, True))
            lines += [(a, a, settings[a], False) for a in _unique_in_order(_text(r.get("attack")) for r in attacked)]
            matrices.append(
                {
                    "recognizer": recognizer,
                    "kind": kind,
                    "kind_text": _VIEW_KIND_TEXT[kind],
                    "columns": columns,
                    "lines": [
                        {
                            "label": label,
                            "attack": attack,
                            "trained_on": trained_on,
                            "reference": reference,
                            "cells": [_matrix_cell(cells.get((attack, scheme))) for scheme in columns],
                        }
                        for label, attack, trained_on, reference in lines
                    ],
                }
            )
    return matrices


def _generalisation_sweeps(matrix: Mapping[str, Any], sweeps: Any) -> list[dict[str, str]]:
    """EER against each sweep's parameter over the matrix's columns, one line per training setting.

    Only the swept settings that are columns of the matrix are drawn; a
    sweep without any is left out. The pretrained recognizer is the black
    dashed reference line.
    """
    columns = {scheme: j for j, scheme in enumerate(matrix["columns"])}
    figures = []
    for sweep in _mappings(sweeps):
        points = [(_text(lbl), v) for lbl, v in zip(_list(sweep.get("labels")), _list(sweep.get("values")))]
        points = [(lbl, v) for lbl, v in points if lbl in columns]
        if not points:
            continue
        series: dict[str, list[float | None]] = {}
        references: dict[str, list[float | None]] = {}
        for line in matrix["lines"]:
            target = references if line["reference"] else series
            target[line["label"]] = [line["cells"][columns[lbl]]["eer"] for lbl, _ in points]
        param = _text(sweep.get("param"))
        fixed = sweep.get("fixed")
        where = f" ({_format_params(fixed)})" if isinstance(fixed, Mapping) and fixed else ""
        title = f"{matrix['recognizer']} · {matrix['kind']} · {_text(sweep.get('scheme'))}{where} over {param}"
        uri = sweep_plot([v for _, v in points], series, references=references, xlabel=param, title=title)
        figures.append({"title": title, "uri": uri})
    return figures


def _generalisation(
    rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str], trained_models: Any, sweeps: Any
) -> list[dict[str, Any]]:
    """:func:`generalisation_tables` with each matrix's heatmap (``uri``, ``title``) and sweep curves (``sweeps``)."""
    matrices = []
    for matrix in generalisation_tables(rows, labels, trained_models):
        title = f"{matrix['recognizer']} · {matrix['kind']}"
        uri = generalisation_matrix_plot(
            [line["label"] for line in matrix["lines"]],
            matrix["columns"],
            [[cell["eer"] for cell in line["cells"]] for line in matrix["lines"]],
            title=f"{title}: EER (%)",
        )
        matrices.append({**matrix, "title": title, "uri": uri, "sweeps": _generalisation_sweeps(matrix, sweeps)})
    return matrices


# --------------------------------------------------------------------------- sections


def _certification(entries: Sequence[Mapping[str, Any]] | None) -> dict | None:
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
                "bound": format_metric(metric, bound) if _is_number(bound) or bound is None else str(bound),
                "value": format_metric(metric, entry.get("value")),
                "verdict": verdict,
                "verdict_class": verdict.lower() if verdict in ("PASS", "FAIL", "UNRESOLVED") else "unknown",
                "reason": str(entry.get("reason") or ""),
            }
        )
    verdicts = {c["verdict"] for c in checks}
    overall = (
        "PASS"
        if verdicts == {"PASS"}
        else "FAIL"
        if "FAIL" in verdicts
        else "UNRESOLVED"
        if "UNRESOLVED" in verdicts
        else "INCOMPLETE"
    )
    return {"checks": checks, "overall": overall, "overall_class": overall.lower()}


def _dataset(dataset: Mapping[str, Any]) -> dict[str, Any]:
    skipped = [{"id": str(s.get("id", "")), "reason": str(s.get("reason", ""))} for s in dataset.get("skipped") or []]
    folds = dataset.get("folds")
    test_folds = dataset.get("test_folds")
    summary = [
        ("Dataset", str(dataset.get("name", ""))),
        ("Root", str(dataset["root"]) if dataset.get("root") else _DASH),
        ("Samples", format_metric("n_samples", dataset.get("n_samples"))),
        ("Subjects", format_metric("n_subjects", dataset.get("n_subjects"))),
        ("Faces detected", format_metric("n_detected", dataset.get("n_detected"))),
        ("Fallback centre crops", format_metric("n_fallback_crop", dataset.get("n_fallback_crop"))),
        ("Folds", _DASH if folds is None else str(folds)),
        ("Test folds", _DASH if not test_folds else ", ".join(map(str, test_folds))),
        ("Seed", _DASH if dataset.get("seed") is None else str(dataset["seed"])),
    ]
    n_skipped = dataset.get("n_skipped", len(skipped))
    return {
        "demo": bool(dataset.get("demo", False)),
        "summary": summary,
        "n_skipped": format_metric("n_skipped", n_skipped),
        "skipped": skipped,
    }


def _safe_items(mapping: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    return [(str(k), str(v)) for k, v in sorted((mapping or {}).items()) if not _SECRET_RE.search(str(k))]


def _key_text(key: Mapping[str, Any] | None) -> str | None:
    """How the run was keyed, from the key block (a fingerprint and a source, never key material)."""
    if not key:
        return None
    source = key.get("source")
    if source == "seed":
        return (
            f"evaluation key derived from the protocol seed {key.get('seed')} (id {key.get('key_id')}): public, "
            "for reproducible evaluation only, never for protecting real data"
        )
    if source == "random" or key.get("key_id") == "ephemeral":
        return "a random key drawn for this run (ephemeral: not reproducible)"
    where = {"file": "a key file", "env": "an environment variable"}.get(str(source), "a key")
    return f"master key from {where} (id {key.get('key_id')})"


def _provenance(prov: Mapping[str, Any], schema_version: Any) -> dict[str, Any]:
    """Only documented fields are rendered: an unexpected field (a key, a
    token) in provenance never reaches the page."""
    cache = prov.get("cache") or {}
    fields = [
        ("Keys", _key_text(prov.get("key"))),
        ("FaceSec version", prov.get("facesec_version")),
        ("Git commit", prov.get("git_commit")),
        ("Python", prov.get("python")),
        ("Created", prov.get("created")),
        ("Protocol SHA-256", prov.get("protocol_sha256")),
        ("Dataset fingerprint", prov.get("dataset_fingerprint")),
        ("Cache hits / misses", f"{cache.get('hits', _DASH)} / {cache.get('misses', _DASH)}" if cache else None),
        ("Results schema", schema_version),
    ]
    return {
        "fields": [(name, _DASH if v is None else str(v)) for name, v in fields],
        "seeds": _safe_items(prov.get("seeds")),
        "components": _safe_items(prov.get("components")),
    }


def build_context(results: Results) -> dict[str, Any]:
    """Turn a results dict into the flat, display-ready template context.

    Args:
        results: Parsed ``results.json``.

    Returns:
        The context for ``report.html.j2``; every value is already formatted.
    """
    protocol = results.get("protocol") or {}
    provenance = results.get("provenance") or {}
    # Blocks newer than the ``Results`` type, all optional.
    optional = cast(Mapping[str, Any], results)
    raw_rows = results.get("rows") or []
    rows = _sorted_rows(raw_rows)
    labels = _recognizer_labels(rows)
    columns = metric_columns(rows)
    return {
        "protocol_name": str(protocol.get("name", "")),
        "protocol_file": str(protocol.get("file") or ""),
        "notes": str(protocol.get("notes") or ""),
        "created": str(provenance.get("created") or _DASH),
        "dataset": _dataset(results.get("dataset") or {}),
        "certification": _certification(results.get("certification")),
        "columns": [{"key": c, "header": _metric_header(c)} for c in columns],
        "rows": _table(rows, columns),
        "attacks": _attack_table(rows, labels),
        "strength_by_setting": _strength_by_setting(raw_rows, labels),
        "generalisation": _generalisation(raw_rows, labels, optional.get("trained_models"), optional.get("sweeps")),
        "examples": _examples(optional.get("examples")),
        "trained_models": _trained_models(optional.get("trained_models")),
        "face_quality": _face_quality(optional.get("face_quality")),
        "det_figures": _det_figures(rows, labels),
        "histograms": _histograms(rows, labels),
        "unlinkability_figures": _unlinkability_figures(rows, labels),
        "view_distribution_figures": _view_distribution_figures(rows, labels),
        "sweep_figures": _sweep_figures(results),
        "provenance": _provenance(provenance, results.get("schema_version")),
    }


def render_report(results: Results) -> str:
    """Render ``results`` to a self-contained HTML page.

    Args:
        results: Parsed ``results.json``.

    Returns:
        The HTML text.
    """
    return _environment().get_template(_TEMPLATE).render(**build_context(results))


def write_report(results: Results, out_path: Path) -> Path:
    """Render ``results`` and write the HTML atomically to ``out_path``.

    Args:
        results: Parsed ``results.json``.
        out_path: Destination file; its folder is created if needed.

    Returns:
        ``out_path``.
    """
    out_path = Path(out_path)
    atomic_write_text(out_path, render_report(results))
    return out_path
