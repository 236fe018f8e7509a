"""JSON of users' files: nesting bounded before anything recurses over it, every failure one line."""

from __future__ import annotations

import pytest

from benchmark.core.strict_json import MAX_DEPTH, JsonError, json_depth, parse_json


def test_parses_like_json_loads():
    assert parse_json('{"a": [1, {"b": null}], "c": "[[["}') == {"a": [1, {"b": None}], "c": "[[["}
    assert parse_json(b'[1.5, "\\u00e9"]') == [1.5, "\u00e9"]


@pytest.mark.parametrize("depth", [100_000, MAX_DEPTH + 1], ids=["past-the-stack", "just-over"])
def test_deep_nesting_is_a_json_error_not_a_recursion_error(depth):
    with pytest.raises(JsonError) as info:
        parse_json('{"x": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}")
    assert str(info.value) == f"nested too deeply (more than {MAX_DEPTH} levels)"


def test_nesting_up_to_the_bound_is_read():
    text = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert json_depth(parse_json(text)) == MAX_DEPTH


@pytest.mark.parametrize(
    "text, message",
    [("{", "Expecting property name"), ("[" + "7" * 5000 + "]", "4300"), (b"\xff", "utf-8")],
    ids=["malformed", "huge-integer", "bad-utf8"],
)
def test_other_failures_are_json_errors_in_one_line(text, message):
    with pytest.raises(JsonError, match=message) as info:
        parse_json(text)
    assert "\n" not in str(info.value)


def test_depth_counts_containers_only():
    assert json_depth(3) == 0 and json_depth([]) == 1 and json_depth({"a": [1, [2]], "b": {}}) == 3
    assert json_depth([[[[1]]]], limit=2) == 3
