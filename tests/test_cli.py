"""The command line: exit codes, one-line errors, datasets on disk."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import benchmark
from benchmark.cli.main import EXIT_BAD_INPUT, EXIT_OK, build_parser, main, verdict_line

REPO = Path(__file__).resolve().parents[1]

FOLDER_PROTOCOL = """\
name: folder-test
dataset:
  name: folder
  root: {root}
  folds: 2
  seed: 0
recognizers: [lbp]
metrics: [eer]
"""


def _faces(root: Path, subjects: int, per_subject: int, seed: int = 0) -> None:
    from benchmark.data.datasets.synthetic import SyntheticFaces

    s = SyntheticFaces(n_subjects=subjects, n_images=per_subject, seed=seed).load(None)
    for sid, subj, img in zip(s.ids, s.subjects, s.images):
        d = root / subj
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / (Path(sid).name + ".png"))


def _protocol(tmp_path: Path, root: Path) -> Path:
    p = tmp_path / "folder.yaml"
    p.write_text(FOLDER_PROTOCOL.format(root=root))
    return p


def _run(args, capsys, tmp_path):
    code = main(["run", *args, "--cache", str(tmp_path / "cache"), "--workers", "1", "--no-report"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "command", ["run", "validate", "list", "doctor", "cache", "perf", "leaderboard", "compare", "report"]
)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([command, "--help"])
    assert info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_validate_shipped_protocols(capsys):
    assert main(["validate", str(REPO / "protocols")]) == EXIT_OK


def test_validate_reports_bad_file_with_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndataset: {name: folder}\nrecognizers: [lbq]\n")
    assert main(["validate", str(bad)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"{bad}:3: recognizers[0].name: unknown recognizer 'lbq'")


@pytest.mark.parametrize("body", ["- 0\n", "y"], ids=["list", "scalar"])
def test_a_50_mb_protocol_is_refused_in_one_line_without_parsing(tmp_path, capsys, monkeypatch, body):
    from benchmark.core import strict_yaml

    big = tmp_path / "big.yaml"
    with big.open("w") as fh:
        fh.write("name: x\nnotes:" + ("\n" if body.startswith("-") else " "))
        fh.write(body * (50_000_000 // len(body)))
    monkeypatch.setattr(strict_yaml, "_compose", lambda text: pytest.fail("the protocol was parsed"))
    assert main(["validate", str(big)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip()
    size = big.stat().st_size
    assert err == f"{big}: protocol file of {size:,} bytes refused: at most 1,000,000 bytes"


def test_list_shows_components(capsys):
    assert main(["list"]) == EXIT_OK
    out = capsys.readouterr().out
    for name in ("lbp", "mblbp", "sface", "synthetic", "folder", "orl", "eer"):
        assert f"  {name} " in out


def test_list_prints_integer_bounds_exactly_and_aligns_columns(capsys):
    assert main(["list"]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert any(line.split()[0] == "seed" and line.endswith("allowed: [0, 4294967295]") for line in lines)
    assert not [line for line in lines if re.search(r"\de[+-]?\d", line.partition("allowed:")[2])]
    # Component lines ("  name  summary"): every summary starts in one column, long names included.
    components = [line for line in lines if line.startswith("  ") and not line.startswith("   ")]
    assert any(line.split()[0] == "conceal-codeblock" for line in components)
    starts = {len(line) - len(line[2:].split(maxsplit=1)[1]) for line in components}
    assert len(starts) == 1, starts


@pytest.mark.parametrize("command", ["compare", "report", "leaderboard"])
def test_results_nested_100000_deep_are_bad_input_in_one_line(tmp_path, capsys, command):
    deep = tmp_path / "results.json"
    deep.write_text('{"schema_version": 3, "rows": ' + "[" * 100_000 + "]" * 100_000 + "}")
    args = {"compare": [deep, deep], "report": [deep], "leaderboard": [deep, "--out", tmp_path / "board"]}[command]
    assert main([command, *map(str, args)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.endswith(
        f"{deep}: cannot read results: nested too deeply (more than 100 levels)"
    )


def test_missing_root_is_exit_2(tmp_path, capsys):
    code, _, err = _run([str(_protocol(tmp_path, tmp_path / "nowhere"))], capsys, tmp_path)
    assert code == EXIT_BAD_INPUT
    assert "folder.yaml:4: dataset.root:" in err and "does not exist" in err
    assert "Traceback" not in err


def test_empty_dataset_is_exit_2(tmp_path, capsys):
    (tmp_path / "empty" / "someone").mkdir(parents=True)
    code, _, err = _run([str(_protocol(tmp_path, tmp_path / "empty"))], capsys, tmp_path)
    assert code == EXIT_BAD_INPUT and "dataset.root: no image" in err


def test_unreadable_image_is_skipped_and_counted(tmp_path, capsys):
    root = tmp_path / "data"
    _faces(root, 4, 3)
    (root / "s000" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    out_dir = tmp_path / "out"
    code, out, err = _run([str(_protocol(tmp_path, root)), "--out", str(out_dir)], capsys, tmp_path)
    assert code == EXIT_OK, err
    results = json.loads((out_dir / "results.json").read_text())
    assert results["dataset"]["n_skipped"] == 1
    assert results["dataset"]["skipped"][0]["id"] == "s000/broken.png"
    assert results["dataset"]["n_samples"] == 13 and results["dataset"]["n_usable"] == 12


def test_a_cache_that_cannot_be_written_costs_a_warning_not_the_run(tmp_path, capsys, caplog):
    root = tmp_path / "data"
    _faces(root, 4, 3)
    cache = tmp_path / "cache-file"
    cache.write_bytes(b"a file where the cache folder belongs")
    args = [str(_protocol(tmp_path, root)), "--out", str(tmp_path / "out"), "--no-report", "--workers", "1"]
    with caplog.at_level("WARNING", logger="facesec.cache"):
        code = main(["run", *args, "--cache", str(cache)])
    err = capsys.readouterr().err
    assert code == EXIT_OK and "Traceback" not in err and "run failed" not in err
    (warned,) = [r.getMessage() for r in caplog.records if r.name == "facesec.cache"]
    assert warned == f"cache {cache} cannot be written (Not a directory: {cache / 'align'}): going on without caching"


def test_a_linked_identity_folder_is_no_second_identity_and_is_listed(tmp_path, capsys):
    root = tmp_path / "data"
    _faces(root, 4, 3)
    (root / "s999").symlink_to("s000")  # the same images under another name: identical "impostor" pairs
    out_dir = tmp_path / "out"
    code, _, err = _run([str(_protocol(tmp_path, root)), "--out", str(out_dir)], capsys, tmp_path)
    assert code == EXIT_OK, err
    dataset = json.loads((out_dir / "results.json").read_text())["dataset"]
    assert dataset["n_subjects"] == 4 and dataset["n_samples"] == 12
    assert dataset["skipped"] == [{"id": "s999", "reason": "symbolic link (not followed)"}]
    assert dataset["n_skipped"] == 1


def test_nothing_usable_is_exit_2(tmp_path, capsys):
    root = tmp_path / "data"
    for s in ("a", "b"):
        (root / s).mkdir(parents=True)
        for i in range(2):
            (root / s / f"{i}.jpg").write_bytes(b"garbage")
    code, _, err = _run([str(_protocol(tmp_path, root))], capsys, tmp_path)
    assert code == EXIT_BAD_INPUT and "no usable image" in err


def test_bad_set_is_exit_2(tmp_path, capsys):
    code, _, err = _run([str(_protocol(tmp_path, tmp_path)), "--set", "dataset.folds=many"], capsys, tmp_path)
    assert code == EXIT_BAD_INPUT and "--set dataset.folds=many: dataset.folds: 'many' is not an integer" in err


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"facesec {benchmark.__version__}\n"


def test_help_ends_with_examples_the_readme_documents(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    examples = [line.strip() for line in capsys.readouterr().out.splitlines() if line.startswith("    facesec ")]
    assert {shlex.split(e)[1] for e in examples} >= {"run", "validate", "compare", "leaderboard"}
    readme = (REPO / "README.md").read_text().replace("python bench.py ", "facesec ")
    for example in examples:
        assert example in readme, f"--help example not in the README: {example}"
        build_parser().parse_args(shlex.split(example)[1:])  # and it parses as written


def test_bad_workers_is_exit_2(tmp_path, capsys):
    code = main(["run", str(_protocol(tmp_path, tmp_path)), "--workers", "0"])
    assert code == EXIT_BAD_INPUT


def test_cache_clear(tmp_path, capsys):
    (tmp_path / "c" / "embed").mkdir(parents=True)
    assert main(["cache", "clear", "--cache", str(tmp_path / "c")]) == EXIT_OK
    assert not any((tmp_path / "c").iterdir())


def test_bench_py_and_console_script_agree(tmp_path):
    env = {**os.environ, "FACESEC_CACHE": str(tmp_path / "cache")}
    a = subprocess.run(
        [sys.executable, str(REPO / "bench.py"), "validate", str(REPO / "protocols")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    b = subprocess.run(
        [sys.executable, "-m", "benchmark.cli.main", "validate", str(REPO / "protocols")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert a.returncode == b.returncode == 0
    assert a.stdout == b.stdout


def _entries(root: Path, stage: str, n: int, days_ago: float) -> None:
    import time

    import numpy as np

    from benchmark.core.cache import Cache

    cache = Cache(root)
    for i in range(n):
        cache.save(stage, f"{stage}{i}", {"x": np.zeros(1000, np.uint8)}, {})
        when = time.time() - days_ago * 86400
        os.utime(root / stage / f"{stage}{i}.entry", (when, when))


def test_cache_shows_usage_per_stage_and_prunes_by_age(tmp_path, capsys):
    root = tmp_path / "c"
    _entries(root, "embed", 3, days_ago=40)
    _entries(root, "score", 2, days_ago=1)
    assert main(["cache", "--cache", str(root)]) == EXIT_OK
    out = capsys.readouterr().out
    assert str(root) in out
    lines = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert lines["embed"][1] == "3" and lines["score"][1] == "2" and lines["total"][1] == "5"
    assert main(["cache", "prune", "--older-than", "30d", "--dry-run", "--cache", str(root)]) == EXIT_OK
    assert "would remove 3 entries" in capsys.readouterr().out and len(list(root.rglob("*.entry"))) == 5
    assert main(["cache", "prune", "--older-than", "30d", "--cache", str(root)]) == EXIT_OK
    assert "removed 3 entries" in capsys.readouterr().out
    assert sorted(p.name for p in root.rglob("*.entry")) == ["score0.entry", "score1.entry"]
    assert main(["cache", "prune", "--max-size", "0", "--cache", str(root)]) == EXIT_OK
    assert not list(root.rglob("*.entry"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["prune"], "needs --older-than AGE and/or --max-size SIZE"),
        (["prune", "--older-than", "30x"], "--older-than: '30x' is not an age"),
        (["prune", "--max-size", "2Q"], "--max-size: '2Q' is not a size"),
        (["info", "--max-size", "2G"], "--max-size applies to 'facesec cache prune' only"),
    ],
)
def test_cache_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    assert main(["cache", *args, "--cache", str(tmp_path)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_verdict_line_counts_each_verdict():
    entries = [{"verdict": "PASS"}, {"verdict": "FAIL"}, {"verdict": "UNRESOLVED"}, {"verdict": "FAIL"}]
    assert verdict_line(entries) == (
        "verdict: FAIL (1 PASS, 2 FAIL, 1 UNRESOLVED of 4 criteria; the report opens with them)"
    )
    assert verdict_line([]) == "verdict: none (the protocol sets no certify: criteria)"
