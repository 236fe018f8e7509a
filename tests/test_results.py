"""results.json: plain JSON values, atomic write, checked read."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmark.engine.results import SCHEMA_VERSION, ResultsError, jsonable, read_results, write_results


def test_jsonable_keeps_numbers_numbers_and_undefined_null():
    got = jsonable({"a": np.float64(0.5), "b": (1, np.int64(2)), "c": float("nan"), 3: float("inf")})
    assert got == {"a": 0.5, "b": [1, 2], "c": None, "3": None}
    assert isinstance(got["a"], float) and isinstance(got["b"][1], int)


def test_write_then_read_round_trips(tmp_path):
    results = {"schema_version": SCHEMA_VERSION, "rows": [{"metrics": {"eer": np.float32(0.25), "psnr": float("nan")}}]}
    path = write_results(tmp_path / "r" / "results.json", results)  # type: ignore[arg-type]
    back = read_results(path)
    assert back["rows"][0]["metrics"] == {"eer": 0.25, "psnr": None}
    assert "NaN" not in path.read_text()
    assert not list(path.parent.glob(".*.tmp"))


@pytest.mark.parametrize("content", ["not json", json.dumps({"schema_version": 99}), json.dumps([1, 2])])
def test_bad_results_files_are_one_line_errors(tmp_path, content):
    path = tmp_path / "results.json"
    path.write_text(content)
    with pytest.raises(ResultsError) as info:
        read_results(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ResultsError, match="cannot read"):
        read_results(tmp_path / "nope.json")
