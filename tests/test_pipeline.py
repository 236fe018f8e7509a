"""End-to-end runs on small synthetic data: caching, results and score files."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from benchmark.cache import Cache
from benchmark.pipeline import RunOptions, run_protocol
from benchmark.protocol import ProtocolError, load_protocol
from benchmark.scores import read_scores

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


def _run(protocol: Path, out: Path, cache: Path, overrides=(), report=False):
    lp = load_protocol(protocol, list(overrides))
    return run_protocol(lp, RunOptions(out=out, cache=Cache(cache), workers=1, report=report))


def test_run_writes_results_and_scores(protocol, tmp_path):
    res = _run(protocol, tmp_path / "out", tmp_path / "cache")
    results = json.loads(res.results_path.read_text())
    assert [r["recognizer"] for r in results["rows"]] == ["lbp", "mblbp"]
    for row in results["rows"]:
        assert set(row) >= {"recognizer", "scheme", "scheme_params", "attack", "view", "metrics"}
        for key in ("eer", "fnmr_at_fmr_0.01", "fnmr_at_fmr_0.001", "fnmr_at_fmr_0.0001", "d_prime"):
            assert isinstance(row["metrics"][key], (int, float)), key
        scores = read_scores(res.results_path.parent / row["score_file"])
        assert scores.recognizer == row["recognizer"] and scores.view == "baseline"
        assert scores.mated.sum() == row["metrics"]["n_genuine"]
        assert (~scores.mated).sum() == row["metrics"]["n_impostor"]
    assert results["dataset"]["demo"] is True
    assert results["provenance"]["protocol_sha256"]


def test_second_run_hits_cache_with_identical_metrics(protocol, tmp_path):
    first = _run(protocol, tmp_path / "a", tmp_path / "cache")
    second = _run(protocol, tmp_path / "b", tmp_path / "cache")
    assert first.engine.summary()["hits"] == 0
    assert second.engine.summary()["misses"] == 0
    assert [r["metrics"] for r in first.results["rows"]] == [r["metrics"] for r in second.results["rows"]]


def test_changing_one_recognizer_param_recomputes_only_it(protocol, tmp_path):
    _run(protocol, tmp_path / "a", tmp_path / "cache")
    changed = _run(protocol, tmp_path / "b", tmp_path / "cache", ["recognizers.0.params.radius=1"])
    recomputed = {(r.stage, r.label) for r in changed.engine.records if not r.hit}
    reused = {(r.stage, r.label) for r in changed.engine.records if r.hit}
    assert recomputed == {("embed", "lbp"), ("score", "lbp")}
    assert {("load", "synthetic"), ("embed", "mblbp"), ("score", "mblbp")} <= reused


def test_code_change_invalidates(protocol, tmp_path, monkeypatch):
    _run(protocol, tmp_path / "a", tmp_path / "cache")
    from benchmark.recognizers.lbp import LBPRecognizer

    monkeypatch.setattr(type(LBPRecognizer()), "version", classmethod(lambda cls: "edited"))
    again = _run(protocol, tmp_path / "b", tmp_path / "cache")
    recomputed = {(r.stage, r.label) for r in again.engine.records if not r.hit}
    assert ("embed", "lbp") in recomputed


def test_scores_file_round_trips_scores(protocol, tmp_path):
    res = _run(protocol, tmp_path / "out", tmp_path / "cache")
    row = res.results["rows"][0]
    scores = read_scores(res.results_path.parent / row["score_file"])
    from benchmark.metrics import eer

    assert eer(scores.genuine(), scores.impostor()) == pytest.approx(row["metrics"]["eer"], abs=0)


def test_no_mated_pair_is_a_located_error(tmp_path):
    p = tmp_path / "one.yaml"
    p.write_text(PROTOCOL.replace("n_images: 4", "n_images: 1"))
    with pytest.raises(ProtocolError, match=r"one\.yaml:\d+: dataset: no mated pair"):
        _run(p, tmp_path / "out", tmp_path / "cache")


def test_disabled_cache_stores_nothing(protocol, tmp_path):
    lp = load_protocol(protocol)
    run_protocol(lp, RunOptions(out=tmp_path / "o", cache=Cache(tmp_path / "c", enabled=False), report=False))
    assert not (tmp_path / "c").exists()


def test_report_written(protocol, tmp_path):
    res = _run(protocol, tmp_path / "out", tmp_path / "cache", report=True)
    html = res.report_path.read_text()
    assert "lbp" in html and "<html" in html.lower()
    assert np.isfinite(res.results["rows"][0]["metrics"]["eer"])
