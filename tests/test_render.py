"""Tests for reports.render: escaping, self-containment, layout, determinism."""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import numpy as np
import pytest

import reports
from reports.render import build_context, format_metric, metric_columns, render_report, write_report

XSS = "<script>alert(1)</script>"


def _det(genuine: np.ndarray, impostor: np.ndarray) -> dict:
    # Test fixture only: the renderer itself never computes curves.
    thresholds = np.unique(np.concatenate([genuine, impostor]))
    fmr = (impostor[None, :] >= thresholds[:, None]).mean(axis=1)
    fnmr = (genuine[None, :] < thresholds[:, None]).mean(axis=1)
    return {"fmr": fmr.tolist(), "fnmr": fnmr.tolist()}


def _hist(genuine: np.ndarray, impostor: np.ndarray) -> dict:
    edges = np.linspace(min(genuine.min(), impostor.min()), max(genuine.max(), impostor.max()), 51)
    return {
        "edges": edges.tolist(),
        "genuine": np.histogram(genuine, edges, density=True)[0].tolist(),
        "impostor": np.histogram(impostor, edges, density=True)[0].tolist(),
    }


def _row(recognizer: str, separation: float, seed: int, **overrides) -> dict:
    rng = np.random.default_rng(seed)
    genuine = rng.normal(separation, 1.0, 200)
    impostor = rng.normal(0.0, 1.0, 2000)
    row = {
        "recognizer": recognizer,
        "recognizer_params": {"radius": 2, "cell": 14},
        "scheme": "none",
        "scheme_params": {},
        "attack": "none",
        "view": "baseline",
        "metrics": {
            "eer": 0.071,
            "fnmr_at_fmr_0.01": 0.2,
            "fnmr_at_fmr_0.001": 0.4,
            "fnmr_at_fmr_0.0001": None,
            "threshold_at_fmr_0.01": -123.4,
            "d_prime": 2.9,
            "n_genuine": 200,
            "n_impostor": 2000,
        },
        "curves": {"det": _det(genuine, impostor), "hist": _hist(genuine, impostor)},
        "score_file": f"scores/{recognizer}__none__none__baseline.csv",
    }
    row.update(overrides)
    return row


def _results() -> dict:
    return {
        "schema_version": 1,
        "protocol": {"name": "quickstart", "file": "protocols/quickstart.yaml", "notes": f"Free text {XSS} & more"},
        "dataset": {
            "name": "synthetic",
            "demo": True,
            "root": None,
            "n_samples": 400,
            "n_subjects": 40,
            "n_skipped": 1,
            "skipped": [{"id": "x/<y>.jpg", "reason": "cannot decode"}],
            "n_fallback_crop": 3,
            "n_detected": 397,
            "folds": 4,
            "test_folds": [0, 1, 2, 3],
            "seed": 0,
        },
        "rows": [_row("lbp", 2.5, 0), _row("arcface", 4.0, 1)],
        "provenance": {
            "protocol_sha256": "ab" * 32,
            "dataset_fingerprint": "cd" * 32,
            "git_commit": "abc123",
            "facesec_version": "0.1.0",
            "python": "3.11.7",
            "components": {"numpy": "2.4.6", "api_key": "SENTINEL-SECRET"},
            "seeds": {"dataset": 0, "split": 0, "nonmated": 0},
            "created": "2026-11-26T05:00:00Z",
            "cache": {"hits": 3, "misses": 2},
            "signing_key": "SENTINEL-UNDOCUMENTED",
        },
    }


@pytest.fixture(scope="module")
def results() -> dict:
    return _results()


@pytest.fixture(scope="module")
def html(results) -> str:
    return render_report(results)


def test_package_reexports_render_report():
    assert reports.render_report is render_report
    assert reports.write_report is write_report


def test_autoescape_escapes_notes_and_skipped_ids(html):
    assert XSS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html
    assert "x/&lt;y&gt;.jpg" in html
    assert "<script" not in html


def test_self_contained(html):
    for needle in ("http://", "https://", 'src="http', "src='http", "//cdn", "<link", "@import"):
        assert needle not in html
    srcs = re.findall(r'src="([^"]*)"', html)
    # 1 DET group (scheme/attack/view identical) + one histogram per row.
    assert len(srcs) == 3
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<style>" in html and "border-collapse" in html  # the CSS is inlined


def test_demo_banner_only_for_demo_data(results, html):
    assert "DEMO DATA — synthetic faces, not a real evaluation" in html
    real = copy.deepcopy(results)
    real["dataset"]["demo"] = False
    assert "DEMO DATA" not in render_report(real)


def test_none_metric_renders_as_dash(html):
    cells = re.findall(r'<td class="num">([^<]*)', html)
    assert "—" in cells
    text = re.sub(r'src="data:[^"]*"', "", html)  # base64 may spell anything
    assert not re.search(r">\s*(None|nan|NaN)\s*<", text)


def test_unknown_metric_keys_appear_after_known(results):
    extra = copy.deepcopy(results)
    extra["rows"][1]["metrics"].update(
        {"d_sys": 0.12, "sar_at_fmr_0.001": 0.3, "sar_at_fmr_0.001_ci_low": 0.25, "sar_at_fmr_0.001_ci_high": 0.35}
    )
    columns = metric_columns(extra["rows"])
    assert columns[:7] == [
        "eer",
        "fnmr_at_fmr_0.01",
        "fnmr_at_fmr_0.001",
        "fnmr_at_fmr_0.0001",
        "d_prime",
        "n_genuine",
        "n_impostor",
    ]
    assert columns[7:] == ["threshold_at_fmr_0.01", "d_sys", "sar_at_fmr_0.001"]
    out = render_report(extra)
    assert 'title="d_sys"' in out and 'title="sar_at_fmr_0.001"' in out
    assert "30.00%" in out and "25.00% – 35.00%" in out  # CI folded into its metric's cell
    # The row without the new metrics still has a cell for them.
    rows = re.findall(r"<tr title=\"scores:.*?</tr>", out, flags=re.S)
    assert len(rows) == 2
    assert all(r.count('<td class="num">') == len(columns) for r in rows)


def test_format_metric():
    assert format_metric("eer", 0.071) == "7.10%"
    assert format_metric("fnmr_at_fmr_0.001", 0.4) == "40.00%"
    assert format_metric("fnmr_at_fmr_0.001", 1.2e-5) == "0.0012%"
    assert format_metric("eer", 0.0) == "0%"
    assert format_metric("eer", None) == "—"
    assert format_metric("eer", float("nan")) == "—"
    assert format_metric("sar_at_fmr_0.001_ci_low", 0.25) == "25.00%"
    assert format_metric("n_impostor", 50000) == "50,000"
    assert format_metric("d_prime", 2.9) == "2.9"
    assert format_metric("threshold_at_fmr_0.01", -123.4) == "-123.4"


def test_certification_opens_report(results):
    cert = copy.deepcopy(results)
    cert["certification"] = [
        {"metric": "eer", "view": "baseline", "max": 0.05, "value": 0.071, "bound": 0.05, "verdict": "FAIL"},
        {"metric": "d_sys", "view": "protected", "max": 0.1, "value": 0.02, "bound": 0.1, "verdict": "PASS"},
    ]
    out = render_report(cert)
    first_section = re.search(r'<section id="([^"]+)"', out).group(1)
    assert first_section == "certification"
    assert out.index('id="certification"') < out.index('id="dataset"') < out.index('id="results"')
    assert '<span class="verdict fail">FAIL</span>' in out  # overall verdict
    assert "≤ 5.00%" in out and "7.10%" in out
    assert 'id="certification"' not in render_report(results)


def test_certification_overall_pass_and_min_bound():
    ctx = build_context(
        {
            "rows": [],
            "certification": [
                {"metric": "d_prime", "view": "baseline", "min": 2.0, "value": 2.9, "bound": 2.0, "verdict": "PASS"}
            ],
        }
    )
    assert ctx["certification"]["overall"] == "PASS"
    assert ctx["certification"]["checks"][0]["relation"] == "≥"


def test_provenance_renders_only_documented_fields(html):
    assert "SENTINEL" not in html
    assert "abc123" in html and "2.4.6" in html and "Cache hits / misses" in html


def test_dataset_summary_and_skipped_list(html):
    assert "<details>" in html and "Skipped images (1 listed)" in html
    assert "cannot decode" in html
    assert re.search(r"Fallback centre crops</th><td>3<", html)


def test_rows_grouped_in_first_seen_order(results):
    grouped = copy.deepcopy(results)
    grouped["rows"] = [
        _row("lbp", 2.5, 0),
        _row("arcface", 4.0, 1),
        _row("lbp", 1.0, 2, scheme="biohash", view="protected"),
    ]
    ctx = build_context(grouped)
    assert [(r["recognizer"], r["scheme"]) for r in ctx["rows"]] == [
        ("lbp", "none"),
        ("lbp", "biohash"),
        ("arcface", "none"),
    ]
    assert [f["title"] for f in ctx["det_figures"]] == [
        "scheme none · attack none · view baseline",
        "scheme biohash · attack none · view protected",
    ]


def test_empty_results_render():
    out = render_report({"schema_version": 1, "rows": []})
    assert "No result rows." in out


def test_deterministic(results, html):
    assert render_report(copy.deepcopy(results)) == html


def test_write_report_atomic(results, html, tmp_path, monkeypatch):
    target = tmp_path / "sub" / "report.html"
    replaced = []
    real_replace = os.replace

    def spy(src, dst):
        replaced.append((Path(src), Path(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    assert write_report(results, target) == target
    assert target.read_text(encoding="utf-8") == html
    ((src, dst),) = replaced
    assert dst == target and src.parent == target.parent and src != target
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]


def _unlinkability_curve(d_sys: float | None = 0.42) -> dict:
    # Test fixture only: a hand-made curve entry as the pipeline writes it.
    edges = np.linspace(-3.0, 4.0, 15)
    centres = (edges[1:] + edges[:-1]) / 2
    mated = np.exp(-((centres - 1.0) ** 2) / 2) / np.sqrt(2 * np.pi)
    nonmated = np.exp(-(centres**2) / 2) / np.sqrt(2 * np.pi)
    ratio = mated / nonmated
    return {
        "edges": edges.tolist(),
        "mated_density": mated.tolist(),
        "nonmated_density": nonmated.tolist(),
        "d_local": np.where(ratio > 1, (ratio - 1) / (ratio + 1), 0.0).tolist(),
        "d_sys": d_sys,
        "omega": 1.0,
    }


def test_unlinkability_section_only_with_curves(results, html):
    assert 'id="unlinkability"' not in html and 'href="#unlinkability"' not in html
    assert build_context(results)["unlinkability_figures"] == []
    extra = copy.deepcopy(results)
    protected = _row("lbp", 1.0, 2, scheme=f"biohash{XSS}", view="unlinkability")
    protected["curves"]["unlinkability"] = _unlinkability_curve()
    extra["rows"].append(protected)
    out = render_report(extra)
    assert 'href="#unlinkability"' in out
    section = re.search(r'<section id="unlinkability">.*?</section>', out, flags=re.S).group(0)
    srcs = re.findall(r'src="([^"]*)"', section)
    assert len(srcs) == 1 and srcs[0].startswith("data:image/png;base64,")  # only the row with it
    assert XSS not in out and "biohash&lt;script&gt;" in section  # alt text is escaped
    assert out.index('id="histograms"') < out.index('id="unlinkability"') < out.index('id="notes"')
    assert render_report(copy.deepcopy(extra)) == out  # deterministic


def test_unlinkability_undefined_d_sys_renders():
    row = _row("lbp", 1.0, 3)
    row["curves"]["unlinkability"] = _unlinkability_curve(d_sys=None)
    ctx = build_context({"rows": [row]})
    assert len(ctx["unlinkability_figures"]) == 1


def test_sweep_section_only_with_sweeps():
    from reports.render import render_report

    def row(rec, scheme, view, eer):
        return {
            "recognizer": rec,
            "scheme": scheme,
            "scheme_params": {},
            "attack": "naive",
            "view": view,
            "metrics": {"eer": eer},
            "curves": {},
        }

    rows = [row("lbp", "none", "baseline", 0.3)] + [
        row("lbp", f"lw{w}o0", "strength:naive", 0.3 + w / 100) for w in (1, 2)
    ]
    base = {"protocol": {"name": "s"}, "dataset": {"name": "d"}, "rows": rows, "provenance": {}}
    assert 'id="sweeps"' not in render_report(base)
    sweeps = [{"scheme": "j2k", "param": "window", "labels": ["lw1o0", "lw2o0"], "values": [1, 2]}]
    html = render_report({**base, "sweeps": sweeps})
    assert 'id="sweeps"' in html and "j2k sweep over window" in html


def test_view_distribution_figures_per_recognizer_and_scheme(results, monkeypatch):
    assert 'id="view-distributions"' not in render_report(results)
    assert build_context(results)["view_distribution_figures"] == []
    extra = copy.deepcopy(results)
    # lbp has preservation and strength rows for warp_16_6; arcface only preservation.
    extra["rows"] += [
        _row("lbp", 2.0, 4, scheme="warp_16_6", view="preservation"),
        _row("lbp", 0.5, 5, scheme="warp_16_6", attack="naive", view="strength:naive"),
        _row("lbp", 0.1, 6, scheme="warp_16_6", attack="naive", view="linkage:naive"),
        _row("arcface", 3.0, 7, scheme="warp_16_6", view="preservation"),
    ]
    drawn = []

    def capture(densities, *, title=""):
        drawn.append((title, list(densities)))
        return "data:image/png;base64,"

    monkeypatch.setattr("reports.render.view_distributions_plot", capture)
    ctx = build_context(extra)
    assert [f["title"] for f in ctx["view_distribution_figures"]] == ["lbp · warp_16_6"]
    ((title, densities),) = drawn
    assert [d.label for d in densities] == ["baseline", "preservation", "strength:naive"]
    assert [d.colour for d in densities] == ["#D62728", "#1F77B4", "#2CA02C"]
    # Each view keeps its own bin edges: the baseline is lbp's own, not arcface's.
    lbp_base = next(r for r in extra["rows"] if r["recognizer"] == "lbp" and r["view"] == "baseline")
    assert list(densities[0].edges) == lbp_base["curves"]["hist"]["edges"]
    assert densities[1].edges != densities[0].edges


def test_view_distribution_section_renders(results):
    extra = copy.deepcopy(results)
    extra["rows"] += [
        _row("lbp", 2.0, 4, scheme="remap_28", view="preservation"),
        _row("lbp", 0.5, 5, scheme="remap_28", attack="naive", view="strength:naive"),
    ]
    out = render_report(extra)
    assert 'href="#view-distributions"' in out
    section = re.search(r'<section id="view-distributions">.*?</section>', out, flags=re.S).group(0)
    srcs = re.findall(r'src="([^"]*)"', section)
    assert len(srcs) == 1 and srcs[0].startswith("data:image/png;base64,")
    assert out.index('id="histograms"') < out.index('id="view-distributions"') < out.index('id="notes"')


def test_attack_table_lines_up_attacks_per_scheme():
    def row(rec, attack, eer, **quality):
        return {
            "recognizer": rec,
            "scheme": "lw4o6",
            "scheme_params": {},
            "attack": attack,
            "view": f"strength:{attack}",
            "metrics": {"eer": eer, **quality},
            "curves": {},
        }

    gains = {"psnr": 24.3, "psnr_gain_vs_naive": 6.6, "better_rate_vs_naive": 0.985, "n_worse_vs_naive": 34}
    rows = [
        row("lbp", "naive", 0.45, psnr=17.6),
        row("sface", "naive", 0.32, psnr=17.6),
        row("lbp", "conceal-codeblock", 0.38, **gains),
        row("sface", "conceal-codeblock", 0.097, **gains),
    ]
    base = {"protocol": {"name": "a"}, "dataset": {"name": "d"}, "provenance": {}}
    table = build_context({**base, "rows": rows})["attacks"]
    assert table["recognizers"] == ["lbp", "sface"]
    naive, conceal = table["rows"]
    assert (naive["attack"], naive["eers"]) == ("naive", ["45.00%", "32.00%"])
    assert conceal["eers"] == ["38.00%", "9.70%"]
    quality = dict(zip(table["quality_headers"], conceal["quality"]))
    assert quality["PSNR (dB)"] == "24.3" and quality["better than naive"] == "98.50%"
    assert quality["# images worse than naive"] == "34" and quality["SSIM"] == "—"
    assert 'id="attacks"' in render_report({**base, "rows": rows})
    assert build_context({**base, "rows": [{**rows[0], "view": "baseline"}]})["attacks"] is None


def test_unresolved_verdict_shows_its_reason_and_decides_overall():
    ctx = build_context(
        {
            "rows": [],
            "certification": [
                {
                    "metric": "sar_at_fmr_0.0001",
                    "view": "strength:*",
                    "max": 0.01,
                    "value": 0.0,
                    "verdict": "UNRESOLVED",
                    "reason": "sface / lw4o6 / strength:naive: FMR target 0.0001 is below 1/384",
                },
                {"metric": "d_prime", "view": "baseline", "min": 2.0, "value": 2.9, "verdict": "PASS", "reason": ""},
            ],
        }
    )
    assert ctx["certification"]["overall"] == "UNRESOLVED"
    assert ctx["certification"]["checks"][0]["verdict_class"] == "unresolved"
    html = render_report(
        {
            "rows": [],
            "certification": [
                {
                    "metric": "eer",
                    "view": "baseline",
                    "max": 0.05,
                    "value": 0.01,
                    "verdict": "UNRESOLVED",
                    "reason": "eer has no confidence interval (bootstrap.n_boot is 0)",
                }
            ],
        }
    )
    assert '<span class="verdict unresolved">UNRESOLVED</span>' in html and "n_boot is 0" in html


def test_attack_quality_shows_its_ci():
    row = {
        "recognizer": "lbp",
        "scheme": "lw4o6",
        "scheme_params": {},
        "attack": "naive",
        "view": "strength:naive",
        "metrics": {"eer": 0.3, "psnr": 17.6, "psnr_ci_low": 17.2, "psnr_ci_high": 18.0},
        "curves": {},
    }
    table = build_context({"rows": [row]})["attacks"]
    quality = dict(zip(table["quality_headers"], table["rows"][0]["quality"]))
    assert quality["PSNR (dB)"] == "17.6 (17.2 – 18)"


@pytest.mark.parametrize(
    "key, needle",
    [
        ({"key_id": "ab12", "source": "seed", "seed": 3}, "evaluation key derived from the protocol seed 3"),
        ({"key_id": "ephemeral", "source": "random"}, "random key drawn for this run"),
        ({"key_id": "ab12", "source": "env"}, "master key from an environment variable (id ab12)"),
    ],
)
def test_provenance_says_how_the_run_was_keyed(key, needle):
    fields = dict(build_context({"rows": [], "provenance": {"key": key}})["provenance"]["fields"])
    assert needle in fields["Keys"]
