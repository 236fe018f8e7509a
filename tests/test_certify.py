"""Certification verdicts are judged on CI bounds, over every matching row."""

from __future__ import annotations

from benchmark.metrics.certify import judge, known_metric
from benchmark.engine.protocol import Criterion


def _row(view, metrics, recognizer="sface", scheme="noise"):
    return {"view": view, "recognizer": recognizer, "scheme": scheme, "metrics": metrics}


def test_max_is_judged_on_upper_ci_bound():
    rows = [_row("linkage:naive", {"d_sys": 0.05, "d_sys_ci_high": 0.12})]
    [v] = judge(rows, [Criterion(metric="d_sys", view="linkage:*", max=0.1)])
    assert v["verdict"] == "FAIL" and v["value"] == 0.12 and v["point"] == 0.05


def test_min_is_judged_on_lower_bound_and_worst_row_decides():
    rows = [_row("baseline", {"psnr": 30.0, "psnr_ci_low": 29.0}, recognizer="lbp"),
            _row("baseline", {"psnr": 40.0, "psnr_ci_low": 39.0})]
    [v] = judge(rows, [Criterion(metric="psnr", view="baseline", min=35.0)])
    assert v["verdict"] == "FAIL" and v["value"] == 29.0 and v["worst_row"].startswith("lbp")
    [v] = judge(rows, [Criterion(metric="psnr", view="baseline", min=20.0)])
    assert v["verdict"] == "PASS" and v["n_rows"] == 2


def test_no_ci_uses_point_value():
    [v] = judge([_row("strength:naive", {"sar_at_fmr_0.001": 0.0})],
                [Criterion(metric="sar_at_fmr_0.001", view="strength:*", max=0.01)])
    assert v["verdict"] == "PASS" and v["value"] == 0.0


def test_no_matching_row_or_undefined_metric_fails():
    [v] = judge([_row("baseline", {"eer": 0.1})], [Criterion(metric="d_sys", view="linkage:*", max=0.1)])
    assert v["verdict"] == "FAIL" and v["n_rows"] == 0
    [v] = judge([_row("linkage:x", {"d_sys": None})], [Criterion(metric="d_sys", view="linkage:*", max=0.1)])
    assert v["verdict"] == "FAIL" and v["n_undefined"] == 1


def test_known_metric_names():
    assert known_metric("d_sys") and known_metric("eer_ci_high") and known_metric("fnmr_at_fmr_0.001")
    assert not known_metric("accuracy")
