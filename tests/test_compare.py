"""``facesec compare``: matching, paired/unpaired bootstrap deltas, verdicts, exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pytest

from benchmark.cli.compare import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_REGRESSION,
    EXIT_UNMATCHED,
    add_parser,
    compare_main,
)
from benchmark.core.cache import Cache
from benchmark.engine.compare import CompareSettings, compare_runs, load_run, render_markdown
from benchmark.engine.evaluate import EvalSettings, ViewScores, row_metrics
from benchmark.engine.pipeline import RunOptions, run_protocol
from benchmark.engine.protocol import load_protocol
from benchmark.engine.provenance import EVALUATION_SECTIONS, protocol_sections
from benchmark.engine.results import write_results
from benchmark.engine.scores import ScoreSet, read_scores, write_scores
from benchmark.engine.views import View
from benchmark.metrics.bootstrap import paired_delta_ci
from benchmark.metrics.unlinkability import UnlinkabilityMetric
from benchmark.metrics.verification import DPrimeMetric, EERMetric, FNMRAtFMRMetric, eer


def _cli(*argv: str | Path) -> int:
    parser = argparse.ArgumentParser(prog="facesec")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return compare_main(parser.parse_args(["compare", *map(str, argv)]))


# --------------------------------------------------------------------------- runs of the real pipeline

# Window 8 % -> 3 % at offset 0 (layer progression, naive attack) is NOT resolved
# by the security metrics on the synthetic demo faces: checked beforehand with
# lbp, on 16 x 4 faces (strength EER 0.50 -> 0.48, paired 95 % CI of the change
# [-0.095, +0.074]; SAR@FMR 0.001 0 -> 0) and on the 40 x 10 quickstart faces
# (EER 0.490 -> 0.491): both windows leave the naive decode at chance. Only the
# attack output's SSIM resolves it (0.040 -> 0.142, CI [+0.081, +0.123]), which
# gates with --quality. test_window_8_to_3_* states exactly that. The security
# regression is tested with 8 % -> 1 % at offset 0, which the same data resolves
# (EER 0.50 -> 0.31, FNMR@FMR 0.01 0.99 -> 0.56, SAR@FMR 0.001 0 -> 0.06).
PIPELINE_PROTOCOL = """\
name: compare-test
dataset:
  name: synthetic
  params: {n_subjects: 16, n_images: 4, seed: 1}
  folds: 2
  seed: 0
recognizers:
  - {name: lbp, params: {radius: 2}}
schemes:
  - {name: j2k, params: {progression: layer, window: WINDOW, offset: 0}}
attacks: [naive]
views: [strength]
metrics: [eer, fnmr_at_fmr, d_prime]
bootstrap: {n_boot: 20, seed: 0}
"""


@pytest.fixture(scope="module")
def pipeline_runs(tmp_path_factory) -> dict[str, Path]:
    """Four runs sharing one cache: window 8 % (twice), 1 % and 3 %."""
    root = tmp_path_factory.mktemp("compare-runs")
    cache = Cache(root / "cache")
    out: dict[str, Path] = {}
    for name, window in (("base", 8), ("new", 1), ("rerun", 8), ("w3", 3)):
        protocol = root / f"{name}.yaml"
        protocol.write_text(PIPELINE_PROTOCOL.replace("WINDOW", str(window)))
        run_protocol(load_protocol(protocol), RunOptions(out=root / name, cache=cache, workers=1))
        out[name] = root / name
    return out


def test_same_code_twice_is_no_regression(pipeline_runs, capsys):
    base, rerun = pipeline_runs["base"], pipeline_runs["rerun"]
    assert _cli(base, rerun) == EXIT_OK
    # The same results file read twice, too.
    assert _cli(base / "results.json", base) == EXIT_OK
    comparison = compare_runs(load_run(base), load_run(rerun))
    assert [r.view for r in comparison.rows] == ["baseline", "strength:naive"]
    for row in comparison.rows:
        assert row.method == "paired"
        for m in row.metrics:
            assert (m.delta, m.ci_low, m.ci_high, m.verdict) == (0.0, 0.0, 0.0, "ok"), (row.label, m.metric)
    assert not comparison.only_base and not comparison.only_new


def test_weakened_scheme_is_a_regression_through_the_cli(pipeline_runs, tmp_path, capsys):
    summary, report = tmp_path / "summary.md", tmp_path / "compare.json"
    code = _cli(
        pipeline_runs["base"],
        pipeline_runs["new"],
        "--map-scheme",
        "lw8o0=lw1o0",
        "--markdown",
        summary,
        "--json",
        report,
    )
    out = capsys.readouterr().out
    assert code == EXIT_REGRESSION == 4
    assert out.splitlines()[0].startswith("**facesec compare: REGRESSION")
    assert summary.read_text().rstrip("\n") == out.rstrip("\n")
    data = json.loads(report.read_text())
    assert data["verdict"] == "regression" and data["n_regressions"] >= 1
    [row] = [r for r in data["rows"] if r["view"] == "strength:naive"]
    assert row["method"] == "paired" and (row["scheme_base"], row["scheme_new"]) == ("lw8o0", "lw1o0")
    verdicts = {m["metric"]: m["verdict"] for m in row["metrics"]}
    assert verdicts["fnmr_at_fmr_0.01"] == "regression"
    # Image quality of the attack output got much closer, but it does not gate by default.
    assert verdicts["psnr"] == "worse_not_gated"
    # The regression rows come first in the table.
    table = [line for line in out.splitlines() if line.startswith("| lbp")]
    assert "REGRESSION" in table[0]
    assert "window 8 → 1" in out


def test_strengthened_scheme_is_not_flagged(pipeline_runs, capsys):
    code = _cli(pipeline_runs["new"], pipeline_runs["base"], "--map-scheme", "lw1o0=lw8o0")
    out = capsys.readouterr().out
    assert code == EXIT_OK
    assert out.splitlines()[0].startswith("**facesec compare: OK")
    comparison = compare_runs(
        load_run(pipeline_runs["new"]), load_run(pipeline_runs["base"]), CompareSettings(scheme_map={"lw1o0": "lw8o0"})
    )
    [strength] = [r for r in comparison.rows if r.view == "strength:naive"]
    assert {m.metric: m.verdict for m in strength.metrics}["fnmr_at_fmr_0.01"] == "improved"
    assert not any(m.verdict == "regression" for m in strength.metrics)


def test_window_8_to_3_is_unresolved_for_security_but_a_quality_regression(pipeline_runs, capsys):
    base, w3 = pipeline_runs["base"], pipeline_runs["w3"]
    # Security metrics: both windows leave the attack at chance on the demo data.
    assert _cli(base, w3, "--map-scheme", "lw8o0=lw3o0") == EXIT_OK
    comparison = compare_runs(load_run(base), load_run(w3), CompareSettings(scheme_map={"lw8o0": "lw3o0"}))
    strength = _rows(comparison)["strength:naive"]
    assert {m.verdict for m in strength.metrics if m.category == "security"} <= {
        "ok",
        "worse_within_tolerance",
        "worse_unresolved",
    }
    # The attack output is measurably closer to the originals: a regression once image quality gates.
    assert _cli(base, w3, "--map-scheme", "lw8o0=lw3o0", "--quality") == EXIT_REGRESSION
    first = capsys.readouterr().out.split("**facesec compare: ")[-1].splitlines()[0]
    assert first.startswith("REGRESSION:") and "image quality" in first


def test_renamed_scheme_without_a_map_is_unmatched_not_ok(pipeline_runs, capsys):
    # A weakening that changes the scheme's label leaves only the baseline row matched: never OK.
    assert _cli(pipeline_runs["base"], pipeline_runs["new"]) == EXIT_UNMATCHED == 5
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith(
        "**facesec compare: UNMATCHED: 2 row(s) on one side only (scheme lw8o0 in base only, lw1o0 in new only)"
    )
    assert "pass --map-scheme lw8o0=lw1o0" in first and "nothing gated was compared" in first
    assert "only in base: lbp · lw8o0 · strength:naive" in out
    assert "only in new: lbp · lw1o0 · strength:naive" in out
    # Accepting the one-sided rows still leaves nothing gated: the baseline gates only with --performance.
    assert _cli(pipeline_runs["base"], pipeline_runs["new"], "--allow-unmatched") == EXIT_UNMATCHED
    assert "only with --performance" in capsys.readouterr().out.splitlines()[0]
    assert _cli(pipeline_runs["base"], pipeline_runs["new"], "--allow-unmatched", "--performance") == EXIT_OK
    assert "(accepted by --allow-unmatched)" in capsys.readouterr().out.splitlines()[0]


def test_score_or_quality_files_of_another_run_are_refused(pipeline_runs, tmp_path, capsys):
    base, weak = pipeline_runs["base"], pipeline_runs["new"]
    # The base run's results.json over the weakened run's quality file (renamed to the base's name).
    swapped = tmp_path / "swapped-quality"
    shutil.copytree(base, swapped)
    [quality] = (swapped / "quality").glob("*.csv")
    [other] = (weak / "quality").glob("*.csv")
    shutil.copyfile(other, quality)
    assert _cli(base, swapped) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {quality}: psnr ") and "does not reproduce" in err
    # ... and over its strength score file.
    swapped = tmp_path / "swapped-scores"
    shutil.copytree(base, swapped)
    [scores] = (swapped / "scores").glob("*lw8o0*")
    [other] = (weak / "scores").glob("*lw1o0*")
    shutil.copyfile(other, scores)
    assert _cli(base, swapped) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {scores}") and str(swapped / "results.json") in err


# --------------------------------------------------------------------------- synthetic score files

SUBJECTS, IMAGES = 24, 4
_METRICS = [EERMetric(), FNMRAtFMRMetric(), DPrimeMetric(), UnlinkabilityMetric(n_boot=20, n_null=5)]


def _comparisons(pairs_seed: int) -> tuple[list[str], list[str], np.ndarray, np.ndarray, np.ndarray]:
    ids = [f"s{s:02d}/{i}" for s in range(SUBJECTS) for i in range(IMAGES)]
    subjects = [x.split("/")[0] for x in ids]
    mated = [(a, b) for a in range(len(ids)) for b in range(a + 1, len(ids)) if subjects[a] == subjects[b]]
    others = [(a, b) for a in range(len(ids)) for b in range(a + 1, len(ids)) if subjects[a] != subjects[b]]
    pick = np.random.default_rng(pairs_seed).choice(len(others), 1500, replace=False)
    pairs = mated + [others[i] for i in sorted(pick)]
    probe = np.array([a for a, _ in pairs])
    reference = np.array([b for _, b in pairs])
    return ids, subjects, probe, reference, np.array([subjects[a] == subjects[b] for a, b in pairs])


def _fake_run(
    root: Path,
    *,
    strength: float = 0.5,
    strength_seed: int = 10,
    linkage: float = 0.5,
    baseline: float = 3.0,
    fingerprint: str = "fp-same",
    pairs_seed: int = 0,
    drop_mated: int = 0,
    views: tuple[str, ...] = ("baseline", "strength:naive", "linkage:naive", "renewal"),
    protocol_sha256: str = "0" * 64,
    sections: str | None = "same",
    own_baseline: bool = False,
) -> Path:
    """A run folder whose rows are computed by the pipeline's own row_metrics from Gaussian scores.

    Each view draws its scores from its own seed, so two runs differ only
    where their parameters do. ``drop_mated`` removes that many mated
    comparisons from the strength view, as failures to acquire. ``sections``
    names the ``provenance.protocol_sections`` (None: a run from before them).
    With ``own_baseline`` the attacked views are a fine-tuned recognizer's:
    their SAR thresholds and ΔEER come from a baseline of its own, on another
    score scale, written to ``baseline_score_file``.
    """
    ids, subjects, probe, reference, mated = _comparisons(pairs_seed)
    codes = np.unique(subjects, return_inverse=True)[1]
    means = {"baseline": baseline, "strength:naive": strength, "linkage:naive": linkage, "renewal": 0.3}
    seeds = {"baseline": 1, "strength:naive": strength_seed, "linkage:naive": 3, "renewal": 4}
    rows = []
    baseline_row: tuple[ViewScores, dict] | None = None  # what later views compare with (ΔEER, SAR thresholds)
    tuned: tuple[ViewScores, dict] | None = None
    if own_baseline:
        rng = np.random.default_rng(5)
        scores = 0.3 * np.where(mated, rng.normal(baseline, 1.0, mated.size), rng.normal(0.0, 1.0, mated.size)) + 0.5
        index = np.arange(mated.size)
        vs = ViewScores(scores, mated, codes[probe], index, 0, codes[probe[:0]])
        view = View("baseline:naive", "baseline", "x1", {}, "naive", [])
        tuned = (vs, row_metrics(view, vs, None, _METRICS, EvalSettings(50, 0), {})[0])
        names = ([ids[i] for i in probe], [ids[i] for i in reference])
        subj = ([subjects[i] for i in probe], [subjects[i] for i in reference])
        write_scores(
            root / "scores" / "own_baseline.csv", ScoreSet(*names, *subj, "lbp", "x1", "naive", view.name, scores)
        )
    for name in views:
        rng = np.random.default_rng(seeds[name])
        scores = np.where(mated, rng.normal(means[name], 1.0, mated.size), rng.normal(0.0, 1.0, mated.size))
        keep = np.ones(mated.size, bool)
        if name == "strength:naive" and drop_mated:
            keep[np.flatnonzero(mated)[:drop_mated]] = False
        lost = ~keep & mated
        index = np.flatnonzero(keep)
        vs = ViewScores(scores[index], mated[index], codes[probe[index]], index, int((~keep).sum()), codes[probe[lost]])
        kind = name.split(":")[0]
        scheme = "none" if kind == "baseline" else "x1"
        attack = "naive" if ":" in name else "none"
        view = View(name, kind, scheme, {}, attack, [])  # type: ignore[arg-type]
        system = tuned if tuned is not None and kind in ("strength", "linkage") else baseline_row
        values, _ = row_metrics(view, vs, system, _METRICS, EvalSettings(50, 0), {})
        if kind == "baseline":
            baseline_row = (vs, values)
        score_file = f"scores/{name.replace(':', '_')}.csv"
        write_scores(
            root / score_file,
            ScoreSet(
                [ids[i] for i in probe[index]],
                [ids[i] for i in reference[index]],
                [subjects[i] for i in probe[index]],
                [subjects[i] for i in reference[index]],
                "lbp",
                scheme,
                attack,
                name,
                scores[index],
            ),
        )
        rows.append(
            {
                "recognizer": "lbp",
                "recognizer_params": {"radius": 2},
                "scheme": scheme,
                "scheme_params": {} if scheme == "none" else {"p": 1},
                "attack": attack,
                "view": name,
                "attacker_knowledge": None,
                "metrics": values,
                "curves": {},
                "score_file": score_file,
                **({"baseline_score_file": "scores/own_baseline.csv"} if tuned is not None and system is tuned else {}),
            }
        )
    results = {
        "schema_version": 3,
        "protocol": {"name": "fake", "file": "fake.yaml", "notes": ""},
        "dataset": {"name": "synthetic", "demo": True},
        "rows": rows,
        "provenance": {"dataset_fingerprint": fingerprint, "protocol_sha256": protocol_sha256, "key": None},
    }
    if sections is not None:
        results["provenance"]["protocol_sections"] = {k: f"{k}-{sections}" for k in EVALUATION_SECTIONS}
    write_results(root / "results.json", results)  # type: ignore[arg-type]
    return root


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    """Build (and cache) synthetic run folders by keyword arguments."""
    root = tmp_path_factory.mktemp("fake-runs")
    built: dict[str, Path] = {}

    def make(**kwargs) -> Path:
        name = "run-" + ("-".join(f"{k}={v}" for k, v in sorted(kwargs.items())).replace("/", "_") or "default")
        if name not in built:
            built[name] = _fake_run(root / name, **kwargs)
        return built[name]

    return make


def _rows(comparison) -> dict:
    return {r.view: r for r in comparison.rows}


def _metric(row, key):
    return next(m for m in row.metrics if m.metric == key)


def test_paired_when_same_samples_and_comparisons(fake):
    base, new = fake(), fake(strength=1.5, strength_seed=11)
    comparison = compare_runs(load_run(base), load_run(new))
    rows = _rows(comparison)
    assert {r.method for r in rows.values()} == {"paired"}
    # The unchanged views hold identical scores: their interval collapses to (0, 0).
    assert all((m.ci_low, m.ci_high) == (0.0, 0.0) for m in rows["linkage:naive"].metrics)
    # The paired ΔEER interval is exactly the one bootstrap.paired_delta_ci draws.
    b, n = (read_scores(p / "scores" / "strength_naive.csv") for p in (base, new))
    expected = paired_delta_ci(n.score, b.score, b.mated, b.probe_subject, eer, n_boot=200, seed=0)
    m = _metric(rows["strength:naive"], "eer")
    assert (m.ci_low, m.ci_high) == pytest.approx(expected, abs=1e-12)
    assert m.ci_high < -0.01 and m.verdict == "regression"
    assert not comparison.warnings


def test_fine_tuned_rows_are_recomputed_against_their_own_baseline(fake):
    """The SAR of a row with a ``baseline_score_file`` reproduces from that file, not from the recognizer's baseline."""
    run = fake(own_baseline=True)
    strength = _rows(compare_runs(load_run(run), load_run(run)))["strength:naive"]
    keys = [m.metric for m in strength.metrics if m.metric.startswith("sar_at_fmr_")]
    assert len(keys) == 2
    for key in keys:
        m = _metric(strength, key)
        assert (m.method, m.note, m.ci_low, m.ci_high) == ("paired", "", 0.0, 0.0), (key, m)
    # Against an ordinary run's row, the change of threshold system is said.
    mixed = _rows(compare_runs(load_run(fake()), load_run(run)))["strength:naive"]
    assert any("SAR thresholds and ΔEER from other systems" in n for n in mixed.notes)


def test_unpaired_when_the_dataset_differs(fake):
    allow = CompareSettings(allow_different_data=True)
    same = compare_runs(load_run(fake()), load_run(fake(fingerprint="fp-copy")), allow)
    assert any("dataset samples differ" in w for w in same.warnings)
    md = render_markdown(same)
    assert "dataset samples differ" in md.split("|")[0]  # stated above the table
    rows = _rows(same)
    assert {r.method for r in rows.values()} == {"unpaired"}
    # Identical data resampled independently: an interval around 0 of positive width, no regression.
    m = _metric(rows["strength:naive"], "eer")
    assert m.delta == 0.0 and m.ci_low < 0.0 < m.ci_high
    assert not same.regressions


def test_unpaired_when_the_comparisons_differ(fake):
    comparison = compare_runs(load_run(fake()), load_run(fake(pairs_seed=1)))
    assert not comparison.warnings  # same samples, other non-mated pairs
    assert {r.method for r in comparison.rows} == {"unpaired"}


def test_failures_to_acquire_are_counted_in_the_sar_bootstrap(fake):
    comparison = compare_runs(load_run(fake(drop_mated=6)), load_run(fake(drop_mated=6, strength=2.5)))
    row = _rows(comparison)["strength:naive"]
    # The SAR recomputed from the files (failed attempts found from the baseline) matches the stored one.
    sar = _metric(row, "sar_at_fmr_0.001")
    assert sar.method == "paired" and not sar.note
    assert sar.delta > 0.01 and sar.verdict == "regression"


def test_linkage_and_renewal_are_judged(fake):
    comparison = compare_runs(load_run(fake()), load_run(fake(linkage=3.0)))
    rows = _rows(comparison)
    d_sys = _metric(rows["linkage:naive"], "d_sys")
    assert d_sys.method == "paired" and d_sys.worse == "up" and d_sys.verdict == "regression"
    assert {m.metric for m in rows["renewal"].metrics} >= {"sar_at_fmr_0.001", "eer"}
    assert _metric(rows["linkage:naive"], "eer").worse == "down"


def test_a_row_on_one_side_only_is_listed_and_unmatched_unless_accepted(fake, tmp_path):
    base, new = fake(), fake(views=("baseline", "strength:naive", "linkage:naive"))
    assert _cli(base, new, "--json", tmp_path / "c.json", "--markdown", tmp_path / "c.md") == EXIT_UNMATCHED
    data = json.loads((tmp_path / "c.json").read_text())
    assert [(o["side"], o["view"]) for o in data["only_base"]] == [("base", "renewal")]
    assert data["only_new"] == []
    assert "only in base: lbp · x1 · renewal" in (tmp_path / "c.md").read_text()
    assert data["verdict"] == "unmatched" and data["n_regressions"] == 0
    assert data["problems"] == ["1 row(s) on one side only: --allow-unmatched to accept them"]
    assert data["verdict_line"] == "facesec compare: UNMATCHED: " + data["problems"][0]
    assert _cli(base, new, "--allow-unmatched", "--json", tmp_path / "c.json") == EXIT_OK
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["verdict"] == "ok" and data["problems"] == [] and data["n_judged"] > 0
    assert data["verdict_line"].endswith("1 row(s) on one side only (accepted by --allow-unmatched)")


def test_only_baseline_rows_prove_nothing(fake, capsys):
    run = fake(views=("baseline",))
    assert _cli(run, run) == EXIT_UNMATCHED
    first = capsys.readouterr().out.splitlines()[0]
    assert first == (
        "**facesec compare: UNMATCHED: nothing gated was compared: the 1 matched row(s) (baseline) have no gated "
        "metric (baseline / preservation rows gate only with --performance)**"
    )
    assert _cli(run, run, "--allow-unmatched") == EXIT_UNMATCHED  # nothing one-sided to accept
    assert _cli(run, run, "--performance") == EXIT_OK


def test_other_samples_or_protocol_are_refused_unless_allowed(fake, capsys):
    base = fake()
    cases = [
        (fake(fingerprint="fp-other"), "--allow-different-data", "dataset samples differ"),
        (fake(sections="other"), "--allow-different-protocol", "protocol sections attacker, attacks, bootstrap"),
        # Runs from before protocol_sections: the whole protocol file is checked.
        (fake(sections=None, protocol_sha256="1" * 64), "--allow-different-protocol", "protocol files differ"),
    ]
    for new, flag, what in cases:
        assert _cli(base, new) == EXIT_BAD_INPUT, flag
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"error: runs not comparable: {what}"), err
        assert err.rstrip().endswith(f"pass {flag} if you mean it"), err
        assert _cli(base, new, flag, "--n-boot", "20") == EXIT_OK, flag
        out = capsys.readouterr().out
        assert f"- ⚠ {what}" in out, out
    # Both at once: one line naming both, and both flags.
    assert _cli(base, fake(fingerprint="fp-other", sections="other")) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "dataset samples differ" in err and "protocol sections" in err
    assert "pass --allow-different-data --allow-different-protocol if you mean it" in err


def test_protocol_sections_ignore_schemes_and_paths_but_not_the_measurement(tmp_path):
    protocol = tmp_path / "p.yaml"
    protocol.write_text(PIPELINE_PROTOCOL.replace("WINDOW", "8"))
    base = protocol_sections(load_protocol(protocol))
    assert set(base) == set(EVALUATION_SECTIONS)
    # A scheme's parameters are what a comparison is about; keys change protected samples only.
    for same in (["schemes.0.params.window=1"], ["keys.random=true"], ["name=other", "examples=0"]):
        assert protocol_sections(load_protocol(protocol, same)) == base, same
    changed = {
        "dataset.folds=4": "dataset",
        "metrics=[eer]": "metrics",
        "recognizers.0.params.radius=1": "recognizers",
        "bootstrap.seed=1": "bootstrap",
        "views=[strength, linkage]": "views",
    }
    for override, section in changed.items():
        other = protocol_sections(load_protocol(protocol, [override]))
        assert [k for k in base if base[k] != other[k]] == [section], override


def test_tolerance_is_honoured(fake, capsys):
    base, new = fake(), fake(strength=1.5, strength_seed=11)
    assert _cli(base, new) == EXIT_REGRESSION
    loose = ["--tol", "eer=0.5", "--tol", "fnmr_at_fmr=1", "--tol", "sar_at_fmr=1"]
    assert _cli(base, new, *loose) == EXIT_OK
    comparison = compare_runs(load_run(base), load_run(new), CompareSettings(tolerances={"eer": 0.5}))
    m = _metric(_rows(comparison)["strength:naive"], "eer")
    assert m.tolerance == 0.5 and m.verdict == "worse_within_tolerance"
    # A key-level tolerance wins over its family's.
    s = CompareSettings(tolerances={"sar_at_fmr": 0.2, "sar_at_fmr_0.0001": 0.3})
    assert s.tolerance("sar_at_fmr_0.001", "sar_at_fmr") == 0.2
    assert s.tolerance("sar_at_fmr_0.0001", "sar_at_fmr") == 0.3


def test_performance_gates_only_when_asked(fake):
    base, new = fake(), fake(baseline=1.5)
    off = _metric(_rows(compare_runs(load_run(base), load_run(new)))["baseline"], "eer")
    assert off.verdict == "worse_not_gated" and not off.gated
    on = compare_runs(load_run(base), load_run(new), CompareSettings(performance=True))
    assert _metric(_rows(on)["baseline"], "eer").verdict == "regression"


def test_a_missing_score_file_is_refused_when_the_run_has_others(fake, tmp_path, capsys):
    new = tmp_path / "new"
    shutil.copytree(fake(strength=1.5, strength_seed=11), new)
    (new / "scores" / "strength_naive.csv").unlink()
    assert _cli(fake(), new) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert (
        err
        == f"error: {new / 'scores' / 'strength_naive.csv'}: score file missing (the run's other score files are there)\n"
    )


def test_a_run_without_score_files_falls_back_to_the_normal_approximation(fake, tmp_path):
    new = tmp_path / "new"
    shutil.copytree(fake(strength=1.5, strength_seed=11), new)
    shutil.rmtree(new / "scores")
    comparison = compare_runs(load_run(fake()), load_run(new))
    row = _rows(comparison)["strength:naive"]
    assert row.method == "normal"
    m = _metric(row, "eer")
    assert m.method == "normal" and "no score files in this run" in m.note
    b, n = (json.loads((p / "results.json").read_text())["rows"][1]["metrics"] for p in (fake(), new))
    z = NormalDist().inv_cdf(0.975)
    half = z * math.hypot(*((x["eer_ci_high"] - x["eer_ci_low"]) / (2 * z) for x in (b, n)))
    assert (m.ci_low, m.ci_high) == pytest.approx((m.delta - half, m.delta + half))
    md = render_markdown(comparison)
    assert "normal approx. †" in md and "† normal approximation" in md
    assert "- ⚠ " in md and "use the normal approximation" in md and "unchecked: new run has no score files" in md


def test_edited_results_json_is_refused_not_gated_on_stored_numbers(fake, tmp_path, capsys):
    # The weakened run's results.json with the base's strength numbers pasted in.
    new = tmp_path / "new"
    shutil.copytree(fake(strength=1.5, strength_seed=11), new)
    results = json.loads((new / "results.json").read_text())
    base_rows = json.loads((fake() / "results.json").read_text())["rows"]
    results["rows"][1]["metrics"] = base_rows[1]["metrics"]
    (new / "results.json").write_text(json.dumps(results))
    for extra in ([], ["--n-boot", "0"]):
        assert _cli(fake(), new, *extra) == EXIT_BAD_INPUT, extra
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"error: {new / 'scores' / 'strength_naive.csv'}: eer "), err
        assert "does not reproduce" in err and str(new / "results.json") in err and "strength:naive" in err


def test_no_interval_at_all_is_never_a_regression(fake, tmp_path):
    new = tmp_path / "new"
    shutil.copytree(fake(strength=2.5, strength_seed=11), new)
    shutil.rmtree(new / "scores")
    results = json.loads((new / "results.json").read_text())
    for row in results["rows"]:
        row["metrics"] = {k: v for k, v in row["metrics"].items() if "_ci_" not in k}
    (new / "results.json").write_text(json.dumps(results))
    comparison = compare_runs(load_run(fake()), load_run(new))
    m = _metric(_rows(comparison)["strength:naive"], "eer")
    assert m.delta < -0.1 and (m.ci_low, m.ci_high, m.method, m.verdict) == (None, None, "none", "no_ci")
    assert not comparison.regressions


def test_bad_input_is_exit_2_with_one_line(fake, tmp_path, capsys):
    missing = tmp_path / "nowhere" / "results.json"
    assert _cli(fake(), missing) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(missing) in err
    assert _cli(tmp_path, fake()) == EXIT_BAD_INPUT  # a folder without results.json
    assert str(tmp_path) in capsys.readouterr().err
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert _cli(fake(), broken) == EXIT_BAD_INPUT
    assert str(broken) in capsys.readouterr().err
    for bad in (["--tol", "nonsense=1"], ["--tol", "eer=-1"], ["--map-scheme", "nope=x1"], ["--n-boot", "-1"]):
        assert _cli(fake(), fake(), *bad) == EXIT_BAD_INPUT, bad
        assert capsys.readouterr().err.count("\n") == 1, bad


def test_markdown_has_the_verdict_line_and_progress_is_logged(fake, caplog):
    with caplog.at_level(logging.INFO, logger="facesec.progress"):
        comparison = compare_runs(load_run(fake()), load_run(fake(strength=1.5, strength_seed=11)))
    md = render_markdown(comparison)
    first = md.splitlines()[0]
    assert first == f"**{comparison.verdict_line}**"
    assert first.startswith("**facesec compare: REGRESSION:") and "security regression(s)" in first
    assert len([r for r in caplog.records if r.name == "facesec.progress"]) == len(comparison.rows)
    ok = render_markdown(compare_runs(load_run(fake()), load_run(fake())))
    assert ok.splitlines()[0].startswith("**facesec compare: OK: no security regression")


def _stopped_on_budget(run: Path, dest: Path, scheme: str | None = "x1") -> Path:
    """A copy of ``run`` whose results say the attack of its rows was a learned one, stopped on its budget."""
    shutil.copytree(run, dest)
    results = json.loads((dest / "results.json").read_text())
    results["trained_models"] = [{"attack": "naive", "scheme": scheme, "stopped": "budget", "budget": "minutes"}]
    (dest / "results.json").write_text(json.dumps(results))
    return dest


@pytest.mark.parametrize("scheme", ["x1", None])  # trained under the setting attacked, or on listed settings
def test_an_attack_stopped_on_its_budget_in_the_new_run_proves_nothing(fake, tmp_path, scheme):
    """An under-trained attack looks weaker than it is: no regression shown is not an OK."""
    base = fake()
    new = _stopped_on_budget(base, tmp_path / "new", scheme)
    assert _cli(base, new, "--json", tmp_path / "c.json") == EXIT_UNMATCHED
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["verdict"] == "unmatched" and data["n_regressions"] == 0
    (problem,) = data["problems"]
    assert problem.startswith(
        "2 row(s) rest on a learned attack that stopped on its budget (or has no trained model recorded) in the new "
        "run (naive on x1)"
    )
    flagged = {r["view"]: r["not_converged"] for r in data["rows"]}
    assert flagged == {"baseline": [], "strength:naive": ["new"], "linkage:naive": ["new"], "renewal": []}
    assert _cli(base, new, "--allow-not-converged") == EXIT_OK
    # Stopped on its budget in the base run only: the new, converged attack is at full strength, so an OK holds.
    assert _cli(new, base, "--json", tmp_path / "c.json") == EXIT_OK
    data = json.loads((tmp_path / "c.json").read_text())
    assert {r["view"]: r["not_converged"] for r in data["rows"]}["strength:naive"] == ["base"]
    assert any("stopped on its budget in the base run" in n for r in data["rows"] for n in r["notes"])


def test_a_regression_found_by_an_attack_stopped_on_its_budget_still_counts(fake, tmp_path):
    base = fake()
    new = _stopped_on_budget(fake(strength=2.5), tmp_path / "new")
    assert _cli(base, new) == EXIT_REGRESSION


def test_a_learned_attacks_row_without_any_trained_model_recorded_counts_as_not_converged():
    """Deleting ``trained_models`` from results.json must not make an under-trained attack pass as converged."""
    from benchmark.engine.compare import _unconverged

    row = {"scheme": "lw4o6", "attack": "inpaint(conceal-codeblock)"}
    converged = {"attack": "inpaint(conceal-codeblock)", "scheme": "lw4o6", "stopped": "converged"}
    assert _unconverged({"rows": [row]})(row) == "has no trained model recorded"  # type: ignore[typeddict-item]
    assert _unconverged({"rows": [row], "trained_models": [converged]})(row) == ""  # type: ignore[typeddict-item]
    listed = {**converged, "scheme": None}  # one model trained on listed settings serves every scheme
    assert _unconverged({"rows": [row], "trained_models": [listed]})(row) == ""  # type: ignore[typeddict-item]
    naive = {"scheme": "lw4o6", "attack": "naive"}  # not a learned attack: nothing to record
    assert _unconverged({"rows": [naive]})(naive) == ""  # type: ignore[typeddict-item]
