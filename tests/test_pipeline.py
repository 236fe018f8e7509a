"""End-to-end runs on small synthetic data: caching, results and score files."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from benchmark.core.cache import ENTRY_SUFFIX, Cache
from benchmark.engine.pipeline import RunOptions, run_protocol
from benchmark.engine.protocol import ProtocolError, load_protocol
from benchmark.engine.scores import read_scores

PROTOCOL = """\
name: small
dataset:
  name: synthetic
  params: {n_subjects: 8, n_images: 4, seed: 1}
  folds: 2
  seed: 0
recognizers:
  - {name: lbp, params: {radius: 2}}
  - {name: mblbp}
metrics: [eer, fnmr_at_fmr, d_prime]
"""


@pytest.fixture
def protocol(tmp_path: Path) -> Path:
    p = tmp_path / "small.yaml"
    p.write_text(PROTOCOL)
    return p


def _run(protocol: Path, out: Path, cache: Path, overrides=()):
    lp = load_protocol(protocol, list(overrides))
    return run_protocol(lp, RunOptions(out=out, cache=Cache(cache), workers=1))


def test_run_writes_results_and_scores(protocol, tmp_path):
    res = _run(protocol, tmp_path / "out", tmp_path / "cache")
    results = json.loads(res.results_path.read_text())
    assert [r["recognizer"] for r in results["rows"]] == ["lbp", "mblbp"]
    for row in results["rows"]:
        assert set(row) >= {"recognizer", "scheme", "scheme_params", "attack", "view", "metrics"}
        assert row["recognizer_runtime_params"] == []  # lbp and mblbp have no run-time settings
        for key in ("eer", "fnmr_at_fmr_0.01", "fnmr_at_fmr_0.001", "fnmr_at_fmr_0.0001", "d_prime"):
            assert isinstance(row["metrics"][key], (int, float)), key
        scores = read_scores(res.results_path.parent / row["score_file"])
        assert scores.recognizer == row["recognizer"] and scores.view == "baseline"
        assert scores.mated.sum() == row["metrics"]["n_genuine"]
        assert (~scores.mated).sum() == row["metrics"]["n_impostor"]
    assert results["dataset"]["demo"] is True
    assert results["dataset"]["pre_aligned"] is True  # synthetic faces come aligned: no detection ran
    assert results["provenance"]["protocol_sha256"]


def test_second_run_hits_cache_with_identical_metrics(protocol, tmp_path):
    first = _run(protocol, tmp_path / "a", tmp_path / "cache")
    second = _run(protocol, tmp_path / "b", tmp_path / "cache")
    assert first.engine.summary()["hits"] == 0
    assert second.engine.summary()["misses"] == 0
    assert [r["metrics"] for r in first.results["rows"]] == [r["metrics"] for r in second.results["rows"]]
    stages = first.results["provenance"]["cache"]["stages"]  # what each stage cost, for users and perf
    assert stages["load"] == {"calls": 1, "hits": 0, "items": 32, "seconds": stages["load"]["seconds"]}
    assert stages["embed"]["items"] >= 32 and all(v["seconds"] >= 0 for v in stages.values())
    assert second.results["provenance"]["cache"]["stages"]["embed"]["hits"] == stages["embed"]["calls"]


def test_changing_one_recognizer_param_recomputes_only_it(protocol, tmp_path):
    _run(protocol, tmp_path / "a", tmp_path / "cache")
    changed = _run(protocol, tmp_path / "b", tmp_path / "cache", ["recognizers.0.params.radius=1"])
    recomputed = {(r.stage, r.label) for r in changed.engine.records if not r.hit}
    reused = {(r.stage, r.label) for r in changed.engine.records if r.hit}
    # The metrics of lbp's rows are a stage too: recomputed from its new scores, mblbp's reused.
    assert recomputed == {("embed", "lbp"), ("score", "lbp"), ("metrics", "lbp|none|baseline")}
    assert {("load", "synthetic"), ("embed", "mblbp"), ("score", "mblbp"), ("metrics", "mblbp|none|baseline")} <= reused


def test_code_change_invalidates(protocol, tmp_path, monkeypatch):
    import benchmark.core.codeversion as cv

    _run(protocol, tmp_path / "a", tmp_path / "cache")
    digest = cv._file_digest
    # As if benchmark/recognizers/lbp.py had been edited (test_codeversion.py edits real copies).
    monkeypatch.setattr(cv, "_file_digest", lambda path: "edited" if path.name == "lbp.py" else digest(path))
    again = _run(protocol, tmp_path / "b", tmp_path / "cache")
    recomputed = {(r.stage, r.label) for r in again.engine.records if not r.hit}
    # Both recognizers live in lbp.py; the generated faces do not depend on it.
    assert recomputed == {("embed", "lbp"), ("score", "lbp"), ("embed", "mblbp"), ("score", "mblbp")}


def test_scores_file_round_trips_scores(protocol, tmp_path):
    res = _run(protocol, tmp_path / "out", tmp_path / "cache")
    row = res.results["rows"][0]
    scores = read_scores(res.results_path.parent / row["score_file"])
    from benchmark.metrics.verification import eer

    assert eer(scores.genuine(), scores.impostor()) == pytest.approx(row["metrics"]["eer"], abs=0)


def test_no_mated_pair_is_a_located_error(tmp_path):
    p = tmp_path / "one.yaml"
    p.write_text(PROTOCOL.replace("n_images: 4", "n_images: 1"))
    with pytest.raises(ProtocolError, match=r"one\.yaml:\d+: dataset: no mated pair"):
        _run(p, tmp_path / "out", tmp_path / "cache")


def test_disabled_cache_stores_nothing(protocol, tmp_path):
    lp = load_protocol(protocol)
    run_protocol(lp, RunOptions(out=tmp_path / "o", cache=Cache(tmp_path / "c", enabled=False)))
    assert not (tmp_path / "c").exists()


def test_the_pipeline_writes_no_report_the_cli_does(protocol, tmp_path, capsys):
    from benchmark.cli.main import main

    res = _run(protocol, tmp_path / "out", tmp_path / "cache")
    assert not (tmp_path / "out" / "report.html").exists()
    assert np.isfinite(res.results["rows"][0]["metrics"]["eer"])
    assert (
        main(
            ["run", str(protocol), "--out", str(tmp_path / "cli"), "--cache", str(tmp_path / "cache"), "--workers", "1"]
        )
        == 0
    )
    html = (tmp_path / "cli" / "report.html").read_text()
    assert "lbp" in html and "<html" in html.lower()


SCHEME_PROTOCOL = (
    PROTOCOL.replace("  - {name: mblbp}\n", "")
    + """\
schemes:
  - {name: noise, params: {sigma: 15.0}}
attacks: [naive]
keys: {env: FACESEC_TEST_KEY}
bootstrap: {n_boot: 20, seed: 0}
certify:
  - {metric: d_sys, view: "linkage:*", max: 0.1}
  - {metric: eer, view: baseline, max: 0.9}
"""
)
SCHEME_PROTOCOL = SCHEME_PROTOCOL.replace(
    "metrics: [eer, fnmr_at_fmr, d_prime]",
    "metrics: [eer, fnmr_at_fmr, d_prime, {name: unlinkability, params: {n_boot: 20}}]",
)
KEY_HEX = "0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0"


@pytest.fixture
def scheme_protocol(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FACESEC_TEST_KEY", KEY_HEX)
    p = tmp_path / "scheme.yaml"
    p.write_text(SCHEME_PROTOCOL)
    return p


def test_every_view_and_metric(scheme_protocol, tmp_path):
    res = _run(scheme_protocol, tmp_path / "out", tmp_path / "cache")
    rows = {r["view"]: r for r in res.results["rows"]}
    assert set(rows) == {"baseline", "preservation", "renewal", "strength:naive", "linkage:naive"}
    for view, row in rows.items():
        m = row["metrics"]
        for key in ("eer", "eer_ci_low", "eer_ci_high", "d_prime"):
            assert key in m, (view, key)
        # Linkability is the linkage view's question, never the renewal view's.
        link = ("d_sys", "d_sys_null", "d_sys_ci_low", "d_sys_ci_high", "omega")
        assert all((k in m) == (view != "renewal") for k in link), view
        if view != "baseline":
            assert "delta_eer" in m and m["key_space_bits"] == 128
    for view in ("strength:naive", "renewal"):
        s = rows[view]["metrics"]
        for key in ("sar_at_fmr_0.001", "sar_at_fmr_0.0001"):
            assert isinstance(s[key], float) and s[f"{key}_ci_low"] <= s[key] <= s[f"{key}_ci_high"], (view, key)
        assert s["n_sar_impostor"] == s["n_impostor"]
    s = rows["strength:naive"]["metrics"]
    for key in ("psnr", "ssim"):
        assert isinstance(s[key], float) and s[f"{key}_ci_low"] <= s[key] <= s[f"{key}_ci_high"], key
    assert rows["strength:naive"]["attacker_knowledge"]
    assert [c["verdict"] for c in res.results["certification"]][1] == "PASS"
    assert res.results["provenance"]["key"]["key_id"] != "ephemeral"
    # The key never reaches results, scores or the report.
    for path in res.results_path.parent.rglob("*"):
        if path.is_file():
            assert KEY_HEX not in path.read_text(errors="ignore"), path


def test_same_key_reproduces_protected_views(scheme_protocol, tmp_path):
    a = _run(scheme_protocol, tmp_path / "a", tmp_path / "cache")
    b = _run(scheme_protocol, tmp_path / "b", tmp_path / "cache2")
    assert [r["metrics"] for r in a.results["rows"]] == [r["metrics"] for r in b.results["rows"]]


def _without_keys(text: str) -> str:
    return text.replace("keys: {env: FACESEC_TEST_KEY}\n", "")


def test_evaluation_key_by_default_reproduces_from_the_cache(tmp_path):
    p = tmp_path / "nokey.yaml"
    p.write_text(_without_keys(SCHEME_PROTOCOL))
    first = _run(p, tmp_path / "a", tmp_path / "cache")
    second = _run(p, tmp_path / "b", tmp_path / "cache")
    assert second.engine.summary()["misses"] == 0 and first.engine.summary()["misses"] > 0
    assert [r["metrics"] for r in first.results["rows"]] == [r["metrics"] for r in second.results["rows"]]
    for name in (tmp_path / "a" / "scores").iterdir():
        assert name.read_bytes() == (tmp_path / "b" / "scores" / name.name).read_bytes()
    key = first.results["provenance"]["key"]
    assert key["source"] == "seed" and key["seed"] == 0 and key["key_id"] != "ephemeral"
    # Another dataset seed is another evaluation key.
    other = _run(p, tmp_path / "c", tmp_path / "cache", ["dataset.seed=1"])
    assert other.results["provenance"]["key"]["key_id"] != key["key_id"]


def test_random_key_is_explicit_and_never_reused(tmp_path):
    p = tmp_path / "random.yaml"
    p.write_text(SCHEME_PROTOCOL.replace("keys: {env: FACESEC_TEST_KEY}", "keys: {random: true}"))
    first = _run(p, tmp_path / "a", tmp_path / "cache")
    second = _run(p, tmp_path / "b", tmp_path / "cache")
    assert first.results["provenance"]["key"] == {"key_id": "ephemeral", "source": "random"}
    protect = [r for r in second.engine.records if r.stage == "protect"]
    assert protect and not any(r.hit for r in protect)


RENEWAL_PROTOCOL = """\
name: renewal
dataset:
  name: synthetic
  params: {n_subjects: 16, n_images: 4, seed: 2}
  folds: 2
  seed: 0
recognizers: [lbp]
schemes: [SCHEME]
attacks: [naive]
views: [renewal, linkage]
metrics: [eer, fnmr_at_fmr, d_prime, {name: unlinkability, params: {n_boot: 50}}]
bootstrap: {n_boot: 50, seed: 0}
"""


def _renewal(tmp_path: Path, scheme: str) -> tuple[dict, dict, dict]:
    p = tmp_path / "renewal.yaml"
    p.write_text(RENEWAL_PROTOCOL.replace("SCHEME", scheme))
    res = _run(p, tmp_path / scheme[:20], tmp_path / "cache")
    rows = {r["view"]: r["metrics"] for r in res.results["rows"]}
    # A cancelable scheme's examples show its protected faces; naive would only repeat them.
    (examples,) = res.results["examples"]
    assert examples["columns"] == ["original", "protected"]
    return rows["baseline"], rows["renewal"], rows["linkage:naive"]


def test_renewal_of_the_identity_scheme_fails(tmp_path):
    # sigma 0: every key gives the plain face, so a revoked template still works and links.
    baseline, renewal, linkage = _renewal(tmp_path, "{name: noise, params: {sigma: 0.0}}")
    assert renewal["sar_at_fmr_0.001"] >= 1 - baseline["fnmr_at_fmr_0.001"]
    assert renewal["sar_at_fmr_0.001_ci_low"] > 50 * 0.001  # far above the FMR the threshold allows
    assert "d_sys" not in renewal
    assert linkage["d_sys_ci_low"] > linkage["d_sys_null_high"]


def test_renewal_of_an_unrelated_transform_per_key_succeeds(tmp_path):
    # Pixel-level re-mapping: templates under two keys share nothing an LBP histogram sees.
    baseline, renewal, linkage = _renewal(tmp_path, "{name: remap, params: {block: 1}}")
    assert baseline["eer"] < 0.3
    assert renewal["sar_at_fmr_0.001"] <= 0.05 and renewal["sar_at_fmr_0.001_ci_high"] <= 0.1
    assert "d_sys" not in renewal
    assert linkage["d_sys"] < 0.5


def test_missing_key_env_is_located_error(tmp_path, monkeypatch):
    monkeypatch.delenv("FACESEC_TEST_KEY", raising=False)
    p = tmp_path / "k.yaml"
    p.write_text(SCHEME_PROTOCOL)
    with pytest.raises(ProtocolError, match=r"k\.yaml:\d+: keys\.env: .*FACESEC_TEST_KEY"):
        _run(p, tmp_path / "out", tmp_path / "cache")


def test_strict_exit_code(scheme_protocol, tmp_path, capsys):
    from benchmark.cli.main import EXIT_CERT_FAILED, main

    args = [
        "run",
        str(scheme_protocol),
        "--out",
        str(tmp_path / "o"),
        "--cache",
        str(tmp_path / "c"),
        "--workers",
        "1",
        "--no-report",
    ]
    assert main(args) == 0
    assert main(args + ["--strict"]) == EXIT_CERT_FAILED


def test_strict_summary_names_each_failing_criterion_with_a_few_digits(scheme_protocol, tmp_path, capsys):
    from benchmark.cli.main import EXIT_CERT_FAILED, main

    out_dir, cache = tmp_path / "o", tmp_path / "c"
    args = ["run", str(scheme_protocol), "--out", str(out_dir), "--cache", str(cache), "--workers", "1", "--no-report"]
    assert main([*args, "--strict"]) == EXIT_CERT_FAILED
    out = capsys.readouterr().out
    criteria = json.loads((out_dir / "results.json").read_text())["certification"]
    failed = [c for c in criteria if c["verdict"] != "PASS"]
    assert failed, "the protocol must hold a failing criterion"
    assert f"--strict: exit code 3: {len(failed)} of {len(criteria)} criteria did not PASS" in out
    for c in failed:
        bound = f"<= {c['max']:g}" if "max" in c else f">= {c['min']:g}"  # the bounds here are no rates
        assert re.search(rf"^  {re.escape(c['metric'])} \[{re.escape(c['view'])}\] {bound}: judged value \S+: "
                         rf"{c['verdict']}$", out, re.M), out  # fmt: skip
    # No judged value with more than 3 significant digits (0.2861666666666667 was printed before).
    for value in re.findall(r"judged value ([0-9.e+-]+)%?", out):
        assert len(value.replace(".", "").lstrip("0")) <= 3, value
    assert f"cache:   {cache} (" in out  # where the cache is and its size


def test_each_stage_kind_announces_its_start_and_each_computed_stage_a_line(protocol, tmp_path, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="facesec.progress"):
        res = _run(protocol, tmp_path / "out", tmp_path / "cache")
        cold = [r.getMessage() for r in caplog.records if r.name == "facesec.progress"]
        caplog.clear()
        _run(protocol, tmp_path / "out", tmp_path / "cache")
        warm = [r.getMessage() for r in caplog.records if r.name == "facesec.progress"]
    stages = res.engine.summary()["stages"]
    begins = [m for m in cold if m.startswith("stage ")]
    assert begins == [f"stage {s} begins" for s in stages]  # in order of first call, once each
    computed = [m for m in cold if re.match(rf"({'|'.join(stages)}) .*: .*\d s \(\d+ computed\)$", m)]
    assert len(computed) == res.engine.summary()["misses"] and computed[-1].endswith(f"({len(computed)} computed)")
    assert [m for m in warm if "computed" in m] == [] and [m for m in warm if m.startswith("stage ")] == begins


def test_view_selection(tmp_path, monkeypatch):
    monkeypatch.setenv("FACESEC_TEST_KEY", KEY_HEX)
    p = tmp_path / "v.yaml"
    p.write_text(SCHEME_PROTOCOL + "views: [strength]\n")
    res = _run(p, tmp_path / "out", tmp_path / "cache")
    assert [r["view"] for r in res.results["rows"]] == ["baseline", "strength:naive"]


def test_grid_scheme_is_recorded_as_sweep(tmp_path, monkeypatch):
    monkeypatch.setenv("FACESEC_TEST_KEY", KEY_HEX)
    p = tmp_path / "g.yaml"
    p.write_text(
        SCHEME_PROTOCOL.replace("{name: noise, params: {sigma: 15.0}}", "{name: noise, grid: {sigma: [5.0, 30.0]}}")
        + "views: [strength]\n"
    )
    res = _run(p, tmp_path / "out", tmp_path / "cache")
    [sweep] = res.results["sweeps"]
    assert sweep["param"] == "sigma" and sweep["values"] == [5.0, 30.0]
    assert sweep["labels"] == ["noise[sigma=5.0]", "noise[sigma=30.0]"]
    assert {r["scheme"] for r in res.results["rows"]} == {"none", *sweep["labels"]}


def test_attacks_are_paired_with_naive_per_image(tmp_path, monkeypatch):
    monkeypatch.setenv("FACESEC_TEST_KEY", KEY_HEX)
    p = tmp_path / "c.yaml"
    p.write_text(
        SCHEME_PROTOCOL.replace(
            "{name: noise, params: {sigma: 15.0}}", "{name: j2k, params: {window: 4, offset: 6}}"
        ).replace("attacks: [naive]", "attacks: [naive, conceal-codeblock]")
        + "views: [strength]\n"
    )
    res = _run(p, tmp_path / "out", tmp_path / "cache")
    rows = {r["view"]: r["metrics"] for r in res.results["rows"]}
    assert not any(k.endswith("_vs_naive") for k in rows["strength:naive"])
    m = rows["strength:conceal-codeblock"]
    assert m["n_better_vs_naive"] + m["n_worse_vs_naive"] <= m["n_compared_vs_naive"]
    assert m["n_compared_vs_naive"] == 32 - m["n_quality_failed"]
    assert m["better_rate_vs_naive"] == m["n_better_vs_naive"] / m["n_compared_vs_naive"]
    # The mean gain is the difference of the two mean PSNRs when no image is identical.
    assert m["psnr_gain_vs_naive"] == pytest.approx(m["psnr"] - rows["strength:naive"]["psnr"])
    # Per-sample image quality is written next to the scores, one file per attacked view.
    from benchmark.engine.scores import read_quality

    files = sorted(p.name for p in (tmp_path / "out" / "quality").iterdir())
    assert files == ["lw4o6__conceal-codeblock__strength.csv", "lw4o6__naive__strength.csv"]
    q = read_quality(tmp_path / "out" / "quality" / files[0])
    assert len(q["sample"]) == 32 and np.nanmean(q["psnr"]) == pytest.approx(m["psnr"])


# --------------------------------------------------------------------------- crash safety and concurrency

CRASH_PROTOCOL = """\
name: crash
dataset:
  name: synthetic
  params: {n_subjects: 10, n_images: 4, seed: 2}
  folds: 2
recognizers: [{name: lbp, params: {radius: 1}}]
schemes: [{name: j2k, params: {window: 4, offset: 6}}, {name: j2k, params: {window: 2, offset: 0}}]
attacks: [naive, conceal-codeblock]
views: [strength]
examples: 0
bootstrap: {n_boot: 20}
"""
REPO = Path(__file__).resolve().parents[1]


def _cli_run(protocol: Path, out: Path, cache: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(REPO / "bench.py"), "run", str(protocol), "--out", str(out), "--cache", str(cache),
         "--no-report", "--workers", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _outputs(out: Path) -> tuple[dict, dict[str, bytes]]:
    results = json.loads((out / "results.json").read_text())
    results.pop("provenance")
    return results, {p.name: p.read_bytes() for p in sorted((out / "scores").iterdir())}


def _entries(cache: Path) -> int:
    return len(list(cache.rglob(f"*{ENTRY_SUFFIX}")))


@pytest.fixture(scope="module")
def crash_reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("crash")
    protocol = tmp / "crash.yaml"
    protocol.write_text(CRASH_PROTOCOL)
    proc = _cli_run(protocol, tmp / "ref", tmp / "ref-cache")
    assert proc.wait(timeout=600) == 0, proc.stderr.read() if proc.stderr else ""
    return protocol, _outputs(tmp / "ref"), _entries(tmp / "ref-cache")


@pytest.mark.parametrize("kill_after", [1, 5])
def test_kill_9_then_rerun_completes_reuses_finished_units_and_matches(crash_reference, tmp_path, kill_after):
    protocol, reference, n_entries = crash_reference
    assert n_entries > 5
    cache = tmp_path / "cache"
    proc = _cli_run(protocol, tmp_path / "out", cache)
    while _entries(cache) < kill_after and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = _entries(cache)
    assert 0 < finished < n_entries  # killed mid-run, some units done
    again = _cli_run(protocol, tmp_path / "out", cache)
    assert again.wait(timeout=600) == 0, again.stderr.read() if again.stderr else ""
    assert _outputs(tmp_path / "out") == reference
    assert _entries(cache) == n_entries  # the finished units were reused, not written twice under new keys


def test_two_runs_at_once_on_one_cache_both_succeed_identically(crash_reference, tmp_path):
    protocol, reference, _ = crash_reference
    runs = [_cli_run(protocol, tmp_path / f"out{i}", tmp_path / "cache") for i in range(2)]
    for proc in runs:
        assert proc.wait(timeout=600) == 0, proc.stderr.read() if proc.stderr else ""
    assert _outputs(tmp_path / "out0") == _outputs(tmp_path / "out1") == reference


def test_image_sets_in_the_cache_are_held_by_reference(tmp_path):
    """A sweep keeps the keys of its outputs, not every setting's faces: they are read back on use."""
    from benchmark.engine.stages import Engine, ImageSet

    faces = np.arange(4 * 112 * 112 * 3, dtype=np.uint64).astype(np.uint8).reshape(4, 112, 112, 3)
    arrays = {"images": faces, "failed": np.array([False, True, False, False]), "stat_bytes": np.arange(4)}
    engine = Engine(Cache(tmp_path / "c"))
    engine.cache.save("attack", "k1", arrays, {})
    stored = ImageSet.stored(engine, "attack", "s@A:naive", "k1", arrays)
    assert "stored" in repr(stored) and np.array_equal(stored.images, faces)
    assert stored.failed.tolist() == [False, True, False, False] and stored.counters["bytes"].tolist() == [0, 1, 2, 3]
    held = ImageSet.stored(Engine(Cache(tmp_path / "off", enabled=False)), "attack", "x", "k1", arrays)
    assert "held" in repr(held) and held.images is faces
    assert stored.content() == held.content()
    engine.cache.clear()
    with pytest.raises(RuntimeError, match="vanished during the run"):
        stored.images  # noqa: B018 - the read is the test


TEST_FOLDS_PROTOCOL = """\
name: test-folds
dataset:
  name: synthetic
  params: {n_subjects: 12, n_images: 4, seed: 2}
  folds: 4
  seed: 0
  max_nonmated: 100000
recognizers:
  - {name: lbp, params: {radius: 2}}
  - {name: fv-sift, params: {step: 8, n_components: 8, pca_dim: 16}}
keys: {env: FACESEC_TEST_KEY}
schemes:
  - {name: j2k, params: {progression: layer, window: 4, offset: 6}}
  - warp_16_6
attacks:
  - naive
  - {name: conceal-codeblock, schemes: [lw4o6]}
  - {name: invert, schemes: [warp_16_6]}
  - {name: inpaint, params: {depth: 2, width: 4, max_epochs: 1}, schemes: [lw4o6]}
attacker: {source: folds, rotate: true, keys_per_face: 1, validation: 0.25, seed: 0}
views: [strength, linkage]
metrics: [eer, d_prime]
bootstrap: {n_boot: 20, seed: 0}
"""


def _scores_by_pair(res) -> dict[tuple, dict[tuple[str, str], float]]:
    out = {}
    for row in res.results["rows"]:
        s = read_scores(res.results_path.parent / row["score_file"])
        key = (row["recognizer"], row["scheme"], row["view"])
        out[key] = {(p, r): float(v) for p, r, v in zip(s.probe, s.reference, s.score)}
    return out


def test_only_the_test_folds_samples_are_protected_attacked_and_embedded(tmp_path, monkeypatch):
    """With ``test_folds`` a subset, the other folds only train: each score equals the whole dataset's.

    Learned rows too: with ``rotate`` the model of fold 1 trains on folds 0, 2 and 3 in both runs.
    """
    monkeypatch.setenv("FACESEC_TEST_KEY", KEY_HEX)
    p = tmp_path / "folds.yaml"
    p.write_text(TEST_FOLDS_PROTOCOL)
    every = _run(p, tmp_path / "every", tmp_path / "cache-every")
    one = _run(p, tmp_path / "one", tmp_path / "cache-one", ["dataset.test_folds=[1, 3]"])

    # Work per sample: folds 1 and 3's 24 faces (6 of the 12 subjects), not the dataset's 48;
    # fv-sift's fold models and the attacker (one model per test fold) still train on the
    # other folds' originals, and each model attacks its own fold's victims.
    def items(res, stage: str) -> set[int]:  # the victims' side: the attacker's own faces aside
        return {r.items for r in res.engine.records if r.stage == stage and not r.label.startswith("attacker:")}

    assert items(one, "protect") == items(one, "attack") == items(one, "embed") == {24}
    assert items(every, "protect") == items(every, "attack") == items(every, "embed") == {48}
    assert [r.label for r in one.engine.records if r.stage == "fit"] == ["fv-sift@fold1", "fv-sift@fold3"]
    assert [m["fold"] for m in one.results["trained_models"]] == [1, 3]
    assert one.results["dataset"]["n_usable"] == 48
    a, b = _scores_by_pair(every), _scores_by_pair(one)
    assert set(b) == set(a)
    for key, scores in b.items():
        assert scores, key
        assert scores.keys() <= a[key].keys(), key
        got = np.array([scores[k] for k in scores])
        want = np.array([a[key][k] for k in scores])
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9, err_msg=str(key))
