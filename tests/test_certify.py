"""Certification verdicts: judged on CI bounds over every matching row; UNRESOLVED where the data cannot tell."""

from __future__ import annotations

from benchmark.engine.protocol import Criterion
from benchmark.metrics.certify import judge, known_metric, needs_ci


def _row(view, metrics, recognizer="sface", scheme="noise"):
    return {"view": view, "recognizer": recognizer, "scheme": scheme, "metrics": metrics}


def test_max_is_judged_on_upper_ci_bound():
    rows = [_row("linkage:naive", {"d_sys": 0.05, "d_sys_ci_low": 0.01, "d_sys_ci_high": 0.12})]
    [v] = judge(rows, [Criterion(metric="d_sys", view="linkage:*", max=0.1)], n_boot=200)
    assert v["verdict"] == "FAIL" and v["value"] == 0.12 and v["point"] == 0.05
    assert "0.12 > 0.1" in v["reason"]


def test_min_is_judged_on_lower_bound_and_worst_row_decides():
    rows = [
        _row("baseline", {"psnr": 30.0, "psnr_ci_low": 29.0, "psnr_ci_high": 31.0}, recognizer="lbp"),
        _row("baseline", {"psnr": 40.0, "psnr_ci_low": 39.0, "psnr_ci_high": 41.0}),
    ]
    [v] = judge(rows, [Criterion(metric="psnr", view="baseline", min=35.0)], n_boot=200)
    assert v["verdict"] == "FAIL" and v["value"] == 29.0 and v["worst_row"].startswith("lbp")
    [v] = judge(rows, [Criterion(metric="psnr", view="baseline", min=20.0)], n_boot=200)
    assert v["verdict"] == "PASS" and v["n_rows"] == 2 and v["reason"] == ""


def test_a_sample_metric_without_ci_is_unresolved_not_passed():
    row = _row("strength:naive", {"sar_at_fmr_0.001": 0.0, "n_sar_impostor": 100_000})
    [v] = judge([row], [Criterion(metric="sar_at_fmr_0.001", view="strength:*", max=0.01)], n_boot=0)
    assert v["verdict"] == "UNRESOLVED" and "n_boot is 0" in v["reason"]
    # A clear failure stays a failure, CI or not.
    row["metrics"]["sar_at_fmr_0.001"] = 0.5
    [v] = judge([row], [Criterion(metric="sar_at_fmr_0.001", view="strength:*", max=0.01)], n_boot=0)
    assert v["verdict"] == "FAIL"


def test_fmr_target_below_one_impostor_is_unresolved():
    # 384 impostor scores cannot resolve an FMR of 1e-4: no threshold can show it.
    metrics = {
        "fnmr_at_fmr_0.0001": 0.0,
        "fnmr_at_fmr_0.0001_ci_low": 0.0,
        "fnmr_at_fmr_0.0001_ci_high": 0.0,
        "sar_at_fmr_0.0001": 0.0,
        "sar_at_fmr_0.0001_ci_low": 0.0,
        "sar_at_fmr_0.0001_ci_high": 0.0,
        "n_impostor": 384,
        "n_sar_impostor": 384,
    }
    for metric in ("fnmr_at_fmr_0.0001", "sar_at_fmr_0.0001"):
        [v] = judge([_row("strength:naive", metrics)], [Criterion(metric=metric, view="*", max=0.01)], n_boot=200)
        assert v["verdict"] == "UNRESOLVED", v
        assert "below 1/384" in v["reason"] and "10,000" in v["reason"]
    # With enough impostors the same figures pass.
    enough = {**metrics, "n_impostor": 20_000, "n_sar_impostor": 20_000}
    [v] = judge(
        [_row("strength:naive", enough)], [Criterion(metric="sar_at_fmr_0.0001", view="*", max=0.01)], n_boot=200
    )
    assert v["verdict"] == "PASS"


def test_values_without_a_sampling_distribution_are_judged_on_their_value():
    [v] = judge(
        [_row("strength:naive", {"key_space_bits": 128.0})],
        [Criterion(metric="key_space_bits", view="*", min=100)],
        n_boot=0,
    )
    assert v["verdict"] == "PASS" and v["value"] == 128.0


def test_no_matching_row_or_undefined_metric_fails():
    [v] = judge([_row("baseline", {"eer": 0.1})], [Criterion(metric="d_sys", view="linkage:*", max=0.1)], n_boot=200)
    assert v["verdict"] == "FAIL" and v["n_rows"] == 0
    [v] = judge(
        [_row("linkage:x", {"d_sys": None})], [Criterion(metric="d_sys", view="linkage:*", max=0.1)], n_boot=200
    )
    assert v["verdict"] == "FAIL" and v["n_undefined"] == 1


def test_known_metric_names():
    assert known_metric("d_sys") and known_metric("eer_ci_high") and known_metric("fnmr_at_fmr_0.001")
    assert not known_metric("accuracy")
    assert needs_ci("psnr") and needs_ci("sar_at_fmr_0.001") and not needs_ci("key_space_bits")
    assert not needs_ci("eer_ci_high")
