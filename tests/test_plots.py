"""Tests for reports.plots: PNG data URIs, probit axes, edge cases."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest

from reports.plots import DetCurve, det_plot, probit_ticks, score_histogram

PNG_PREFIX = "data:image/png;base64,"


def _png(uri: str) -> bytes:
    assert uri.startswith(PNG_PREFIX)
    data = base64.b64decode(uri[len(PNG_PREFIX) :], validate=True)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return data


def test_det_plot_returns_png_data_uri():
    fmr = np.logspace(-4, 0, 50)
    curve = DetCurve("lbp", fmr, 1 - fmr**0.2)
    data = _png(det_plot([curve], title="none · none · baseline"))
    assert b"matplotlib" not in data  # no version stamp: reports stay byte-stable


def test_det_plot_handles_zero_and_one():
    curve = DetCurve("a", [0.0, 0.0, 1e-3, 0.5, 1.0], [1.0, 0.3, 0.1, 0.0, 0.0])
    _png(det_plot([curve]))


def test_det_plot_handles_empty_and_nonfinite():
    _png(det_plot([]))
    _png(det_plot([DetCurve("empty", [], [])]))
    _png(det_plot([DetCurve("nan", [float("nan"), 0.1], [0.2, float("inf")])]))


def test_det_plot_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="fmr has 2 points, fnmr has 1"):
        det_plot([DetCurve("bad", [0.1, 0.2], [0.3])])


def test_det_plot_deterministic():
    curves = [DetCurve("a", [1e-3, 0.1], [0.4, 0.05]), DetCurve("b", [1e-2, 0.3], [0.2, 0.01], "#D55E00")]
    assert det_plot(curves, title="t") == det_plot(curves, title="t")


def test_probit_ticks_are_percentages_within_range():
    ticks = probit_ticks(1e-4, 0.4)
    assert [label for _, label in ticks] == ["0.01%", "0.1%", "1%", "5%", "20%", "40%"]


def test_score_histogram():
    edges = np.linspace(-1, 1, 51)
    _png(score_histogram(edges, np.ones(50), np.full(50, 0.5), title="lbp"))
    _png(score_histogram([], [], []))
    with pytest.raises(ValueError, match="50 bins but 50 edges"):
        score_histogram(edges[:-1], np.ones(50), np.ones(50))


def test_unlinkability_plot():
    from reports.plots import unlinkability_plot

    edges = np.linspace(-2, 2, 21)
    mated = np.linspace(0.0, 0.5, 20)
    nonmated = mated[::-1]
    local = np.clip(np.linspace(-1, 1, 20), 0, 1)

    def draw(d_sys: float) -> str:
        return unlinkability_plot(edges, mated, nonmated, local, d_sys=d_sys, omega=1.0, title="lbp · biohash")

    uri = draw(0.31)
    assert b"matplotlib" not in _png(uri)
    # Deterministic bytes, and the title's figures change the image.
    assert uri == draw(0.31)
    assert uri != draw(0.32)
    # Unknown figures and empty series still draw.
    _png(unlinkability_plot(edges, mated, nonmated, [], d_sys=None, omega=float("nan")))
    _png(unlinkability_plot([], [], [], []))
    with pytest.raises(ValueError, match="D\\(s\\) has 19 bins but 21 edges"):
        unlinkability_plot(edges, mated, nonmated, local[:-1])


def test_sweep_plot_handles_missing_values():
    from reports.plots import sweep_plot

    uri = sweep_plot(
        [1, 2, 3],
        {"lbp": [0.1, None, 0.4], "sface": [0.01, 0.2, 0.5]},
        baselines={"lbp": 0.1, "sface": None},
        xlabel="window",
    )
    assert uri.startswith("data:image/png;base64,")
    assert sweep_plot([], {}).startswith("data:image/png;base64,")


def test_view_distributions_plot_draws_each_view_on_its_own_bins():
    from reports.plots import VIEW_COLOURS, ScoreDensity, view_distributions_plot

    def density(label, lo, hi, bins):
        return ScoreDensity(
            label, np.linspace(lo, hi, bins + 1), np.linspace(0, 1, bins), np.linspace(1, 0, bins), VIEW_COLOURS[label]
        )

    views = [density("baseline", -1, 1, 50), density("preservation", -0.5, 0.8, 30), density("strength", 0, 0.3, 20)]
    uri = view_distributions_plot(views, title="lbp · warp_16_6")
    _png(uri)
    assert uri == view_distributions_plot(views, title="lbp · warp_16_6")  # deterministic
    assert uri != view_distributions_plot(views[:2], title="lbp · warp_16_6")
    _png(view_distributions_plot([]))
    _png(view_distributions_plot([ScoreDensity("baseline", [], [], [], "red")]))
    with pytest.raises(ValueError, match="strength impostor histogram has 19 bins but 21 edges"):
        view_distributions_plot([views[2]._replace(impostor=np.ones(19))])


def test_training_curve_plot_skips_missing_points():
    from reports.plots import training_curve_plot

    uri = training_curve_plot([1, 2, 3], [0.03, 0.027, 0.025], [0.029, None, 0.024], title="inpaint on lw4o6 (group 0)")
    assert b"matplotlib" not in _png(uri)
    assert uri == training_curve_plot(
        [1, 2, 3], [0.03, 0.027, 0.025], [0.029, None, 0.024], title="inpaint on lw4o6 (group 0)"
    )
    assert uri != training_curve_plot(
        [1, 2, 3], [0.03, 0.027, 0.025], [None, None, None], title="inpaint on lw4o6 (group 0)"
    )
    _png(training_curve_plot([1, 2], [0.5, float("nan")], []))  # no validation set
    _png(training_curve_plot([], [], []))
    with pytest.raises(ValueError, match="validation loss has 2 values but there are 3 epochs"):
        training_curve_plot([1, 2, 3], [0.1, 0.1, 0.1], [0.1, 0.1])


def test_quality_distributions_plot():
    from reports.plots import QualitySeries, quality_distributions_plot

    edges = np.linspace(0, 1, 11)
    series = [
        QualitySeries("original faces", edges, np.arange(10), "#000000", "--"),
        QualitySeries("naive", np.linspace(0, 1, 6), [50, 0, 0, 0, 0], "#0072B2"),
    ]
    uri = quality_distributions_plot(series, title="detector · lw4o6", xlabel="detector")
    assert b"matplotlib" not in _png(uri)
    assert uri == quality_distributions_plot(series, title="detector · lw4o6", xlabel="detector")
    assert uri != quality_distributions_plot(series[:1], title="detector · lw4o6", xlabel="detector")
    # Empty series and ones without a single count draw as no data.
    _png(quality_distributions_plot([]))
    _png(quality_distributions_plot([QualitySeries("zero", edges, np.zeros(10)), QualitySeries("empty", [], [])]))
    with pytest.raises(ValueError, match="naive histogram has 5 bins but 11 edges"):
        quality_distributions_plot([series[1]._replace(edges=edges)])
    with pytest.raises(ValueError, match="edges do not increase"):
        quality_distributions_plot([series[1]._replace(edges=[0, 0.5, 0.5, 0.7, 0.8, 1])])


def test_sweep_plot_draws_references_and_categorical_values():
    from reports.plots import sweep_plot

    series = {"finetune[lw4o0]": [0.2, 0.15, None]}
    plain = sweep_plot([2, 6, 10], series, xlabel="window")
    with_reference = sweep_plot(
        [2, 6, 10], series, references={"pretrained (naive)": [0.4, 0.35, 0.3]}, xlabel="window"
    )
    _png(with_reference)
    assert with_reference != plain
    assert with_reference == sweep_plot(
        [2, 6, 10], series, references={"pretrained (naive)": [0.4, 0.35, 0.3]}, xlabel="window"
    )
    # A reference alone is data too, and non-numeric swept values are placed in order.
    _png(sweep_plot([2], {}, references={"pretrained (naive)": [0.45]}))
    _png(sweep_plot(["layer", "resolution"], {"sface": [0.1, 0.2]}, xlabel="progression"))


def test_generalisation_matrix_plot():
    from reports.plots import generalisation_matrix_plot

    rows = ["pretrained (naive)", "finetune[lw4o0,lw4o4,lw4o8]", "finetune"]
    columns = ["lw2o0", "lw6o0", "lw10o0"]
    values = [[0.4, 0.35, 0.3], [0.2, 0.15, 0.1], [0.21, 0.16, None]]
    uri = generalisation_matrix_plot(rows, columns, values, title="sface · strength")
    assert b"matplotlib" not in _png(uri)
    assert uri == generalisation_matrix_plot(rows, columns, values, title="sface · strength")
    changed = [[0.4, 0.35, 0.3], [0.2, 0.15, 0.1], [0.21, 0.16, 0.6]]  # above the 50% scale: still drawn
    assert generalisation_matrix_plot(rows, columns, changed, title="sface · strength") != uri
    _png(generalisation_matrix_plot([], [], []))
    _png(generalisation_matrix_plot(["a"], ["x"], [[None]]))
    with pytest.raises(ValueError, match="values must be 3 lines of 3 values"):
        generalisation_matrix_plot(rows, columns, values[:2])
    with pytest.raises(ValueError, match="values must be 3 lines of 3 values"):
        generalisation_matrix_plot(rows, columns, [*values[:2], [0.1]])


def test_generalisation_matrix_plot_fixed_colour_scale():
    from reports.plots import generalisation_matrix_plot

    # The scale is 0-50% whatever the data: a lone 10% cell and a lone 10%
    # cell beside a 40% one have the same colour, so only annotations differ.
    lone = generalisation_matrix_plot(["a"], ["x"], [[0.1]])
    assert lone == generalisation_matrix_plot(["a"], ["x"], [[0.1]], vmax=0.5)
    assert lone != generalisation_matrix_plot(["a"], ["x"], [[0.1]], vmax=0.2)


def test_recognizer_training_plot():
    from reports.plots import recognizer_training_plot

    epochs, loss, val_eer = [0, 1, 2, 3], [None, 12.0, 9.5, 7.1], [0.34, 0.38, 0.31, None]
    title = "finetune[rw4o0] on j2k progression=resolution, window=4, offset=0; j2k progression=resolution (group 0)"
    uri = recognizer_training_plot(epochs, loss, val_eer, kept_epoch=2, title=title)
    assert b"matplotlib" not in _png(uri)
    assert uri == recognizer_training_plot(epochs, loss, val_eer, kept_epoch=2, title=title)
    assert uri != recognizer_training_plot(epochs, loss, val_eer, kept_epoch=0, title=title)  # the kept mark moves
    assert uri != recognizer_training_plot(epochs, loss, val_eer, title=title)
    _png(recognizer_training_plot([0], [None], [0.3], kept_epoch=0))  # pretrained only
    _png(recognizer_training_plot([0, 1], [None, 2.0], []))  # no validation
    _png(recognizer_training_plot([], [], []))
    with pytest.raises(ValueError, match="validation EER has 2 values but there are 4 epochs"):
        recognizer_training_plot(epochs, loss, [0.3, 0.2])


def test_unlinkability_plot_shows_maximal_linkability():
    from reports.plots import unlinkability_plot

    edges = np.linspace(-2, 2, 21)
    mated, local = np.linspace(0.0, 0.5, 20), np.clip(np.linspace(-1, 1, 20), 0, 1)
    without = unlinkability_plot(edges, mated, mated[::-1], local, d_sys=0.31, omega=1.0, title="lbp")
    with_max = unlinkability_plot(
        edges, mated, mated[::-1], local, d_sys=0.31, omega=1.0, linkability_max=0.45, title="lbp"
    )
    _png(with_max)
    assert with_max != without  # in the title
    assert without == unlinkability_plot(
        edges, mated, mated[::-1], local, d_sys=0.31, omega=1.0, linkability_max=float("nan"), title="lbp"
    )


def test_sweep_figure_lines_and_baselines():
    from reports.plots import SweepBaseline, SweepLine, figure_to_data_uri, sweep_figure

    lines = [
        SweepLine("lbp · naive", [0.3, None, 0.4]),
        SweepLine("lbp · inpaint", [0.2, 0.25, 0.3], "#D55E00", "s", "--"),
    ]
    base = [SweepBaseline("lbp baseline (unprotected)", 0.1, "#0072B2")]
    uri = figure_to_data_uri(sweep_figure([0, 4, 8], lines, baselines=base, xlabel="offset", title="j2k · strength"))
    _png(uri)
    assert uri != figure_to_data_uri(sweep_figure([0, 4, 8], lines, xlabel="offset", title="j2k · strength"))
    assert uri == figure_to_data_uri(
        sweep_figure([0, 4, 8], lines, baselines=base, xlabel="offset", title="j2k · strength")
    )
    _png(figure_to_data_uri(sweep_figure([], [])))  # no data
    _png(figure_to_data_uri(sweep_figure([1], [], baselines=[SweepBaseline("b", float("nan"))])))


def test_examples_plot_draws_inline_pngs_and_failed_cells():
    from reports.plots import ExampleLine, examples_plot

    face = np.random.default_rng(0).integers(0, 255, (16, 12), dtype=np.uint8)
    from PIL import Image

    def uri(pixels: np.ndarray) -> str:
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="PNG")
        return PNG_PREFIX + base64.b64encode(buf.getvalue()).decode("ascii")

    good, rgb = uri(face), uri(np.stack([face] * 3, axis=-1))
    lines = [
        ExampleLine("Aaron_Peirsol", [good, rgb, None]),
        ExampleLine("a" * 40, [good, "javascript:x", PNG_PREFIX + "!!"]),
    ]
    drawn = examples_plot(["original", "naive", "inpaint"], lines, title="Examples · warp")
    assert b"matplotlib" not in _png(drawn)
    assert drawn == examples_plot(["original", "naive", "inpaint"], lines, title="Examples · warp")
    # A cell that does not decode draws as failed, like a missing one.
    failed = [ExampleLine("Aaron_Peirsol", [good, rgb, None]), ExampleLine("a" * 40, [good, None, None])]
    assert drawn == examples_plot(["original", "naive", "inpaint"], failed, title="Examples · warp")
    _png(examples_plot([], []))
    _png(examples_plot(["original"], [ExampleLine("x", [good, good])]))  # more images than columns


def _det_points(seed: int = 0) -> tuple[dict, int, int]:
    from benchmark.metrics.verification import det_curve

    rng = np.random.default_rng(seed)
    genuine, impostor = rng.normal(3.0, 1.0, 200), rng.normal(0.0, 1.0, 300)
    return det_curve(genuine, impostor), genuine.size, impostor.size


def test_det_figure_draws_only_measured_points_and_says_where_it_stops():
    from scipy.special import ndtri

    from reports.plots import det_figure

    det, n_genuine, n_impostor = _det_points()
    assert min(det["fmr"]) == 0.5 / n_impostor  # det_curve stores an FMR of 0 as half a count
    fig = det_figure([DetCurve("lbp", det["fmr"], det["fnmr"], "#0072B2", n_impostor, n_genuine)])
    (line,) = [line for line in fig.axes[0].lines if line.get_label() == "lbp"]
    x = np.asarray(line.get_xdata())
    # The curve starts at the smallest measured FMR, 1/n: no vertical run at 1/(2n) up the frame.
    assert x.min() == pytest.approx(ndtri(1 / n_impostor)) and x.size < len(det["fmr"])
    notes = " ".join(t.get_text() for t in fig.texts).replace("\n", " ")
    assert "FMR 1/300 (300 impostor scores)" in notes
    # Without the counts, nothing tells a stored 0 from a measured rate: every point is drawn, no note.
    old = det_figure([DetCurve("lbp", det["fmr"], det["fnmr"])])
    (line,) = [line for line in old.axes[0].lines if line.get_label() == "lbp"]
    assert np.asarray(line.get_xdata()).min() == pytest.approx(ndtri(0.5 / n_impostor)) and not old.texts


def test_det_figure_without_a_zero_rate_adds_no_note():
    from reports.plots import det_figure

    fmr = [1e-3, 1e-2, 0.1, 0.3]
    fig = det_figure([DetCurve("a", fmr, [0.5, 0.2, 0.05, 0.01], "#0072B2", 1000, 100)])
    (line,) = [line for line in fig.axes[0].lines if line.get_label() == "a"]
    assert len(line.get_xdata()) == 4 and not fig.texts
