"""Smoke tests of benchmark.cli.perf (tiny sizes; no timing assertions)."""

from __future__ import annotations

import pytest

from benchmark.cli import perf
from benchmark.recognizers.onnx import SFaceRecognizer


def test_metrics_vs_pyeer_record():
    record = perf.metrics_vs_pyeer(n_scores=2000, repeats=1)
    assert set(record) == {"name", "n_scores", "ours_s", "pyeer_s", "speedup", "eer_agrees"}
    assert record["name"] == "metrics_vs_pyeer"
    assert record["n_scores"] == 2000
    assert record["ours_s"] > 0 and record["pyeer_s"] > 0
    assert record["speedup"] == pytest.approx(record["pyeer_s"] / record["ours_s"])
    assert record["eer_agrees"] is True


def test_benchmark_table_lists_metrics_vs_pyeer():
    assert "metrics_vs_pyeer" in perf.names()


def test_run_unknown_name():
    # The CLI reports KeyErrors as bad input.
    with pytest.raises(KeyError) as info:
        perf.run(["metrics_vs_pyeer", "nope"])
    assert isinstance(info.value, perf.UnknownBenchmarkError)
    assert str(info.value).startswith("unknown benchmark(s) 'nope' (allowed: ")
    assert "metrics_vs_pyeer" in str(info.value)


def test_duplicate_benchmark_name_rejected():
    with pytest.raises(ValueError, match="already defined"):

        @perf.benchmark("metrics_vs_pyeer")
        def other() -> dict:
            return {}


def test_run_selected(monkeypatch):
    monkeypatch.setitem(perf._BENCHMARKS, "tiny", lambda: {"name": "tiny", "x_s": 0.5})
    assert perf.run(["tiny"]) == [{"name": "tiny", "x_s": 0.5}]


def test_format_table():
    text = perf.format_table(
        [
            {"name": "a", "n_scores": 1000, "ours_s": 0.0123456, "speedup": 12.3456},
            {"name": "longer_name", "ours_s": 1.5, "extra": True},
        ]
    )
    lines = text.splitlines()
    assert lines[0].split() == ["name", "n_scores", "ours_s", "speedup", "extra"]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].split() == ["a", "1000", "0.01235", "12.35"]
    assert lines[3].split() == ["longer_name", "1.5", "True"]
    assert len({len(line) for line in lines[:2]}) == 1
    assert perf.format_table([]) == "(no benchmarks)"


def test_unlinkability_record():
    record = perf.unlinkability_speed(n_scores=3000, n_subjects=20, n_boot=10, repeats=1)
    assert set(record) == {"name", "n_scores", "comparisons_s", "subjects_s", "target_s", "meets_target"}
    assert record["name"] == "unlinkability"
    assert record["n_scores"] == 3000
    assert record["comparisons_s"] > 0 and record["subjects_s"] > 0
    assert record["target_s"] == 5.0
    assert record["meets_target"] == (max(record["comparisons_s"], record["subjects_s"]) < 5.0)
    assert "unlinkability" in perf.names()


def test_cipher_record():
    record = perf.cipher_throughput(size_mb=0.2, n_faces=2, repeats=1)
    assert set(record) == {
        "name",
        "size_mb",
        "ff_per_kb",
        "encrypt_mb_s",
        "decrypt_mb_s",
        "aes_ctr_mb_s",
        "target_mb_s",
        "meets_target",
    }
    assert record["name"] == "cipher" and record["size_mb"] == pytest.approx(0.2)
    assert min(record["encrypt_mb_s"], record["decrypt_mb_s"], record["aes_ctr_mb_s"]) > 0
    assert 0 < record["ff_per_kb"] < 1000  # real packet bodies hold some FF bytes
    assert record["meets_target"] == (min(record["encrypt_mb_s"], record["decrypt_mb_s"]) >= record["target_mb_s"])
    assert "cipher" in perf.names()


def test_j2k_protect_record():
    record = perf.j2k_protect_cost(n_faces=2, repeats=1)
    assert record["name"] == "j2k_protect" and record["n_faces"] == 2
    for prefix in ("", "rgb_"):
        assert record[f"{prefix}encode_s"] > 0 and record[f"{prefix}protect_s"] > 0
        assert record[f"{prefix}protect_share"] == pytest.approx(
            record[f"{prefix}protect_s"] / record[f"{prefix}encode_s"]
        )
    assert record["meets_target"] == (max(record["protect_share"], record["rgb_protect_share"]) <= 0.05)
    assert "j2k_protect" in perf.names()


def test_warp_record():
    record = perf.warp_throughput(n_faces=4, repeats=1)
    assert set(record) == {
        "name",
        "scheme",
        "n_faces",
        "warp_images_s",
        "remap_images_s",
        "map_build_s",
        "target_images_s",
        "meets_target",
    }
    assert record["name"] == "warp" and record["scheme"] == "warp_16_6" and record["n_faces"] == 4
    assert min(record["warp_images_s"], record["remap_images_s"], record["map_build_s"]) > 0
    assert record["meets_target"] == (record["warp_images_s"] >= record["target_images_s"])
    assert "warp" in perf.names()


def test_fisher_record():
    records = perf.fisher_vectors(n_fit=6, n_embed=2, repeats=1)
    assert [r["recognizer"] for r in records] == ["fv-sift", "fv-brief"]
    for r in records:
        assert r["name"] == "fisher" and r["n_fit"] == 6 and r["fit_s"] > 0 and r["embed_ms_per_face"] > 0
        assert r["dims"] == 64 * (2 * (64 + 2) + 1)  # default vocabulary and PCA, with the position
    assert "fisher" in perf.names()


def test_inpaint_record():
    from benchmark.cli.perf import inpaint_training

    rec = inpaint_training(n_pairs=8, n_val=2, epochs=1)
    assert rec["name"] == "inpaint" and rec["n_pairs"] == 8 and rec["epochs"] == 1
    assert rec["train_s"] > 0 and rec["s_per_pair_epoch"] > 0 and rec["infer_s_per_image"] > 0
    assert rec["peak_rss_mb"] > 0


@pytest.mark.skipif(SFaceRecognizer().available() is not None, reason="SFace model not installed")
def test_finetune_record():
    from benchmark.cli.perf import finetune_training

    rec = finetune_training(n_faces=8, n_val=4, n_subjects=3, epochs=1)
    assert rec["name"] == "finetune" and rec["n_faces"] == 8 and rec["epochs"] == 1
    assert rec["train_s"] > 0 and rec["trunk_s_per_face"] > 0 and rec["s_per_face_epoch"] > 0
    assert rec["embed_s_per_face"] > 0 and rec["peak_rss_mb"] > 0
    assert "finetune" in perf.names()


E2E_PROTOCOL = """\
name: e2e-tiny
dataset:
  name: synthetic
  params: {n_subjects: 6, n_images: 4, seed: 0}
  folds: 2
recognizers: [{name: lbp, params: {radius: 1, cell: 14}}]
schemes: [{name: j2k, params: {window: 4, offset: 6}}]
attacks: [naive]
views: [strength]
examples: 0
bootstrap: {n_boot: 0}
"""


def test_e2e_times_every_stage_in_the_harness_and_alone(tmp_path):
    protocol = tmp_path / "p.yaml"
    protocol.write_text(E2E_PROTOCOL)
    records = perf.end_to_end(protocol=protocol, warmup=False)
    by_stage = {r["stage"]: r for r in records}
    assert {"load", "protect", "attack", "embed", "score", "metrics", "report", "total"} <= set(by_stage)
    assert all(r["name"] == "e2e" for r in records)
    assert by_stage["load"]["items"] == 24 and by_stage["protect"]["items"] == 24
    for stage in ("protect", "attack", "embed", "score", "report", "total"):
        row = by_stage[stage]
        assert row["harness_s"] > 0 and row["alone_s"] > 0, stage
        assert row["overhead_pct"] == pytest.approx(100 * (row["harness_s"] / row["alone_s"] - 1)), stage
    total = by_stage["total"]
    assert total["alone_s"] == pytest.approx(sum(r["alone_s"] for r in records if r["stage"] != "total"))
    assert total["harness_s"] >= sum(r["harness_s"] for r in records if r["stage"] != "total")


def test_hostile_yaml_records_refuse_oversized_protocols_before_reading():
    records = perf.hostile_yaml(size_mb=2, at_bound=False)
    assert [r["form"] for r in records] == ["list", "string"]
    for r in records:
        assert r["bytes"] > 1_000_000 and "refused: at most 1,000,000 bytes" in r["error"]
        assert r["peak_mb"] < 1 and r["meets_target"] == (r["refuse_s"] <= r["target_s"])
    assert "hostile_yaml" in perf.names()
