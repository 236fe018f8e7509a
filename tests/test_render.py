"""Tests for reports.render: escaping, self-containment, layout, determinism."""

from __future__ import annotations

import base64
import copy
import hashlib
import os
import re
from html import unescape
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from test_summary import _summary_results

import reports
from reports.render import (
    build_context,
    format_metric,
    metric_columns,
    render_report,
    summary_table,
    write_report,
)

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
    # The page's own filter script is its only one.
    assert html.count("<script") == 1 and "alert" not in _script(html)


def _script(html: str) -> str:
    return re.search(r"<script>(.*?)</script>", html, flags=re.S).group(1)


def test_content_security_policy_allows_only_the_page_script(html):
    csp = unescape(re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', html).group(1))
    digest = base64.b64encode(hashlib.sha256(_script(html).encode("utf-8")).digest()).decode("ascii")
    assert f"script-src 'sha256-{digest}'" in csp
    assert "default-src 'none'" in csp and "img-src data:" in csp
    assert "http" not in csp


def test_self_contained(html):
    for needle in ("http://", "https://", 'src="http', "src='http", "//cdn", "@import"):
        assert needle not in html
    # The one link is an empty inline icon: the browser asks for no favicon.
    assert re.findall(r"<link[^>]*>", html) == ['<link rel="icon" href="data:,">']
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


def test_pre_aligned_dataset_says_detection_does_not_apply(results):
    # The synthetic demo's faces come aligned: "Faces detected 0" for 400 samples would read as a failure.
    aligned = copy.deepcopy(results)
    aligned["dataset"].update(pre_aligned=True, n_detected=0, n_fallback_crop=0)
    html = render_report(aligned)
    assert re.search(r"Face detection</th><td>not applicable \(pre-aligned demo faces\)<", html)
    assert "Faces detected" not in html and "Fallback centre crops" not in html


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


def _scheme_details(html: str, label: str) -> str:
    """The collapsible details block of one scheme (its nested blocks included)."""
    start = html.index(f"<summary><strong>{label}</strong>")
    ends = [i for i in (html.find('<details class="scheme"', start), html.find("</section>", start)) if i >= 0]
    return html[start : min(ends)]


def test_unlinkability_figures_only_with_curves(results, html):
    assert "<h3>Unlinkability</h3>" not in html and 'alt="Unlinkability' not in html
    assert build_context(results)["unlinkability_figures"] == []
    extra = copy.deepcopy(results)
    protected = _row("lbp", 1.0, 2, scheme=f"biohash{XSS}", view="unlinkability")
    protected["curves"]["unlinkability"] = _unlinkability_curve()
    extra["rows"].append(protected)
    out = render_report(extra)
    imgs = re.findall(r'<img src="([^"]*)" alt="Unlinkability, ([^"]*)"', out)
    assert len(imgs) == 1 and imgs[0][0].startswith("data:image/png;base64,")  # only the row with it
    assert XSS not in out and "biohash&lt;script&gt;" in imgs[0][1]  # alt text is escaped
    # In its scheme's details, after the DET curves.
    details = _scheme_details(out, "biohash&lt;script&gt;alert(1)&lt;/script&gt;")
    assert details.index("<h3>DET curves</h3>") < details.index("<h3>Unlinkability</h3>") < details.index(imgs[0][0])
    assert out.index('<section id="details">') < out.index('alt="Unlinkability') < out.index('id="notes"')
    assert render_report(copy.deepcopy(extra)) == out  # deterministic


def test_unlinkability_figure_gets_maximal_linkability(monkeypatch):
    drawn = []

    def capture(edges, mated, nonmated, d_local, *, d_sys=None, omega=None, linkability_max=None, title=""):
        drawn.append((d_sys, omega, linkability_max, title))
        return Figure()

    monkeypatch.setattr("reports.details.unlinkability_figure", capture)
    with_curve, from_metrics, older = (_row("lbp", 1.0, i, view="linkage:naive", scheme=f"s{i}") for i in range(3))
    with_curve["curves"]["unlinkability"] = {**_unlinkability_curve(), "linkability_max": 0.61}
    from_metrics["curves"]["unlinkability"] = _unlinkability_curve()
    from_metrics["metrics"]["linkability_max"] = 0.55
    older["curves"]["unlinkability"] = _unlinkability_curve()  # written before maximal linkability
    build_context({"rows": [with_curve, from_metrics, older]})
    assert [(d, lmax) for d, _, lmax, _ in drawn] == [(0.42, 0.61), (0.42, 0.55), (0.42, None)]


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
        return Figure()

    monkeypatch.setattr("reports.details.view_distributions_figure", capture)
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
    assert 'href="#details"' in out and 'id="view-distributions"' not in out
    details = _scheme_details(out, "remap_28")
    srcs = re.findall(r'src="([^"]*)" alt="Score distributions by view', details)
    assert len(srcs) == 1 and srcs[0].startswith("data:image/png;base64,")
    # First in the scheme's details (there are no examples), before its DET curves.
    assert details.index("<h3>Score distributions by view</h3>") < details.index("<h3>DET curves</h3>")
    assert 'alt="Score distributions by view' not in _scheme_details(out, "none (unprotected baseline)")


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


# --------------------------------------------------------------------------- optional blocks

PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAcCBlCwAAAABJRU5ErkJggg=="


def _section(html: str, section_id: str) -> str:
    return re.search(rf'<section id="{section_id}">.*?</section>', html, flags=re.S).group(0)


def _examples_block() -> list:
    return [
        {
            "scheme": "<script>",
            "columns": ["original", "naive", "conceal-codeblock", "inpaint"],
            "samples": [
                {
                    "id": "Aaron_Peirsol/Aaron_Peirsol_0001.jpg",
                    "subject": "Aaron_Peirsol",
                    "images": [PNG, None, "https://evil/x.png", PNG],
                },
                {
                    "id": "x/<b>.jpg",
                    "subject": "x",
                    # Not an inline PNG: a script URI, an SVG, an attribute break-out.
                    "images": ["javascript:alert(1)", "data:image/svg+xml;base64,PHN2Zz4=", PNG + '" onerror="x'],
                },
            ],
        }
    ]


def _trained_models_block() -> list:
    return [
        {
            "attack": "inpaint",
            "scheme": "lw4o6",
            "group": 0,
            "model_key": "3fa2" * 16,
            "n_train_faces": 1800,
            "n_train_subjects": 220,
            "n_val_faces": 200,
            "keys_per_face": 2,
            "n_pairs": 3600,
            "device": "cpu",
            "seconds": 312.5,
            "cached": False,
            "params": {"epochs": 3, "width": 8, "depth": 4},
            "history": [
                {"epoch": 1, "loss": 0.031, "val_loss": 0.029, "seconds": 61.2},
                {"epoch": 2, "loss": 0.027, "val_loss": None, "seconds": 60.8},
                {"epoch": 3, "loss": 0.025, "val_loss": 0.024, "seconds": 61.0},
            ],
        },
        {"attack": "inpaint", "scheme": XSS, "cached": True, "history": "not a list", "params": None},
    ]


def _quality(scheme: str, attack: str, mean: float, **overrides) -> dict:
    edges = np.linspace(0.0, 1.0, 11)
    counts = np.histogram(np.clip(np.random.default_rng(len(attack)).normal(mean, 0.2, 100), 0, 1), edges)[0]
    entry = {
        "measure": "detector",
        "description": "YuNet face-detector confidence <0..1>",
        "scheme": scheme,
        "attack": attack,
        "n": 100,
        "mean": mean,
        "median": mean - 0.01,
        "failed": 3,
        "hist": {"edges": edges.tolist(), "counts": counts.tolist()},
    }
    entry.update(overrides)
    return entry


def _face_quality_block() -> list:
    return [
        _quality("none", "none", 0.9),
        _quality("lw4o6", "naive", 0.2),
        _quality("lw4o6", "inpaint", 0.6),
        _quality("warp", "inpaint", 0.7),
        _quality("warp", "naive", 0.3, hist={"edges": [0.0, 1.0], "counts": [1, 2]}),  # malformed: not drawn
    ]


def _with_blocks(results: dict) -> dict:
    return {
        **copy.deepcopy(results),
        "examples": _examples_block(),
        "trained_models": _trained_models_block(),
        "face_quality": _face_quality_block(),
    }


@pytest.fixture(scope="module")
def full_html(results) -> str:
    return render_report(_with_blocks(results))


def test_optional_sections_hidden_without_their_blocks(results, html):
    ctx = build_context(results)
    assert ctx["examples"] == [] and ctx["trained_models"] == [] and ctx["face_quality"] == []
    assert ctx["example_figures"] == [] and "<h3>Examples</h3>" not in html
    for section_id in ("examples", "training", "face-quality"):
        assert f'id="{section_id}"' not in html and f'href="#{section_id}"' not in html
    # Present but empty or malformed blocks show nothing either.
    empty = {**results, "examples": [], "trained_models": {"not": "a list"}, "face_quality": [None, 3]}
    assert render_report(empty) == html


def test_optional_sections_appear_with_their_blocks(full_html):
    for section_id in ("training", "face-quality", "details"):
        assert f'id="{section_id}"' in full_html and f'href="#{section_id}"' in full_html
    # Examples are a figure in their scheme's details.
    assert "<h3>Examples</h3>" in _scheme_details(full_html, "&lt;script&gt;")
    sections = ("dataset", "details", "face-quality", "training", "results", "notes")
    order = [full_html.index(f'<section id="{s}"') for s in sections]
    assert order == sorted(order)


def test_examples_figure_only_draws_inline_pngs(full_html, monkeypatch):
    assert "https://evil" not in full_html and "javascript:" not in full_html and "svg+xml" not in full_html
    assert "onerror" not in full_html
    drawn = []

    def capture(columns, lines, *, title=""):
        drawn.append((list(columns), [(line.label, list(line.images)) for line in lines], title))
        return Figure()

    monkeypatch.setattr("reports.examples.examples_figure", capture)
    (figure,) = build_context({"rows": [], "examples": _examples_block()})["example_figures"]
    ((columns, lines, title),) = drawn
    assert columns == ["original", "naive", "conceal-codeblock", "inpaint"] and title == "Examples · <script>"
    # Only inline PNGs reach the figure; every other cell is drawn as failed (None).
    assert lines == [("Aaron_Peirsol", [PNG, None, None, PNG]), ("x", [None, None, None, None])]
    assert figure["scheme"] == "<script>" and figure["uri"].startswith("data:image/png;base64,")
    # The page embeds the figure, not the results' own images.
    details = _scheme_details(full_html, "&lt;script&gt;")
    imgs = re.findall(r'<img src="([^"]*)" alt="Example faces[^"]*"', details)
    assert len(imgs) == 1 and imgs[0] != PNG and imgs[0].startswith("data:image/png;base64,")
    assert "Aaron_Peirsol/Aaron_Peirsol_0001.jpg" in details


def test_examples_escape_scheme_and_ids(full_html):
    details = _scheme_details(full_html, "&lt;script&gt;")
    assert "<script>" not in full_html.replace(f"<script>{_script(full_html)}</script>", "")
    assert 'alt="Example faces, scheme &lt;script&gt;: original, naive' in details and "x/&lt;b&gt;.jpg" in details


def test_examples_tolerate_missing_fields():
    ctx = build_context(
        {
            "rows": [],
            "examples": [
                {"scheme": "a", "samples": [{"images": [PNG, PNG]}, {"id": "s", "images": "nope"}, "junk"]},
                {"columns": "not a list", "samples": None},
                "junk",
            ],
        }
    )
    first, second = ctx["examples"]
    assert first["columns"] == ["", ""]  # as many columns as the widest sample
    assert [[c["src"] for c in s["cells"]] for s in first["samples"]] == [[PNG, PNG], [None, None]]
    assert second == {"scheme": "", "columns": [], "width": 112, "samples": []}


def test_trained_models_table_and_curve(full_html):
    section = _section(full_html, "training")
    first = re.search(r"<tbody>\s*<tr>(.*?)</tr>", section, flags=re.S).group(1)
    cells = [c.strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", first, flags=re.S)]
    assert cells == [
        "inpaint",
        "lw4o6",
        "0",
        "1,800",
        "220",
        "200",
        "2",
        "3,600",
        "cpu",
        "5 min 12 s",
        "no",
        "0.024",  # the last epoch that has a validation loss
        "—",  # how it stopped: not recorded before plateau stopping
        '<span class="params">depth=4, epochs=3, width=8</span>',
    ]
    # One curve: the second model has no usable history. Its scheme is escaped.
    srcs = re.findall(r'src="([^"]*)"', section)
    assert len(srcs) == 1 and srcs[0].startswith("data:image/png;base64,")
    assert 'alt="Training curve, inpaint on lw4o6 (group 0)"' in section
    assert XSS not in full_html and "&lt;script&gt;alert(1)&lt;/script&gt;" in section
    assert "3fa2" not in full_html  # the model key is not shown


def test_trained_model_with_null_val_loss_draws_its_curve(monkeypatch):
    drawn = []

    def capture(epochs, loss, val_loss, *, title=""):
        drawn.append((list(epochs), list(loss), list(val_loss), title))
        return Figure()

    monkeypatch.setattr("reports.training.training_curve_figure", capture)
    history = [{"epoch": 1, "loss": 0.5, "val_loss": None}, {"loss": "x", "val_loss": 0.4}]
    ctx = build_context({"rows": [], "trained_models": [{"attack": "a", "scheme": "s", "history": history}]})
    (model,) = ctx["trained_models"]
    assert drawn == [([1.0, 2.0], [0.5, None], [None, 0.4], "a on s")]
    assert model["uri"].startswith("data:image/png;base64,") and model["final_val_loss"] == "0.4"
    assert model["group"] == model["time"] == model["cached"] == model["train_faces"] == "—"


def test_face_quality_table_and_figures(full_html):
    section = _section(full_html, "face-quality")
    assert "YuNet face-detector confidence &lt;0..1&gt;" in section
    lines = re.findall(r"<tr>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>", section)
    assert lines == [("none", "none"), ("lw4o6", "naive"), ("lw4o6", "inpaint"), ("warp", "inpaint"), ("warp", "naive")]
    assert '<td class="num">0.9</td>' in section and '<td class="num">0.89</td>' in section
    srcs = re.findall(r'src="([^"]*)"', section)
    assert len(srcs) == 2 and all(s.startswith("data:image/png;base64,") for s in srcs)


def test_face_quality_colours_follow_the_attack(monkeypatch):
    drawn = []

    def capture(series, *, title="", xlabel=""):
        drawn.append((title, xlabel, list(series)))
        return Figure()

    monkeypatch.setattr("reports.quality.quality_distributions_figure", capture)
    figures = build_context({"rows": [], "face_quality": _face_quality_block()})["face_quality"][0]["figures"]
    assert [f["title"] for f in figures] == ["detector · lw4o6", "detector · warp"]
    (_, xlabel, lw4o6), (_, _, warp) = drawn
    assert xlabel == "detector"
    assert [s.label for s in lw4o6] == ["original faces", "naive", "inpaint"]
    assert [s.label for s in warp] == ["original faces", "inpaint"]  # its malformed naive histogram is left out
    assert lw4o6[0].linestyle == "--" and lw4o6[0].colour == warp[0].colour
    assert lw4o6[2].colour == warp[1].colour != lw4o6[1].colour
    assert list(lw4o6[0].counts) == _face_quality_block()[0]["hist"]["counts"]


def test_face_quality_only_original_faces():
    (q,) = build_context({"rows": [], "face_quality": [_quality("none", "none", 0.9, median=None)]})["face_quality"]
    assert [f["title"] for f in q["figures"]] == ["detector · original faces"]
    assert (q["rows"][0]["mean"], q["rows"][0]["median"]) == ("0.9", "—")


def _strength_rows() -> list:
    def row(rec, scheme, attack, eer, low=None, high=None):
        metrics = {"eer": eer}
        if low is not None:
            metrics.update(eer_ci_low=low, eer_ci_high=high)
        return {"recognizer": rec, "scheme": scheme, "attack": attack, "view": f"strength:{attack}", "metrics": metrics}

    return [
        {"recognizer": "lbp", "scheme": "none", "attack": "none", "view": "baseline", "metrics": {"eer": 0.1}},
        row("lbp", "lw4o6", "naive", 0.45, 0.41, 0.49),
        row("lbp", "lw4o6", "inpaint", 0.2, 0.18, 0.22),
        row("sface", "lw4o6", "naive", 0.32),
        row("lbp", f"warp{XSS}", "naive", 0.4, 0.38, 0.42),
        {**row("lbp", "lw4o6", "naive", 0.1), "view": "preservation"},  # not a strength view
    ]


def test_strength_by_setting_lays_out_attacks_by_scheme():
    tables = build_context({"rows": _strength_rows()})["strength_by_setting"]
    lbp, sface = tables
    assert lbp["recognizer"] == "lbp" and sface["recognizer"] == "sface"
    assert lbp["schemes"] == sface["schemes"] == ["lw4o6", f"warp{XSS}"]
    assert [line["attack"] for line in lbp["lines"]] == ["naive", "inpaint"]
    naive, inpaint = lbp["lines"]
    assert naive["cells"] == [
        {"value": "45.00%", "ci": "41.00% – 49.00%"},
        {"value": "40.00%", "ci": "38.00% – 42.00%"},
    ]
    assert inpaint["cells"][1] == {"value": "—", "ci": ""}  # not run on that scheme
    assert [line["attack"] for line in sface["lines"]] == ["naive"]
    assert sface["lines"][0]["cells"] == [{"value": "32.00%", "ci": ""}, {"value": "—", "ci": ""}]
    assert build_context({"rows": _strength_rows()[:1]})["strength_by_setting"] == []


def test_strength_by_setting_renders_above_the_attack_table():
    html = render_report({"rows": _strength_rows()})
    section = _section(html, "attacks")
    assert section.index("Strength by setting: lbp") < section.index("Strength by setting: sface")
    assert section.index("Strength by setting: sface") < section.index("All attacks")
    assert "41.00% – 49.00%" in section and XSS not in html and "warp&lt;script&gt;" in section


def test_optional_blocks_deterministic(results, full_html):
    assert render_report(_with_blocks(results)) == full_html


# --------------------------------------------------------------------------- generalisation

_LAYER_SWEEP = ("lw2o0", "lw6o0", "lw10o0")
_ON_LAYER = "finetune[lw4o0,lw4o4,lw4o8]"
_TRAINED_ON_LAYER = "j2k progression=layer, window=4, offset=0; j2k progression=layer, window=4, offset=4"


def _ft_row(scheme: str, attack: str, eer: float | None, kind: str = "strength", ci: bool = True) -> dict:
    metrics: dict = {} if eer is None else {"eer": eer}
    if ci and eer is not None:
        metrics.update(eer_ci_low=eer - 0.021, eer_ci_high=eer + 0.023)
    return {
        "recognizer": "sface",
        "recognizer_params": {"batch_size": 16},
        "scheme": scheme,
        "scheme_params": {},
        "attack": attack,
        "view": f"{kind}:{attack}",
        "metrics": metrics,
        "curves": {},
    }


def _recognizer_model(attack: str, scheme: str | None, trained_on: str, kept: int = 2) -> dict:
    history = [
        {"epoch": e, "loss": loss, "val_eer": val_eer, "seconds": 1.0, "kept": e == kept}
        for e, (loss, val_eer) in enumerate([(None, 0.30), (5.0, 0.28), (2.5, 0.26)])
    ]
    return {
        "attack": attack,
        "kind": "recognizer",
        "scheme": scheme,
        "trained_on": trained_on,
        "group": 0,
        "fold": None,
        "n_train_faces": 240,
        "n_train_subjects": 24,
        "n_val_faces": 60,
        "keys_per_face": 2,
        "n_pairs": 480,
        "device": "cpu",
        "seconds": 30.0,
        "cached": False,
        "params": {"base": "sface", "epochs": 2},
        "history": history,
    }


def _finetune_results() -> dict:
    """Naive and two recognizer attacks on a three-setting window sweep; a linkage row for one attack."""
    naive = dict(zip(_LAYER_SWEEP, (0.40, 0.35, 0.30)))
    on_layer = dict(zip(_LAYER_SWEEP, (0.20, 0.15, 0.10)))
    under_test = {"lw2o0": 0.21, "lw6o0": 0.16}  # not run on lw10o0: an empty cell
    rows = [{**_ft_row("none", "none", 0.0, ci=False), "view": "baseline"}]
    for scheme in _LAYER_SWEEP:
        rows.append(_ft_row(scheme, "naive", naive[scheme]))
        rows.append(_ft_row(scheme, _ON_LAYER, on_layer[scheme]))
        if scheme in under_test:
            rows.append(_ft_row(scheme, "finetune", under_test[scheme], ci=False))
    rows.append(_ft_row("lw2o0", "naive", 0.45, kind="linkage"))
    rows.append(_ft_row("lw2o0", _ON_LAYER, 0.25, kind="linkage"))
    # A reconstruction attack on the same scheme is no line of the matrix.
    rows.append(_ft_row("lw2o0", "inpaint", 0.33))
    models = [
        _recognizer_model(_ON_LAYER, None, _TRAINED_ON_LAYER),
        *(_recognizer_model("finetune", s, f"the setting attacked ({s})", kept=0) for s in _LAYER_SWEEP[:2]),
        {**_trained_models_block()[0], "attack": "inpaint", "scheme": "lw2o0"},  # no kind: reconstruction
    ]
    sweeps = [
        {
            "scheme": "j2k",
            "param": "window",
            "fixed": {"progression": "layer", "offset": 0},
            "labels": list(_LAYER_SWEEP),
            "values": [2, 6, 10],
        },
        {"scheme": "jpeg", "param": "window", "fixed": {}, "labels": ["jw2o0"], "values": [2]},  # not in the matrix
    ]
    return {
        "protocol": {"name": "ft"},
        "dataset": {"name": "d"},
        "rows": rows,
        "trained_models": models,
        "sweeps": sweeps,
    }


def test_generalisation_tables_put_each_eer_in_its_cell():
    results = _finetune_results()
    strength, linkage = build_context(results)["generalisation"]
    assert (strength["recognizer"], strength["kind"], linkage["kind"]) == ("sface", "strength", "linkage")
    assert strength["columns"] == list(_LAYER_SWEEP)
    assert [line["label"] for line in strength["lines"]] == ["pretrained (naive)", _ON_LAYER, "finetune"]
    assert [line["trained_on"] for line in strength["lines"]] == [
        "none (pretrained weights)",
        _TRAINED_ON_LAYER,
        "the setting under test (one model per test setting)",
    ]
    texts = [[cell["text"] for cell in line["cells"]] for line in strength["lines"]]
    assert texts == [
        ["40.0% [37.9, 42.3]", "35.0% [32.9, 37.3]", "30.0% [27.9, 32.3]"],
        ["20.0% [17.9, 22.3]", "15.0% [12.9, 17.3]", "10.0% [7.9, 12.3]"],
        ["21.0%", "16.0%", "—"],  # no CI recorded; not run on lw10o0
    ]
    assert [cell["eer"] for cell in strength["lines"][2]["cells"]] == [0.21, 0.16, None]
    # Linkage: only what was run under that view.
    assert linkage["columns"] == ["lw2o0"]
    assert [(line["label"], line["cells"][0]["text"]) for line in linkage["lines"]] == [
        ("pretrained (naive)", "45.0% [42.9, 47.3]"),
        (_ON_LAYER, "25.0% [22.9, 27.3]"),
    ]


def test_generalisation_section_renders_the_matrix_and_its_figures():
    html = render_report(_finetune_results())
    section = _section(html, "generalisation")
    assert 'href="#generalisation"' in html
    # After the attack tables, before the detailed figures.
    assert html.index('id="attacks"') < html.index('id="generalisation"') < html.index('<section id="details"')
    assert section.index("sface · strength") < section.index("sface · linkage")
    assert "<caption>sface, strength (protected probe against plain reference) view" in section
    headers = re.findall(r'<th scope="col"[^>]*>([^<]*)</th>', section)
    assert headers[:5] == ["Training", "Trained on", *_LAYER_SWEEP]
    lines = re.findall(r'<th scope="row">([^<]*)</th>\s*<td>([^<]*)</td>((?:\s*<td class="num">[^<]*</td>)*)', section)
    first_table = [(label, on, re.findall(r">([^<]*)</td>", cells)) for label, on, cells in lines[:3]]
    assert first_table == [
        (
            "pretrained (naive)",
            "none (pretrained weights)",
            ["40.0% [37.9, 42.3]", "35.0% [32.9, 37.3]", "30.0% [27.9, 32.3]"],
        ),
        (_ON_LAYER, _TRAINED_ON_LAYER, ["20.0% [17.9, 22.3]", "15.0% [12.9, 17.3]", "10.0% [7.9, 12.3]"]),
        ("finetune", "the setting under test (one model per test setting)", ["21.0%", "16.0%", "—"]),
    ]
    assert '<tr class="reference">' in section
    # Per matrix: the heatmap, and the j2k sweep (the jpeg sweep has no setting in the matrix).
    srcs = re.findall(r'<img src="([^"]*)" alt="([^"]*)"', section)
    assert [alt for _, alt in srcs] == [
        "Generalisation matrix, sface · strength",
        "Generalisation sweep, sface · strength · j2k (offset=0, progression=layer) over window",
        "Generalisation matrix, sface · linkage",
        "Generalisation sweep, sface · linkage · j2k (offset=0, progression=layer) over window",
    ]
    assert all(re.fullmatch(r"data:image/png;base64,[A-Za-z0-9+/]+=*", src) for src, _ in srcs)


def test_generalisation_figures_get_the_matrix_values(monkeypatch):
    heatmaps, sweeps = [], []

    def heatmap(rows, columns, values, *, title=""):
        heatmaps.append((list(rows), list(columns), [list(v) for v in values], title))
        return Figure()

    def sweep(x, lines, *, baselines=(), references=None, xlabel="", ylabel="EER", title=""):
        sweeps.append((list(x), {line.label: list(line.values) for line in lines}, dict(references or {}), xlabel))
        return Figure()

    monkeypatch.setattr("reports.generalisation.generalisation_matrix_figure", heatmap)
    monkeypatch.setattr("reports.generalisation.sweep_figure", sweep)
    (strength, _) = build_context(_finetune_results())["generalisation"]
    assert strength["uri"].startswith("data:image/png;base64,") and strength["sweeps"][0]["uri"].startswith("data:")
    assert heatmaps[0] == (
        ["pretrained (naive)", _ON_LAYER, "finetune"],
        list(_LAYER_SWEEP),
        [[0.40, 0.35, 0.30], [0.20, 0.15, 0.10], [0.21, 0.16, None]],
        "sface · strength: EER (%)",
    )
    x, series, references, xlabel = sweeps[0]
    assert (x, xlabel) == ([2, 6, 10], "window")
    assert series == {_ON_LAYER: [0.20, 0.15, 0.10], "finetune": [0.21, 0.16, None]}
    assert references == {"pretrained (naive)": [0.40, 0.35, 0.30]}  # drawn black and dashed
    # The linkage matrix has one setting of the sweep: its curve has that one point.
    assert sweeps[1][0] == [2] and sweeps[1][2] == {"pretrained (naive)": [0.45]}


def test_no_generalisation_section_without_recognizer_attacks(results, html):
    assert build_context(results)["generalisation"] == []
    assert 'id="generalisation"' not in html and 'href="#generalisation"' not in html
    # Reconstruction models only (``kind`` absent in older files, or explicit): no matrix either.
    ft = _finetune_results()
    for kind in (None, "reconstruction"):
        models = [{k: v for k, v in m.items() if k != "kind"} for m in ft["trained_models"]]
        if kind:
            models = [{**m, "kind": kind} for m in models]
        page = render_report({**ft, "trained_models": models})
        assert 'id="generalisation"' not in page and "Generalisation" not in page
    # Recognizer attacks trained but no rows for them: nothing to lay out.
    assert build_context({**ft, "rows": ft["rows"][:1]})["generalisation"] == []


def test_generalisation_without_pretrained_rows_or_sweeps():
    ft = _finetune_results()
    rows = [r for r in ft["rows"] if r["attack"] != "naive"]
    strength, _ = build_context({**ft, "rows": rows, "sweeps": None})["generalisation"]
    assert [line["label"] for line in strength["lines"]] == [_ON_LAYER, "finetune"]
    assert strength["sweeps"] == [] and strength["uri"].startswith("data:image/png;base64,")


def test_recognizer_training_curve_and_table_line(monkeypatch):
    drawn = []

    def capture(epochs, loss, val_eer, *, kept_epoch=None, title=""):
        drawn.append((list(epochs), list(loss), list(val_eer), kept_epoch, title))
        return Figure()

    monkeypatch.setattr("reports.training.recognizer_training_figure", capture)
    ctx = build_context(_finetune_results())
    on_layer, under_test, _, inpaint = ctx["trained_models"]
    assert drawn[0] == (
        [0.0, 1.0, 2.0],
        [None, 5.0, 2.5],
        [0.3, 0.28, 0.26],
        2.0,
        f"{_ON_LAYER} on {_TRAINED_ON_LAYER} (group 0)",
    )
    assert drawn[1][3] == 0.0 and drawn[1][4] == "finetune on lw2o0 (group 0)"
    assert on_layer["final_val_loss"] == "EER 26.00%, kept epoch 2"
    assert under_test["final_val_loss"] == "EER 30.00%, kept epoch 0 (pretrained)"
    assert on_layer["scheme"] == _TRAINED_ON_LAYER and on_layer["kind"] == "recognizer"
    # The reconstruction model keeps its loss curve and its validation loss.
    assert inpaint["kind"] == "reconstruction" and inpaint["final_val_loss"] == "0.024"
    assert on_layer["uri"] == under_test["uri"] != inpaint["uri"]  # the blank stand-in figures, and a real curve
    assert len(drawn) == 3


def test_recognizer_training_section_names_the_training_setting():
    html = render_report(_finetune_results())
    section = _section(html, "training")
    assert f"Trained on {_TRAINED_ON_LAYER}. Weights kept: epoch 2." in section
    assert "Trained on the setting attacked (lw2o0). Weights kept: epoch 0 (pretrained)." in section
    srcs = re.findall(r'<img src="(data:image/png;base64,[^"]*)" alt="Training curve, ([^"]*)"', section)
    assert [alt for _, alt in srcs] == [
        f"{_ON_LAYER} on {_TRAINED_ON_LAYER} (group 0)",
        "finetune on lw2o0 (group 0)",
        "finetune on lw6o0 (group 0)",
        "inpaint on lw2o0 (group 0)",
    ]


def test_recognizer_history_tolerates_missing_fields():
    model = {"attack": "finetune", "kind": "recognizer", "history": [{"loss": 3.0}, {"val_eer": None}, "junk"]}
    (line,) = build_context({"rows": [], "trained_models": [model]})["trained_models"]
    assert line["uri"] is None  # epoch 0 has no loss and nothing was validated: nothing to draw
    assert line["final_val_loss"] == "—" and line["kept"] == "" and line["title"] == "finetune"
    model["history"] = [{"epoch": 0, "val_eer": 0.3}, {"epoch": 1, "loss": 2.0, "val_eer": 0.2}]
    (line,) = build_context({"rows": [], "trained_models": [model]})["trained_models"]
    assert line["uri"].startswith("data:image/png;base64,") and line["final_val_loss"] == "EER 20.00%"


# --------------------------------------------------------------------------- summary


def test_summary_comes_right_after_the_certification():
    html = render_report(_summary_results())
    order = [html.index(f'<section id="{s}"') for s in ("certification", "summary", "dataset", "details", "results")]
    assert order == sorted(order) and 'href="#summary"' in html
    section = _section(html, "summary")
    assert section.count('<td class="prop fail"') == 2 and section.count('<td class="prop unmeasured"') == 3
    assert '<a href="#scheme-warp">warp</a>' in section and '<details class="scheme" id="scheme-warp">' in html
    assert 'data-filter-for="summary-table"' not in section  # two lines need no filter


def test_summary_without_criteria_or_protected_rows(results, html):
    plain = _summary_results()
    del plain["certification"]
    summary = build_context(plain)["summary"]
    assert not summary["has_criteria"]
    assert {c["badge"] for line in summary["lines"] for c in line["cells"]} == {"no criterion", "not measured"}
    # Baseline rows only: nothing to summarise.
    assert build_context(results)["summary"] is None and 'id="summary"' not in html
    assert summary_table(results) is None


def test_linkability_column_beside_d_sys():
    rows = [
        {"metrics": {"eer": 0.1, "d_sys": 0.2, "d_sys_null": 0.1, "d_sys_null_high": 0.12, "linkability_max": 0.3}},
        {"metrics": {"linkability_max_ci_low": 0.2, "linkability_max_ci_high": 0.4}},
    ]
    assert metric_columns(rows) == ["eer", "d_sys", "linkability_max", "d_sys_null", "d_sys_null_high"]
    ctx = build_context({"rows": [_row("lbp", 2.0, 9, metrics=rows[0]["metrics"])]})
    assert [c["header"] for c in ctx["columns"]][1:4] == ["D↔sys", "max. linkability (bits)", "D↔sys null (mean)"]
    assert format_metric("delta_eer", -0.0052) == "-0.52%"  # a difference of rates, in percentage points


def test_full_table_is_filterable_without_needing_the_script(html):
    section = _section(html, "results")
    # Hidden until the script shows it: without JavaScript every row simply shows.
    assert '<p class="filter" data-filter-for="results-table" hidden>' in section
    assert '<table class="results" id="results-table">' in section
    script = _script(html)
    assert 'querySelectorAll("[data-filter-for]")' in script and "box.hidden = false" in script


def test_sweep_figures_draw_each_recognizer_and_attack_over_its_baseline(monkeypatch):
    drawn = []

    def capture(x, lines, *, baselines=(), references=None, xlabel="", ylabel="EER", title=""):
        drawn.append((list(x), list(lines), list(baselines), xlabel, title))
        return Figure()

    def row(rec, scheme, view, eer):
        attack = view.partition(":")[2] or "none"
        return {"recognizer": rec, "scheme": scheme, "attack": attack, "view": view, "metrics": {"eer": eer}}

    rows = [row("lbp", "none", "baseline", 0.2), row("sface", "none", "baseline", 0.01)]
    for w in (1, 2):
        rows += [row(rec, f"lw{w}o0", "strength:naive", (0.31, 0.32)[w - 1]) for rec in ("lbp", "sface")]
        rows += [row("lbp", f"lw{w}o0", "strength:inpaint", (0.21, 0.22)[w - 1])]
        rows += [row("lbp", f"lw{w}o0", "preservation", 0.2)]
    rows.append(row("lbp", "lw9o0", "strength:naive", 0.5))  # not in the sweep
    sweeps = [
        {"scheme": "j2k", "param": "window", "fixed": {"offset": 0}, "labels": ["lw1o0", "lw2o0"], "values": [1, 2]}
    ]
    monkeypatch.setattr("reports.sweeps.sweep_figure", capture)
    figures = build_context({"rows": rows, "sweeps": sweeps})["sweep_figures"]
    assert [f["title"] for f in figures] == [
        "j2k sweep over window (offset=0) · preservation",
        "j2k sweep over window (offset=0) · strength",
    ]
    (_, lines, baselines, _, _), (x, strength, base, xlabel, _) = drawn
    assert (x, xlabel) == ([1, 2], "window")
    assert [(line.label, list(line.values)) for line in strength] == [
        ("lbp · naive", [0.31, 0.32]),
        ("lbp · inpaint", [0.21, 0.22]),
        ("sface · naive", [0.31, 0.32]),
    ]
    # Several recognizers: a colour each, a marker and dash per attack; a dashed baseline per recognizer.
    assert strength[0].colour == strength[1].colour != strength[2].colour
    assert strength[0].marker != strength[1].marker and strength[0].marker == strength[2].marker
    assert [(b.label, b.value, b.colour) for b in base] == [
        ("lbp baseline (unprotected)", 0.2, strength[0].colour),
        ("sface baseline (unprotected)", 0.01, strength[2].colour),
    ]
    # One recognizer: its baseline in black.
    assert [(line.label, b.colour) for line in lines for b in baselines] == [("lbp", "#000000")]


def test_figure_cache_gives_the_same_page(results, html, tmp_path):
    from benchmark.core.cache import Cache
    from reports.export import Collector
    from reports.render import format_metric

    cache = Cache(tmp_path)
    first = render_report(results, Collector(formatter=format_metric, cache=cache))
    assert any((tmp_path / "figure").iterdir())
    again = render_report(results, Collector(formatter=format_metric, cache=cache))
    assert first == again == html


# --------------------------------------------------------------------------- learned attacks stopped on a budget


def test_rows_of_an_attack_stopped_on_a_budget_are_flagged(results):
    """Flagged: the model's line and every row of its attack on its scheme; a converged attack is not."""
    from reports.training import NOT_CONVERGED, not_converged

    flagged = f'<span class="flag not-converged">{NOT_CONVERGED}</span>'
    rows = [
        *results["rows"],
        _row("lbp", 2.0, 2, scheme="lw4o6", attack="inpaint", view="strength:inpaint"),
        _row("lbp", 2.0, 3, scheme="lw4o6", attack="naive", view="strength:naive"),
        _row("lbp", 2.0, 4, scheme="rw4o6", attack="inpaint", view="strength:inpaint"),
    ]
    history = [{"epoch": 1, "loss": 0.03, "val_loss": 0.02, "seconds": 60.0, "kept": True}]
    base = {"kind": "reconstruction", "group": 0, "history": history}
    models = [
        {**base, "attack": "inpaint", "scheme": "lw4o6", "stopped": "budget", "budget": "minutes", "epochs": 9,
         "best_epoch": 9, "params": {"max_minutes": 15.0, "max_epochs": 60}},
        {**base, "attack": "inpaint", "scheme": "rw4o6", "stopped": "converged", "budget": None, "epochs": 14,
         "best_epoch": 10, "params": {"max_minutes": 15.0, "max_epochs": 60}},
    ]  # fmt: skip
    html = render_report({**copy.deepcopy(results), "rows": rows, "trained_models": models})
    start = html.index('<section id="training">')
    training = html[start : html.index("</section>", start)]
    assert "budget: 15 min (9 epochs; kept epoch 9; machine-dependent)" + flagged in training
    assert "converged (validation plateau) (14 epochs; kept epoch 10)</td>" in training
    assert training.count(flagged) == 1
    everything = html[html.index("<h3>All attacks</h3>") :]
    assert f"<td>lw4o6</td>\n        <td>inpaint{flagged}</td>" in everything
    assert "<td>naive</td>" in everything and "<td>inpaint</td>" in everything  # naive and rw4o6's inpaint
    # A model trained on listed settings (no scheme) serves, and flags, every scheme its attack is run on.
    flag = not_converged([{"attack": "finetune", "scheme": None, "stopped": "budget"}])
    assert flag("lw4o6", "finetune") == flag("rw4o6", "finetune") == NOT_CONVERGED and flag("lw4o6", "naive") == ""
