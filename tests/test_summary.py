"""Tests for reports.summary: the ISO/IEC 24745 properties per scheme and recognizer, judged by the criteria."""

from __future__ import annotations

from reports.render import build_context, render_report
from reports.summary import summary_table


def _metrics(**values) -> dict:
    """Metrics with CIs: ``eer=(0.1, 0.08, 0.12)`` gives ``eer``, ``eer_ci_low``, ``eer_ci_high``."""
    out: dict = {}
    for key, value in values.items():
        if isinstance(value, tuple):
            out.update({key: value[0], f"{key}_ci_low": value[1], f"{key}_ci_high": value[2]})
        else:
            out[key] = value
    return out


def _summary_row(rec: str, view: str, **metrics) -> dict:
    attack = view.partition(":")[2] or "none"
    scheme = "none" if view == "baseline" else "warp"
    return {"recognizer": rec, "scheme": scheme, "attack": attack, "view": view, "metrics": _metrics(**metrics)}


def _summary_results() -> dict:
    """lbp with every view (two attacks); sface with a strength view only."""
    sar = "sar_at_fmr_0.001"
    rows = [
        _summary_row("lbp", "baseline", eer=(0.10, 0.08, 0.12)),
        _summary_row("sface", "baseline", eer=(0.01, 0.0, 0.02)),
        _summary_row("lbp", "preservation", eer=(0.11, 0.09, 0.13), delta_eer=(0.01, 0.0, 0.02)),
        _summary_row("lbp", "strength:naive", eer=(0.40, 0.35, 0.45), n_sar_impostor=5000, **{sar: (0.02, 0.01, 0.03)}),
        _summary_row("lbp", "strength:finetune", eer=(0.05, 0.03, 0.07), n_sar_impostor=5000, **{sar: (0.5, 0.4, 0.6)}),
        _summary_row(
            "lbp", "linkage:naive", d_sys=(0.05, 0.02, 0.07), d_sys_null_high=0.08, linkability_max=(0.1, 0.05, 0.15)
        ),
        _summary_row(
            "lbp", "linkage:finetune", d_sys=(0.6, 0.55, 0.65), d_sys_null_high=0.08, linkability_max=(0.7, 0.6, 0.8)
        ),
        _summary_row("lbp", "renewal", eer=(0.3, 0.25, 0.35), n_sar_impostor=5000, **{sar: (0.0, 0.0, 0.0)}),
        # 500 impostor scores cannot show an FMR of 0.1%: the SAR criterion is UNRESOLVED here.
        _summary_row("sface", "strength:naive", eer=(0.3, 0.25, 0.35), n_sar_impostor=500, **{sar: (0.05, 0.04, 0.06)}),
    ]
    certification = [
        {"metric": sar, "view": "strength:*", "recognizer": "*", "scheme": "*", "max": 0.1, "verdict": "FAIL"},
        {"metric": "d_sys", "view": "linkage:*", "recognizer": "*", "scheme": "*", "max": 0.3, "verdict": "FAIL"},
        {
            "metric": "delta_eer",
            "view": "preservation",
            "recognizer": "*",
            "scheme": "*",
            "max": 0.05,
            "verdict": "PASS",
        },
        {"metric": "eer", "view": "strength:*", "recognizer": "sface", "scheme": "w*", "min": 0.2, "verdict": "PASS"},
    ]
    return {"protocol": {"name": "summary"}, "dataset": {"name": "d"}, "rows": rows, "certification": certification}


def test_summary_judges_each_cell_by_the_criteria_covering_it():
    summary = build_context(_summary_results())["summary"]
    assert summary["headings"] == ["Performance preservation", "Irreversibility", "Unlinkability", "Renewability"]
    lbp, sface = summary["lines"]
    assert (lbp["scheme"], lbp["recognizer"], sface["recognizer"]) == ("warp", "lbp", "sface")
    pres, irr, unl, ren = lbp["cells"]
    assert [c["status"] for c in lbp["cells"]] == ["pass", "fail", "fail", "none"]
    assert [c["badge"] for c in lbp["cells"]] == ["PASS", "FAIL", "FAIL", "no criterion"]
    # The strongest attack (lowest EER) and the most linkable one (highest D<->sys) are named and shown.
    assert irr["attack"] == "strongest of 2: finetune"
    assert [(i["label"], i["value"], i["ci"]) for i in irr["lines"]] == [
        ("EER", "5.00%", "3.00% – 7.00%"),
        ("SAR @ FMR 0.1%", "50.00%", "40.00% – 60.00%"),
    ]
    assert unl["attack"] == "most linkable of 2: finetune"
    assert [(i["label"], i["value"]) for i in unl["lines"]] == [("D↔sys", "0.6"), ("max. linkability (bits)", "0.7")]
    assert unl["fact"] == "above null (95th pct. 0.08)"
    assert [i["label"] for i in pres["lines"]] == ["ΔEER", "EER"] and pres["lines"][0]["value"] == "1.00%"
    assert [i["label"] for i in ren["lines"]] == ["SAR @ FMR 0.1%", "EER"]
    # Each criterion states the verdict on these rows, with the judge's reason.
    assert (
        "sar_at_fmr_0.001 ≤ 10.00% (view strength:*) → FAIL: lbp / warp / strength:finetune: 60% > 10%" in irr["notes"]
    )
    assert ren["notes"] == "no certification criterion covers these rows"
    # sface: a criterion only for it passes, the SAR one cannot be resolved; views it lacks are not measured.
    assert [c["badge"] for c in sface["cells"]] == ["not measured", "UNRESOLVED", "not measured", "not measured"]
    assert [c["status"] for c in sface["cells"]] == ["unmeasured", "unresolved", "unmeasured", "unmeasured"]
    assert (
        sface["cells"][1]["attack"] == "attack naive"
        and "eer ≥ 20.00% (view strength:*, recognizer sface" in (sface["cells"][1]["notes"])
    )
    assert [(b["recognizer"], b["value"]) for b in summary["baselines"]] == [("lbp", "10.00%"), ("sface", "1.00%")]


def test_summary_of_older_results_without_maximal_linkability_or_d_sys():
    older = _summary_results()
    for row in older["rows"]:
        for key in [k for k in row["metrics"] if k.startswith("linkability_max")]:
            del row["metrics"][key]
    unl = build_context(older)["summary"]["lines"][0]["cells"][2]
    assert [i["label"] for i in unl["lines"]] == ["D↔sys"]  # not measured then: left out
    for row in older["rows"]:
        if row["view"].startswith("linkage"):
            row["metrics"] = _metrics(eer=(0.2, 0.1, 0.3) if row["attack"] == "naive" else (0.1, 0.05, 0.15))
    unl = build_context(older)["summary"]["lines"][0]["cells"][2]
    # Without D<->sys the most linkable attack is the one with the lowest EER; the criterion on d_sys fails.
    assert unl["attack"] == "most linkable of 2: finetune" and unl["badge"] == "FAIL" and unl["fact"] == ""
    assert [(i["label"], i["value"]) for i in unl["lines"]] == [("D↔sys", "—"), ("EER (key A vs B)", "10.00%")]


def test_summary_table_holds_the_raw_figures():
    table = summary_table(_summary_results())
    header = list(table.header)
    lbp, sface = table.rows
    assert lbp[header.index("Strongest attack")] == "finetune"
    assert tuple(lbp[header.index("EER (strength)")])[:3] == (0.05, 0.03, 0.07)
    assert lbp[header.index("D↔sys null (95th pct.)")] == 0.08 and lbp[header.index("D↔sys vs null")] == "above null"
    assert header.index("max. linkability (bits)") == header.index("D↔sys") + 1
    assert [lbp[header.index(h)] for h in ("Irreversibility", "Renewability")] == ["FAIL", "no criterion"]
    assert sface[header.index("Unlinkability")] == "not measured"


def _competence_results(competence: object = "absent") -> dict:
    """lbp misses 56% of genuine pairs at FMR 0.1% on plain faces, sface 1%; both show a SAR of 0 under the attack."""
    sar, fnmr = "sar_at_fmr_0.001", "fnmr_at_fmr_0.001"
    rows = [
        _summary_row("lbp", "baseline", eer=(0.05, 0.03, 0.07), n_impostor=50_000, **{fnmr: (0.56, 0.5, 0.62)}),
        _summary_row("sface", "baseline", eer=(0.0, 0.0, 0.01), n_impostor=50_000, **{fnmr: (0.01, 0.0, 0.03)}),
        _summary_row("lbp", "strength:naive", eer=(0.5, 0.45, 0.55), n_sar_impostor=50_000, **{sar: (0.0, 0.0, 0.0)}),
        _summary_row("sface", "strength:naive", eer=(0.4, 0.35, 0.45), n_sar_impostor=50_000, **{sar: (0.0, 0.0, 0.0)}),
    ]
    entry = {"metric": sar, "view": "strength:*", "recognizer": "*", "scheme": "*", "max": 0.01, "verdict": "PASS"}
    if competence != "absent":
        entry["competence"] = competence
    return {"protocol": {"name": "c"}, "dataset": {"name": "d"}, "rows": rows, "certification": [entry]}


def test_an_incompetent_recognizers_cell_is_unresolved_and_says_why():
    for competence in ({"max_fnmr": 0.1, "fmr": 0.001}, "absent"):  # results before competence: the default
        lbp, sface = build_context(_competence_results(competence))["summary"]["lines"]
        irr = lbp["cells"][1]
        assert (irr["badge"], irr["status"]) == ("UNRESOLVED", "unresolved")
        assert irr["why"].startswith(
            "sar_at_fmr_0.001: lbp not competent, so no evidence of a pass: its baseline misses 56.0%"
        )
        assert "no competent recognizer" in irr["notes"]
        # sface is competent: its figure decides, and says so.
        assert sface["cells"][1]["badge"] == "PASS" and sface["cells"][1]["why"] == ""
        assert "→ PASS (decided by sface)" in sface["cells"][1]["notes"]
    table = summary_table(_competence_results())
    assert [r[table.header.index("Irreversibility")] for r in table.rows] == ["UNRESOLVED", "PASS"]
    # A protocol that sets competence: null counts every recognizer.
    lbp, _ = build_context(_competence_results(None))["summary"]["lines"]
    assert lbp["cells"][1]["badge"] == "PASS"


def test_the_report_shows_why_a_cell_is_unresolved():
    html = render_report(_competence_results())
    assert "lbp not competent, so no evidence of a pass: its baseline misses 56.0% of genuine pairs at FMR 0.1%" in html
    assert 'class="why"' in html


def test_irreversibility_shows_the_keyless_and_the_key_known_figures_and_judges_both():
    results = _summary_results()
    sar = "sar_at_fmr_0.001"
    rows = [r for r in results["rows"] if r["view"] != "strength:finetune"]
    invert = _summary_row("lbp", "strength:invert", eer=(0.02, 0.01, 0.03), n_sar_impostor=5000, **{sar: (0.9, 0.8, 1)})
    rows.insert(4, {**invert, "key_known": True})
    results["rows"] = rows
    irr = build_context(results)["summary"]["lines"][0]["cells"][1]
    assert irr["attack"] == "keyless: attack naive; key known: attack invert"
    assert [(i["label"], i["value"]) for i in irr["lines"]] == [
        ("keyless: EER", "40.00%"),
        ("keyless: SAR @ FMR 0.1%", "2.00%"),
        ("key known: EER", "2.00%"),
        ("key known: SAR @ FMR 0.1%", "90.00%"),
    ]
    # The keyless attack alone meets the SAR criterion; the stolen-token attacker decides the verdict.
    assert irr["badge"] == "FAIL" and "strength:invert" in irr["notes"]
    table = summary_table(results)
    header, lbp = list(table.header), table.rows[0]
    assert lbp[header.index("Strongest attack")] == "naive"
    assert lbp[header.index("Strongest key-known attack")] == "invert"
    assert tuple(lbp[header.index("EER (strength, key known)")])[:3] == (0.02, 0.01, 0.03)
