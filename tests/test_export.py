"""Tests for reports.export and ``write_report(..., export_dir)``: files, names, escaping, determinism."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from reports.export import (
    INDEX_NAME,
    LATEX_WIDTH,
    Collector,
    Estimate,
    Table,
    latex_escape,
    slugify,
    table_csv,
    table_latex,
)
from reports.render import format_metric, write_report


def _row(recognizer: str, scheme: str, view: str, eer: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    genuine, impostor = rng.normal(2.0, 1.0, 60), rng.normal(0.0, 1.0, 300)
    thresholds = np.unique(np.concatenate([genuine, impostor]))
    edges = np.linspace(-4.0, 6.0, 21)
    attack = view.partition(":")[2] or "none"
    metrics = {"eer": eer, "eer_ci_low": eer - 0.01, "eer_ci_high": eer + 0.01, "n_genuine": 60, "n_impostor": 300}
    if view.startswith("linkage"):
        metrics.update(d_sys=0.4, d_sys_null_high=0.05, linkability_max=0.5)
    return {
        "recognizer": recognizer,
        "recognizer_params": {"radius": 2, "batch_size": 16, "threads": 1},
        "recognizer_runtime_params": ["batch_size", "threads"],
        "scheme": scheme,
        "scheme_params": {},
        "attack": attack,
        "view": view,
        "metrics": metrics,
        "curves": {
            "det": {
                "fmr": (impostor[None, :] >= thresholds[:, None]).mean(axis=1).tolist(),
                "fnmr": (genuine[None, :] < thresholds[:, None]).mean(axis=1).tolist(),
            },
            "hist": {
                "edges": edges.tolist(),
                "genuine": np.histogram(genuine, edges, density=True)[0].tolist(),
                "impostor": np.histogram(impostor, edges, density=True)[0].tolist(),
            },
        },
    }


def _results() -> dict:
    return {
        "schema_version": 3,
        "protocol": {"name": "export"},
        "dataset": {"name": "d"},
        "rows": [
            _row("lbp", "none", "baseline", 0.1, 0),
            _row("lbp", "warp_16_6", "strength:naive", 0.3, 1),
            _row("lbp", "warp_16_6", "linkage:naive", 0.2, 2),
        ],
        "certification": [
            {
                "metric": "d_sys",
                "view": "linkage:*",
                "recognizer": "*",
                "scheme": "*",
                "max": 0.1,
                "value": 0.4,
                "verdict": "FAIL",
                "reason": "lbp / warp_16_6 / linkage:naive: 0.4 > 0.1",
            },
        ],
    }


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("export")
    page = write_report(_results(), root / "report.html", export_dir=root / "figures")
    return root / "figures", page.read_text(encoding="utf-8")


def test_slugify():
    assert slugify("scheme warp_16_6 · attack naive · view strength:naive") == (
        "scheme-warp-16-6-attack-naive-view-strength-naive"
    )
    assert slugify("D↔sys über <x>") == "d-sys-uber-x"
    assert slugify("···") == "item"
    long = slugify("word " * 40)
    assert len(long) <= 80 and not long.endswith("-") and long.endswith("word")


def test_latex_escape():
    assert latex_escape("50% of $x & y_1 #2 {a} ~^\\") == (
        r"50\% of \$x \& y\_1 \#2 \{a\} \textasciitilde{}\textasciicircum{}\textbackslash{}"
    )
    assert latex_escape("D↔sys ≤ 0.1 — ΔEER <b>") == (
        r"D$\leftrightarrow$sys $\leq$ 0.1 --- $\Delta$EER \textless{}b\textgreater{}"
    )


def _table() -> Table:
    return Table(
        "Strength: lbp & <x>",
        ["Scheme", "EER", "n", "Bound"],
        [
            ["warp_16_6", Estimate(0.071234567, 0.05, 0.09), 200, Estimate(0.1, key="d_sys")],
            ["remap_8", Estimate(None), None, Estimate(0.01, key="eer")],
        ],
        ["", "eer", "n_genuine", ""],
    )


def test_table_csv_keeps_raw_numbers_and_expands_cis():
    lines = list(csv.reader(io.StringIO(table_csv(_table()))))
    assert lines[0] == ["Scheme", "EER", "EER CI low", "EER CI high", "n", "Bound"]  # the bound has no CI
    assert lines[1] == ["warp_16_6", "0.071234567", "0.05", "0.09", "200", "0.1"]
    assert lines[2] == ["remap_8", "", "", "", "", "0.01"]


def test_table_csv_writes_counts_as_integers():
    table = Table(
        "Counts",
        ["Scheme", "n", "images", "EER"],
        [["a", 1800.0, 12, Estimate(0.0, 0.0, 0.01)], ["b", Estimate(1800.0, 1700.0, 1900.0), 3.5, 0.25]],
        ["", "n_genuine", "", "eer"],
    )
    lines = list(csv.reader(io.StringIO(table_csv(table))))
    assert lines[1] == ["a", "1800", "", "", "12", "0.0", "0.0", "0.01"]  # a rate stays a float
    assert lines[2] == ["b", "1800", "1700", "1900", "3.5", "0.25", "", ""]


def test_exported_results_keep_counts_integral_and_runtime_settings_out(exported):
    folder, _ = exported
    (line, *_) = csv.DictReader(io.StringIO((folder / "results-all-results.csv").read_text()))
    assert (line["# genuine"], line["# impostor"]) == ("60", "300")
    assert line["Recognizer params"] == "radius=2"  # batch_size and threads only set how it ran
    tex = (folder / "results-all-results.tex").read_text()
    assert "batch" not in tex and "radius" not in tex  # parameters stay in the CSV


def _wide_table() -> Table:
    head = ["Recognizer", "Recognizer params", "Scheme", "Scheme params", "Attack", "View"]
    metrics = [f"metric {i}" for i in range(11)]
    row = ["sface", "radius=2", "warp_16_6", "block=16, n=6", "naive", "strength:naive"]
    return Table(
        "All results",
        head + metrics,
        [[*row, *(Estimate(0.1 * i, 0.05, 0.2, key="eer") for i in range(11))]] * 2,
        lead=6,
        csv_only=["Recognizer params", "Scheme params"],
    )


def test_table_latex_splits_a_wide_table_into_parts_a_page_holds():
    table = _wide_table()
    tex = table_latex(table, format_metric)
    parts = tex.split("\\end{tabular}")[:-1]
    assert len(parts) > 1 and tex.count("\\begin{tabular}") == len(parts) and "\\par\\medskip" in tex
    seen = []
    for n, part in enumerate(parts, 1):
        assert f"% All results (part {n} of {len(parts)})" in part
        header = part.split("\\hline\n")[1].split(" \\\\")[0].split(" & ")
        assert header[:4] == ["Recognizer", "Scheme", "Attack", "View"]  # the lead, in every part
        seen += header[4:]
        body = part.split("\\hline\n")[2]
        assert all(len(re.sub(r"\\[a-z]+|\\", "", line)) <= LATEX_WIDTH for line in body.splitlines())
    assert seen == [f"metric {i}" for i in range(11)]  # every column once, in order
    assert "params" not in tex and "radius" not in tex
    # A narrow table is one tabular, as before; a wider budget takes more columns a part.
    assert table_latex(_table(), format_metric).count("\\begin{tabular}") == 1
    assert table_latex(table, format_metric, width=400).count("\\begin{tabular}") == 1
    # Free text wraps in a paragraph column rather than running off the page.
    reasons = Table("Certification", ["Metric", "Verdict", "Reason"], [["eer", "FAIL", "word " * 60]])
    assert "\\begin{tabular}{llp{0.40\\linewidth}}" in table_latex(reasons)


def test_table_latex_formats_and_escapes():
    tex = table_latex(_table(), format_metric)
    assert tex.startswith(r"% Strength: lbp \& \textless{}x\textgreater{}") and "\\begin{tabular}{lrrr}" in tex
    assert r"warp\_16\_6 & 7.12\% [5.00\%, 9.00\%] & 200 & 0.1 \\" in tex
    assert r"remap\_8 & --- & --- & 1.00\% \\" in tex  # a cell's own key: a percentage
    assert tex.rstrip().endswith("\\end{tabular}")


def test_collector_without_folder_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = Collector()
    uri = out.figure("det", "t", Figure)
    out.table("summary", _table())
    assert uri.startswith("data:image/png;base64,") and out.entries == [] and out.finish() is None
    assert list(tmp_path.iterdir()) == []


_DRAWN: list[str] = []  # titles _det drew (module state: the pickled call, the cache key, must not carry it)


def _det(curves, *, title: str = "") -> Figure:
    from reports.plots import det_figure

    _DRAWN.append(title)
    return det_figure(curves, title=title)


def test_figure_cache_draws_an_identical_figure_once(tmp_path):
    from functools import partial

    from benchmark.core.cache import Cache
    from reports.plots import DetCurve

    curves = [DetCurve("lbp", [0.5, 0.1, 0.01], [0.01, 0.1, 0.5], "#0072B2")]
    cache = Cache(tmp_path / "cache")
    _DRAWN.clear()
    drawn = Collector().figure("det", "t", partial(_det, curves, title="t"))
    first = Collector(cache=cache).figure("det", "t", partial(_det, curves, title="t"))
    again = Collector(cache=cache).figure("det", "t", partial(_det, curves, title="t"))
    assert first == again == drawn and _DRAWN == ["t", "t"]  # the third came from the cache
    # Other data, another figure; a damaged entry is drawn again, not shown.
    other = Collector(cache=cache).figure("det", "u", partial(_det, curves, title="u"))
    assert other != first
    for entry in (tmp_path / "cache" / "figure").iterdir():
        entry.write_bytes(entry.read_bytes()[:-9])
    assert Collector(cache=cache).figure("det", "t", partial(_det, curves, title="t")) == drawn
    assert _DRAWN == ["t", "t", "u", "t"]


def test_collector_names_are_unique(tmp_path):
    out = Collector(tmp_path)
    for _ in range(2):
        out.figure("det", "scheme a", Figure)
    out.table("attacks", Table("Attacks", ["a"], [["x"]]))
    assert [e["name"] for e in out.entries] == ["det-scheme-a", "det-scheme-a-2", "attacks"]


def test_export_lists_every_file(exported):
    folder, _ = exported
    index = json.loads((folder / INDEX_NAME).read_text(encoding="utf-8"))
    files = [f for entry in index["figures"] + index["tables"] for f in entry["files"]]
    assert sorted(files + [INDEX_NAME]) == sorted(p.name for p in folder.iterdir())  # nothing else, no temp file
    names = [e["name"] for e in index["figures"] + index["tables"]]
    assert len(names) == len(set(names))
    kinds = {e["kind"] for e in index["figures"]}
    assert {"det", "hist", "views"} - kinds == {"views"}  # no preservation view: no view-distribution figure
    assert [e["kind"] for e in index["tables"]] == ["certification", "summary", "strength", "attacks", "results"]
    for entry in index["figures"]:
        assert (folder / entry["files"][0]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (folder / entry["files"][1]).read_bytes()[:5] == b"%PDF-"


def _png_size(png: bytes) -> tuple[int, int, int]:
    """Width and height in pixels and the resolution in dots per inch (pHYs chunk) of a PNG."""
    width, height = struct.unpack(">II", png[16:24])
    at = png.index(b"pHYs")
    per_metre, unit = struct.unpack(">I", png[at + 4 : at + 8])[0], png[at + 12]
    assert unit == 1  # metres
    return width, height, round(per_metre * 0.0254)


def test_exported_png_is_the_embedded_figure_at_print_resolution(exported):
    folder, page = exported
    index = json.loads((folder / INDEX_NAME).read_text(encoding="utf-8"))
    embedded = [base64.b64decode(src) for src in re.findall(r'src="data:image/png;base64,([^"]*)"', page)]
    page_sizes = sorted(_png_size(png)[:2] for png in embedded)
    exported_sizes = [_png_size((folder / e["files"][0]).read_bytes()) for e in index["figures"]]
    assert len(exported_sizes) == len(page_sizes) and all(dpi == 300 for _, _, dpi in exported_sizes)
    # The same figures, three times the page's pixels each way (the page stays light: 100 dpi).
    assert sorted((w, h) for w, h, _ in exported_sizes) == [(3 * w, 3 * h) for w, h in page_sizes]
    det = next(e for e in index["figures"] if e["kind"] == "det")
    assert _png_size((folder / det["files"][0]).read_bytes()) == (1380, 1260, 300)


def test_exported_tables(exported):
    folder, _ = exported
    summary = list(
        csv.DictReader(
            io.StringIO((folder / "summary-iso-iec-24745-properties-per-scheme-and-recognizer.csv").read_text())
        )
    )
    (line,) = summary
    assert (line["Scheme"], line["D↔sys"], line["max. linkability (bits)"], line["Unlinkability"]) == (
        "warp_16_6",
        "0.4",
        "0.5",
        "FAIL",
    )
    assert line["Performance preservation"] == "not measured" and line["D↔sys vs null"] == "above null"
    tex = (folder / "results-all-results.tex").read_text()
    assert "warp\\_16\\_6" in tex and "30.00\\% [29.00\\%, 31.00\\%]" in tex and "D$\\leftrightarrow$sys" in tex


def test_export_is_deterministic(exported, tmp_path):
    folder, page = exported
    again = write_report(_results(), tmp_path / "report.html", export_dir=tmp_path / "figures")
    assert again.read_text(encoding="utf-8") == page
    for path in folder.iterdir():
        assert (tmp_path / "figures" / path.name).read_bytes() == path.read_bytes(), path.name
