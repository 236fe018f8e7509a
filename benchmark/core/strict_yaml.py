"""Strict YAML for typed models: every mistake as one line naming its line, field path and what is wrong.

``yaml.safe_load`` forgets where a value stood and silently keeps the last
of two equal keys; pydantic reports a field path and a long message. The
loaders of YAML files into strict pydantic models (protocol files, reported
leaderboard entries) share what turns both into one located line:

* :func:`read_yaml` and :func:`parse_yaml` give the data together with the
  composed node tree (which knows the lines) and refuse duplicate keys;
* :func:`validate` validates the data against a model and locates its first
  error;
* :func:`node_line` finds the line of a field path, :func:`format_loc`
  writes the path (``schemes[0].params.window``), :func:`describe_error`
  words a pydantic error (``is required but missing``, ``0 is not >= 1``,
  ``unknown key; did you mean 'name'? (allowed: ...)``).

Hostile text is refused before it can cost time or memory: a file larger
than :data:`MAX_BYTES` is refused before it is read, and while the node tree
is composed (node by node) a string longer than :data:`MAX_STRING`, nesting
deeper than :data:`MAX_DEPTH` and more than :data:`MAX_VALUES` values stop it
at once, with the line where the limit was passed.

Problems are raised as :class:`StrictYamlError`, whose line and field path
stay apart from the message, so that each loader writes them in its own
``file:line: path: message`` form and with its own error type.
"""

from __future__ import annotations

import difflib
import os
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from benchmark.core.keys import looks_like_key

__all__ = [
    "Loc",
    "KEY",
    "MAX_VALUES",
    "MAX_BYTES",
    "MAX_STRING",
    "MAX_DEPTH",
    "StrictYamlError",
    "YamlSyntaxError",
    "one_line",
    "shown",
    "did_you_mean",
    "located",
    "format_loc",
    "read_yaml",
    "parse_yaml",
    "node_line",
    "submodel",
    "describe_error",
    "validate",
]

#: A field path as pydantic writes it: mapping keys and list indices.
Loc = tuple[str | int, ...]
#: The part pydantic appends to a path whose mapping *key* (not value) is wrong.
KEY = "[key]"

M = TypeVar("M", bound=BaseModel)

#: Most values a document may expand to (aliases included); protocols and
#: entries hold hundreds, an alias bomb billions.
MAX_VALUES = 10_000
#: Most bytes a YAML file (or text) may hold: protocols and entries are a few
#: kilobytes; refused before reading, as PyYAML needs ~200 bytes of memory and
#: ~20 µs per byte of a list it composes.
MAX_BYTES = 1_000_000
#: Most characters of one string (a name, path, pattern or note).
MAX_STRING = 10_000
#: Most levels of nested lists and mappings (protocols nest about 5).
MAX_DEPTH = 100
# Python refuses to convert longer decimal strings (sys.get_int_max_str_digits).
_MAX_INT_DIGITS = 4300
_INT_TAG = "tag:yaml.org,2002:int"

_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
_BOUND_CTX = {"greater_than": "gt", "greater_than_equal": "ge", "less_than": "lt", "less_than_equal": "le"}


class StrictYamlError(ValueError):
    """A YAML text that cannot be read strictly.

    Attributes:
        message: What is wrong, one line.
        line: The 1-based line it is at, None when unknown.
        loc: The field path it is at (empty: the file or document as a whole).
    """

    def __init__(self, message: str, line: int | None = None, loc: Loc = ()):
        self.message, self.line, self.loc = message, line, loc
        where = f"line {line}" if line is not None else "(no line)"
        super().__init__(f"{where}: {format_loc(loc)}: {message}" if loc else f"{where}: {message}")


class YamlSyntaxError(StrictYamlError):
    """Text that is not YAML at all (as opposed to YAML that is refused)."""


def one_line(text: object) -> str:
    """``text`` with every run of whitespace, newlines included, made one space."""
    return " ".join(str(text).split())


def shown(value: object, limit: int | None = 80, *, quote: bool = True) -> str:
    """A user's value as a message may repeat it: ``repr`` cut to ``limit`` characters, a key hidden.

    Args:
        value: The value (a ``--set`` text, a field's input).
        limit: Most characters shown (None: all).
        quote: Show ``repr(value)``; False shows the text as typed (``--set`` values).

    Returns:
        ``repr(value)`` (strings: the text, for ``--set``), shortened with an
        ellipsis; ``<hidden: looks like a key>`` when it may hold key material.
    """
    if looks_like_key(value):
        return "<hidden: looks like a key>"
    text = one_line(repr(value) if quote else value)
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."


def did_you_mean(name: str, choices: Sequence[str], *, n: int = 1, cutoff: float = 0.6) -> str:
    """The hint every "unknown …" message carries: ``; did you mean 'root'?``, or empty without a near miss.

    Args:
        name: What was written.
        choices: What is allowed.
        n: Most suggestions (joined by "or").
        cutoff: How alike a suggestion must be (``difflib`` ratio).

    Returns:
        The hint, starting with ``; ``, or ``""``.
    """
    close = difflib.get_close_matches(name, list(choices), n=n, cutoff=cutoff)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def located(path: Path | str, line: int | None) -> str:
    """``file:line``, or ``file`` alone when the line is unknown."""
    return f"{path}:{line}" if line else str(path)


def format_loc(loc: Loc) -> str:
    """A field path as written in messages: ``schemes[0].params.window``, ``metrics.sar_at_fmr.1e-3 (key)``.

    Args:
        loc: The path.

    Returns:
        The text; empty for an empty path.
    """
    out = ""
    for part in loc:
        if part == KEY:
            out += " (key)"
        elif isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


# --------------------------------------------------------------------------- reading


def read_yaml(path: Path, what: str = "file") -> tuple[str, Any, yaml.Node | None]:
    """Read a UTF-8 YAML file: its text, data and node tree (see :func:`parse_yaml`).

    Args:
        path: The file.
        what: What the file is, for the message when it does not exist (``no such <what>``).

    Returns:
        ``(text, data, root)``; ``data`` and ``root`` are None for an empty document.

    Raises:
        StrictYamlError: the file is missing or unreadable, or as :func:`parse_yaml`.
    """
    try:
        with Path(path).open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            # Read one byte past the bound: a pipe or a growing file has no size to trust.
            raw = fh.read(MAX_BYTES + 1) if size <= MAX_BYTES else b""
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise StrictYamlError(f"no such {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StrictYamlError(f"cannot read: {one_line(exc)}") from None
    if size > MAX_BYTES or len(raw) > MAX_BYTES:
        held = f"{size:,} bytes" if size > MAX_BYTES else "more bytes"
        raise StrictYamlError(f"{what} of {held} refused: at most {MAX_BYTES:,} bytes")
    data, root = parse_yaml(text)
    return text, data, root


def parse_yaml(text: str) -> tuple[Any, yaml.Node | None]:
    """Parse YAML like ``yaml.safe_load``, also keeping the node tree and refusing duplicate keys.

    Args:
        text: The YAML text.

    Returns:
        ``(data, root)``: what ``yaml.safe_load`` gives and the composed node
        tree it was constructed from (None for an empty document).

    Raises:
        StrictYamlError: ``YAML syntax error: ...`` (located where YAML says),
            ``YAML error: ...``, ``duplicate key`` (located at the second key),
            or a limit passed (:data:`MAX_BYTES`, :data:`MAX_STRING`,
            :data:`MAX_DEPTH`, :data:`MAX_VALUES`; located where it was passed).
    """
    if len(text) > MAX_BYTES:
        raise StrictYamlError(f"YAML text of {len(text):,} characters refused: at most {MAX_BYTES:,}")
    try:
        root = _compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = one_line(exc.problem or exc.context or "invalid YAML")
        raise YamlSyntaxError(f"YAML syntax error: {problem}", mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(f"YAML error: {one_line(exc)}") from None
    except RecursionError:
        # PyYAML composes recursively; MAX_DEPTH stops nesting long before the
        # stack ends, this only backs it up (a caller deep in its own stack).
        raise StrictYamlError("YAML error: nested too deeply") from None
    if root is None:
        return None, None
    _check_tree(root)
    try:
        return _construct(root), root
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise StrictYamlError(f"YAML error: {one_line(exc.problem or exc)}", mark.line + 1 if mark else None) from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise StrictYamlError(f"YAML error: {one_line(exc)}") from None


class _BoundedLoader(yaml.SafeLoader):
    """A loader that counts as it composes: a limit passed stops it before the rest of the tree is built."""

    def __init__(self, text: str):
        super().__init__(text)
        self._values = 0
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        line = event.start_mark.line + 1
        self._values += 1
        if self._values > MAX_VALUES:
            raise StrictYamlError(f"more than {MAX_VALUES} values", line)
        if isinstance(event, yaml.ScalarEvent) and len(event.value) > MAX_STRING:
            raise StrictYamlError(f"a string of {len(event.value):,} characters: at most {MAX_STRING:,}", line)
        if not isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            return super().compose_node(parent, index)
        if self._depth >= MAX_DEPTH:
            raise StrictYamlError(f"YAML error: nested too deeply (more than {MAX_DEPTH} levels)", line)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _compose(text: str) -> yaml.Node | None:
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _construct(root: yaml.Node) -> Any:
    # What yaml.safe_load does with the node tree it composed.
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(root)
    finally:
        loader.dispose()


def _check_tree(root: yaml.Node) -> None:
    """Refuse duplicate keys, over-long integers and alias bombs, in time linear in the text.

    Aliases make the node tree a graph whose expansion can be exponential in
    the text (a kilobyte of nested anchors is a billion values), so each node
    is visited once and the expanded size is counted with memoisation.
    """
    sizes: dict[int, int] = {}
    opened: set[int] = set()
    # An explicit stack, not recursion: nesting depth is bounded by compose only.
    stack: list[tuple[yaml.Node, Loc, bool]] = [(root, (), False)]
    while stack:
        node, loc, done = stack.pop()
        if id(node) in sizes:
            continue
        if not done and id(node) in opened:
            # Reached again inside its own subtree: an anchor aliased within itself.
            raise StrictYamlError("an alias refers to its own anchor", node.start_mark.line + 1, loc)
        opened.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _INT_TAG and sum(c.isdigit() for c in node.value) > _MAX_INT_DIGITS:
                raise StrictYamlError(
                    f"an integer of more than {_MAX_INT_DIGITS} digits", node.start_mark.line + 1, loc
                )
            sizes[id(node)] = 1
            continue
        children = _children(node, loc)
        if not done:
            if isinstance(node, yaml.MappingNode):
                seen: set[str] = set()
                for key_node, _ in node.value:
                    if key_node.value in seen:
                        raise StrictYamlError("duplicate key", key_node.start_mark.line + 1, (*loc, key_node.value))
                    seen.add(key_node.value)
            stack.append((node, loc, True))
            stack.extend((child, child_loc, False) for child, child_loc in children if id(child) not in sizes)
            continue
        size = 1 + sum(sizes.get(id(child), 1) for child, _ in children)
        if size > MAX_VALUES:
            raise StrictYamlError(
                f"expands to more than {MAX_VALUES} values (aliases repeating aliases?)", node.start_mark.line + 1, loc
            )
        sizes[id(node)] = size


def _children(node: yaml.Node, loc: Loc) -> list[tuple[yaml.Node, Loc]]:
    if isinstance(node, yaml.MappingNode):
        out: list[tuple[yaml.Node, Loc]] = []
        for key_node, value_node in node.value:
            out += [(key_node, loc), (value_node, (*loc, key_node.value))]
        return out
    if isinstance(node, yaml.SequenceNode):
        return [(item, (*loc, i)) for i, item in enumerate(node.value)]
    return []


def node_line(root: yaml.Node | None, loc: Loc) -> int | None:
    """The 1-based line of the deepest node of ``root`` along the field path ``loc``.

    A path that leaves the tree (a missing or unknown key) stops at the last
    node found; an unknown key is best shown at the key itself, so a key
    found in a mapping gives its own line until its value is entered.

    Args:
        root: The node tree (:func:`parse_yaml`).
        loc: The field path.

    Returns:
        The line, None without a tree.
    """
    if root is None:
        return None
    node, line = root, root.start_mark.line + 1
    for part in loc:
        if part == KEY:
            break
        nxt = None
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if str(key_node.value) == str(part):
                    line, nxt = key_node.start_mark.line + 1, value_node
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            nxt = node.value[part]
        if nxt is None:
            break
        node = nxt
        line = node.start_mark.line + 1
    return line


# --------------------------------------------------------------------------- pydantic errors


def _unwrap(annotation: Any) -> type[BaseModel] | None:
    """The model an annotation holds: itself, or inside ``Annotated``, ``X | None``, ``list[X]``, ``tuple[X, ...]``."""
    origin = typing.get_origin(annotation)
    if origin in (Annotated, list, tuple):
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(annotation):
            model = _unwrap(arg)
            if model is not None:
                return model
        return None
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def submodel(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model of the value at field path ``loc`` of ``model`` (``model`` itself for an empty path).

    List indices are passed through (``schemes[0]`` is a ``schemes`` item).

    Args:
        model: The top-level model.
        loc: The field path.

    Returns:
        The model, None where the path does not lead to one.
    """
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int):
            continue
        info = current.model_fields.get(str(part)) if current is not None else None
        if info is None:
            return None
        current = _unwrap(info.annotation)
    return current


def describe_error(err: ErrorDetails, model: type[BaseModel], *, noun: str = "key", sort_allowed: bool = True) -> str:
    """One pydantic error in words, without its path.

    Examples: ``is required but missing``, ``'two' is not an integer``,
    ``1 is not >= 2``, ``'x' is not one of 'a' or 'b'``, ``unknown key; did
    you mean 'name'? (allowed: grid, name, params)``; a ``ValueError`` of a
    validator gives its own message.

    Args:
        err: The error (one item of ``ValidationError.errors()``).
        model: The model that was validated (to list the fields an unknown key could have meant).
        noun: What a mapping key is called in ``unknown <noun>``.
        sort_allowed: List allowed keys sorted, else in declaration order.

    Returns:
        The text.
    """
    kind, value, loc = err["type"], err.get("input"), tuple(err["loc"])
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        owner = submodel(model, loc[:-1])
        allowed = list(owner.model_fields) if owner is not None else []
        if sort_allowed:
            allowed.sort()
        return f"unknown {noun}{did_you_mean(str(loc[-1]), allowed)} (allowed: {', '.join(allowed)})"
    if kind == "missing":
        return "is required but missing"
    if kind in _EXPECTED:
        return f"{shown(value)} is not {_EXPECTED[kind]}"
    if kind in _BOUNDS:
        return f"{shown(value)} is not {_BOUNDS[kind]} {ctx.get(_BOUND_CTX[kind])}"
    if kind == "finite_number":
        return f"{shown(value)} is not a finite number"
    if kind == "literal_error":
        return f"{shown(value)} is not one of {ctx.get('expected', '')}"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length', 1)} item(s)"
    if kind == "string_too_short":
        n = ctx.get("min_length", 1)
        return "must not be empty" if n == 1 else f"needs at least {n} characters"
    if kind == "string_pattern_mismatch":
        return f"{shown(value)} does not match {ctx.get('pattern', '')}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return f"{shown(value)}: {err['msg']}"


def validate(
    model: type[M], data: Any, root: yaml.Node | None, *, describe: Callable[[ErrorDetails], str] | None = None
) -> M:
    """Validate ``data`` against ``model``; the first error becomes a located :class:`StrictYamlError`.

    Args:
        model: The pydantic model.
        data: The parsed YAML (:func:`parse_yaml`).
        root: Its node tree, to find the error's line.
        describe: Words an error (default: :func:`describe_error` with ``model``).

    Returns:
        The validated model.

    Raises:
        StrictYamlError: the first validation error, with its field path and line.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        message = describe(err) if describe is not None else describe_error(err, model)
        raise StrictYamlError(message, node_line(root, loc), loc) from None
