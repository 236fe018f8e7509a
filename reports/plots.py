"""Report figures: each ``*_figure`` builds a :class:`matplotlib.figure.Figure`, each ``*_plot`` encodes one.

Figures are built on :class:`matplotlib.figure.Figure` directly rather than
through ``pyplot``: no global figure registry, no interactive backend, and
nothing leaks between calls. Saving to PNG or PDF picks the canvas by itself.
The ``*_plot`` functions return self-contained ``data:image/png;base64`` URIs;
the report builds figures and hands them to a collector
(:class:`reports.export.Collector`) that makes the URI and, when exporting,
writes the PNG and PDF files. PNG and PDF bytes are deterministic: no
version stamp, no creation date (see :mod:`reports.figures`, whose palette
and encoders this module re-exports).

The plots only draw what the results JSON already holds (DET points and
histogram densities); they never recompute a metric.
"""

from __future__ import annotations

import base64
import io
import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from reports.figures import (
    DPI,
    MARKERS,
    PALETTE,
    PNG_DATA_URI_PREFIX,
    figure_pdf,
    figure_png,
    figure_to_data_uri,
    png_data_uri,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "DetCurve",
    "PALETTE",
    "MARKERS",
    "PNG_DATA_URI_PREFIX",
    "det_figure",
    "det_plot",
    "score_histogram_figure",
    "score_histogram",
    "ScoreDensity",
    "VIEW_COLOURS",
    "view_distributions_figure",
    "view_distributions_plot",
    "unlinkability_figure",
    "unlinkability_plot",
    "probit_ticks",
    "figure_png",
    "figure_pdf",
    "png_data_uri",
    "figure_to_data_uri",
    "SweepLine",
    "SweepBaseline",
    "sweep_figure",
    "sweep_plot",
    "training_curve_figure",
    "training_curve_plot",
    "recognizer_training_figure",
    "recognizer_training_plot",
    "generalisation_matrix_figure",
    "generalisation_matrix_plot",
    "QualitySeries",
    "quality_distributions_figure",
    "quality_distributions_plot",
    "ExampleLine",
    "examples_figure",
    "examples_plot",
]

# Probability ticks a reader expects on a DET plot (ISO/IEC 19795-1 style).
_PROBIT_TICKS: tuple[float, ...] = (
    1e-6,
    1e-5,
    1e-4,
    1e-3,
    1e-2,
    0.05,
    0.2,
    0.4,
    0.6,
    0.8,
    0.95,
    0.99,
)
# Axes always span at least this range, so plots from different runs compare.
_DEFAULT_RANGE = (1e-4, 0.4)
# FMR above 40% is no operating point anyone would choose; FNMR may go up to
# 99% because protected or attacked views can be that bad at low FMR.
_FMR_MAX = 0.4
_FNMR_MAX = _PROBIT_TICKS[-1]
# 0 and 1 map to -inf/+inf under the probit; clip them to just beyond the
# frame so a curve runs off the edge instead of vanishing.
_OFF_FRAME = 1e-9
_LINESTYLES: tuple[str, ...] = ("-", "--", "-.", ":")


class DetCurve(NamedTuple):
    """One DET curve: operating points and how to draw them.

    Attributes:
        label: Legend text.
        fmr: False match rates, one per operating point.
        fnmr: False non-match rates, same length as ``fmr``.
        colour: Matplotlib colour spec.
        n_impostor: Impostor scores behind ``fmr``, or None when unknown.
            A rate of 0 has no place on probit axes, and
            :func:`benchmark.metrics.verification.det_curve` stores it as
            ``0.5 / n``: with the count known, those points are not drawn
            (the curve stops at its smallest measured FMR, ``1 / n``).
        n_genuine: Genuine scores behind ``fnmr``, or None; the same for an
            FNMR of 0.
    """

    label: str
    fmr: Sequence[float]
    fnmr: Sequence[float]
    colour: str = PALETTE[0]
    n_impostor: int | None = None
    n_genuine: int | None = None


def _percent_label(p: float) -> str:
    return f"{p * 100:g}%"


def probit_ticks(lo: float, hi: float) -> list[tuple[float, str]]:
    """Tick positions (as probabilities) and labels within ``[lo, hi]``.

    Args:
        lo: Lower axis limit, a probability in (0, 1).
        hi: Upper axis limit, a probability in (0, 1).

    Returns:
        ``(probability, label)`` pairs, labels as percentages (``"0.1%"``).
    """
    eps = 1e-12  # limits are themselves ticks; keep them despite float noise
    return [(t, _percent_label(t)) for t in _PROBIT_TICKS if lo - eps <= t <= hi + eps]


def _axis_range(values: np.ndarray, upper_cap: float) -> tuple[float, float]:
    """Probit axis limits covering the default range and the interior values.

    Limits snap outwards to the nearest tick so the frame starts on a label;
    the upper limit never exceeds ``upper_cap``. Values of exactly 0 or 1 do
    not widen the axis: they sit at infinity.
    """
    inner = values[(values > 0) & (values < 1)]
    lo, hi = _DEFAULT_RANGE
    if inner.size:
        lo, hi = min(lo, float(inner.min())), max(hi, float(inner.max()))
    ticks = np.asarray(_PROBIT_TICKS)
    lo = float(ticks[ticks <= lo].max()) if (ticks <= lo).any() else float(ticks[0])
    hi = float(ticks[ticks >= hi].min()) if (ticks >= hi).any() else float(ticks[-1])
    return lo, min(hi, upper_cap)


def _clean_curve(curve: DetCurve) -> tuple[np.ndarray, np.ndarray]:
    fmr = np.asarray(curve.fmr, dtype=float).ravel()
    fnmr = np.asarray(curve.fnmr, dtype=float).ravel()
    if fmr.shape != fnmr.shape:
        raise ValueError(f"DET curve {curve.label!r}: fmr has {fmr.size} points, fnmr has {fnmr.size}")
    keep = np.isfinite(fmr) & np.isfinite(fnmr)
    return fmr[keep], fnmr[keep]


def _stands_for_zero(rates: np.ndarray, n: int | None) -> np.ndarray:
    """Where ``rates`` hold a rate of 0 stored as ``0.5 / n`` (see :class:`DetCurve`); all False when ``n`` is unknown."""
    if n is None or n < 1:
        return np.zeros(rates.shape, dtype=bool)
    return np.isclose(rates, 0.5 / n, rtol=1e-9, atol=0.0)


def _measured(curve: DetCurve) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The curve's measured operating points (rates of 0 dropped) and where it stops for lack of scores."""
    x, y = _clean_curve(curve)
    zero_x, zero_y = _stands_for_zero(x, curve.n_impostor), _stands_for_zero(y, curve.n_genuine)
    stops = [
        f"{rate} 1/{n:,} ({n:,} {kind} scores)"
        for rate, kind, n, zero in (
            ("FMR", "impostor", curve.n_impostor, zero_x),
            ("FNMR", "genuine", curve.n_genuine, zero_y),
        )
        if zero.any()
    ]
    keep = ~(zero_x | zero_y)
    return x[keep], y[keep], stops


def _set_probit_axis(ax, which: str, lo: float, hi: float) -> None:
    from scipy.special import ndtri  # the normal quantile, without importing scipy.stats

    ticks = probit_ticks(lo, hi)
    positions = ndtri([t for t, _ in ticks])
    labels = [label for _, label in ticks]
    if which == "x":
        ax.set_xlim(ndtri(lo), ndtri(hi))
        # Tiny-rate labels ("0.0001%") are wide; slant them when they crowd.
        crowded = len(ticks) > 7
        ax.set_xticks(positions, labels, fontsize=7, rotation=30 if crowded else 0, ha="right" if crowded else "center")
    else:
        ax.set_ylim(ndtri(lo), ndtri(hi))
        ax.set_yticks(positions, labels, fontsize=7)


def _no_data(ax) -> None:
    ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", fontsize=10, color="#777777")


def det_figure(curves: Sequence[DetCurve], *, title: str = "") -> Figure:
    """Draw DET curves on normal-deviate (probit) axes.

    Only measured operating points are drawn: a curve whose score counts
    are given stops at its smallest measured rate (an FMR of ``1 / n`` for
    ``n`` impostor scores), marked by a ring, and a note under the axes says
    where the curves stop for lack of scores; nothing is drawn towards a rate
    of 0 that the scores cannot show.

    Args:
        curves: One :class:`DetCurve` per recognizer. Empty curves and
            non-finite points are skipped; rates of 0 or 1 are clipped to
            just outside the frame.
        title: Figure title.

    Returns:
        The figure.

    Raises:
        ValueError: If a curve's ``fmr`` and ``fnmr`` differ in length.
    """
    from matplotlib.figure import Figure
    from scipy.special import ndtri  # the normal quantile, without importing scipy.stats

    drawn = [(c, x, y, ends) for c, x, y, ends in ((c, *_measured(c)) for c in curves) if x.size]
    stops = list(dict.fromkeys(end for *_, ends in drawn for end in ends))
    all_x = np.concatenate([x for _, x, _, _ in drawn]) if drawn else np.empty(0)
    all_y = np.concatenate([y for _, _, y, _ in drawn]) if drawn else np.empty(0)
    x_lo, x_hi = _axis_range(all_x, _FMR_MAX)
    # Size the FNMR axis on the visible part of the curves only.
    y_lo, y_hi = _axis_range(all_y[all_x <= x_hi], _FNMR_MAX)

    fig = Figure(figsize=(4.6, 4.2), dpi=DPI)
    # Fixed margins: a layout engine would double the rendering time.
    fig.subplots_adjust(left=0.16, right=0.97, bottom=0.16, top=0.93)
    ax = fig.add_subplot()
    _set_probit_axis(ax, "x", x_lo, x_hi)
    _set_probit_axis(ax, "y", y_lo, y_hi)
    ax.grid(True, color="#dddddd", linewidth=0.6)
    # FMR = FNMR diagonal: a curve crosses it at its EER.
    d_lo, d_hi = max(x_lo, y_lo), min(x_hi, y_hi)
    if d_lo < d_hi:
        diag = ndtri([d_lo, d_hi])
        ax.plot(diag, diag, color="#bbbbbb", linewidth=0.8, linestyle=":", zorder=1)
    for curve, x, y, ends in drawn:
        px = ndtri(np.clip(x, _OFF_FRAME, 1 - _OFF_FRAME))
        py = ndtri(np.clip(y, _OFF_FRAME, 1 - _OFF_FRAME))
        ax.plot(px, py, color=curve.colour, linewidth=1.6, label=curve.label, zorder=2)
        if any(end.startswith("FMR") for end in ends):
            # The smallest measured FMR: the curve ends here, it is not cut by the frame.
            first = int(np.argmin(x))
            ax.plot(
                px[first], py[first], marker="o", markersize=4, markerfacecolor="white", color=curve.colour, zorder=3
            )
    if drawn:
        ax.legend(fontsize=7, loc="upper right", frameon=True)
    else:
        _no_data(ax)
    if stops:
        fig.subplots_adjust(bottom=0.2)
        note = (
            f"Curves stop at the smallest rate their scores measure: {'; '.join(stops)}. Lower rates need more scores."
        )
        fig.text(0.02, 0.01, _wrapped(note, 95), fontsize=6, color="#555555", ha="left", va="bottom")
    ax.set_xlabel("False match rate (FMR)", fontsize=8)
    ax.set_ylabel("False non-match rate (FNMR)", fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def det_plot(curves: Sequence[DetCurve], *, title: str = "") -> str:
    """:func:`det_figure` as a PNG data URI.

    Args:
        curves: One :class:`DetCurve` per recognizer.
        title: Figure title.

    Returns:
        A PNG data URI.
    """
    return figure_to_data_uri(det_figure(curves, title=title))


def _style_density_axes(ax, title: str, pad: float) -> None:
    ax.tick_params(labelsize=7)
    # Densities of wide-ranged scores are tiny; an offset exponent keeps labels short.
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    ax.yaxis.get_offset_text().set_fontsize(7)
    ax.set_xlabel("score", fontsize=8)
    ax.set_ylabel("density", fontsize=8)
    if title:
        ax.set_title(title, fontsize=8, pad=pad)


def score_histogram_figure(
    edges: Sequence[float],
    genuine: Sequence[float],
    impostor: Sequence[float],
    *,
    title: str = "",
) -> Figure:
    """Draw genuine (solid) and impostor (dashed) score densities.

    Args:
        edges: Bin edges, one more than the number of bins.
        genuine: Genuine-score density per bin.
        impostor: Impostor-score density per bin.
        title: Figure title.

    Returns:
        The figure.

    Raises:
        ValueError: If the densities do not have ``len(edges) - 1`` bins.
    """
    from matplotlib.figure import Figure

    e = np.asarray(edges, dtype=float).ravel()
    series = {
        "genuine": np.asarray(genuine, dtype=float).ravel(),
        "impostor": np.asarray(impostor, dtype=float).ravel(),
    }
    fig = Figure(figsize=(3.4, 2.3), dpi=DPI)
    fig.subplots_adjust(left=0.17, right=0.97, bottom=0.2, top=0.83)
    ax = fig.add_subplot()
    drawn = False
    for name, dens in series.items():
        if dens.size == 0:
            continue
        if e.size != dens.size + 1:
            raise ValueError(f"{name} histogram has {dens.size} bins but {e.size} edges")
        ax.stairs(
            dens,
            e,
            color="#0072B2" if name == "genuine" else "#D55E00",
            linestyle="-" if name == "genuine" else "--",
            linewidth=1.3,
            label=name,
        )
        drawn = True
    if drawn:
        ax.legend(fontsize=7, loc="best", framealpha=0.8)
    else:
        _no_data(ax)
    _style_density_axes(ax, title, pad=10)
    return fig


def score_histogram(
    edges: Sequence[float],
    genuine: Sequence[float],
    impostor: Sequence[float],
    *,
    title: str = "",
) -> str:
    """:func:`score_histogram_figure` as a PNG data URI.

    Args:
        edges: Bin edges, one more than the number of bins.
        genuine: Genuine-score density per bin.
        impostor: Impostor-score density per bin.
        title: Figure title.

    Returns:
        A PNG data URI.
    """
    return figure_to_data_uri(score_histogram_figure(edges, genuine, impostor, title=title))


def _as_series(values: Sequence[float] | None) -> np.ndarray:
    return np.asarray([] if values is None else values, dtype=float).ravel()


def unlinkability_figure(
    edges: Sequence[float],
    mated_density: Sequence[float],
    nonmated_density: Sequence[float],
    d_local: Sequence[float],
    *,
    d_sys: float | None = None,
    omega: float | None = None,
    linkability_max: float | None = None,
    title: str = "",
) -> Figure:
    """Draw mated / non-mated densities with the local linkage D<->(s), as in Gomez-Barrero et al. (2018).

    Mated density solid, non-mated dashed (left axis); D<->(s) as a filled
    step on a second axis fixed to [0, 1] (right). The title carries the
    global D<->sys, the maximal linkability in bits (Otroshi Shahreza and
    Marcel, 2023) and the prior ratio omega when given.

    Args:
        edges: Bin edges, one more than the number of bins.
        mated_density: Mated-score density per bin.
        nonmated_density: Non-mated-score density per bin.
        d_local: D<->(s) per bin, in [0, 1].
        d_sys: Global measure D<->sys, or None when unknown.
        omega: Prior ratio used, or None when unknown.
        linkability_max: Maximal linkability in bits, or None when unknown
            (results written before it was measured).
        title: First title line (the row's label).

    Returns:
        The figure.

    Raises:
        ValueError: If a non-empty series does not have ``len(edges) - 1`` bins.
    """
    from matplotlib.figure import Figure

    e = _as_series(edges)
    series = {
        "mated": _as_series(mated_density),
        "non-mated": _as_series(nonmated_density),
        "D(s)": _as_series(d_local),
    }
    for name, values in series.items():
        if values.size and e.size != values.size + 1:
            raise ValueError(f"{name} has {values.size} bins but {e.size} edges")

    fig = Figure(figsize=(4.0, 2.7), dpi=DPI)
    fig.subplots_adjust(left=0.15, right=0.85, bottom=0.18, top=0.8)
    ax = fig.add_subplot()
    drawn = False
    for name, colour, style in (("mated", "#0072B2", "-"), ("non-mated", "#D55E00", "--")):
        if series[name].size:
            ax.stairs(series[name], e, color=colour, linestyle=style, linewidth=1.3, label=name)
            drawn = True
    ax.tick_params(labelsize=7)
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    ax.yaxis.get_offset_text().set_fontsize(7)
    ax.set_xlabel("score", fontsize=8)
    ax.set_ylabel("density", fontsize=8)

    local = ax.twinx()
    # A fixed [0, 1] scale: D(s) panels of different rows read alike.
    local.set_ylim(0.0, 1.05)
    local.tick_params(labelsize=7)
    local.set_ylabel(r"$D_{\leftrightarrow}(s)$", fontsize=8, color="#009E73")
    if series["D(s)"].size:
        local.stairs(series["D(s)"], e, color="#009E73", fill=True, alpha=0.25, linewidth=0)
        local.stairs(series["D(s)"], e, color="#009E73", linewidth=1.0, label=r"$D_{\leftrightarrow}(s)$")
        drawn = True

    if drawn:
        handles = [*ax.get_legend_handles_labels()[0], *local.get_legend_handles_labels()[0]]
        # On the twin axis: it is drawn last, so the legend stays on top.
        local.legend(handles=handles, fontsize=6, loc="upper left", framealpha=0.8)
    else:
        _no_data(ax)
    summary = []
    if d_sys is not None and np.isfinite(d_sys):
        summary.append(rf"$D_{{\leftrightarrow}}^{{\mathrm{{sys}}}}$ = {d_sys:.3f}")
    if linkability_max is not None and np.isfinite(linkability_max):
        summary.append(rf"$\mathcal{{L}}_{{\max}}$ = {linkability_max:.3f} bits")
    if omega is not None and np.isfinite(omega):
        summary.append(rf"$\omega$ = {omega:g}")
    lines = [line for line in (*_wrapped(title, 58).split("\n"), ", ".join(summary)) if line]
    if lines:
        ax.set_title("\n".join(lines), fontsize=8, pad=6)
        # Room for every title line (a long row label wraps).
        fig.subplots_adjust(top=min(0.9, 1 - (0.15 + 0.17 * len(lines)) / fig.get_figheight()))
    return fig


def unlinkability_plot(
    edges: Sequence[float],
    mated_density: Sequence[float],
    nonmated_density: Sequence[float],
    d_local: Sequence[float],
    *,
    d_sys: float | None = None,
    omega: float | None = None,
    linkability_max: float | None = None,
    title: str = "",
) -> str:
    """:func:`unlinkability_figure` as a PNG data URI.

    Args:
        edges: Bin edges, one more than the number of bins.
        mated_density: Mated-score density per bin.
        nonmated_density: Non-mated-score density per bin.
        d_local: D<->(s) per bin, in [0, 1].
        d_sys: Global measure D<->sys, or None when unknown.
        omega: Prior ratio used, or None when unknown.
        linkability_max: Maximal linkability in bits, or None when unknown.
        title: First title line (the row's label).

    Returns:
        A PNG data URI.
    """
    return figure_to_data_uri(
        unlinkability_figure(
            edges,
            mated_density,
            nonmated_density,
            d_local,
            d_sys=d_sys,
            omega=omega,
            linkability_max=linkability_max,
            title=title,
        )
    )


def _sweep_positions(x: Sequence[object]) -> tuple[np.ndarray, list[str] | None]:
    """x positions of swept values, and tick labels when the values are not numbers.

    A swept parameter may be categorical (a progression order, a mode name);
    such values are spaced evenly in sweep order and named on the axis.
    """
    try:
        return np.asarray(x, dtype=float).ravel(), None
    except (TypeError, ValueError):
        return np.arange(len(x), dtype=float), [str(v) for v in x]


class SweepLine(NamedTuple):
    """One curve of a sweep figure: a metric per swept value, and how to draw it.

    Attributes:
        label: Legend text (a recognizer and attack, or a training setting).
        values: Metric value per swept value, as a rate (None: undefined).
        colour: Matplotlib colour spec.
        marker: Matplotlib marker.
        linestyle: Matplotlib line style.
    """

    label: str
    values: Sequence[float | None]
    colour: str = PALETTE[0]
    marker: str = "o"
    linestyle: str = "-"


class SweepBaseline(NamedTuple):
    """A horizontal reference of a sweep figure (a recognizer's unprotected baseline), drawn dashed.

    Attributes:
        label: Legend text.
        value: The metric, as a rate.
        colour: Matplotlib colour spec (the recognizer's).
    """

    label: str
    value: float
    colour: str = "#000000"


def _sweep_axes(ax, xs: np.ndarray, tick_labels: list[str] | None, xlabel: str, ylabel: str) -> None:
    """Label a sweep's axes: every swept value gets a tick (there are few), rates start at 0%."""
    if tick_labels is not None:
        ax.set_xticks(xs, tick_labels)
    elif 0 < xs.size <= 12 and np.all(np.isfinite(xs)):
        ax.set_xticks(xs, [f"{v:g}" for v in xs])
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(f"{ylabel} (%)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(True, linewidth=0.4, alpha=0.5)


def sweep_figure(
    x: Sequence[object],
    lines: Sequence[SweepLine],
    *,
    baselines: Sequence[SweepBaseline] = (),
    references: Mapping[str, Sequence[float | None]] | None = None,
    xlabel: str = "",
    ylabel: str = "EER",
    title: str = "",
) -> Figure:
    """A metric against a swept scheme parameter: one curve per line, horizontal dashed baselines.

    The legend sits to the right of the axes: sweeps of recognizer attacks
    have long labels and many lines.

    Args:
        x: Parameter values, in sweep order; values that are not numbers are
            spaced evenly and written on the axis.
        lines: The curves, each with one value per x.
        baselines: Horizontal dashed lines (a recognizer's unprotected
            baseline), in their own colour; non-finite values are skipped.
        references: Label -> metric value per x of a reference to read the
            lines against (e.g. the pretrained recognizer), drawn black and
            dashed with markers.
        xlabel: Name of the swept parameter.
        ylabel: Name of the metric (a rate, shown in %).
        title: Figure title.

    Returns:
        The figure.
    """
    from matplotlib.figure import Figure

    # The legend's width follows its longest label (about 0.05 inch a character at 6 pt, plus the handle).
    labels = [*(references or {}), *(line.label for line in lines), *(base.label for base in baselines)]
    legend = 0.6 + 0.05 * max((len(label) for label in labels), default=0)
    width = 4.6 + legend
    fig = Figure(figsize=(width, 3.2), dpi=DPI)
    fig.subplots_adjust(left=0.6 / width, right=1 - (legend + 0.1) / width, bottom=0.15, top=0.88)
    ax = fig.add_subplot()
    xs, tick_labels = _sweep_positions(x)
    for label, ys in (references or {}).items():
        y = _optional_series(ys) * 100.0
        ax.plot(xs, y, marker="o", markersize=3, linewidth=1.3, color="#000000", linestyle="--", label=label)
    for line in lines:
        y = _optional_series(line.values) * 100.0
        ax.plot(
            xs,
            y,
            marker=line.marker,
            markersize=4,
            linewidth=1.3,
            color=line.colour,
            linestyle=line.linestyle,
            label=line.label,
        )
    for base in baselines:
        if np.isfinite(base.value):
            ax.axhline(100.0 * float(base.value), color=base.colour, linestyle="--", linewidth=1.0, label=base.label)
    drawn = bool(lines) or bool(references)
    _sweep_axes(ax, xs, tick_labels, xlabel, ylabel)
    if drawn:
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False)
    else:
        _no_data(ax)
    if title:
        ax.set_title(_wrapped(title, 70), fontsize=8)
    return fig


def sweep_plot(
    x: Sequence[object],
    series: Mapping[str, Sequence[float | None]],
    *,
    baselines: Mapping[str, float | None] | None = None,
    references: Mapping[str, Sequence[float | None]] | None = None,
    xlabel: str = "",
    ylabel: str = "EER",
    title: str = "",
) -> str:
    """A metric against a swept scheme parameter, one line per series, as a PNG data URI.

    Args:
        x: Parameter values, in sweep order; values that are not numbers are
            spaced evenly and written on the axis.
        series: Line label (a recognizer, or a training setting) -> metric
            value per x (None: undefined); colours follow :data:`PALETTE`.
        baselines: Series label -> the unprotected baseline's value, drawn
            as a dashed horizontal line of the same colour.
        references: Label -> metric value per x of a reference to read the
            series against (e.g. the pretrained recognizer), drawn black and
            dashed; series keep the colours they have without it.
        xlabel: Name of the swept parameter.
        ylabel: Name of the metric (a rate, shown in %).
        title: Figure title.

    Returns:
        A PNG data URI.
    """
    lines = [SweepLine(label, ys, PALETTE[i % len(PALETTE)]) for i, (label, ys) in enumerate(series.items())]
    colours = {line.label: line.colour for line in lines}
    drawn = [
        SweepBaseline(f"{label} baseline", float(value), colours[label])
        for label, value in (baselines or {}).items()
        if label in colours and value is not None
    ]
    figure = sweep_figure(x, lines, baselines=drawn, references=references, xlabel=xlabel, ylabel=ylabel, title=title)
    return figure_to_data_uri(figure)


# The generalisation matrix's colour scale, as a rate: fixed so that matrices
# of different runs (and recognizers) compare by colour; 50% is chance.
_MATRIX_VMAX = 0.5


def generalisation_matrix_figure(
    rows: Sequence[str],
    columns: Sequence[str],
    values: Sequence[Sequence[float | None]],
    *,
    title: str = "",
    vmax: float = _MATRIX_VMAX,
) -> Figure:
    """A training × test setting heatmap of an error rate, each cell annotated in %.

    The colour scale runs from 0 to ``vmax`` whatever the data (a value above
    it takes the top colour; the bar's arrow says so), so figures of
    different runs compare. Missing cells are grey and marked "—".

    Args:
        rows: Row labels (training settings), top to bottom.
        columns: Column labels (settings under test), left to right.
        values: One line per row of one rate per column (None: not run or undefined).
        title: Figure title.
        vmax: Top of the colour scale, as a rate.

    Returns:
        The figure.

    Raises:
        ValueError: If ``values`` is not ``len(rows)`` lines of ``len(columns)`` values.
    """
    import matplotlib.image
    from matplotlib.figure import Figure

    if len(values) != len(rows) or any(len(line) != len(columns) for line in values):
        raise ValueError(f"values must be {len(rows)} lines of {len(columns)} values")
    grid = np.array([_optional_series(line) * 100.0 for line in values]).reshape(len(rows), len(columns))
    top = 100.0 * vmax
    # Sized by the matrix so cell annotations stay legible; a layout engine
    # because row and column labels are as long as the settings' names.
    width = min(14.0, max(4.2, 2.8 + 0.7 * len(columns)))
    height = max(2.6, 1.7 + 0.42 * len(rows))
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    if not grid.size:
        _no_data(ax)
        if title:
            ax.set_title(title, fontsize=9)
        return fig
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#e6e6e6")
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0.0, vmax=top, aspect="auto")
    for (i, j), value in np.ndenumerate(grid):
        if np.isfinite(value):
            # viridis is dark at the low end: white text there, black on the light top.
            colour = "#ffffff" if value < 0.6 * top else "#000000"
            ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=7, color=colour)
        else:
            ax.text(j, i, "—", ha="center", va="center", fontsize=7, color="#777777")
    ax.set_xticks(range(len(columns)), list(columns), rotation=40, ha="right", rotation_mode="anchor", fontsize=7)
    ax.set_yticks(range(len(rows)), list(rows), fontsize=7)
    ax.tick_params(length=0)
    ax.set_xlabel("setting under test", fontsize=8)
    ax.set_ylabel("training setting", fontsize=8)
    bar = fig.colorbar(image, ax=ax, extend="max", pad=0.02)
    bar.set_label("EER (%)", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def generalisation_matrix_plot(
    rows: Sequence[str],
    columns: Sequence[str],
    values: Sequence[Sequence[float | None]],
    *,
    title: str = "",
    vmax: float = _MATRIX_VMAX,
) -> str:
    """:func:`generalisation_matrix_figure` as a PNG data URI.

    Args:
        rows: Row labels (training settings), top to bottom.
        columns: Column labels (settings under test), left to right.
        values: One line per row of one rate per column (None: not run or undefined).
        title: Figure title.
        vmax: Top of the colour scale, as a rate.

    Returns:
        A PNG data URI.
    """
    return figure_to_data_uri(generalisation_matrix_figure(rows, columns, values, title=title, vmax=vmax))


# Colours of the views in the IJCB 2020 warping paper's score plots:
# unprotected baseline red, protected-domain preservation blue, attack
# (protection strength) green.
VIEW_COLOURS: dict[str, str] = {"baseline": "#D62728", "preservation": "#1F77B4", "strength": "#2CA02C"}


class ScoreDensity(NamedTuple):
    """Genuine and impostor densities of one result row, on that row's own bins.

    Attributes:
        label: Legend text (the view).
        edges: Bin edges, one more than the number of bins.
        genuine: Genuine-score density per bin.
        impostor: Impostor-score density per bin.
        colour: Matplotlib colour spec.
    """

    label: str
    edges: Sequence[float]
    genuine: Sequence[float]
    impostor: Sequence[float]
    colour: str


def view_distributions_figure(densities: Sequence[ScoreDensity], *, title: str = "") -> Figure:
    """Overlay the score densities of several views of one recognizer and scheme.

    Each row's histogram is drawn as steps on its own bin edges (rows are
    binned separately, so edges differ); genuine solid, impostor dashed, one
    colour per view.

    Args:
        densities: One :class:`ScoreDensity` per view; empty series are skipped.
        title: Figure title.

    Returns:
        The figure.

    Raises:
        ValueError: If a non-empty density does not have ``len(edges) - 1`` bins.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    fig = Figure(figsize=(4.6, 3.0), dpi=DPI)
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.16, top=0.86)
    ax = fig.add_subplot()
    handles = []
    for d in densities:
        e = _as_series(d.edges)
        drawn_here = False
        for name, values, style in (
            ("genuine", _as_series(d.genuine), "-"),
            ("impostor", _as_series(d.impostor), "--"),
        ):
            if not values.size:
                continue
            if e.size != values.size + 1:
                raise ValueError(f"{d.label} {name} histogram has {values.size} bins but {e.size} edges")
            ax.stairs(values, e, color=d.colour, linestyle=style, linewidth=1.3)
            drawn_here = True
        if drawn_here:
            handles.append(Line2D([], [], color=d.colour, linewidth=1.3, label=d.label))
    if handles:
        handles += [
            Line2D([], [], color="#555555", linestyle="-", linewidth=1.0, label="genuine"),
            Line2D([], [], color="#555555", linestyle="--", linewidth=1.0, label="impostor"),
        ]
        ax.legend(handles=handles, fontsize=6, loc="best", framealpha=0.8)
    else:
        _no_data(ax)
    _style_density_axes(ax, title, pad=8)
    return fig


def view_distributions_plot(densities: Sequence[ScoreDensity], *, title: str = "") -> str:
    """:func:`view_distributions_figure` as a PNG data URI.

    Args:
        densities: One :class:`ScoreDensity` per view.
        title: Figure title.

    Returns:
        A PNG data URI.
    """
    return figure_to_data_uri(view_distributions_figure(densities, title=title))


def _optional_series(values: Sequence[float | None] | None) -> np.ndarray:
    """``values`` as floats, None (an undefined value) as NaN."""
    return np.array([np.nan if v is None else float(v) for v in (values or [])], dtype=float)


def training_curve_figure(
    epochs: Sequence[float],
    loss: Sequence[float | None],
    val_loss: Sequence[float | None],
    *,
    title: str = "",
) -> Figure:
    """Training loss (solid) and validation loss (dashed) against the epoch, a marker per epoch.

    Args:
        epochs: Epoch numbers, in training order.
        loss: Training loss per epoch (None: not recorded).
        val_loss: Validation loss per epoch (None: not measured that
            epoch); empty when the model had no validation set.
        title: Figure title.

    Returns:
        The figure.

    Raises:
        ValueError: If a non-empty loss series does not have one value per epoch.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    x = _as_series(epochs)
    fig = Figure(figsize=(4.0, 2.8), dpi=DPI)
    fig.subplots_adjust(left=0.16, right=0.97, bottom=0.17, top=0.88)
    ax = fig.add_subplot()
    drawn = False
    for name, values, colour, marker, style in (
        ("training loss", loss, PALETTE[0], "o", "-"),
        ("validation loss", val_loss, PALETTE[1], "s", "--"),
    ):
        y = _optional_series(values)
        if not y.size:
            continue
        if y.size != x.size:
            raise ValueError(f"{name} has {y.size} values but there are {x.size} epochs")
        keep = np.isfinite(x) & np.isfinite(y)
        if keep.any():
            ax.plot(
                x[keep], y[keep], color=colour, marker=marker, markersize=4, linestyle=style, linewidth=1.3, label=name
            )
            drawn = True
    if drawn:
        ax.legend(fontsize=7, loc="best", framealpha=0.8)
    else:
        _no_data(ax)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(labelsize=7)
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    ax.yaxis.get_offset_text().set_fontsize(7)
    ax.grid(True, linewidth=0.4, alpha=0.5)
    ax.set_xlabel("epoch", fontsize=8)
    ax.set_ylabel("loss", fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def training_curve_plot(
    epochs: Sequence[float],
    loss: Sequence[float | None],
    val_loss: Sequence[float | None],
    *,
    title: str = "",
) -> str:
    """:func:`training_curve_figure` as a PNG data URI.

    Args:
        epochs: Epoch numbers, in training order.
        loss: Training loss per epoch (None: not recorded).
        val_loss: Validation loss per epoch (None: not measured that epoch).
        title: Figure title.

    Returns:
        A PNG data URI.
    """
    return figure_to_data_uri(training_curve_figure(epochs, loss, val_loss, title=title))


def _wrapped(title: str, width: int = 60) -> str:
    """``title`` broken into lines: training settings can run to a hundred characters."""
    return "\n".join(textwrap.wrap(title, width)) if title else ""


def recognizer_training_figure(
    epochs: Sequence[float],
    loss: Sequence[float | None],
    val_eer: Sequence[float | None],
    *,
    kept_epoch: float | None = None,
    title: str = "",
) -> Figure:
    """Fine-tuning of a recognizer: training loss (left axis) and validation EER (right axis, %) per epoch.

    Epoch 0 is the pretrained model: it has a validation EER but no loss. The
    epoch whose weights were kept is marked by a dotted vertical line and a
    ring on its validation EER.

    Args:
        epochs: Epoch numbers, in training order.
        loss: Training loss per epoch (None: not recorded, as for epoch 0).
        val_eer: Validation EER per epoch, as a rate (None: not measured).
        kept_epoch: The epoch whose weights were kept, or None when unknown.
        title: Figure title; long titles are wrapped.

    Returns:
        The figure.

    Raises:
        ValueError: If a non-empty series does not have one value per epoch.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    x = _as_series(epochs)
    series = {"training loss": _optional_series(loss), "validation EER": _optional_series(val_eer) * 100.0}
    for name, y in series.items():
        if y.size and y.size != x.size:
            raise ValueError(f"{name} has {y.size} values but there are {x.size} epochs")
    fig = Figure(figsize=(4.2, 3.0), dpi=DPI)
    fig.subplots_adjust(left=0.15, right=0.85, bottom=0.16, top=0.8)
    ax = fig.add_subplot()
    eer_ax = ax.twinx()
    handles = []
    for name, target, colour, marker, style in (
        ("training loss", ax, PALETTE[0], "o", "-"),
        ("validation EER", eer_ax, PALETTE[1], "s", "--"),
    ):
        y = series[name]
        keep = np.isfinite(x) & np.isfinite(y) if y.size else np.zeros(0, dtype=bool)
        if keep.any():
            (line,) = target.plot(
                x[keep], y[keep], color=colour, marker=marker, markersize=4, linestyle=style, linewidth=1.3, label=name
            )
            handles.append(line)
    if kept_epoch is not None and np.isfinite(kept_epoch):
        ax.axvline(kept_epoch, color="#777777", linestyle=":", linewidth=1.0)
        eer = series["validation EER"]
        at = (x == kept_epoch) & np.isfinite(eer) if eer.size else np.zeros(0, dtype=bool)
        if at.any():
            eer_ax.plot(
                x[at], eer[at], linestyle="none", marker="o", markersize=10, markerfacecolor="none", color="#000000"
            )
        handles.append(
            Line2D([], [], color="#777777", linestyle=":", linewidth=1.0, label=f"kept (epoch {kept_epoch:g})")
        )
    if handles:
        # On the twin axis: it is drawn last, so the legend stays on top.
        eer_ax.legend(handles=handles, fontsize=6, loc="best", framealpha=0.8)
    else:
        _no_data(ax)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for axis in (ax, eer_ax):
        axis.tick_params(labelsize=7)
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    ax.yaxis.get_offset_text().set_fontsize(7)
    ax.grid(True, linewidth=0.4, alpha=0.5)
    ax.set_xlabel("epoch (0: pretrained)", fontsize=8)
    ax.set_ylabel("training loss", fontsize=8, color=PALETTE[0])
    eer_ax.set_ylabel("validation EER (%)", fontsize=8, color=PALETTE[1])
    if title:
        ax.set_title(_wrapped(title), fontsize=8)
    return fig


def recognizer_training_plot(
    epochs: Sequence[float],
    loss: Sequence[float | None],
    val_eer: Sequence[float | None],
    *,
    kept_epoch: float | None = None,
    title: str = "",
) -> str:
    """:func:`recognizer_training_figure` as a PNG data URI.

    Args:
        epochs: Epoch numbers, in training order.
        loss: Training loss per epoch (None: not recorded, as for epoch 0).
        val_eer: Validation EER per epoch, as a rate (None: not measured).
        kept_epoch: The epoch whose weights were kept, or None when unknown.
        title: Figure title; long titles are wrapped.

    Returns:
        A PNG data URI.
    """
    return figure_to_data_uri(recognizer_training_figure(epochs, loss, val_eer, kept_epoch=kept_epoch, title=title))


class QualitySeries(NamedTuple):
    """One image set's histogram of a face-quality measure.

    Attributes:
        label: Legend text (the attack, or the original faces).
        edges: Bin edges, one more than the number of bins, increasing.
        counts: Number of images per bin.
        colour: Matplotlib colour spec.
        linestyle: Matplotlib line style.
    """

    label: str
    edges: Sequence[float]
    counts: Sequence[float]
    colour: str = PALETTE[0]
    linestyle: str = "-"


def quality_distributions_figure(series: Sequence[QualitySeries], *, title: str = "", xlabel: str = "") -> Figure:
    """Overlay face-quality histograms of several image sets as step densities.

    Counts are scaled to densities (area one) so sets of different sizes
    compare; each set is drawn on its own bin edges.

    Args:
        series: One :class:`QualitySeries` per image set; empty ones and
            ones without any count are skipped.
        title: Figure title.
        xlabel: Name of the measure.

    Returns:
        The figure.

    Raises:
        ValueError: If a non-empty series does not have ``len(edges) - 1``
            bins or its edges do not increase.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.6, 3.0), dpi=DPI)
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.16, top=0.88)
    ax = fig.add_subplot()
    drawn = False
    for s in series:
        e, counts = _as_series(s.edges), _as_series(s.counts)
        if not counts.size:
            continue
        if e.size != counts.size + 1:
            raise ValueError(f"{s.label} histogram has {counts.size} bins but {e.size} edges")
        widths = np.diff(e)
        if not np.all(widths > 0):
            raise ValueError(f"{s.label} histogram edges do not increase")
        total = float(counts.sum())
        if not total > 0:
            continue
        ax.stairs(counts / (total * widths), e, color=s.colour, linestyle=s.linestyle, linewidth=1.3, label=s.label)
        drawn = True
    if drawn:
        ax.legend(fontsize=6, loc="best", framealpha=0.8)
    else:
        _no_data(ax)
    _style_density_axes(ax, title, pad=8)
    ax.set_xlabel(xlabel, fontsize=8)
    return fig


def quality_distributions_plot(series: Sequence[QualitySeries], *, title: str = "", xlabel: str = "") -> str:
    """:func:`quality_distributions_figure` as a PNG data URI.

    Args:
        series: One :class:`QualitySeries` per image set.
        title: Figure title.
        xlabel: Name of the measure.

    Returns:
        A PNG data URI.
    """
    return figure_to_data_uri(quality_distributions_figure(series, title=title, xlabel=xlabel))


class ExampleLine(NamedTuple):
    """One probe face of an examples figure: its label and one image per column.

    Attributes:
        label: Row label (the sample's subject or id).
        images: One ``data:image/png;base64`` URI per column; None (or
            anything that is not an inline PNG) draws as "failed".
    """

    label: str
    images: Sequence[str | None]


def _decode_png(uri: str | None) -> np.ndarray | None:
    """The pixels of an inline PNG data URI, or None when it is not one or does not decode."""
    import matplotlib.image

    if not isinstance(uri, str) or not uri.startswith(PNG_DATA_URI_PREFIX):
        return None
    try:
        data = base64.b64decode(uri[len(PNG_DATA_URI_PREFIX) :], validate=True)
        pixels = np.asarray(matplotlib.image.imread(io.BytesIO(data), format="png"))
    except (ValueError, OSError, SyntaxError):
        return None
    return pixels if pixels.ndim in (2, 3) and pixels.size else None


def _example_cell(ax, pixels: np.ndarray | None) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("#cccccc")
    if pixels is None:
        ax.set_facecolor("#f4f5f7")
        ax.text(0.5, 0.5, "failed", transform=ax.transAxes, ha="center", va="center", fontsize=7, color="#b3261e")
    elif pixels.ndim == 2:
        ax.imshow(pixels, cmap="gray", vmin=0.0, vmax=1.0 if pixels.dtype.kind == "f" else 255)
    else:
        ax.imshow(pixels)


_EXAMPLE_CELL_IN = 1.2


def examples_figure(columns: Sequence[str], lines: Sequence[ExampleLine], *, title: str = "") -> Figure:
    """Example faces side by side: a column per image set (original, protected, each attack), a row per face.

    Images are drawn as they are stored (no resampling beyond the figure's
    resolution); a missing or undecodable image is a grey "failed" cell.

    Args:
        columns: Column titles (image sets), left to right.
        lines: One :class:`ExampleLine` per probe face; a line with fewer
            images than columns is padded with failed cells.
        title: Figure title (the scheme).

    Returns:
        The figure.
    """
    from matplotlib.figure import Figure

    n_rows, n_cols = len(lines), max([len(columns), *(len(line.images) for line in lines)])
    if not n_rows or not n_cols:
        fig = Figure(figsize=(3.0, 1.5), dpi=DPI)
        _no_data(fig.add_subplot())
        return fig
    left, top, bottom = 0.35, 0.55 if title else 0.35, 0.1
    width = left + _EXAMPLE_CELL_IN * n_cols + 0.1
    height = top + _EXAMPLE_CELL_IN * n_rows + bottom
    fig = Figure(figsize=(width, height), dpi=DPI)
    fig.subplots_adjust(
        left=left / width,
        right=1 - 0.1 / width,
        top=1 - top / height,
        bottom=bottom / height,
        wspace=0.05,
        hspace=0.05,
    )
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    names = [*columns, *[""] * (n_cols - len(columns))]
    for i, line in enumerate(lines):
        images = [*line.images, *[None] * (n_cols - len(line.images))]
        for j in range(n_cols):
            _example_cell(axes[i][j], _decode_png(images[j]))
        label = line.label if len(line.label) <= 24 else line.label[:23] + "…"
        axes[i][0].set_ylabel(label, fontsize=6)
    for j, name in enumerate(names):
        axes[0][j].set_title(_wrapped(name, 18), fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def examples_plot(columns: Sequence[str], lines: Sequence[ExampleLine], *, title: str = "") -> str:
    """:func:`examples_figure` as a PNG data URI.

    Args:
        columns: Column titles (image sets), left to right.
        lines: One :class:`ExampleLine` per probe face.
        title: Figure title (the scheme).

    Returns:
        A PNG data URI.
    """
    return figure_to_data_uri(examples_figure(columns, lines, title=title))
