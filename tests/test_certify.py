"""Certification verdicts: judged on CI bounds over every matching row; UNRESOLVED where the data cannot tell."""

from __future__ import annotations

from benchmark.engine.protocol import Criterion
from benchmark.metrics.certify import judge, known_metric, needs_ci, overall_verdict


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


def _competence(max_fnmr: float = 0.1, fmr: float = 0.001):  # noqa: ANN202
    """The protocol's competence block (imported here, so each test stands on its own)."""
    from benchmark.engine.protocol import Competence

    return Competence(max_fnmr=max_fnmr, fmr=fmr)


def _baseline(recognizer: str, fnmr: tuple[float, float, float], key: str = "fnmr_at_fmr_0.001") -> dict:
    value, low, high = fnmr
    metrics = {key: value, f"{key}_ci_low": low, f"{key}_ci_high": high, "n_impostor": 100_000}
    return _row("baseline", metrics, recognizer=recognizer, scheme="none")


def _strength(recognizer: str, sar: float) -> dict:
    metrics = {"sar_at_fmr_0.001": sar, "sar_at_fmr_0.001_ci_low": sar, "sar_at_fmr_0.001_ci_high": sar}
    return _row("strength:naive", {**metrics, "n_sar_impostor": 100_000}, recognizer=recognizer)


SAR_MAX = Criterion(metric="sar_at_fmr_0.001", view="strength:*", max=0.01)


def test_an_incompetent_recognizer_proves_nothing():
    # lbp misses 56% of genuine pairs at FMR 0.1% on plain faces: its SAR of 0 shows nothing about the attack.
    rows = [
        _baseline("lbp", (0.56, 0.50, 0.62)),
        _baseline("sface", (0.01, 0.0, 0.03)),
        _strength("lbp", 0.0),
        _strength("sface", 0.004),
    ]
    [v] = judge(rows, [SAR_MAX], n_boot=200, competence=_competence())
    assert v["verdict"] == "PASS" and v["decided_by"] == "sface" and v["value"] == 0.004
    assert set(v["not_competent"]) == {"lbp"}
    assert (
        "56.0% of genuine pairs at FMR 0.1%" in v["not_competent"]["lbp"]
        and "62.0% > competence.max_fnmr 10%" in (v["reason"])
    )
    # Without a competent recognizer the criterion is never PASS.
    only_lbp = Criterion(metric="sar_at_fmr_0.001", view="strength:*", recognizer="lbp", max=0.01)
    [v] = judge(rows, [only_lbp], n_boot=200, competence=_competence())
    assert v["verdict"] == "UNRESOLVED" and v["decided_by"] is None
    assert v["reason"].startswith("no competent recognizer; not competent, so no evidence of a pass: lbp: its baseline")
    # An incompetent recognizer's failure still fails: the attack got through even so.
    rows[2] = _strength("lbp", 0.3)
    [v] = judge(rows, [SAR_MAX], n_boot=200, competence=_competence())
    assert v["verdict"] == "FAIL" and v["decided_by"] == "lbp" and "30% > 1%" in v["reason"]
    assert "not competent, so no evidence of a pass: lbp" in v["reason"]
    # competence None: every row counts (as before).
    [v] = judge(rows[:2] + [_strength("lbp", 0.0)], [only_lbp], n_boot=200, competence=None)
    assert v["verdict"] == "PASS" and v["not_competent"] == {}


def test_competence_is_judged_on_the_upper_ci_bound():
    # A point FNMR of 8% whose CI reaches 12% does not show an FNMR of at most 10%.
    rows = [_baseline("lbp", (0.08, 0.05, 0.12)), _strength("lbp", 0.0)]
    [v] = judge(rows, [SAR_MAX], n_boot=200, competence=_competence(max_fnmr=0.1))
    assert v["verdict"] == "UNRESOLVED" and "CI upper bound 12.0% > competence.max_fnmr 10%" in v["reason"]
    [v] = judge(rows, [SAR_MAX], n_boot=200, competence=_competence(max_fnmr=0.15))
    assert v["verdict"] == "PASS" and v["decided_by"] == "lbp"
    # Without a CI on the baseline FNMR competence cannot be shown.
    for key in ("fnmr_at_fmr_0.001_ci_low", "fnmr_at_fmr_0.001_ci_high"):
        del rows[0]["metrics"][key]
    [v] = judge(rows, [SAR_MAX], n_boot=0, competence=_competence(max_fnmr=0.15))
    assert v["verdict"] == "UNRESOLVED" and "lbp" in v["not_competent"] and "n_boot is 0" in v["reason"]


def test_competence_at_the_criterions_fmr_or_the_declared_default():
    # The SAR criterion at FMR 1e-4 needs the baseline FNMR at FMR 1e-4, which this baseline lacks.
    rows = [_baseline("sface", (0.01, 0.0, 0.02)), _strength("sface", 0.0)]
    sar4 = Criterion(metric="sar_at_fmr_0.0001", view="strength:*", max=0.01)
    rows[1]["metrics"].update({"sar_at_fmr_0.0001": 0.0, "sar_at_fmr_0.0001_ci_low": 0.0})
    rows[1]["metrics"]["sar_at_fmr_0.0001_ci_high"] = 0.0
    [v] = judge(rows, [sar4], n_boot=200, competence=_competence())
    assert v["verdict"] == "UNRESOLVED" and "has no fnmr_at_fmr_0.0001" in v["reason"]
    # D<->sys is at no FMR: competence is read at competence.fmr.
    linkage = _row("linkage:naive", {"d_sys": 0.02, "d_sys_ci_low": 0.0, "d_sys_ci_high": 0.05}, recognizer="sface")
    baseline = _baseline("sface", (0.3, 0.25, 0.35))  # poor at FMR 0.1% ...
    baseline["metrics"].update({"fnmr_at_fmr_0.01": 0.02, "fnmr_at_fmr_0.01_ci_low": 0.0})
    baseline["metrics"]["fnmr_at_fmr_0.01_ci_high"] = 0.04  # ... good at FMR 1%
    d_sys = Criterion(metric="d_sys", view="linkage:*", max=0.1)
    [v] = judge([baseline, linkage], [d_sys], n_boot=200, competence=_competence())
    assert v["verdict"] == "UNRESOLVED" and "at FMR 0.1%" in v["reason"]
    [v] = judge([baseline, linkage], [d_sys], n_boot=200, competence=_competence(fmr=0.01))
    assert v["verdict"] == "PASS" and v["decided_by"] == "sface"


def test_competence_only_voids_security_evidence_from_scores():
    # Preservation (the recognizer's own performance under the scheme) and image metrics do not need competence.
    rows = [
        _baseline("lbp", (0.56, 0.50, 0.62)),
        _row("preservation", {"delta_eer": 0.0, "delta_eer_ci_low": -0.01, "delta_eer_ci_high": 0.005}, "lbp"),
        _row("strength:naive", {"psnr": 12.0, "psnr_ci_low": 11.0, "psnr_ci_high": 13.0}, "lbp"),
    ]
    criteria = [
        Criterion(metric="delta_eer", view="preservation", max=0.01),
        Criterion(metric="psnr", view="strength:*", max=20.0),
    ]
    for v in judge(rows, criteria, n_boot=200, competence=_competence()):
        assert v["verdict"] == "PASS" and v["not_competent"] == {}, v


def test_a_failing_reason_shows_a_few_digits_and_rates_as_percentages():
    rows = [_row("strength:naive", {"eer": 0.2861666666666667, "eer_ci_low": 0.2, "eer_ci_high": 0.31234567})]
    [v] = judge(rows, [Criterion(metric="eer", view="strength:*", min=0.35)], n_boot=200)
    assert v["verdict"] == "FAIL" and v["reason"].endswith(": 20% < 35%")
    rows = [_row("linkage:naive", {"d_sys": 0.5, "d_sys_ci_low": 0.4, "d_sys_ci_high": 0.97541234})]
    [v] = judge(rows, [Criterion(metric="d_sys", view="linkage:*", max=0.1)], n_boot=200)
    assert v["reason"].endswith(": 0.975 > 0.1")


def test_overall_verdict_is_the_worst():
    assert overall_verdict(["PASS", "PASS"]) == "PASS"
    assert overall_verdict(["PASS", "UNRESOLVED"]) == "UNRESOLVED"
    assert overall_verdict(["UNRESOLVED", "FAIL", "PASS"]) == "FAIL"
    assert overall_verdict([]) == "INCOMPLETE"
