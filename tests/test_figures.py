"""Tests for reports.figures: deterministic PNG/PDF encoding and PNG data URIs."""

from __future__ import annotations

from matplotlib.figure import Figure

import reports.plots
from reports.figures import PNG_DATA_URI_PREFIX, figure_pdf, figure_png, figure_to_data_uri, png_data_uri
from reports.plots import DetCurve, det_figure, det_plot


def test_figure_builders_return_figures_and_encode_deterministically():
    curves = [DetCurve("a", [1e-3, 0.1], [0.4, 0.05])]
    fig = det_figure(curves, title="t")
    assert isinstance(fig, Figure)
    png, pdf = figure_png(fig), figure_pdf(fig)
    assert png_data_uri(png) == figure_to_data_uri(fig) == det_plot(curves, title="t")
    assert pdf.startswith(b"%PDF") and pdf == figure_pdf(det_figure(curves, title="t"))
    assert b"CreationDate" not in pdf and b"matplotlib" not in pdf.lower()


def test_plots_reexports_the_encoders():
    assert reports.plots.figure_png is figure_png and reports.plots.figure_pdf is figure_pdf
    assert reports.plots.png_data_uri is png_data_uri and reports.plots.figure_to_data_uri is figure_to_data_uri
    assert reports.plots.PNG_DATA_URI_PREFIX == PNG_DATA_URI_PREFIX == "data:image/png;base64,"
