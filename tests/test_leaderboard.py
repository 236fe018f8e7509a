"""Tests for reports.leaderboard and ``facesec leaderboard``: ranking, grouping, reported entries, outputs."""

from __future__ import annotations

import argparse
import csv
import html as html_lib
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from benchmark.cli.leaderboard import add_parser, leaderboard_main
from reports.leaderboard import (
    HARNESS_BINS_RULE,
    HARNESS_EER_RULE,
    NOT_STATED,
    OUTPUT_FILES,
    PROTOCOL_BINS_RULE,
    SHIPPED_REPORTED_DIR,
    LeaderboardError,
    ReportedEntry,
    build_leaderboard,
    load_entries,
    load_entry,
    load_runs,
    make_leaderboard,
    measured_conventions,
    render_csv,
    render_html,
    render_markdown,
    render_schemes_csv,
    results_paths,
)

XSS = "<script>alert(1)</script>"
FP_A = "aa" * 32
FP_B = "bb" * 32
LFW_KNOWLEDGE = "protected samples and scheme parameters (Kerckhoffs); no key"
SEED_CITATION = (
    'Lukas Lamminger, Heinz Hofbauer, Andreas Uhl. "First Learning Steps to Recognize Faces in the Noise." '
    "Proceedings of the 11th ACM Workshop on Information Hiding and Multimedia Security (IH&MMSec '23), 2023"
)


# --------------------------------------------------------------------------- synthetic results files


def _metrics(eer: float | None, **extra: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"eer": eer, "n_genuine": 500, "n_impostor": 5000}
    if eer is not None:
        m.update(eer_ci_low=max(0.0, eer - 0.02), eer_ci_high=min(1.0, eer + 0.02))
    m.update(extra)
    return m


def _row(
    scheme: str,
    attack: str,
    view: str,
    metrics: dict[str, Any],
    recognizer: str = "sface",
    recognizer_params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "recognizer": recognizer,
        "recognizer_params": {"batch_size": 16} if recognizer_params is None else recognizer_params,
        "scheme": scheme,
        "scheme_params": {} if scheme == "none" else {"window": 4},
        "attack": attack,
        "view": view,
        "attacker_knowledge": None if view == "baseline" else LFW_KNOWLEDGE,
        "metrics": metrics,
        "curves": {},
        "score_file": f"scores/{recognizer}__{scheme}__{attack}.csv",
    }


def _strength(scheme: str, attack: str, eer: float | None, sar: float = 0.1, **kw: Any) -> dict[str, Any]:
    m = _metrics(eer, **{"sar_at_fmr_0.001": sar, "fnmr_at_fmr_0.001": 0.5, "psnr": 20.0, "ssim": 0.5})
    return _row(scheme, attack, f"strength:{attack}", m, **kw)


def _linkage(scheme: str, attack: str, d_sys: float, bins: int = 50, **kw: Any) -> dict[str, Any]:
    m = _metrics(0.2, d_sys=d_sys, d_sys_ci_low=d_sys - 0.01, d_sys_ci_high=d_sys + 0.01, bins=bins)
    m.update(d_sys_null_high=0.05, linkability_max=d_sys / 2, linkability_max_ci_low=0.0, linkability_max_ci_high=0.5)
    return _row(scheme, attack, f"linkage:{attack}", m, **kw)


def _results(
    rows: list[dict[str, Any]],
    *,
    protocol: str = "proto",
    dataset: str = "folder",
    fingerprint: str | None = FP_A,
    n_usable: int = 240,
    test_folds: list[int] | None = None,
) -> dict[str, Any]:
    return {
        "schema_version": 3,
        "protocol": {"name": protocol, "file": f"protocols/{protocol}.yaml", "notes": ""},
        "dataset": {
            "name": dataset,
            "demo": False,
            "root": "/data/lfw-dev",
            "params": {},
            "n_samples": n_usable,
            "n_usable": n_usable,
            "n_subjects": 24,
            "n_skipped": 0,
            "skipped": [],
            "folds": 4,
            "test_folds": [0] if test_folds is None else test_folds,
            "seed": 0,
        },
        "rows": rows,
        "provenance": {
            "key": None,
            "protocol_sha256": "00" * 32,
            "overrides": [],
            "dataset_fingerprint": fingerprint,
            "git_commit": "c0ffee1234",
            "facesec_version": "0.1.0",
            "python": "3.11",
            "platform": "linux",
            "components": {},
            "seeds": {},
            "created": "2026-12-01T00:00:00Z",
            "cache": {},
            "schemes": {},
        },
    }


def _write_run(folder: Path, results: dict[str, Any], report: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "results.json"
    path.write_text(json.dumps(results))
    if report:
        (folder / "report.html").write_text("<html></html>")
    return path


def _basic_rows() -> list[dict[str, Any]]:
    return [
        _row("none", "none", "baseline", _metrics(0.01)),
        _strength("lw4o6", "naive", 0.30, sar=0.01),
        _linkage("lw4o6", "naive", 0.20),
        _strength("lw4o6", "inpaint", 0.10, sar=0.40),
        _linkage("lw4o6", "inpaint", 0.60),
        _strength("lw4o6", "conceal", 0.20, sar=0.20),
        _strength("rw4o6", "naive", 0.40, sar=0.0),
        _strength("rw4o6", "inpaint", 0.35, sar=0.01),
    ]


def _board(tmp_path: Path, *runs: dict[str, Any], entries: list[Path] | None = None):
    paths = [_write_run(tmp_path / "runs" / f"run{i}", r) for i, r in enumerate(runs)]
    return build_leaderboard(load_runs(paths), load_entries(entries or []))


def _only_group(board):
    assert len(board.measured) == 1
    return board.measured[0]


def _scheme(group, label: str):
    return next(b for b in group.schemes if b.scheme == label)


# --------------------------------------------------------------------------- ranking


def test_attacks_ranked_by_strength_eer(tmp_path):
    group = _only_group(_board(tmp_path, _results(_basic_rows())))
    lines = _scheme(group, "lw4o6").lines
    assert [line.attack for line in lines] == ["inpaint", "conceal", "naive"]
    assert [line.rank for line in lines] == [1, 2, 3]
    # Strength and linkage rows of one attack share a line.
    assert lines[0].value("linkage", "d_sys") == pytest.approx(0.60)
    assert lines[1].linkage is None


def test_equal_eer_goes_to_the_higher_sar_and_ties_share_a_rank(tmp_path):
    rows = [
        _strength("lw4o6", "a", 0.2, sar=0.1),
        _strength("lw4o6", "b", 0.2, sar=0.3),
        _strength("lw4o6", "c", 0.2, sar=0.1),
        _strength("lw4o6", "d", None),
    ]
    lines = _scheme(_only_group(_board(tmp_path, _results(rows))), "lw4o6").lines
    assert [(line.attack, line.rank) for line in lines] == [("b", 1), ("a", 2), ("c", 2), ("d", None)]


def test_scheme_table_picks_the_strongest_attack(tmp_path):
    group = _only_group(_board(tmp_path, _results(_basic_rows())))
    # rw4o6 survives its best attack at 35 % EER, lw4o6 only at 10 %: rw4o6 ranks first.
    assert [(b.scheme, b.rank) for b in group.schemes] == [("rw4o6", 1), ("lw4o6", 2)]
    lw = _scheme(group, "lw4o6")
    assert lw.strongest is not None and lw.strongest.attack == "inpaint"
    assert lw.strongest.value("strength", "eer") == pytest.approx(0.10)
    assert lw.most_linking is not None and lw.most_linking.attack == "inpaint"
    assert lw.n_attacks == 3
    rw = _scheme(group, "rw4o6")
    assert rw.strongest is not None and rw.strongest.attack == "inpaint"


def test_scheme_table_takes_the_minimum_over_runs(tmp_path):
    first = _results([_strength("lw4o6", "naive", 0.40)], protocol="one")
    second = _results([_strength("lw4o6", "inpaint", 0.15)], protocol="two")
    group = _only_group(_board(tmp_path, first, second))
    lw = _scheme(group, "lw4o6")
    assert lw.strongest is not None and lw.strongest.attack == "inpaint"
    assert lw.strongest.run is not None and lw.strongest.run.protocol == "two"
    assert group.protocols == ["one", "two"]


# --------------------------------------------------------------------------- grouping


def test_groups_never_mix_datasets(tmp_path):
    same_name_other_data = _results(_basic_rows(), fingerprint=FP_B)
    board = _board(tmp_path, _results(_basic_rows()), same_name_other_data)
    assert len(board.measured) == 2
    assert {g.fingerprint for g in board.measured} == {FP_A, FP_B}
    for group in board.measured:
        fingerprints = {line.run.fingerprint for line in group.all_lines() if line.run is not None}
        assert fingerprints == {group.fingerprint}


def test_groups_never_mix_recognizers_or_their_params(tmp_path):
    rows = [
        _strength("lw4o6", "naive", 0.3),
        _strength("lw4o6", "naive", 0.4, recognizer="lbp", recognizer_params={"radius": 2}),
        _strength("lw4o6", "naive", 0.2, recognizer="sface", recognizer_params={"batch_size": 32}),
    ]
    board = _board(tmp_path, _results(rows))
    keys = [(g.recognizer, dict(g.recognizer_params)) for g in board.measured]
    assert keys == [("sface", {"batch_size": 16}), ("lbp", {"radius": 2}), ("sface", {"batch_size": 32})]
    assert all(len(g.schemes) == 1 and len(g.schemes[0].lines) == 1 for g in board.measured)


def test_rows_of_several_protocols_show_their_protocol(tmp_path):
    board = _board(
        tmp_path,
        _results([_strength("lw4o6", "naive", 0.4)], protocol="proto-one"),
        _results([_strength("lw4o6", "inpaint", 0.2)], protocol="proto-two", test_folds=[1]),
    )
    group = _only_group(board)
    assert group.splits_differ
    page = render_html(board, tmp_path / "out")
    assert "Rows from 2 protocols" in page
    assert "R1</a> proto-one" in page and "R2</a> proto-two" in page
    assert "different splits" in page
    md = render_markdown(board, tmp_path / "out")
    assert "R1 proto-one" in md and "R2 proto-two" in md


def test_preservation_and_renewal_rows_are_not_attacks(tmp_path):
    rows = [
        _row("lw4o6", "none", "preservation", _metrics(0.02)),
        _row("lw4o6", "none", "renewal", _metrics(0.5)),
        _strength("lw4o6", "naive", 0.4),
    ]
    lines = _scheme(_only_group(_board(tmp_path, _results(rows))), "lw4o6").lines
    assert [line.attack for line in lines] == ["naive"]


# --------------------------------------------------------------------------- inputs


def test_folder_inputs(tmp_path):
    own = _write_run(tmp_path / "a", _results(_basic_rows()))
    _write_run(tmp_path / "a" / "nested", _results(_basic_rows()))  # ignored: the folder has its own
    below = [_write_run(tmp_path / "b" / name, _results(_basic_rows())) for name in ("y", "x")]
    _write_run(tmp_path / "b" / ".hidden", _results(_basic_rows()))
    found = results_paths([tmp_path / "a", tmp_path / "b", own])
    assert found == [own, sorted(below)[0], sorted(below)[1]]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file or folder"),
        ("{not json", "cannot read results"),
        (json.dumps({"schema_version": 99}), "unknown results schema version"),
        (json.dumps({**_results([]), "rows": [{"recognizer": "x"}]}), "rows[0].scheme"),
        (
            json.dumps(_results([_row("lw4o6", "naive", "strength:naive", {"eer": "0.3"})])),
            "rows[0].metrics.eer",
        ),
        (json.dumps({k: v for k, v in _results([]).items() if k != "provenance"}), "provenance"),
    ],
)
def test_bad_results_file_is_one_located_line(tmp_path, content, expected):
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(LeaderboardError) as info:
        load_runs([path])
    message = str(info.value)
    assert str(path) in message and expected in message
    assert "\n" not in message


def test_folder_without_results_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LeaderboardError, match="no results.json"):
        results_paths([tmp_path / "empty"])


# --------------------------------------------------------------------------- reported entries

ENTRY = """\
citation: "Doe et al., a paper"
url: https://example.org/paper
dataset: {name: LFW, description: the usual}
recognizer: {name: ArcFace}
view: strength
scheme: lw4o6
attack: inpaint
metrics:
  eer: 0.3357
  sar_at_fmr: {0.001: 0.2}
conventions:
  eer_interpolation: not stated
  d_sys_bins: 100 equal-width bins over the pooled range
  bins: 100
  fmr_targets: [0.001]
"""


def _entry(tmp_path: Path, text: str, name: str = "entry.yaml") -> Path:
    path = tmp_path / "entries" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_valid_entry_loads_and_flattens_like_results(tmp_path):
    entry = load_entry(_entry(tmp_path, ENTRY))
    assert entry.metrics.flat() == {"eer": 0.3357, "sar_at_fmr_0.001": 0.2}
    assert entry.conventions.fmr_targets == (0.001,)


@pytest.mark.parametrize(
    ("old", "new", "field", "hint"),
    [
        ("  eer: 0.3357", "  eer: 33.57", "metrics.eer", "fraction in [0, 1]"),
        ("  eer: 0.3357", "  eer_pct: 33.57", "metrics.eer_pct", "allowed: eer,"),
        ("  eer: 0.3357", '  eer: "0.3357"', "metrics.eer", "is not a number"),
        ("view: strength", "view: attack", "view", "allowed: 'baseline'"),
        ("scheme: lw4o6", "scheme: none", "scheme", "only for view 'baseline'"),
        ('citation: "Doe et al., a paper"\n', "", "citation", "required"),
        ("  fmr_targets: [0.001]", "  fmr_targets: []", "conventions", "missing: 0.001"),
        ("url: https://example.org/paper", "url: javascript:alert(1)", "url", "does not match"),
        ("  sar_at_fmr: {0.001: 0.2}", "  sar_at_fmr: {1e-3: 0.2}", "metrics.sar_at_fmr.1e-3", "decimals"),
        ("  eer: 0.3357", "  eer: 0.3357\n  eer_ci_low: 0.3", "metrics", "go together"),
        ("  fmr_targets: [0.001]\n", "  fmr_targets: [0.001]\nnote: typo\n", "note", "did you mean 'notes'?"),
    ],
)
def test_bad_entry_is_one_line_naming_file_and_field(tmp_path, old, new, field, hint):
    assert old in ENTRY
    path = _entry(tmp_path, ENTRY.replace(old, new))
    with pytest.raises(LeaderboardError) as info:
        load_entry(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:")
    assert f": {field}" in message and hint in message


def test_entry_yaml_errors_are_located(tmp_path):
    with pytest.raises(LeaderboardError, match=r"entry\.yaml:\d+: YAML syntax error"):
        load_entry(_entry(tmp_path, "citation: [unclosed\n"))
    with pytest.raises(LeaderboardError, match=r"entry\.yaml:3: view: duplicate key"):
        load_entry(_entry(tmp_path, "view: strength\nscheme: x\nview: linkage\n"))
    with pytest.raises(LeaderboardError, match="an entry is a YAML mapping"):
        load_entry(_entry(tmp_path, "- a list\n"))


def test_duplicate_entries_are_refused(tmp_path):
    _entry(tmp_path, ENTRY, "a.yaml")
    _entry(tmp_path, ENTRY, "b.yaml")
    with pytest.raises(LeaderboardError, match=r"b\.yaml: same citation.*a\.yaml"):
        load_entries([tmp_path / "entries"])


def test_every_shipped_entry_conforms():
    files = sorted(SHIPPED_REPORTED_DIR.glob("*.yaml"))
    assert len(files) == 9
    for path in files:
        entry = load_entry(path)
        assert isinstance(entry, ReportedEntry)
        assert entry.citation == SEED_CITATION  # the full reference, nothing left "to be completed"
        assert "to be completed" not in entry.notes and "seed research" not in path.read_text()
        assert entry.conventions.eer_interpolation == NOT_STATED
        assert entry.conventions.d_sys_bins == NOT_STATED
    entries = load_entries([SHIPPED_REPORTED_DIR])
    table = {(e.entry.scheme, e.entry.attack): e.entry.metrics.eer for e in entries}
    assert table == {
        ("none", "none"): 0.0716,
        ("lw4o6", "naive"): 0.4755,
        ("lw4o6", "inpaint"): 0.3357,
        ("lw6o6", "naive"): 0.4683,
        ("lw6o6", "inpaint"): 0.3193,
        ("lw8o4", "naive"): 0.4849,
        ("lw8o4", "inpaint"): 0.4573,
        ("rw4o6", "naive"): 0.3352,
        ("rw4o6", "inpaint"): 0.1109,
    }


def test_shipped_entries_rank_reconstruction_as_the_strongest_attack():
    board = build_leaderboard([], load_entries([SHIPPED_REPORTED_DIR]))
    assert not board.measured and len(board.reported) == 1
    group = board.reported[0]
    assert [b.scheme for b in group.schemes] == ["lw8o4", "lw4o6", "lw6o6", "rw4o6"]
    assert all(b.strongest is not None and b.strongest.attack == "inpaint" for b in group.schemes)
    assert group.baselines[0].value("strength", "eer") == pytest.approx(0.0716)


# --------------------------------------------------------------------------- reported apart, conventions shown


def test_reported_kept_apart_and_conventions_shown(tmp_path):
    board = _board(tmp_path, _results(_basic_rows()), entries=[SHIPPED_REPORTED_DIR])
    assert all(not g.reported for g in board.measured) and all(g.reported for g in board.reported)
    for group in board.measured:
        assert all(line.run is not None and not line.entries for line in group.all_lines())
    page = render_html(board, tmp_path / "out")
    measured = page[page.index('id="measured"') : page.index('id="reported"')]
    reported = page[page.index('id="reported"') : page.index('id="conventions"')]
    assert "seed-inpainting" not in measured and "badge reported" not in measured
    assert "33.57%" in reported and "badge reported" in reported
    # Conventions: per-row footnotes and their text, "not stated" for the seed table.
    assert 'href="#conv-1"' in page and 'id="conv-1"' in page
    assert f"EER: {NOT_STATED}" in page and HARNESS_EER_RULE in page
    assert "100 equal-width bins over the pooled score range" in page  # the published-bins note
    # Beside each other only with a visible note of what differs.
    beside = page[page.index('id="beside"') : page.index('id="conventions"')]
    assert "EER interpolation" in beside and "not a ranking" in beside
    comparison = next(c for c in board.comparisons if c.scheme == "lw4o6" and c.reported.attack == "inpaint")
    assert comparison.differs == ("EER interpolation", "D↔sys bins")


def test_demo_run_is_labelled_everywhere_and_never_beside_published_figures(tmp_path):
    demo = _results(_basic_rows(), protocol="quickstart", dataset="synthetic", fingerprint=FP_B)
    demo["dataset"]["demo"] = True
    board = _board(tmp_path, _results(_basic_rows()), demo, entries=[SHIPPED_REPORTED_DIR])
    real, synthetic = board.measured
    assert not real.demo and synthetic.demo
    # Published figures stand beside the real run's lines only.
    assert board.comparisons and all(c.measured_group is real for c in board.comparisons)
    out = tmp_path / "out"
    page = render_html(board, out)
    # Labelled on the group's heading and on each line's source: baseline, scheme table (2), attack lines (5).
    demo_group = page[page.index('id="m-2"') : page.index('id="reported"')]
    assert demo_group.count('<span class="badge demo">demo data</span>') == 1 + 1 + 2 + 5
    assert "badge demo" not in page[page.index('id="m-1"') : page.index('id="m-2"')]
    assert "quickstart" not in page[page.index('id="beside"') : page.index('id="conventions"')]
    runs = page[page.index('id="runs"') :]
    assert runs.count("badge demo") == 1 and 'id="run-2"' in runs
    md = render_markdown(board, out)
    assert "### **\\[demo data\\]** synthetic" in md and md.count("R2 quickstart \\(demo data\\)") == 1 + 2 + 5
    assert "| R2 | quickstart \\(demo data\\) |" in md  # the runs table
    assert "R1 proto \\(demo" not in md
    for text in (render_csv(board, out), render_schemes_csv(board, out)):
        rows = list(csv.DictReader(io.StringIO(text)))
        assert {r["demo_data"] for r in rows if r["dataset"] == "synthetic"} == {"true"}
        assert {r["demo_data"] for r in rows if r["dataset"] != "synthetic"} == {"false"}


def test_measured_conventions_state_the_bin_rule():
    default = measured_conventions(None, {"d_sys": 0.5, "bins": 50, "n_genuine": 500})
    assert default.d_sys_bins == HARNESS_BINS_RULE and default.bins == 50
    assert default.eer_interpolation == HARNESS_EER_RULE
    chosen = measured_conventions(None, {"d_sys": 0.5, "bins": 30, "n_genuine": 500})
    assert chosen.d_sys_bins == PROTOCOL_BINS_RULE and chosen.bins == 30
    targets = measured_conventions({"sar_at_fmr_0.001": 0.1, "fnmr_at_fmr_0.01": 0.2})
    assert targets.fmr_targets == (0.01, 0.001)


def test_d_sys_beside_a_reported_one_names_the_bins(tmp_path):
    entry = ENTRY.replace("view: strength", "view: linkage").replace(
        "  eer: 0.3357\n  sar_at_fmr: {0.001: 0.2}", "  d_sys: 0.7"
    )
    board = _board(tmp_path, _results(_basic_rows()), entries=[_entry(tmp_path, entry)])
    comparison = next(c for c in board.comparisons if c.reported.attack == "inpaint")
    assert "D↔sys bins" in comparison.differs
    page = render_html(board, tmp_path / "out")
    assert "100 bins: 100 equal-width bins over the pooled range" in page
    assert "50 bins: " + html_lib.escape(HARNESS_BINS_RULE) in page


# --------------------------------------------------------------------------- outputs


def test_html_is_autoescaped_and_self_contained(tmp_path):
    rows = [_strength(XSS, "naive", 0.3), _strength("lw4o6", XSS, 0.2)]
    results = _results(rows, protocol=XSS)
    results["dataset"]["name"] = XSS
    board = _board(tmp_path, results)
    page = render_html(board, tmp_path / "out")
    assert XSS not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # The only script is the static row filter.
    assert page.count("<script") == 1 and "row-filter" in page
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page)
    assert "<link" not in page
    md = render_markdown(board, tmp_path / "out")
    assert XSS not in md and "\\<script\\>" in md


def test_outputs_written_with_relative_links(tmp_path, capsys):
    run = _write_run(tmp_path / "runs" / "a b", _results(_basic_rows()))
    no_report = _write_run(tmp_path / "runs" / "c", _results(_basic_rows(), protocol="other"), report=False)
    out = tmp_path / "site" / "board"
    board, paths = make_leaderboard([run, no_report], out)
    assert [p.name for p in paths] == list(OUTPUT_FILES)
    page = (out / "leaderboard.html").read_text()
    assert 'href="../../runs/a%20b/report.html"' in page
    assert 'href="../../runs/a%20b/results.json"' in page
    assert 'href="../../runs/c/results.json"' in page and "../../runs/c/report.html" not in page
    assert str(tmp_path) not in page  # no absolute path leaks into links
    md = (out / "leaderboard.md").read_text()
    assert "(../../runs/a%20b/report.html)" in md
    assert "c0ffee1234" in md and "2026-12-01T00:00:00Z" in md

    lines = list(csv.DictReader(io.StringIO((out / "leaderboard.csv").read_text())))
    measured = [row for row in lines if row["section"] == "measured" and row["line"] == "attack"]
    inpaint = next(r for r in measured if r["scheme"] == "lw4o6" and r["attack"] == "inpaint" and r["run"] == "R1")
    assert float(inpaint["eer"]) == pytest.approx(0.10)  # a plain number, not "10%"
    assert float(inpaint["sar_at_fmr"]) == pytest.approx(0.40) and float(inpaint["fmr"]) == pytest.approx(0.001)
    assert float(inpaint["linkage_d_sys"]) == pytest.approx(0.60)
    assert float(inpaint["linkage_linkability_max"]) == pytest.approx(0.30)
    assert float(inpaint["psnr"]) == pytest.approx(20.0) and float(inpaint["ssim"]) == pytest.approx(0.5)
    assert inpaint["rank"] == "1" and inpaint["report"] == "../../runs/a%20b/report.html"
    assert inpaint["d_sys_bins_rule"] == HARNESS_BINS_RULE and inpaint["bins"] == "50"
    reported = [row for row in lines if row["section"] == "reported"]
    assert len(reported) == 9 and all(row["eer_interpolation"] == NOT_STATED for row in reported)

    schemes = list(csv.DictReader(io.StringIO((out / "schemes.csv").read_text())))
    lw = next(r for r in schemes if r["section"] == "measured" and r["scheme"] == "lw4o6")
    assert lw["strongest_attack"] == "inpaint" and float(lw["strongest_eer"]) == pytest.approx(0.10)
    assert lw["scheme_rank"] == "2"


def test_threshold_source_of_a_strength_row_is_shown_and_exported(tmp_path):
    """A fine-tuned recognizer's SAR is at its own baseline's thresholds: the board says whose."""
    own = "baseline of finetune (plain vs plain through the fine-tuned model)"
    rows = [
        _row("none", "none", "baseline", _metrics(0.01)),
        {**_strength("lw4o6", "naive", 0.30), "threshold_source": "baseline of sface"},
        {**_strength("lw4o6", "finetune", 0.10), "threshold_source": own},
        _linkage("lw4o6", "finetune", 0.60),
    ]
    board = _board(tmp_path, _results(rows))
    lines = {line.attack: line for line in _only_group(board).schemes[0].lines}
    assert lines["finetune"].threshold_source == own and lines["naive"].threshold_source == "baseline of sface"
    out = tmp_path / "out"
    assert f"SAR thresholds: {own}" in render_html(board, out)
    exported = list(csv.DictReader(io.StringIO(render_csv(board, out))))
    assert {r["attack"]: r["threshold_source"] for r in exported if r["line"] == "attack"} == {
        "naive": "baseline of sface",
        "finetune": own,
    }


def test_render_is_deterministic(tmp_path):
    board = _board(tmp_path, _results(_basic_rows()), entries=[SHIPPED_REPORTED_DIR])
    out = tmp_path / "out"
    assert render_html(board, out) == render_html(board, out)
    assert render_csv(board, out) == render_csv(board, out)
    assert render_schemes_csv(board, out) == render_schemes_csv(board, out)


# --------------------------------------------------------------------------- command line


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="facesec")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return leaderboard_main(parser.parse_args(["leaderboard", *argv]))


def test_cli_writes_outputs(tmp_path, capsys):
    run = _write_run(tmp_path / "runs" / "a", _results(_basic_rows()))
    extra = _entry(tmp_path, ENTRY)
    assert _cli([str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--reported", str(extra)]) == 0
    out = capsys.readouterr().out
    assert "1 run(s), 10 reported entries" in out
    assert all((tmp_path / "out" / name).is_file() for name in OUTPUT_FILES)
    assert run.is_file()


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as info:
        _cli(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--no-reported" in out and "--reported" in out and "--out" in out


def test_cli_no_reported(tmp_path, capsys):
    _write_run(tmp_path / "runs" / "a", _results(_basic_rows()))
    assert _cli([str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--no-reported"]) == 0
    assert "0 reported entries" in capsys.readouterr().out
    assert "seed-inpainting" not in (tmp_path / "out" / "leaderboard.html").read_text()


@pytest.mark.parametrize("bad", ["missing", "entry", "fmr"])
def test_cli_bad_input_is_exit_2_and_keeps_previous_outputs(tmp_path, capsys, bad):
    run = _write_run(tmp_path / "runs" / "a", _results(_basic_rows()))
    out = tmp_path / "out"
    out.mkdir()
    previous = out / "leaderboard.html"
    previous.write_text("previous board")
    argv = [str(run), "--out", str(out)]
    if bad == "missing":
        argv[0] = str(tmp_path / "nope.json")
    elif bad == "entry":
        argv += ["--reported", str(_entry(tmp_path, ENTRY.replace("eer: 0.3357", "eer: 33.57")))]
    else:
        argv += ["--fmr", "5"]
    assert _cli(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    if bad == "missing":
        assert "nope.json" in err
    elif bad == "entry":
        assert "entry.yaml" in err and "metrics.eer" in err
    assert previous.read_text() == "previous board"
    assert sorted(p.name for p in out.iterdir()) == ["leaderboard.html"]


def test_cli_nothing_to_show_is_exit_2(tmp_path, capsys):
    assert _cli(["--out", str(tmp_path / "out"), "--no-reported"]) == 2
    assert "nothing to show" in capsys.readouterr().err


# --------------------------------------------------------------------------- learned attacks stopped on a budget


def test_a_line_whose_learned_attack_stopped_on_a_budget_is_flagged(tmp_path):
    """The model of ``inpaint`` on lw4o6 ran out of epochs: its line (and strongest-attack cell) says so."""
    from reports.training import NOT_CONVERGED

    rows = [
        _row("none", "none", "baseline", _metrics(0.01)),
        _strength("lw4o6", "naive", 0.30),
        _strength("lw4o6", "inpaint", 0.10),
        _strength("rw4o6", "inpaint", 0.20),
    ]
    models = [
        {"attack": "inpaint", "scheme": "lw4o6", "stopped": "budget", "budget": "epochs"},
        {"attack": "inpaint", "scheme": "rw4o6", "stopped": "converged", "budget": None},
    ]
    board = _board(tmp_path, {**_results(rows), "trained_models": models})
    group = _only_group(board)
    flags = {(b.scheme, line.attack): line.not_converged for b in group.schemes for line in b.lines}
    assert flags == {("lw4o6", "naive"): None, ("lw4o6", "inpaint"): NOT_CONVERGED, ("rw4o6", "inpaint"): None}
    out = tmp_path / "out"
    page = render_html(board, out)
    assert page.count(f'<span class="flag not-converged">{NOT_CONVERGED}</span>') == 2  # scheme table and its line
    exported = list(csv.DictReader(io.StringIO(render_csv(board, out))))
    assert {(r["scheme"], r["attack"]): r["not_converged"] for r in exported if r["line"] == "attack"} == {
        ("lw4o6", "naive"): "",
        ("lw4o6", "inpaint"): NOT_CONVERGED,
        ("rw4o6", "inpaint"): "",
    }
    assert f"inpaint ({NOT_CONVERGED})" in render_markdown(board, out)


def test_a_chain_is_a_scheme_s_strongest_attack_by_its_readable_name(tmp_path):
    """A chained attack's row competes like any other: the minimum over all attacks, named as the run named it."""
    chain = "inpaint(conceal-codeblock)"
    rows = [*_basic_rows(), _strength("lw4o6", chain, 0.05, sar=0.6), _strength("rw4o6", chain, 0.50, sar=0.0)]
    board = _board(tmp_path, _results(rows))
    group = _only_group(board)
    lw, rw = _scheme(group, "lw4o6"), _scheme(group, "rw4o6")
    assert lw.strongest is not None and lw.strongest.attack == chain and lw.n_attacks == 4
    assert rw.strongest is not None and rw.strongest.attack == "inpaint"  # the chain is weaker there
    assert [line.attack for line in lw.lines][:2] == [chain, "inpaint"]
    out = tmp_path / "out"
    assert f">{chain}<" in render_html(board, out)
    assert r"inpaint\(conceal-codeblock\)" in render_markdown(board, out)  # escaped: Markdown renders "(...)"
    schemes = list(csv.DictReader(io.StringIO(render_schemes_csv(board, out))))
    assert next(r for r in schemes if r["scheme"] == "lw4o6")["strongest_attack"] == chain
