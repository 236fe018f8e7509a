"""Strict YAML: duplicate keys, lines of field paths, pydantic errors in one line."""

from __future__ import annotations

import time
import tracemalloc

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from benchmark.core import strict_yaml
from benchmark.core.strict_yaml import (
    MAX_BYTES,
    MAX_DEPTH,
    MAX_STRING,
    StrictYamlError,
    YamlSyntaxError,
    describe_error,
    format_loc,
    node_line,
    parse_yaml,
    read_yaml,
    shown,
    validate,
)


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    count: int = Field(1, ge=1)
    share: float = Field(0.5, gt=0.0, lt=1.0)


class Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str
    items: list[Item] = Field(default_factory=list)
    extra: Item | None = None


DOC = """\
title: t
items:
  - name: a
  - name: b
    count: 2
"""


def error_of(text: str) -> StrictYamlError:
    data, root = parse_yaml(text)
    with pytest.raises(StrictYamlError) as info:
        validate(Doc, data, root)
    return info.value


def test_parse_gives_safe_load_data_and_lines():
    data, root = parse_yaml(DOC)
    assert data == {"title": "t", "items": [{"name": "a"}, {"name": "b", "count": 2}]}
    assert node_line(root, ("items", 1, "count")) == 5
    assert node_line(root, ("items", 1, "missing")) == 4  # stops at the deepest node found
    assert node_line(root, ()) == 1
    assert parse_yaml("") == (None, None)
    assert node_line(None, ("title",)) is None


def test_duplicate_key_is_located_at_the_second_key():
    with pytest.raises(StrictYamlError) as info:
        parse_yaml(DOC + "  - name: c\n    name: d\n")
    assert (info.value.message, info.value.line, info.value.loc) == ("duplicate key", 7, ("items", 2, "name"))


def test_syntax_error_is_one_located_line():
    with pytest.raises(StrictYamlError) as info:
        parse_yaml("title: [t\nitems: x\n")
    assert info.value.message.startswith("YAML syntax error: ")
    assert info.value.line == 2 and "\n" not in info.value.message


def test_unknown_key_suggests_the_closest_field():
    err = error_of(DOC + "  - name: c\n    nmae: d\n")
    assert err.loc == ("items", 2, "nmae") and err.line == 7
    assert err.message == "unknown key; did you mean 'name'? (allowed: count, name, share)"


def test_describe_error_in_declaration_order_with_own_noun():
    data, _ = parse_yaml("title: t\nextra: {name: x, sahre: 0.1}\n")
    with pytest.raises(ValidationError) as info:
        Doc.model_validate(data)
    err = info.value.errors()[0]
    text = describe_error(err, Doc, noun="field", sort_allowed=False)
    assert text == "unknown field; did you mean 'share'? (allowed: name, count, share)"


def test_nested_list_index_path():
    err = error_of(DOC.replace("count: 2", "count: two"))
    assert format_loc(err.loc) == "items[1].count"
    assert (err.line, err.message) == (5, "'two' is not an integer")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("count: 2", "count: 0", "0 is not >= 1"),
        ("count: 2", "share: 1.0", "1.0 is not < 1.0"),
        ("count: 2", "share: 0", "0 is not > 0.0"),
    ],
)
def test_bound_errors(old, new, message):
    assert error_of(DOC.replace(old, new)).message == message


def test_missing_field_points_at_its_mapping():
    err = error_of(DOC.replace("title: t\n", ""))
    assert (format_loc(err.loc), err.line, err.message) == ("title", 1, "is required but missing")
    err = error_of(DOC.replace("  - name: a\n", "  - {}\n"))
    assert (format_loc(err.loc), err.line, err.message) == ("items[0].name", 3, "is required but missing")


def test_format_loc_marks_a_bad_mapping_key():
    assert format_loc(("metrics", "rates", "1e-3", "[key]")) == "metrics.rates.1e-3 (key)"
    assert format_loc(()) == ""


def test_read_yaml_names_what_is_missing(tmp_path):
    with pytest.raises(StrictYamlError, match="no such protocol file"):
        read_yaml(tmp_path / "nope.yaml", "protocol file")
    (tmp_path / "x.yaml").write_text(DOC)
    text, data, root = read_yaml(tmp_path / "x.yaml")
    assert text == DOC and data["title"] == "t" and root is not None


# --------------------------------------------------------------------------- hostile input


def _bomb(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_quickly_and_located():
    # 9 levels of 9 aliases: under a kilobyte of text, 9**9 values once expanded.
    with pytest.raises(StrictYamlError) as info:
        parse_yaml(_bomb(9))
    assert "expands to more than" in info.value.message and info.value.line is not None


def test_aliases_within_the_limit_still_work():
    data, _ = parse_yaml("base: &b {name: a, count: 2}\nitems: [*b, *b]\n")
    assert data["items"] == [{"name": "a", "count": 2}] * 2


def test_self_referencing_anchor_is_refused():
    with pytest.raises(StrictYamlError, match="refers to its own anchor"):
        parse_yaml("title: &t [*t]\n")


def test_deep_nesting_is_a_yaml_error_not_a_recursion_error():
    with pytest.raises(StrictYamlError, match="nested too deeply") as info:
        parse_yaml("title: t\nitems: " + "[" * 20_000 + "]" * 20_000 + "\n")
    assert info.value.line == 2 and f"more than {MAX_DEPTH} levels" in info.value.message


@pytest.mark.parametrize("body", ["- 0\n", "y"], ids=["list", "scalar"])
def test_a_50_mb_file_is_refused_before_it_is_read(tmp_path, monkeypatch, body):
    path = tmp_path / "big.yaml"
    with path.open("w") as fh:
        fh.write("title: t\nitems:\n" if body.startswith("-") else "title: ")
        fh.write(body * (50_000_000 // len(body)))
    monkeypatch.setattr(strict_yaml, "_compose", lambda text: pytest.fail("the text was parsed"))
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(StrictYamlError) as info:
            read_yaml(path, "protocol file")
        seconds, peak = time.perf_counter() - start, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.message == f"protocol file of {path.stat().st_size:,} bytes refused: at most {MAX_BYTES:,} bytes"
    # Loose bounds (the figures are microseconds and bytes): the file is never read, let alone parsed.
    assert seconds < 1 and peak < 1_000_000


def test_a_text_over_the_bound_is_refused_before_parsing(monkeypatch):
    monkeypatch.setattr(strict_yaml, "_compose", lambda text: pytest.fail("the text was parsed"))
    with pytest.raises(StrictYamlError, match=f"at most {MAX_BYTES:,}"):
        parse_yaml("title: " + "y" * MAX_BYTES)


def test_a_long_string_is_refused_with_its_line():
    parse_yaml("title: " + "y" * MAX_STRING)
    with pytest.raises(StrictYamlError) as info:
        parse_yaml("title: t\nitems:\n  - name: " + "y" * (MAX_STRING + 1) + "\n")
    assert info.value.line == 3
    assert info.value.message == f"a string of {MAX_STRING + 1:,} characters: at most {MAX_STRING:,}"


def test_too_many_values_stop_the_composition_where_they_pass_the_bound(monkeypatch):
    # A long plain list has no alias to expand: it is refused while composed, not after.
    monkeypatch.setattr(strict_yaml, "MAX_VALUES", 1000)
    monkeypatch.setattr(strict_yaml, "_check_tree", lambda root: pytest.fail("the whole tree was composed"))
    with pytest.raises(StrictYamlError) as info:
        parse_yaml("title: t\nitems:\n" + "- 0\n" * 5000)
    # The mapping, its 2 keys, 't' and the list are 5 values: the 1001st is the 996th item, on line 3 + 995.
    assert info.value.message == "more than 1000 values" and info.value.line == 998


def test_huge_integer_is_located():
    with pytest.raises(StrictYamlError) as info:
        parse_yaml("title: t\nitems:\n  - count: " + "7" * 5000 + "\n")
    assert "more than 4300 digits" in info.value.message
    assert (info.value.line, info.value.loc) == (3, ("items", 0, "count"))


def test_syntax_errors_are_told_apart_from_refused_yaml():
    with pytest.raises(YamlSyntaxError):
        parse_yaml("title: [t\n")
    with pytest.raises(StrictYamlError) as info:
        parse_yaml("title: &t [*t]\n")
    assert not isinstance(info.value, YamlSyntaxError)


def test_shown_hides_key_material_and_cuts_long_values():
    key = "00112233445566778899aabbccddeeff" * 2
    assert shown(key) == "<hidden: looks like a key>"
    assert shown(f"path/{key}.bin", quote=False) == "<hidden: looks like a key>"
    assert shown("x" * 500) == "'" + "x" * 76 + "..."
    assert shown("x" * 500, None, quote=False) == "x" * 500
    assert shown(7) == "7"


def test_errors_never_repeat_a_key_given_as_a_value():
    key = "deadbeef" * 8
    err = error_of(f"title: t\nitems:\n  - name: a\n    count: {key}\n")
    assert key not in err.message and "hidden" in err.message
