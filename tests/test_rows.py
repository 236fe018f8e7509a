"""Tests for reports.rows: recognizer parameters and labels without run-time settings."""

from __future__ import annotations

from reports.rows import recognizer_labels, recognizer_params


def _row(name: str, params: dict, runtime: list[str] | None) -> dict:
    row = {"recognizer": name, "recognizer_params": params, "scheme": "none", "attack": "none", "view": "baseline"}
    if runtime is not None:
        row["recognizer_runtime_params"] = runtime
    return row


def test_runtime_settings_are_not_part_of_a_recognizers_identity():
    runtime = ["batch_size", "threads"]
    a, b = (
        _row("sface", {"batch_size": 16, "threads": 1}, runtime),
        _row("sface", {"batch_size": 32, "threads": 4}, runtime),
    )
    assert recognizer_params(a) == {} and recognizer_labels([a, b]) == {id(a): "sface", id(b): "sface"}
    c, d = _row("lbp", {"radius": 1, "threads": 1}, ["threads"]), _row("lbp", {"radius": 2, "threads": 1}, ["threads"])
    assert recognizer_labels([c, d]) == {id(c): "lbp (radius=1)", id(d): "lbp (radius=2)"}
    # Results written before run-time settings were declared show every parameter, as they did.
    old = _row("sface", {"batch_size": 16}, None)
    assert recognizer_params(old) == {"batch_size": 16}
