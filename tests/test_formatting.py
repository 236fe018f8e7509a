"""Tests for reports.formatting: metric values as the page shows them."""

from __future__ import annotations

from reports.formatting import format_metric
from reports.render import format_metric as rendered_format_metric


def test_render_reexports_format_metric():
    assert rendered_format_metric is format_metric


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
